#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "proxy/stats/scope.h"
#include "proxy/stats/tag_extractor.h"

namespace re2 {
class RE2;
}

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

// The set of all live stats, indexed by full name. Shared by every scope
// (each holds it by shared_ptr) so a scope may outlive the Store.
class StatRegistry {
 public:
  StatRegistry(
      TagProducer tags,
      std::vector<std::pair<std::unique_ptr<re2::RE2>, std::vector<double>>> bucket_settings);
  ~StatRegistry();

  std::shared_ptr<Counter> counter(const std::string& name);
  std::shared_ptr<Gauge> gauge(const std::string& name, Gauge::ImportMode mode);
  std::shared_ptr<Histogram> histogram(const std::string& name, Histogram::Unit unit);

  // Forgets names whose stat has died; called by a scope as it dies.
  void purge(const std::vector<std::string>& counter_names,
             const std::vector<std::string>& gauge_names,
             const std::vector<std::string>& histogram_names);

  std::vector<std::shared_ptr<Counter>> counters() const;
  std::vector<std::shared_ptr<Gauge>> gauges() const;
  std::vector<std::shared_ptr<Histogram>> histograms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The root scope (empty prefix) and the way to read every stat. Created once
// at startup; the admin handler and stat sinks read it.
class Store : public Scope {
 public:
  static Result<std::unique_ptr<Store>> create(const StoreOptions& options = {});

  // Live stats, sorted by full name.
  std::vector<std::shared_ptr<Counter>> counters() const;
  std::vector<std::shared_ptr<Gauge>> gauges() const;
  std::vector<std::shared_ptr<Histogram>> histograms() const;

  // Closes the current histogram interval (Envoy does this at every stats
  // flush, stats_flush_interval, default 5 s). Main thread.
  void mergeHistograms();

 private:
  explicit Store(std::shared_ptr<StatRegistry> registry);
};

}  // namespace sheave::stats
