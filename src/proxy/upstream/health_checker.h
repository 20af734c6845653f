#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/random.h"
#include "common/result.h"
#include "envoy/config/core/v3/health_check.pb.h"
#include "proxy/network/connection.h"
#include "proxy/network/event_loop.h"
#include "proxy/stats/scope.h"
#include "proxy/upstream/host.h"

namespace sheave::upstream {

// Cluster.health_checks[0] (Envoy runs one per cluster), parsed with Envoy's
// defaults and rules.
struct HealthCheckConfig {
  enum class Kind { kHttp, kTcp };
  Kind kind = Kind::kHttp;
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds interval_jitter{0};
  uint32_t interval_jitter_percent = 0;
  std::chrono::milliseconds initial_jitter{0};
  std::chrono::milliseconds no_traffic_interval{60000};
  std::chrono::milliseconds no_traffic_healthy_interval{0};  // 0: no_traffic_interval
  std::chrono::milliseconds unhealthy_interval{0};           // 0: interval
  std::chrono::milliseconds unhealthy_edge_interval{0};      // 0: unhealthy_interval
  std::chrono::milliseconds healthy_edge_interval{0};        // 0: interval
  uint32_t unhealthy_threshold = 1;
  uint32_t healthy_threshold = 1;
  uint32_t alt_port = 0;
  // HTTP
  std::string host;  // empty: the cluster's name
  std::string path;
  std::string method = "GET";
  std::vector<std::pair<int64_t, int64_t>> expected_statuses{{200, 201}};  // [start, end)
  std::vector<std::pair<int64_t, int64_t>> retriable_statuses;
  std::vector<std::pair<std::string, std::string>> request_headers;
  // TCP: bytes to send on connect, and the blocks the response must contain,
  // in order (none: a successful connect is the check).
  std::string send;
  std::vector<std::string> receive;

  static Result<HealthCheckConfig> fromProto(const envoy::config::core::v3::HealthCheck& proto);
};

// "cluster.<name>.health_check.*", Envoy's names.
struct HealthCheckStats {
  explicit HealthCheckStats(stats::Scope& cluster_scope);
  stats::Counter& attempt;
  stats::Counter& success;
  stats::Counter& failure;
  stats::Counter& network_failure;
  stats::Counter& passive_failure;
  stats::Counter& verify_cluster;
  stats::Gauge& healthy;
  stats::Gauge& degraded;
};

// Active health checking of one cluster's hosts, on the main thread: one
// session per host checks it every interval (a fresh connection per check),
// and a host that fails unhealthy_threshold checks in a row (at once for an
// HTTP status outside expected_statuses and retriable_statuses) is marked
// failed_active_hc until healthy_threshold checks pass (one, for a host not
// checked yet). Hosts start failed until their first check, which runs at
// once. Each change calls on_change, which republishes the hosts to the
// workers.
class HealthChecker {
 public:
  HealthChecker(HealthCheckConfig config, std::string cluster_name, stats::Scope& cluster_scope,
                std::function<std::shared_ptr<const HostVector>()> hosts,
                std::function<bool()> had_traffic, std::function<void()> on_change);
  ~HealthChecker();

  void start(network::EventLoop& loop);
  // The host list changed: sessions for new hosts (their hosts marked
  // failed until checked), none for hosts that left.
  void onHostsChanged();

 private:
  class Session;
  friend class Session;
  void onResult(Session& session, bool changed);
  void updateHealthyGauge();
  std::chrono::milliseconds nextInterval(const Session& session);

  HealthCheckConfig config_;
  std::string cluster_name_;
  HealthCheckStats stats_;
  std::function<std::shared_ptr<const HostVector>()> hosts_;
  std::function<bool()> had_traffic_;
  std::function<void()> on_change_;
  network::EventLoop* loop_ = nullptr;
  RandomGenerator random_;
  std::unordered_map<const Host*, std::unique_ptr<Session>> sessions_;
};

}  // namespace sheave::upstream
