#include "proxy/stats/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sheave::stats {

const std::vector<double>& defaultHistogramBuckets() {
  static const std::vector<double> buckets = {0.5,   1,      5,      10,      25,     50,    100,
                                              250,   500,    1000,   2500,    5000,   10000, 30000,
                                              60000, 300000, 600000, 1800000, 3600000};
  return buckets;
}

const std::vector<double>& supportedQuantiles() {
  static const std::vector<double> quantiles = {0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100};
  return quantiles;
}

std::vector<uint64_t> HistogramSnapshot::cumulativeCounts() const {
  std::vector<uint64_t> out;
  out.reserve(bounds.size());
  uint64_t running = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    running += counts[i];
    out.push_back(running);
  }
  return out;
}

double HistogramSnapshot::quantile(double q) const {
  if (sample_count == 0) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  if (extremes_exact && q == 0.0 && min) return static_cast<double>(*min);
  if (extremes_exact && q == 1.0 && max) return static_cast<double>(*max);

  const double rank = q * static_cast<double>(sample_count);
  uint64_t below = 0;  // samples in buckets before i
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t c = counts[i];
    if (c == 0) continue;
    if (static_cast<double>(below + c) >= rank || i + 1 == counts.size()) {
      double lo = i == 0 ? 0.0 : bounds[i - 1];
      double hi;
      if (i < bounds.size()) {
        hi = bounds[i];
      } else {
        // Overflow bucket: without a known maximum the best guess is its floor.
        hi = max ? static_cast<double>(*max) : lo;
      }
      if (min) lo = std::max(lo, static_cast<double>(*min));
      if (max) hi = std::min(hi, static_cast<double>(*max));
      if (hi < lo) hi = lo;
      const double fraction =
          std::clamp((rank - static_cast<double>(below)) / static_cast<double>(c), 0.0, 1.0);
      return lo + (hi - lo) * fraction;
    }
    below += c;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::vector<double> HistogramSnapshot::computedQuantiles() const {
  std::vector<double> out;
  out.reserve(supportedQuantiles().size());
  for (double q : supportedQuantiles()) out.push_back(quantile(q / 100.0));
  return out;
}

Histogram::Histogram(std::string name, std::string tag_extracted_name, std::vector<Tag> tags,
                     Unit unit, std::vector<double> bounds)
    : Metric(std::move(name), std::move(tag_extracted_name), std::move(tags)),
      unit_(unit),
      bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
  last_merged_counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::record(uint64_t value) {
  // First bound >= value: Prometheus' "le" semantics.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), static_cast<double>(value));
  counts_[static_cast<size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  // Min and max only move early in a histogram's life; the loads keep the
  // common case read-only.
  uint64_t cur = min_.load(std::memory_order_relaxed);
  while (value < cur && !min_.compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
  }
  cur = max_.load(std::memory_order_relaxed);
  while (value > cur && !max_.compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
  }
  if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
}

HistogramSnapshot Histogram::cumulative() const {
  HistogramSnapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.sample_count += s.counts[i];
  }
  s.sample_sum = sum_.load(std::memory_order_relaxed);
  if (s.sample_count > 0) {
    s.min = min_.load(std::memory_order_relaxed);
    s.max = max_.load(std::memory_order_relaxed);
    // A reader can race a first record(): the count is in, min/max not yet.
    if (*s.min == UINT64_MAX) s.min.reset();
    if (s.max && s.min && *s.max < *s.min) s.max.reset();
  }
  return s;
}

HistogramSnapshot Histogram::interval() const {
  std::lock_guard<std::mutex> lock(merge_mu_);
  if (!merged_once_) {
    HistogramSnapshot empty;
    empty.bounds = bounds_;
    empty.counts.assign(bounds_.size() + 1, 0);
    return empty;
  }
  return interval_;
}

void Histogram::merge() {
  HistogramSnapshot now = cumulative();
  std::lock_guard<std::mutex> lock(merge_mu_);
  HistogramSnapshot iv;
  iv.bounds = bounds_;
  iv.counts.resize(now.counts.size());
  for (size_t i = 0; i < now.counts.size(); ++i) {
    iv.counts[i] = now.counts[i] - last_merged_counts_[i];
    iv.sample_count += iv.counts[i];
  }
  iv.sample_sum = now.sample_sum - last_merged_sum_;
  iv.min = now.min;
  iv.max = now.max;
  iv.extremes_exact = false;
  last_merged_counts_ = std::move(now.counts);
  last_merged_sum_ = now.sample_sum;
  interval_ = std::move(iv);
  merged_once_ = true;
}

std::string_view histogramUnitName(Histogram::Unit unit) {
  switch (unit) {
    case Histogram::Unit::kUnspecified:
      return "Unspecified";
    case Histogram::Unit::kBytes:
      return "Bytes";
    case Histogram::Unit::kMicroseconds:
      return "Microseconds";
    case Histogram::Unit::kMilliseconds:
      return "Milliseconds";
    case Histogram::Unit::kPercent:
      return "Percent";
  }
  return "Unspecified";
}

}  // namespace sheave::stats
