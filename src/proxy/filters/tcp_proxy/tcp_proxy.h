#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/random.h"
#include "common/result.h"
#include "proxy/accesslog/access_log.h"
#include "proxy/accesslog/stream_info.h"
#include "proxy/network/connection.h"
#include "proxy/stats/scope.h"
#include "proxy/upstream/cluster_manager.h"

namespace envoy::extensions::filters::network::tcp_proxy::v3 {
class TcpProxy;
}

namespace sheave::tcp_proxy {

// "tcp.<stat_prefix>." statistics.
struct TcpProxyStats {
  explicit TcpProxyStats(stats::Scope& scope);
  stats::Counter& downstream_cx_total;
  stats::Counter& downstream_cx_no_route;
  stats::Counter& downstream_cx_tx_bytes_total;
  stats::Counter& downstream_cx_rx_bytes_total;
  stats::Counter& idle_timeout;
  stats::Counter& upstream_flush_total;
  stats::Counter& max_downstream_connection_duration;
  stats::Gauge& downstream_cx_tx_bytes_buffered;
};

// envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, parsed once.
struct TcpProxyConfig {
  std::string stat_prefix;
  struct WeightedCluster {
    std::string name;
    uint32_t weight;
  };
  std::string cluster;
  std::vector<WeightedCluster> weighted_clusters;
  uint64_t total_weight = 0;
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};  // Envoy's default; 0 disables
  std::chrono::milliseconds max_downstream_connection_duration{0};
  uint32_t max_connect_attempts = 1;
  std::vector<std::shared_ptr<const accesslog::AccessLog>> access_logs;
  // Network filters before the proxy that decide on the first bytes (envoy.filters.network.rbac):
  // a false closes the connection before any byte reaches the upstream.
  std::vector<std::function<bool(const network::Connection&)>> connection_checks;
  std::shared_ptr<stats::Scope> scope;
  std::unique_ptr<TcpProxyStats> stats;

  const std::string& pickCluster(uint64_t random) const;

  static Result<std::shared_ptr<const TcpProxyConfig>> create(
      const envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy& proto, stats::Scope& root,
      accesslog::AccessLogManager& access_logs,
      const std::function<bool(const std::string&)>& cluster_exists);
};

// One proxied TCP connection: downstream <-> one upstream host, with
// half-close passed through in both directions and back-pressure by
// read-disabling the side whose peer cannot keep up.
class TcpProxySession : public network::DeferredDeletable {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    virtual RandomGenerator& random() = 0;
    virtual void onSessionClosed(TcpProxySession& session) = 0;
  };

  TcpProxySession(std::shared_ptr<const TcpProxyConfig> config,
                  std::unique_ptr<network::Connection> downstream, network::EventLoop& loop,
                  upstream::ThreadLocalClusterManager& clusters, Host& host);
  ~TcpProxySession() override;

  void startDrain() {}  // TCP sessions end when their peers end them

 private:
  class DownstreamCallbacks;
  class UpstreamCallbacks;

  void connectUpstream();
  void onUpstreamConnected();
  void onUpstreamConnectFailure();
  void onDownstreamData(network::Buffer& data, bool end_stream);
  void onUpstreamData(network::Buffer& data, bool end_stream);
  void onDownstreamEvent(network::ConnectionEvent event);
  void onUpstreamEvent(network::ConnectionEvent event);
  void resetIdleTimer();
  void finish();

  std::shared_ptr<const TcpProxyConfig> config_;
  std::unique_ptr<network::Connection> downstream_;
  std::unique_ptr<network::Connection> upstream_;
  network::EventLoop& loop_;
  upstream::ThreadLocalClusterManager& clusters_;
  Host& host_;
  std::shared_ptr<upstream::ThreadLocalCluster> cluster_;
  upstream::HostSharedPtr upstream_host_;
  std::unique_ptr<DownstreamCallbacks> downstream_callbacks_;
  std::unique_ptr<UpstreamCallbacks> upstream_callbacks_;
  network::Buffer early_data_;  // downstream bytes that arrived before the upstream connected
  bool early_end_stream_ = false;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> max_duration_timer_;
  StreamInfo info_;
  uint32_t connect_attempts_ = 0;
  bool upstream_connected_ = false;
  bool downstream_closed_ = false;
  bool upstream_closed_ = false;
  bool finished_ = false;
  bool checked_ = false;
};

}  // namespace sheave::tcp_proxy
