#pragma once

#include <atomic>
#include <cstdint>

#include "proxy/stats/metric.h"

namespace sheave::stats {

// A value that goes up and down (active connections, buffered bytes).
// Unsigned like Envoy's gauges: a dec() below zero wraps, which is a bug in
// the caller, not something to paper over here. 24 bytes.
class Gauge : public Metric {
 public:
  // Envoy's hot-restart import modes. Sheave has no hot restart; the mode is
  // kept so that code ported from Envoy's stat definitions reads the same.
  enum class ImportMode : uint8_t { kUninitialized, kNeverImport, kAccumulate, kHiddenAccumulate };

  // A gauge outside any Store (tests); Scope::gauge() makes named ones.
  explicit Gauge(ImportMode mode = ImportMode::kAccumulate)
      : Metric(Kind::kGauge, static_cast<uint8_t>(mode)) {}

  void inc() { add(1); }
  void dec() { sub(1); }
  void add(uint64_t n) {
    value_.fetch_add(n, std::memory_order_relaxed);
    markUsed();
  }
  void sub(uint64_t n) {
    value_.fetch_sub(n, std::memory_order_relaxed);
    markUsed();
  }
  void set(uint64_t v) {
    value_.store(v, std::memory_order_relaxed);
    markUsed();
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  ImportMode importMode() const { return static_cast<ImportMode>(aux()); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace sheave::stats
