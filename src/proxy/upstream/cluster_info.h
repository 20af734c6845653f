#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"
#include "proxy/http/http2/protocol_options.h"
#include "proxy/network/tls/tls_socket_factory.h"
#include "proxy/stats/scope.h"
#include "proxy/upstream/health_checker.h"
#include "proxy/upstream/host.h"
#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/outlier_detector.h"
#include "proxy/upstream/resource_manager.h"

namespace sheave::upstream {

// "cluster.<name>." statistics with Envoy's names, resolved once.
struct ClusterStats {
  explicit ClusterStats(stats::Scope& scope);
  ~ClusterStats();
  ClusterStats(const ClusterStats&) = delete;
  ClusterStats& operator=(const ClusterStats&) = delete;

  // upstream_rq_<code> counters, created on first use of a code.
  stats::Counter& upstreamRqCode(uint32_t code);
  stats::Counter& upstreamRqClass(uint32_t code);

  stats::Scope& scope;
  stats::Counter& upstream_cx_total;
  stats::Gauge& upstream_cx_active;
  stats::Counter& upstream_cx_http1_total;
  stats::Counter& upstream_cx_http2_total;
  stats::Counter& upstream_cx_connect_fail;
  stats::Counter& upstream_cx_connect_timeout;
  stats::Counter& upstream_cx_overflow;
  stats::Counter& upstream_cx_none_healthy;
  stats::Counter& upstream_cx_destroy;
  stats::Counter& upstream_cx_destroy_local;
  stats::Counter& upstream_cx_destroy_remote;
  stats::Counter& upstream_cx_idle_timeout;
  stats::Counter& upstream_cx_max_requests;
  stats::Counter& upstream_cx_max_duration_reached;
  stats::Counter& upstream_cx_rx_bytes_total;
  stats::Counter& upstream_cx_tx_bytes_total;
  stats::Counter& upstream_rq_total;
  stats::Gauge& upstream_rq_active;
  stats::Counter& upstream_rq_completed;
  stats::Counter& upstream_rq_pending_total;
  stats::Gauge& upstream_rq_pending_active;
  stats::Counter& upstream_rq_pending_overflow;
  stats::Counter& upstream_rq_pending_failure_eject;
  stats::Counter& upstream_rq_cancelled;
  stats::Counter& upstream_rq_timeout;
  stats::Counter& upstream_rq_per_try_timeout;
  stats::Counter& upstream_rq_rx_reset;
  stats::Counter& upstream_rq_tx_reset;
  stats::Counter& upstream_rq_retry;
  stats::Counter& upstream_rq_retry_success;
  stats::Counter& upstream_rq_retry_overflow;
  stats::Counter& upstream_rq_retry_limit_exceeded;
  stats::Counter& upstream_rq_maintenance_mode;
  stats::Gauge& membership_total;
  stats::Gauge& membership_healthy;
  stats::Counter& update_attempt;
  stats::Counter& update_success;
  stats::Counter& update_failure;
  stats::Histogram& upstream_rq_time;
  stats::Histogram& upstream_cx_connect_ms;
  stats::Histogram& upstream_cx_length_ms;

