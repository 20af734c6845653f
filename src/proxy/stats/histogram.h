#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
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
class Histogram : public Metric {
 public:
  enum class Unit { kUnspecified, kBytes, kMicroseconds, kMilliseconds, kPercent };

  Histogram(std::string name, std::string tag_extracted_name, std::vector<Tag> tags, Unit unit,
            std::vector<double> bounds);

  void record(uint64_t value);

  Unit unit() const { return unit_; }
  const std::vector<double>& bounds() const { return bounds_; }
  bool used() const { return used_.load(std::memory_order_relaxed); }

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
  const Unit unit_;
  const std::vector<double> bounds_;
  // bounds_.size() + 1 counters; the last one is the overflow bucket.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> min_{UINT64_MAX};
  std::atomic<uint64_t> max_{0};
  std::atomic<bool> used_{false};

  mutable std::mutex merge_mu_;
  std::vector<uint64_t> last_merged_counts_;  // guarded by merge_mu_
  uint64_t last_merged_sum_ = 0;              // guarded by merge_mu_
  HistogramSnapshot interval_;                // guarded by merge_mu_
  bool merged_once_ = false;                  // guarded by merge_mu_
};

std::string_view histogramUnitName(Histogram::Unit unit);

}  // namespace sheave::stats
