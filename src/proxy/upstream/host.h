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

// One upstream endpoint. Immutable except for its stats and health flags;
// owned by shared_ptr so a host removed by a DNS refresh lives until its
// last connection and request are gone.
class Host {
 public:
  Host(Address address, std::string hostname, uint32_t weight, int16_t transport_socket_match = -1)
      : address_(address),
        weight_(weight),
        transport_socket_match_(transport_socket_match),
        hostname_(hostname.empty() ? nullptr
                                   : std::make_unique<const std::string>(std::move(hostname))) {}

  const Address& address() const { return address_; }
  // The DNS name the host came from, or empty for an IP endpoint.
  const std::string& hostname() const { return hostname_ ? *hostname_ : emptyHostname(); }
  uint32_t weight() const { return weight_; }
  // Index into the cluster's transport_socket_matches; -1: the cluster's transport_socket.
  int transportSocketMatch() const { return transport_socket_match_; }
  HostStats& stats() const { return stats_; }

  // EDS health_status or active health checking (later) marks a host
  // unhealthy; the load balancer skips it unless the panic threshold applies.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  void setHealthy(bool healthy) const { healthy_.store(healthy, std::memory_order_relaxed); }

 private:
  static const std::string& emptyHostname() {
    static const std::string empty;
    return empty;
  }

  // Hosts are the per-endpoint cost of a config (10,000 endpoints in one
  // cluster are common): 112 bytes, and an IP endpoint has no name to store.
  Address address_;
  uint32_t weight_;
  int16_t transport_socket_match_;
  std::unique_ptr<const std::string> hostname_;
  mutable HostStats stats_;
  mutable std::atomic<bool> healthy_{true};
};

using HostSharedPtr = std::shared_ptr<const Host>;
using HostVector = std::vector<HostSharedPtr>;

}  // namespace sheave::upstream
