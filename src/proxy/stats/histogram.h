#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proxy/stats/metric.h"

namespace sheave::stats {

// Envoy's default histogram bucket upper bounds (stats_config.histogram_bucket_settings),
// in the histogram's unit.
const std::vector<double>& defaultHistogramBuckets();

// Envoy's supported quantiles for /stats output, in percent.
const std::vector<double>& supportedQuantiles();

// A point-in-time copy of a histogram's buckets. counts[i] holds the samples
// v with bounds[i-1] < v <= bounds[i]; counts.back() (one more than bounds)
// holds the samples above the last bound.
struct HistogramSnapshot {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  uint64_t sample_count = 0;
  uint64_t sample_sum = 0;
  // Bounds on the samples, when known. Interpolation never leaves them.
  std::optional<uint64_t> min;
  std::optional<uint64_t> max;
  // min/max are the actual smallest and largest sample (cumulative
  // snapshots), so they are the 0 and 1 quantiles. An interval snapshot only
  // borrows the cumulative ones as bounds.
  bool extremes_exact = true;

  // Counts of samples <= bounds[i] (Prometheus' "le" buckets), one per bound.
  std::vector<uint64_t> cumulativeCounts() const;
  // Approximate q-quantile (q in [0, 1]) by linear interpolation inside the
  // bucket that holds the rank; NaN when there are no samples. Exact only
  // at the bucket bounds and, where min/max are known, at q=0 and q=1.
  double quantile(double q) const;
  // quantile() for each of supportedQuantiles().
  std::vector<double> computedQuantiles() const;
};

// A distribution of values (latencies in ms, sizes in bytes) over fixed
// buckets. record() is a bucket search over ~20 bounds plus relaxed atomic
// adds, safe from any worker without a lock.
//
// Most histograms of a large config never see a sample (a cluster nobody
// calls), so the buckets are allocated on the first record(): an unused
// histogram is 32 bytes.
class Histogram : public Metric {
 public:
  enum class Unit : uint8_t { kUnspecified, kBytes, kMicroseconds, kMilliseconds, kPercent };

  // A histogram outside any Store (tests); Scope::histogram() makes named ones.
  Histogram(Unit unit, const std::vector<double>& bounds);
  ~Histogram();

  void record(uint64_t value);

  Unit unit() const { return static_cast<Unit>(aux()); }
  const std::vector<double>& bounds() const { return *bounds_; }

  // Everything recorded since the histogram was created.
  HistogramSnapshot cumulative() const;
  // What was recorded between the two most recent merge() calls; empty
  // (NaN quantiles) before the second merge, as Envoy's interval statistics
  // are before the first stats flush.
  HistogramSnapshot interval() const;
  // Closes an interval. Called periodically by the stats flush on the main
  // thread (Store::mergeHistograms()).
  void merge();

 private:
  friend class StatNode;
  struct Data;
  // `bounds` must outlive the histogram (internBuckets()).
  Histogram(Unit unit, const std::vector<double>* bounds);
  Data* data() const { return data_.load(std::memory_order_acquire); }
  Data& allocate();
  HistogramSnapshot emptySnapshot() const;

  const std::vector<double>* const bounds_;
  std::atomic<Data*> data_{nullptr};
};

// Bucket bounds are shared: histograms point into this process-wide set
// (its entries, a handful from the stats config, are never freed).
const std::vector<double>* internBuckets(const std::vector<double>& bounds);

std::string_view histogramUnitName(Histogram::Unit unit);

}  // namespace sheave::stats
