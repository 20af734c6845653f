#pragma once

#include <atomic>
#include <cstdint>

namespace sheave::upstream {

// A circuit-breaker budget (Envoy's ResourceManager): one per cluster and
// priority, shared by all workers, so limits hold for the whole proxy.
class Resource {
 public:
  explicit Resource(uint64_t max) : max_(max) {}
  bool canCreate() const { return current_.load(std::memory_order_relaxed) < max_; }
  // Takes one unit if the limit allows; returns false on overflow.
  bool tryInc() {
    uint64_t cur = current_.load(std::memory_order_relaxed);
    while (cur < max_) {
      if (current_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  void inc() { current_.fetch_add(1, std::memory_order_relaxed); }
  void dec() { current_.fetch_sub(1, std::memory_order_relaxed); }
  uint64_t current() const { return current_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_; }

 private:
  const uint64_t max_;
  std::atomic<uint64_t> current_{0};
};

// Envoy's defaults: 1024 connections, pending requests and requests, 3
// concurrent retries.
struct ResourceLimits {
  uint64_t max_connections = 1024;
  uint64_t max_pending_requests = 1024;
  uint64_t max_requests = 1024;
  uint64_t max_retries = 3;
};

class ResourceManager {
 public:
  explicit ResourceManager(const ResourceLimits& limits)
      : connections(limits.max_connections),
        pending_requests(limits.max_pending_requests),
        requests(limits.max_requests),
        retries(limits.max_retries) {}

  Resource connections;
  Resource pending_requests;
  Resource requests;
  Resource retries;
};

}  // namespace sheave::upstream