 private:
  // A cluster sees a handful of distinct status codes, and most clusters of a
  // large config see none: a 16-slot open-addressing table, allocated on the
  // first response, instead of a slot per possible code.
  struct CodeCounters;
  std::atomic<CodeCounters*> by_code_{nullptr};
  std::array<stats::Counter*, 6> by_class_{};
};

// Which protocol the cluster speaks to its hosts (HttpProtocolOptions'
// upstream_protocol_options, or the legacy Cluster.http2_protocol_options).
enum class UpstreamProtocolPolicy {
  kHttp1,
  kHttp2,
  kUseDownstream,  // HTTP/2 upstream for HTTP/2 clients, HTTP/1.1 otherwise
};

enum class DnsLookupFamily { kAuto, kV4Only, kV6Only, kV4Preferred, kAll };

// A cluster's configuration, parsed once and shared (immutable apart from
// its stats and circuit-breaker counts) by every worker.
struct ClusterInfo {
  std::string name;
  std::string type_name;  // "STATIC", "STRICT_DNS", ... for /clusters and config dumps
  std::chrono::milliseconds connect_timeout{5000};
  // lb_policy, least_request_lb_config, ring_hash_lb_config, maglev_lb_config,
  // common_lb_config.healthy_panic_threshold: what each worker's balancer is built from.
  LbConfig lb;
  // The latest load assignment's policy.overprovisioning_factor (EDS may change it).
  mutable std::atomic<uint32_t> overprovisioning_factor{140};
  // RING_HASH / MAGLEV: the table the workers share for the current hosts (lb.hash_tables).
  std::unique_ptr<HashTableCache> hash_tables;
  // Cluster.outlier_detection; null when the cluster has none.
  std::shared_ptr<const OutlierDetectionConfig> outlier_detection;
  // Cluster.health_checks[0]; null when the cluster has none (most have none:
  // kept out of line, as the outlier config, to keep ClusterInfo small).
  std::unique_ptr<const HealthCheckConfig> health_check;
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  uint64_t max_requests_per_connection = 0;  // 0: unlimited
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};
  // common_http_protocol_options.max_connection_duration; 0: none. A connection
  // that reaches it takes no new requests and closes once its requests are done.
  std::chrono::milliseconds max_connection_duration{0};
  std::chrono::milliseconds dns_refresh_rate{5000};
  // ORIGINAL_DST: how often hosts not picked since the last sweep are dropped.
  std::chrono::milliseconds cleanup_interval{5000};
  // ORIGINAL_DST: original_dst_lb_config.upstream_port_override (0: none).
  uint16_t original_dst_port_override = 0;
  // upstream_bind_config.source_address; empty: the kernel picks. Recorded, not applied yet
  // (the client connection cannot bind a source address).
  Address upstream_bind_address;
  DnsLookupFamily dns_lookup_family = DnsLookupFamily::kAuto;
  ResourceLimits limits;
  UpstreamProtocolPolicy protocol = UpstreamProtocolPolicy::kHttp1;
  // The HTTP/2 connections' settings; max_concurrent_streams also caps the
  // streams the pool opens on one connection.
  http2::ProtocolOptions http2_options;
  // transport_socket: TLS to the hosts (UpstreamTlsContext); null sends plaintext.
  std::shared_ptr<network::tls::TlsSocketFactory> transport_socket_factory;
  // transport_socket_matches, in order: a host whose `envoy.transport_socket_match` endpoint
  // metadata has every field of `match` uses that entry's socket (auto mTLS: `tlsMode: istio`
  // hosts get ISTIO_MUTUAL, the others plaintext). Resolved when the host is created.
  struct TransportSocketMatch {
    std::string name;
    std::map<std::string, std::string> match;                 // field -> value (protobuf text form)
    std::shared_ptr<network::tls::TlsSocketFactory> factory;  // null: plaintext
  };
  std::vector<TransportSocketMatch> transport_socket_matches;
  // filters: istio.metadata_exchange's ALPN protocol ("istio-peer-exchange"); a tcp_proxy
  // session whose TLS connection negotiated it exchanges workload metadata first. Empty: none.
  std::string metadata_exchange_protocol;

  // The first matching entry's index, or -1 for the cluster's transport_socket.
  int transportSocketMatchFor(const std::map<std::string, std::string>& metadata) const {
    for (size_t i = 0; i < transport_socket_matches.size(); ++i) {
      bool all = true;
      for (const auto& [key, value] : transport_socket_matches[i].match) {
        auto it = metadata.find(key);
        if (it == metadata.end() || it->second != value) {
          all = false;
          break;
        }
      }
      if (all) return static_cast<int>(i);
    }
    return -1;
  }
  // The socket factory for connections to `host`; null: plaintext.
  const std::shared_ptr<network::tls::TlsSocketFactory>& transportSocketFactoryFor(
      const Host& host) const {
    const int m = host.transportSocketMatch();
    return m < 0 ? transport_socket_factory
                 : transport_socket_matches[static_cast<size_t>(m)].factory;
  }

  std::unique_ptr<ResourceManager> resources;
  std::shared_ptr<stats::Scope> scope;
  std::unique_ptr<ClusterStats> stats;
};

}  // namespace sheave::upstream
