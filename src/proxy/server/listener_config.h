#pragma once

#include <memory>
#include <string>

#include "common/address.h"
#include "common/result.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "proxy/filters/tcp_proxy/tcp_proxy.h"
#include "proxy/http/connection_manager_config.h"
#include "proxy/network/tls/tls_socket_factory.h"
#include "proxy/stats/scope.h"

namespace sheave::server {

// "listener.<address>." statistics.
struct ListenerStats {
  explicit ListenerStats(stats::Scope& scope);
  stats::Counter& downstream_cx_total;
  stats::Gauge& downstream_cx_active;
  stats::Counter& downstream_cx_destroy;
  stats::Counter& downstream_cx_overflow;
  stats::Counter& no_filter_chain_match;
};

// A listener as configured: validated once on the main thread, then shared
// read-only by every worker. The network filter chain ends in either an HTTP
// connection manager or a TCP proxy.
struct ListenerConfig {
  std::string name;
  Address address;
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  std::shared_ptr<const http::ConnectionManagerConfig> http;
  std::shared_ptr<const tcp_proxy::TcpProxyConfig> tcp;
  // The filter chain's transport_socket (DownstreamTlsContext); null: plaintext.
  std::shared_ptr<network::tls::TlsSocketFactory> transport_socket_factory;
  std::shared_ptr<stats::Scope> scope;
  std::unique_ptr<ListenerStats> stats;
  envoy::config::listener::v3::Listener proto;  // for /config_dump

  struct Context {
    stats::Scope& stats_root;
    const http::FilterRegistry& http_filters;
    accesslog::AccessLogManager& access_logs;
    std::function<bool(const std::string&)> cluster_exists;
    // Resolves secrets named by TLS contexts; may be null. Must outlive the listener.
    network::tls::SecretManager* secrets = nullptr;
    // RDS route configurations by name (set when the proxy has a management server).
    std::function<std::shared_ptr<http::RouteConfigProvider>(const std::string&)> rds = nullptr;
  };
  static Result<std::shared_ptr<const ListenerConfig>> create(
      const envoy::config::listener::v3::Listener& proto, Context& context);
};

}  // namespace sheave::server
