#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <unordered_map>

#include "proxy/network/event_loop.h"
#include "proxy/stats/scope.h"
#include "proxy/upstream/host.h"

namespace envoy::config::cluster::v3 {
class OutlierDetection;
}

namespace sheave::upstream {

// Cluster.outlier_detection with Envoy's defaults filled in.
struct OutlierDetectionConfig {
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds base_ejection_time{30000};
  std::chrono::milliseconds max_ejection_time{300000};
  uint32_t max_ejection_percent = 10;
  uint32_t consecutive_5xx = 5;
  uint32_t enforcing_consecutive_5xx = 100;
  uint32_t consecutive_gateway_failure = 5;
  uint32_t enforcing_consecutive_gateway_failure = 0;
  bool split_external_local_origin_errors = false;
  uint32_t consecutive_local_origin_failure = 5;
  uint32_t enforcing_consecutive_local_origin_failure = 100;
  uint32_t success_rate_minimum_hosts = 5;
  uint32_t success_rate_request_volume = 100;
  uint32_t success_rate_stdev_factor = 1900;
  uint32_t enforcing_success_rate = 100;
  uint32_t enforcing_local_origin_success_rate = 100;
  uint32_t failure_percentage_threshold = 85;
  uint32_t failure_percentage_minimum_hosts = 5;
  uint32_t failure_percentage_request_volume = 50;
  uint32_t enforcing_failure_percentage = 0;
  uint32_t enforcing_failure_percentage_local_origin = 0;

  static OutlierDetectionConfig fromProto(const envoy::config::cluster::v3::OutlierDetection& p);
};

// Bits of HostOutlierState::tripped.
enum OutlierTrip : uint8_t {
  kTripConsecutive5xx = 1,
  kTripConsecutiveGatewayFailure = 2,
  kTripConsecutiveLocalOriginFailure = 4,
};

// What a connection attempt or a request ended in, before any HTTP status.
enum class LocalOriginEvent { kSuccess, kConnectFailed, kTimeout, kReset };

// Worker side: count one result for `host` (relaxed atomics, no lock).
void reportHttpStatus(const OutlierDetectionConfig& config, const Host& host, uint32_t code);
void reportLocalOrigin(const OutlierDetectionConfig& config, const Host& host,
                       LocalOriginEvent event);

// One cluster's ejection decisions, on the main thread: every `interval` it
// ejects hosts whose consecutive-error counters tripped (so an ejection
// happens within one interval of the error that tripped it; Envoy decides at
// once), evaluates success rate and failure percentage over the interval's
// counts, returns hosts whose ejection time (base x times ejected, at most
// max_ejection_time) is over, and lowers the multiplier of hosts that stayed
// healthy. Each change calls on_change, which republishes the host list so
// the workers' load balancers skip ejected hosts.
class OutlierDetector {
 public:
  using Clock = std::chrono::steady_clock;
  OutlierDetector(std::shared_ptr<const OutlierDetectionConfig> config, stats::Scope& cluster_scope,
                  std::function<std::shared_ptr<const HostVector>()> hosts,
                  std::function<void()> on_change, uint64_t seed = std::random_device{}());
  ~OutlierDetector();

  // Runs evaluate() every interval on `loop`.
  void start(network::EventLoop& loop);
  // One interval's decisions at `now` (tests call it with their own clock).
  void evaluate(Clock::time_point now);

  // The host's ejections so far (the multiplier), 0 if none.
  uint32_t ejectionCount(const Host& host) const;

 private:
  enum class Kind {
    kConsecutive5xx,
    kConsecutiveGatewayFailure,
    kConsecutiveLocalOriginFailure,
    kSuccessRate,
    kFailurePercentage,
    kLocalOriginSuccessRate,
    kLocalOriginFailurePercentage
  };
  struct HostRecord {
    uint32_t ejections = 0;  // the multiplier
    bool ejected = false;
    Clock::time_point ejected_until;
  };
  struct KindStats {
    stats::Counter* detected;
    stats::Counter* enforced;
  };
  bool enforced(uint32_t percent);
  // Ejects unless max_ejection_percent forbids; true when it did.
  bool eject(const HostSharedPtr& host, Kind kind, uint32_t enforcing, Clock::time_point now,
             size_t host_count);
  void statisticalEjections(const HostVector& hosts, bool local, Clock::time_point now);

  std::shared_ptr<const OutlierDetectionConfig> config_;
  std::function<std::shared_ptr<const HostVector>()> hosts_;
  std::function<void()> on_change_;
  std::mt19937_64 random_;
  std::unordered_map<const Host*, HostRecord> records_;
  size_t ejected_count_ = 0;
  bool changed_ = false;
  // This interval's window counts, per host (collected at the start of evaluate()).
  std::unordered_map<const Host*, std::pair<uint64_t, uint64_t>> window_, local_window_;
  std::unique_ptr<network::Timer> timer_;
  stats::Counter& ejections_enforced_total_;
  stats::Counter& ejections_overflow_;
  stats::Gauge& ejections_active_;
  KindStats kinds_[7];
};

}  // namespace sheave::upstream
