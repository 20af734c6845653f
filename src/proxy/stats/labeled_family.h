#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/stats/counter.h"
#include "proxy/stats/histogram.h"

namespace sheave::stats {

// A metric family whose series are told apart by a tuple of label values
// (Prometheus' data model), for metrics whose labels are only known per
// request: Istio's istio_requests_total{reporter=...,source_workload=...}.
// Envoy's own stats encode their tags in the name instead; those stay in
// StatNode.
//
// Series are created on first use and live as long as the family, which the
// stat registry keeps for the life of the process (a counter must not reset
// because a listener was replaced). A family holds at most `max_series`
// series; past that, samples for new label tuples are dropped and counted
// (dropped()), so a label value that varies more than expected cannot eat the
// sidecar's memory.
//
// The request path: series() hashes the values and looks them up in a
// per-thread cache (no lock, no allocation); only a tuple this thread has not
// seen before takes the family's mutex.
class LabeledFamily {
 public:
  enum class Type : uint8_t { kCounter, kHistogram };

  struct Options {
    std::string name;  // the exposed family name, "istio_requests_total"
    Type type = Type::kCounter;
    std::vector<std::string> label_names;
    Histogram::Unit unit = Histogram::Unit::kUnspecified;  // histograms only
    std::vector<double> buckets;                           // histograms; empty: Envoy's defaults
    size_t max_series = kDefaultMaxSeries;
  };
  static constexpr size_t kDefaultMaxSeries = 10000;

  class Series {
   public:
    const std::vector<std::string>& values() const { return values_; }
    Counter& counter() { return counter_; }
    const Counter& counter() const { return counter_; }
    // Null for counter families.
    Histogram* histogram() { return histogram_.get(); }
    const Histogram* histogram() const { return histogram_.get(); }

   private:
    friend class LabeledFamily;
    bool matches(std::span<const std::string_view> values) const;
    std::vector<std::string> values_;
    Counter counter_;
    std::unique_ptr<Histogram> histogram_;
  };

  explicit LabeledFamily(Options options);
  LabeledFamily(const LabeledFamily&) = delete;
  LabeledFamily& operator=(const LabeledFamily&) = delete;

  const std::string& name() const { return options_.name; }
  Type type() const { return options_.type; }
  const std::vector<std::string>& labelNames() const { return options_.label_names; }
  const std::vector<double>& buckets() const { return *bounds_; }
  Histogram::Unit unit() const { return options_.unit; }
  size_t maxSeries() const { return options_.max_series; }

  // The series for `values` (one per label name, in order), created if
  // needed; null when the family is full (the sample is dropped and counted)
  // or the number of values is wrong. Any thread.
  Series* series(std::span<const std::string_view> values);
  // Shorthands that drop silently (counted) when series() is null.
  void inc(std::span<const std::string_view> values, uint64_t n = 1);
  void record(std::span<const std::string_view> values, uint64_t value);

  // Samples dropped because the family was full.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  size_t size() const;
  // Every series, sorted by label values (stable output). Takes the mutex.
  void forEach(const std::function<void(const Series&)>& f) const;

  static uint64_t hashValues(std::span<const std::string_view> values);

 private:
  Series* slowLookup(std::span<const std::string_view> values);

  const Options options_;
  const std::vector<double>* bounds_;
  const uint64_t id_;  // unique per process: tells per-thread cache entries apart
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Series>> series_;  // key: values joined by \x1f
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace sheave::stats
