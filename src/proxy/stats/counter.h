#pragma once

#include <atomic>
#include <cstdint>

#include "proxy/stats/metric.h"

namespace sheave::stats {

// A monotonically increasing count. Workers bump it on the request path with
// one relaxed atomic add; readers (admin, sinks) see a value that may lag by a
// few increments, which is all a counter promises. 24 bytes. A periodic sink
// that wants deltas keeps the previous value itself.
class Counter : public Metric {
 public:
  // A counter outside any Store (tests); Scope::counter() makes named ones.
  Counter() : Metric(Kind::kCounter) {}

  void inc(uint64_t n = 1) {
    value_.fetch_add(n, std::memory_order_relaxed);
    markUsed();
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  void reset() { value_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace sheave::stats
