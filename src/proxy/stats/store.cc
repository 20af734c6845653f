#include "proxy/stats/store.h"

#include "proxy/stats/stat_registry.h"

#include <re2/re2.h>

#include <algorithm>

namespace sheave::stats {

Store::Store(std::shared_ptr<StatRegistry> registry) : Scope(std::move(registry), "") {}

Result<std::unique_ptr<Store>> Store::create(const StoreOptions& options) {
  SHEAVE_ASSIGN_OR_RETURN(TagProducer tags,
                          TagProducer::create(options.stats_tags, options.use_all_default_tags));
  StatRegistry::BucketSettings settings;
  for (size_t i = 0; i < options.histogram_bucket_settings.size(); ++i) {
    const auto& s = options.histogram_bucket_settings[i];
    const std::string where = "stats_config.histogram_bucket_settings[" + std::to_string(i) + "]";
    re2::RE2::Options re_options;
    re_options.set_log_errors(false);
    std::string pattern;
    switch (s.match.kind) {
      case StatNameMatch::Kind::kExact:
        pattern = re2::RE2::QuoteMeta(s.match.value);
        break;
      case StatNameMatch::Kind::kPrefix:
        pattern = re2::RE2::QuoteMeta(s.match.value) + ".*";
        break;
      case StatNameMatch::Kind::kSuffix:
        pattern = ".*" + re2::RE2::QuoteMeta(s.match.value);
        break;
      case StatNameMatch::Kind::kContains:
        pattern = ".*" + re2::RE2::QuoteMeta(s.match.value) + ".*";
        break;
      case StatNameMatch::Kind::kRegex:
        pattern = s.match.value;
        break;
    }
    re_options.set_dot_nl(true);
    auto re = std::make_unique<re2::RE2>(pattern, re_options);
    if (!re->ok()) return invalidArgument("invalid regex: " + re->error()).at(where + ".match");
    if (s.buckets.empty()) return invalidArgument("must not be empty").at(where + ".buckets");
    std::vector<double> buckets = s.buckets;
    for (double b : buckets) {
      if (!(b > 0)) return invalidArgument("bucket bounds must be positive").at(where + ".buckets");
    }
    std::sort(buckets.begin(), buckets.end());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
    settings.emplace_back(std::move(re), internBuckets(buckets));
  }
  auto registry = std::make_shared<StatRegistry>(std::move(tags), std::move(settings));
  return std::unique_ptr<Store>(new Store(std::move(registry)));
}

std::vector<std::shared_ptr<Counter>> Store::counters() const {
  return registry()->collect<Counter>();
}
std::vector<std::shared_ptr<Gauge>> Store::gauges() const { return registry()->collect<Gauge>(); }
std::vector<std::shared_ptr<Histogram>> Store::histograms() const {
  return registry()->collect<Histogram>();
}

std::vector<std::shared_ptr<LabeledFamily>> Store::labeledFamilies() const {
  return registry()->labeledFamilies();
}

const TagProducer& Store::tagProducer() const { return registry()->tagProducer(); }

void Store::mergeHistograms() {
  for (const auto& h : histograms()) h->merge();
}

}  // namespace sheave::stats
