#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/address.h"

namespace sheave::upstream {

// Per-host counters shared by every worker: the load balancer reads
// rq_active (least request), /clusters prints them. Relaxed atomics only.
struct HostStats {
  std::atomic<uint64_t> cx_total{0};
  std::atomic<uint64_t> cx_active{0};
  std::atomic<uint64_t> cx_connect_fail{0};
  std::atomic<uint64_t> rq_total{0};
  std::atomic<uint64_t> rq_active{0};
  std::atomic<uint64_t> rq_success{0};
  std::atomic<uint64_t> rq_error{0};
  std::atomic<uint64_t> rq_timeout{0};
};

// What outlier detection counts for one host, on the workers (relaxed
// atomics); the cluster's OutlierDetector reads and resets it on its interval.
struct HostOutlierState {
  std::atomic<uint32_t> consecutive_5xx{0};
  std::atomic<uint32_t> consecutive_gateway_failure{0};
  std::atomic<uint32_t> consecutive_local_origin_failure{0};
  std::atomic<uint8_t> tripped{0};  // OutlierTrip bits since the last interval
  // This interval's requests and failures (external origin, or all when not split).
  std::atomic<uint64_t> window_requests{0};
  std::atomic<uint64_t> window_failures{0};
  std::atomic<uint64_t> window_local_requests{0};
  std::atomic<uint64_t> window_local_failures{0};
};

// LocalityLbEndpoints.locality; the hosts of one locality share one.
struct Locality {
  std::string region;
  std::string zone;
  std::string sub_zone;
  bool operator==(const Locality&) const = default;
};

// One upstream endpoint. Immutable except for its stats and health flags;
// owned by shared_ptr so a host removed by a DNS refresh lives until its
// last connection and request are gone.
class Host {
 public:
  Host(Address address, std::string hostname, uint32_t weight, int16_t transport_socket_match = -1,
       uint8_t priority = 0)
      : address_(address),
        weight_(weight),
        transport_socket_match_(transport_socket_match),
        priority_(priority) {
    if (!hostname.empty()) details().hostname = std::move(hostname);
  }

  const Address& address() const { return address_; }
  // The DNS name the host came from, or empty for an IP endpoint.
  const std::string& hostname() const { return details_ ? details_->hostname : emptyHostname(); }
  uint32_t weight() const { return weight_; }
  // Index into the cluster's transport_socket_matches; -1: the cluster's transport_socket.
  int transportSocketMatch() const { return transport_socket_match_; }
  // LocalityLbEndpoints.locality and load_balancing_weight (0: none), set once
  // right after construction, before the host is published.
  void setLocality(std::shared_ptr<const Locality> locality, uint32_t weight) {
    if (!locality && weight == 0 && !details_) return;
    details().locality = std::move(locality);
    details().locality_weight = weight;
  }
  // Empty region/zone/sub_zone when the endpoint has none.
  const Locality& locality() const {
    return details_ && details_->locality ? *details_->locality : emptyLocality();
  }
  uint32_t localityWeight() const { return details_ ? details_->locality_weight : 0; }
  // LocalityLbEndpoints.priority: 0 is used first, higher levels take the
  // load the lower ones cannot (Envoy's priority levels).
  uint32_t priority() const { return priority_; }
  HostStats& stats() const { return stats_; }

  // EDS health_status or active health checking (later) marks a host
  // unhealthy; the load balancer skips it unless the panic threshold applies.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  void setHealthy(bool healthy) const { healthy_.store(healthy, std::memory_order_relaxed); }
  // Ejected by outlier detection: skipped like an unhealthy host.
  bool ejected() const { return ejected_.load(std::memory_order_relaxed); }
  void setEjected(bool ejected) const { ejected_.store(ejected, std::memory_order_relaxed); }
  // Failing active health checks (Cluster.health_checks).
  bool failedActiveHealthCheck() const { return failed_active_hc_.load(std::memory_order_relaxed); }
  void setFailedActiveHealthCheck(bool failed) const {
    failed_active_hc_.store(failed, std::memory_order_relaxed);
  }
  // Slow start (round_robin / least_request slow_start_config): when the host
  // joined a running cluster or came back from failed health checks, in
  // steady_clock nanoseconds since its epoch; 0 when never.
  int64_t slowStartSince() const { return slow_start_since_.load(std::memory_order_relaxed); }
  void setSlowStartSince(int64_t ns) const {
    slow_start_since_.store(ns, std::memory_order_relaxed);
  }
  // What the load balancer may pick (unless the panic threshold applies).
  bool available() const { return healthy() && !ejected() && !failedActiveHealthCheck(); }

  // Outlier counters, made on first use: hosts of clusters without outlier
  // detection never pay for them.
  HostOutlierState& outlierState() const {
    HostOutlierState* state = outlier_.load(std::memory_order_acquire);
    if (state != nullptr) return *state;
    auto* fresh = new HostOutlierState();
    if (outlier_.compare_exchange_strong(state, fresh, std::memory_order_acq_rel)) return *fresh;
    delete fresh;
    return *state;
  }
  // nullptr when nothing was ever reported.
  HostOutlierState* outlierStateIfAny() const { return outlier_.load(std::memory_order_acquire); }

  ~Host() { delete outlier_.load(); }
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

 private:
  // What only some hosts have: a DNS name, a locality. Out of line so an IP
  // endpoint without a locality pays one null pointer for them.
  struct Details {
    std::string hostname;
    std::shared_ptr<const Locality> locality;
    uint32_t locality_weight = 0;
  };
  Details& details() {
    if (!details_) details_ = std::make_unique<Details>();
    return *details_;
  }
  static const std::string& emptyHostname() {
    static const std::string empty;
    return empty;
  }
  static const Locality& emptyLocality() {
    static const Locality empty;
    return empty;
  }

  // Hosts are the per-endpoint cost of a config (10,000 endpoints in one
  // cluster are common): 128 bytes, 144 with make_shared's control block.
  Address address_;
  uint32_t weight_;
  std::unique_ptr<Details> details_;
  int16_t transport_socket_match_;
  uint8_t priority_;
  mutable std::atomic<bool> healthy_{true};
  mutable std::atomic<bool> ejected_{false};
  mutable std::atomic<bool> failed_active_hc_{false};
  mutable HostStats stats_;
  mutable std::atomic<int64_t> slow_start_since_{0};
  mutable std::atomic<HostOutlierState*> outlier_{nullptr};
};

// A field added to Host is paid per endpoint: keep rare ones in Details.
static_assert(sizeof(void*) != 8 || sizeof(Host) <= 128);

using HostSharedPtr = std::shared_ptr<const Host>;
using HostVector = std::vector<HostSharedPtr>;

}  // namespace sheave::upstream
