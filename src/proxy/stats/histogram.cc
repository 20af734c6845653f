#include "proxy/stats/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <set>

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

const std::vector<double>* internBuckets(const std::vector<double>& bounds) {
  static std::mutex mu;
  static std::set<std::vector<double>>* buckets = new std::set<std::vector<double>>();
  std::lock_guard<std::mutex> lock(mu);
  return &*buckets->insert(bounds).first;
}

// Allocated on the first record(). The merge state is only touched by merge()
// and interval(), under `mu`.
struct Histogram::Data {
  explicit Data(size_t buckets)
      : counts(new std::atomic<uint64_t>[buckets]), last_counts(buckets, 0) {
    for (size_t i = 0; i < buckets; ++i) counts[i].store(0, std::memory_order_relaxed);
  }

  std::unique_ptr<std::atomic<uint64_t>[]> counts;  // bounds + 1; the last is overflow
  std::atomic<uint64_t> sum{0};
  std::atomic<uint64_t> min{UINT64_MAX};
  std::atomic<uint64_t> max{0};

  mutable std::mutex mu;
  std::vector<uint64_t> last_counts;      // guarded by mu
  uint64_t last_sum = 0;                  // guarded by mu
  std::vector<uint64_t> interval_counts;  // guarded by mu; empty until a merge
  uint64_t interval_sum = 0;              // guarded by mu
  std::optional<uint64_t> interval_min;   // guarded by mu
  std::optional<uint64_t> interval_max;   // guarded by mu
};

Histogram::Histogram(Unit unit, const std::vector<double>& bounds)
    : Histogram(unit, internBuckets(bounds)) {}

Histogram::Histogram(Unit unit, const std::vector<double>* bounds)
    : Metric(Kind::kHistogram, static_cast<uint8_t>(unit)), bounds_(bounds) {}

Histogram::~Histogram() { delete data_.load(std::memory_order_acquire); }

Histogram::Data& Histogram::allocate() {
  auto* fresh = new Data(bounds_->size() + 1);
  Data* expected = nullptr;
  if (data_.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;  // another worker won the race
  return *expected;
}

void Histogram::record(uint64_t value) {
  Data* d = data();
  if (d == nullptr) d = &allocate();
  // First bound >= value: Prometheus' "le" semantics.
  const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), static_cast<double>(value));
  d->counts[static_cast<size_t>(it - bounds_->begin())].fetch_add(1, std::memory_order_relaxed);
  d->sum.fetch_add(value, std::memory_order_relaxed);
  // Min and max only move early in a histogram's life; the loads keep the
  // common case read-only.
  uint64_t cur = d->min.load(std::memory_order_relaxed);
  while (value < cur && !d->min.compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
  }
  cur = d->max.load(std::memory_order_relaxed);
  while (value > cur && !d->max.compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
  }
  markUsed();
}

HistogramSnapshot Histogram::emptySnapshot() const {
  HistogramSnapshot s;
  s.bounds = *bounds_;
  s.counts.assign(bounds_->size() + 1, 0);
  return s;
}

HistogramSnapshot Histogram::cumulative() const {
  HistogramSnapshot s = emptySnapshot();
  const Data* d = data();
  if (d == nullptr) return s;
  for (size_t i = 0; i < s.counts.size(); ++i) {
    s.counts[i] = d->counts[i].load(std::memory_order_relaxed);
    s.sample_count += s.counts[i];
  }
  s.sample_sum = d->sum.load(std::memory_order_relaxed);
  if (s.sample_count > 0) {
    s.min = d->min.load(std::memory_order_relaxed);
    s.max = d->max.load(std::memory_order_relaxed);
    // A reader can race a first record(): the count is in, min/max not yet.
    if (*s.min == UINT64_MAX) s.min.reset();
    if (s.max && s.min && *s.max < *s.min) s.max.reset();
  }
  return s;
}

HistogramSnapshot Histogram::interval() const {
  HistogramSnapshot s = emptySnapshot();
  const Data* d = data();
  if (!flag().load(std::memory_order_acquire) || d == nullptr) return s;
  std::lock_guard<std::mutex> lock(d->mu);
  if (d->interval_counts.empty()) return s;  // samples arrived after the last merge
  s.counts = d->interval_counts;
  for (uint64_t c : s.counts) s.sample_count += c;
  s.sample_sum = d->interval_sum;
  s.min = d->interval_min;
  s.max = d->interval_max;
  s.extremes_exact = false;
  return s;
}

void Histogram::merge() {
  // Without data nothing was recorded: the interval is empty either way, but
  // the flag makes the next merge after the first sample report it.
  if (Data* d = data()) {
    HistogramSnapshot now = cumulative();
    std::lock_guard<std::mutex> lock(d->mu);
    d->interval_counts.resize(now.counts.size());
    for (size_t i = 0; i < now.counts.size(); ++i) {
      d->interval_counts[i] = now.counts[i] - d->last_counts[i];
    }
    d->interval_sum = now.sample_sum - d->last_sum;
    d->interval_min = now.min;
    d->interval_max = now.max;
    d->last_counts = std::move(now.counts);
    d->last_sum = now.sample_sum;
  }
  flag().store(true, std::memory_order_release);
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
