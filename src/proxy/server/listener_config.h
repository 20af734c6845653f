#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/result.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "match/filter_chain_matcher.h"
#include "proxy/filters/rbac/rbac_filter.h"
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
  stats::Counter& downstream_pre_cx_timeout;
  stats::Gauge& downstream_pre_cx_active;
  stats::Counter& downstream_listener_filter_error;
};

// Envoy's root-scope "tls_inspector." and "http_inspector." counters (shared by every
// listener, as in Envoy).
struct ListenerFilterStats {
  explicit ListenerFilterStats(stats::Scope& root);
  stats::Counter& tls_found;
  stats::Counter& tls_not_found;
  stats::Counter& sni_found;
  stats::Counter& sni_not_found;
  stats::Counter& alpn_found;
  stats::Counter& alpn_not_found;
  stats::Counter& client_hello_too_large;
  stats::Counter& http10_found;
  stats::Counter& http11_found;
  stats::Counter& http2_found;
  stats::Counter& http_not_found;
  stats::Counter& read_error;
};

// One Listener.filter_chains[] entry (or the default_filter_chain): its transport socket and
// its network filters: optional RBAC filters, then either an HTTP connection manager or a TCP
// proxy.
struct FilterChainConfig {
  std::string name;  // FilterChain.name, or "filter_chains[i]" / "default_filter_chain"
  std::shared_ptr<const http::ConnectionManagerConfig> http;
  std::shared_ptr<const tcp_proxy::TcpProxyConfig> tcp;
  // envoy.filters.network.rbac filters configured before the terminal filter, in order.
  std::vector<std::shared_ptr<const rbac::NetworkRbacConfig>> network_rbac;
  // DownstreamTlsContext; null: plaintext (raw_buffer).
  std::shared_ptr<network::tls::TlsSocketFactory> transport_socket_factory;
};

// The listener filters Sheave runs, in the configured order.
enum class ListenerFilterKind { kOriginalDst, kTlsInspector, kHttpInspector };

// ListenerFilter.filter_disabled (ListenerFilterChainMatchPredicate): when it matches the
// connection's destination, that listener filter is skipped (Istio turns the inspectors off on
// ports whose protocol it knows).
struct ListenerFilterPredicate {
  enum class Op { kAny, kOr, kAnd, kNot, kPortRange };
  Op op = Op::kAny;
  int32_t start = 0;  // kPortRange: [start, end)
  int32_t end = 0;
  std::vector<ListenerFilterPredicate> rules;  // kOr, kAnd: all; kNot: one

  bool matches(const Address& destination) const;
};

// A listener as configured: validated once on the main thread, then shared
// read-only by every worker.
struct ListenerConfig {
  std::string name;
  Address address;
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  // Indexed as Listener.filter_chains; `matcher` picks one per connection.
  std::vector<FilterChainConfig> filter_chains;
  std::unique_ptr<const FilterChainConfig> default_filter_chain;
  std::unique_ptr<const FilterChainMatcher> matcher;
  std::vector<ListenerFilterKind> listener_filters;
  // Parallel to listener_filters: filter_disabled, when set.
  std::vector<std::optional<ListenerFilterPredicate>> listener_filters_disabled;
  // 0: no timeout.
  std::chrono::milliseconds listener_filters_timeout{15000};
  bool continue_on_listener_filters_timeout = false;
  // tls_inspector's bound on the ClientHello, record headers included.
  size_t max_client_hello_size = 64 * 1024;
  // Hand connections whose original destination belongs to another listener over to it.
  bool use_original_dst = false;
  // false: no socket; the listener only receives connections handed off by a use_original_dst
  // listener (Istio's 0.0.0.0_<port> outbound listeners).
  bool bind_to_port = true;
  std::shared_ptr<stats::Scope> scope;
  std::unique_ptr<ListenerStats> stats;
  std::shared_ptr<ListenerFilterStats> filter_stats;
  envoy::config::listener::v3::Listener proto;  // for /config_dump

  // The chain for a connection, or null: no chain matched and there is no default chain (the
  // caller closes the connection and counts no_filter_chain_match).
  const FilterChainConfig* selectChain(const ConnectionView& connection) const;
  bool needsListenerFilters() const { return !listener_filters.empty() || use_original_dst; }
  bool hasListenerFilter(ListenerFilterKind kind) const;
  // Whether listener_filters[index] is off for a connection to `destination`.
  bool listenerFilterDisabled(size_t index, const Address& destination) const {
    const auto& disabled = listener_filters_disabled[index];
    return disabled && disabled->matches(destination);
  }

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
