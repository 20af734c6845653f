#include "proxy/stats/store.h"

#include <re2/re2.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace sheave::stats {

struct StatRegistry::Impl {
  TagProducer tags;
  std::vector<std::pair<std::unique_ptr<re2::RE2>, std::vector<double>>> bucket_settings;

  mutable std::mutex mu;
  std::map<std::string, std::weak_ptr<Counter>, std::less<>> counters;
  std::map<std::string, std::weak_ptr<Gauge>, std::less<>> gauges;
  std::map<std::string, std::weak_ptr<Histogram>, std::less<>> histograms;

  const std::vector<double>& bucketsFor(const std::string& name) const {
    for (const auto& [re, buckets] : bucket_settings) {
      if (re2::RE2::FullMatch(name, *re)) return buckets;
    }
    return defaultHistogramBuckets();
  }

  // Finds a live stat or builds a new one with `make(name, tag_extracted, tags)`.
  template <typename T, typename Make>
  std::shared_ptr<T> findOrCreate(std::map<std::string, std::weak_ptr<T>, std::less<>>& map,
                                  const std::string& name, Make make) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = map.find(name);
    if (it != map.end()) {
      if (auto live = it->second.lock()) return live;
    }
    std::vector<Tag> tag_list;
    std::string extracted = tags.produceTags(name, tag_list);
    std::shared_ptr<T> stat = make(std::move(extracted), std::move(tag_list));
    map[name] = stat;
    return stat;
  }

  template <typename T>
  void purge(std::map<std::string, std::weak_ptr<T>, std::less<>>& map,
             const std::vector<std::string>& names) {
    for (const auto& name : names) {
      auto it = map.find(name);
      if (it != map.end() && it->second.expired()) map.erase(it);
    }
  }

  template <typename T>
  std::vector<std::shared_ptr<T>> live(
      const std::map<std::string, std::weak_ptr<T>, std::less<>>& map) const {
    std::vector<std::shared_ptr<T>> out;
    std::lock_guard<std::mutex> lock(mu);
    out.reserve(map.size());
    for (const auto& [_, weak] : map) {
      if (auto stat = weak.lock()) out.push_back(std::move(stat));
    }
    return out;  // sorted: std::map order
  }
};

StatRegistry::StatRegistry(
    TagProducer tags,
    std::vector<std::pair<std::unique_ptr<re2::RE2>, std::vector<double>>> bucket_settings)
    : impl_(std::make_unique<Impl>()) {
  impl_->tags = std::move(tags);
  impl_->bucket_settings = std::move(bucket_settings);
}

StatRegistry::~StatRegistry() = default;

std::shared_ptr<Counter> StatRegistry::counter(const std::string& name) {
  return impl_->findOrCreate(impl_->counters, name, [&](std::string extracted, std::vector<Tag> t) {
    return std::make_shared<Counter>(name, std::move(extracted), std::move(t));
  });
}

std::shared_ptr<Gauge> StatRegistry::gauge(const std::string& name, Gauge::ImportMode mode) {
  return impl_->findOrCreate(impl_->gauges, name, [&](std::string extracted, std::vector<Tag> t) {
    return std::make_shared<Gauge>(name, std::move(extracted), std::move(t), mode);
  });
}

std::shared_ptr<Histogram> StatRegistry::histogram(const std::string& name, Histogram::Unit unit) {
  return impl_->findOrCreate(
      impl_->histograms, name, [&](std::string extracted, std::vector<Tag> t) {
        return std::make_shared<Histogram>(name, std::move(extracted), std::move(t), unit,
                                           impl_->bucketsFor(name));
      });
}

void StatRegistry::purge(const std::vector<std::string>& counter_names,
                         const std::vector<std::string>& gauge_names,
                         const std::vector<std::string>& histogram_names) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->purge(impl_->counters, counter_names);
  impl_->purge(impl_->gauges, gauge_names);
  impl_->purge(impl_->histograms, histogram_names);
}

std::vector<std::shared_ptr<Counter>> StatRegistry::counters() const {
  return impl_->live(impl_->counters);
}
std::vector<std::shared_ptr<Gauge>> StatRegistry::gauges() const {
  return impl_->live(impl_->gauges);
}
std::vector<std::shared_ptr<Histogram>> StatRegistry::histograms() const {
  return impl_->live(impl_->histograms);
}

Store::Store(std::shared_ptr<StatRegistry> registry) : Scope(std::move(registry), "") {}

Result<std::unique_ptr<Store>> Store::create(const StoreOptions& options) {
  SHEAVE_ASSIGN_OR_RETURN(TagProducer tags,
                          TagProducer::create(options.stats_tags, options.use_all_default_tags));
  std::vector<std::pair<std::unique_ptr<re2::RE2>, std::vector<double>>> settings;
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
    settings.emplace_back(std::move(re), std::move(buckets));
  }
  auto registry = std::make_shared<StatRegistry>(std::move(tags), std::move(settings));
  return std::unique_ptr<Store>(new Store(std::move(registry)));
}

std::vector<std::shared_ptr<Counter>> Store::counters() const { return registry()->counters(); }
std::vector<std::shared_ptr<Gauge>> Store::gauges() const { return registry()->gauges(); }
std::vector<std::shared_ptr<Histogram>> Store::histograms() const {
  return registry()->histograms();
}

void Store::mergeHistograms() {
  for (const auto& h : histograms()) h->merge();
}

}  // namespace sheave::stats
