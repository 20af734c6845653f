#include "proxy/stats/labeled_family.h"

#include <xxhash.h>

#include <algorithm>

namespace sheave::stats {
namespace {

std::atomic<uint64_t> next_family_id{1};

struct CacheEntry {
  uint64_t family_id;
  LabeledFamily::Series* series;
};

// Per worker thread: (family id, tuple hash) -> series. Entries of a family
// that died are never dereferenced (ids are not reused and are checked first).
// Bounded: cleared when it grows past kMaxCacheEntries, and refilled from the
// families' maps on demand.
constexpr size_t kMaxCacheEntries = 1 << 16;
thread_local std::unordered_map<uint64_t, CacheEntry> series_cache;

uint64_t cacheKey(uint64_t family_id, uint64_t hash) {
  return hash ^ (family_id * 0x9E3779B97F4A7C15ULL);
}

std::string joinKey(std::span<const std::string_view> values) {
  size_t n = values.size();
  for (auto v : values) n += v.size();
  std::string key;
  key.reserve(n);
  for (auto v : values) {
    key.append(v);
    key.push_back('\x1f');
  }
  return key;
}

}  // namespace

bool LabeledFamily::Series::matches(std::span<const std::string_view> values) const {
  if (values.size() != values_.size()) return false;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] != values_[i]) return false;
  }
  return true;
}

LabeledFamily::LabeledFamily(Options options)
    : options_(std::move(options)),
      bounds_(
          internBuckets(options_.buckets.empty() ? defaultHistogramBuckets() : options_.buckets)),
      id_(next_family_id.fetch_add(1, std::memory_order_relaxed)) {}

uint64_t LabeledFamily::hashValues(std::span<const std::string_view> values) {
  // Each value seeds the next one's hash: order matters, ("ab","c") != ("a","bc").
  uint64_t h = values.size();
  for (auto v : values) h = XXH3_64bits_withSeed(v.data(), v.size(), h) + 1;
  return h;
}

LabeledFamily::Series* LabeledFamily::series(std::span<const std::string_view> values) {
  if (values.size() != options_.label_names.size()) return nullptr;
  const uint64_t key = cacheKey(id_, hashValues(values));
  auto it = series_cache.find(key);
  if (it != series_cache.end() && it->second.family_id == id_ &&
      it->second.series->matches(values)) {
    return it->second.series;
  }
  Series* s = slowLookup(values);
  if (s == nullptr) return nullptr;
  if (series_cache.size() >= kMaxCacheEntries) series_cache.clear();
  series_cache[key] = CacheEntry{id_, s};
  return s;
}

LabeledFamily::Series* LabeledFamily::slowLookup(std::span<const std::string_view> values) {
  std::string key = joinKey(values);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(key);
  if (it != series_.end()) return it->second.get();
  if (series_.size() >= options_.max_series) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto s = std::make_unique<Series>();
  s->values_.assign(values.begin(), values.end());
  if (options_.type == Type::kHistogram) {
    s->histogram_ = std::make_unique<Histogram>(options_.unit, *bounds_);
  }
  Series* out = s.get();
  series_.emplace(std::move(key), std::move(s));
  return out;
}

void LabeledFamily::inc(std::span<const std::string_view> values, uint64_t n) {
  if (Series* s = series(values)) s->counter().inc(n);
}

void LabeledFamily::record(std::span<const std::string_view> values, uint64_t value) {
  Series* s = series(values);
  if (s != nullptr && s->histogram() != nullptr) s->histogram()->record(value);
}

size_t LabeledFamily::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return series_.size();
}

void LabeledFamily::forEach(const std::function<void(const Series&)>& f) const {
  std::vector<const Series*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.reserve(series_.size());
    for (const auto& [_, s] : series_) all.push_back(s.get());
  }
  // Series are never removed while the family lives, so reading them after
  // the lock is safe.
  std::sort(all.begin(), all.end(),
            [](const Series* a, const Series* b) { return a->values() < b->values(); });
  for (const Series* s : all) f(*s);
}

}  // namespace sheave::stats
