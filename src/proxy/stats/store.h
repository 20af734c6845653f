#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "proxy/stats/scope.h"
#include "proxy/stats/tag_extractor.h"

namespace sheave::stats {

// The StringMatcher of a histogram_bucket_settings entry.
struct StatNameMatch {
  enum class Kind { kExact, kPrefix, kSuffix, kContains, kRegex };
  Kind kind = Kind::kExact;
  std::string value;  // for kRegex an RE2 pattern matched against the whole name
};

// stats_config.histogram_bucket_settings: histograms whose full name matches
// get `buckets` instead of the default ones; the first match wins.
struct HistogramBucketSetting {
  StatNameMatch match;
  std::vector<double> buckets;
};

struct StoreOptions {
  std::vector<TagSpecifier> stats_tags;
  bool use_all_default_tags = true;
  std::vector<HistogramBucketSetting> histogram_bucket_settings;
};

// The root scope (empty prefix) and the way to read every stat. Created once
// at startup; the admin handler and stat sinks read it.
class Store : public Scope {
 public:
  static Result<std::unique_ptr<Store>> create(const StoreOptions& options = {});

  // Live stats, sorted by full name. Each pointer keeps its stat (and the
  // stats created next to it) alive.
  std::vector<std::shared_ptr<Counter>> counters() const;
  std::vector<std::shared_ptr<Gauge>> gauges() const;
  std::vector<std::shared_ptr<Histogram>> histograms() const;

  // Every labelled family (Scope::labeledFamily), sorted by name.
  std::vector<std::shared_ptr<LabeledFamily>> labeledFamilies() const;

  // The tag extractors, for output that labels stats (Prometheus).
  const TagProducer& tagProducer() const;

  // Closes the current histogram interval (Envoy does this at every stats
  // flush, stats_flush_interval, default 5 s). Main thread.
  void mergeHistograms();

 private:
  explicit Store(std::shared_ptr<StatRegistry> registry);
};

}  // namespace sheave::stats
