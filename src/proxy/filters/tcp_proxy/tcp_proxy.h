#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/random.h"
#include "common/result.h"
#include "proxy/accesslog/access_log.h"
#include "proxy/accesslog/stream_info.h"
#include "proxy/filters/istio_stats/istio_stats_filter.h"
#include "proxy/filters/peer_metadata/tcp_exchange.h"
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
  // istio.metadata_exchange before the proxy: the ALPN protocol on which the downstream peer
  // exchanges workload metadata (Istio's "istio-peer-exchange"); empty: no exchange.
  std::string metadata_exchange_protocol;
  // istio.stats before the proxy: Istio's TCP metrics for each session; null: none.
  std::shared_ptr<const istio_stats::IstioStatsConfig> istio_stats;
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
  // The metadata exchange with the downstream (server side) starts on the first bytes either
  // way, once TLS has negotiated its ALPN protocol.
  void startDownstreamExchange();
  // istio.stats: the session counts as opened once both exchanges are settled.
  void maybeReportOpen();
  // Istio's TCP metadata exchange on one side of the session.
  enum class Exchange : uint8_t { kOff, kUndecided, kReading, kSettled };
  // Takes a peer's exchange off the front of `data` while `exchange` is reading; false when
  // nothing is left to pass on yet.
  bool readExchange(Exchange& exchange, peer_metadata::ExchangeReader& reader,
                    std::shared_ptr<const PeerWorkloadMetadata>& peer, network::Buffer& data,
                    bool end_stream);

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
  network::Buffer held_upstream_;  // upstream bytes waiting for the downstream exchange's start
  bool held_upstream_end_ = false;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> max_duration_timer_;
  StreamInfo info_;
  // kOff where the exchange does not happen.
  Exchange downstream_exchange_ = Exchange::kOff;
  Exchange upstream_exchange_ = Exchange::kOff;
  peer_metadata::ExchangeReader downstream_reader_;
  peer_metadata::ExchangeReader upstream_reader_;
  std::optional<istio_stats::TcpStatsReporter> stats_reporter_;
  uint32_t connect_attempts_ = 0;
  bool upstream_connected_ = false;
  bool downstream_closed_ = false;
  bool upstream_closed_ = false;
  bool finished_ = false;
  bool checked_ = false;
};

}  // namespace sheave::tcp_proxy
