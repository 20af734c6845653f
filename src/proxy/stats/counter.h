#pragma once

#include <atomic>
#include <cstdint>

#include "proxy/stats/metric.h"

namespace sheave::stats {

// A monotonically increasing count. Workers bump it on the request path with
// one relaxed atomic add; readers (admin, sinks) see a value that may lag by a
// few increments, which is all a counter promises.
class Counter : public Metric {
 public:
  using Metric::Metric;

  void inc(uint64_t n = 1) {
    value_.fetch_add(n, std::memory_order_relaxed);
    markUsed();
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  // True once the counter has been written, for /stats?usedonly.
  bool used() const { return used_.load(std::memory_order_relaxed); }

  // Delta since the previous latch(); for periodic sinks (statsd-style). Only
  // one reader may latch a given counter.
  uint64_t latch() {
    uint64_t now = value();
    uint64_t delta = now - latched_;
    latched_ = now;
    return delta;
  }
  void reset() { value_.store(0, std::memory_order_relaxed); }

 private:
  // Load before store so that, once set, the flag's cache line stays shared
  // between workers instead of bouncing on every increment.
  void markUsed() {
    if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  }

  std::atomic<uint64_t> value_{0};
  std::atomic<bool> used_{false};
  uint64_t latched_ = 0;
};

}  // namespace sheave::stats
