#include "proxy/stats/scope.h"

#include <vector>

#include "proxy/stats/store.h"

namespace sheave::stats {

std::string sanitizeStatName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '\0') continue;
    out.push_back(c == ':' ? '_' : c);
  }
  size_t begin = out.find_first_not_of('.');
  if (begin == std::string::npos) return "";
  size_t end = out.find_last_not_of('.');
  return out.substr(begin, end - begin + 1);
}

Scope::Scope(std::shared_ptr<StatRegistry> registry, std::string prefix)
    : registry_(std::move(registry)), prefix_(sanitizeStatName(prefix)) {}

Scope::~Scope() {
  std::vector<std::string> counter_names, gauge_names, histogram_names;
  for (auto& [name, _] : counters_) counter_names.push_back(name);
  for (auto& [name, _] : gauges_) gauge_names.push_back(name);
  for (auto& [name, _] : histograms_) histogram_names.push_back(name);
  // Drop our references first so the registry sees which stats died.
  counters_.clear();
  gauges_.clear();
  histograms_.clear();
  registry_->purge(counter_names, gauge_names, histogram_names);
}

std::string Scope::fullName(std::string_view name) const {
  std::string tail = sanitizeStatName(name);
  if (prefix_.empty()) return tail;
  if (tail.empty()) return prefix_;
  return prefix_ + "." + tail;
}

Counter& Scope::counter(std::string_view name) {
  std::string full = fullName(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counters_.find(full);
  if (it != counters_.end()) return *it->second;
  auto stat = registry_->counter(full);
  Counter& ref = *stat;
  counters_.emplace(std::move(full), std::move(stat));
  return ref;
}

Gauge& Scope::gauge(std::string_view name, Gauge::ImportMode mode) {
  std::string full = fullName(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = gauges_.find(full);
  if (it != gauges_.end()) return *it->second;
  auto stat = registry_->gauge(full, mode);
  Gauge& ref = *stat;
  gauges_.emplace(std::move(full), std::move(stat));
  return ref;
}

Histogram& Scope::histogram(std::string_view name, Histogram::Unit unit) {
  std::string full = fullName(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = histograms_.find(full);
  if (it != histograms_.end()) return *it->second;
  auto stat = registry_->histogram(full, unit);
  Histogram& ref = *stat;
  histograms_.emplace(std::move(full), std::move(stat));
  return ref;
}

namespace {
// createScope() needs a public constructor path for make_shared.
class ChildScope : public Scope {
 public:
  ChildScope(std::shared_ptr<StatRegistry> registry, std::string prefix)
      : Scope(std::move(registry), std::move(prefix)) {}
};
}  // namespace

std::shared_ptr<Scope> Scope::createScope(std::string_view prefix) {
  std::string child = sanitizeStatName(prefix);
  std::string full = prefix_.empty() ? child : (child.empty() ? prefix_ : prefix_ + "." + child);
  return std::make_shared<ChildScope>(registry_, std::move(full));
}

}  // namespace sheave::stats
