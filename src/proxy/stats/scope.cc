#include "proxy/stats/scope.h"

#include <mutex>
#include <utility>

#include "proxy/stats/stat_registry.h"

namespace sheave::stats {
namespace {

// "cluster.api.upstream_rq_total" -> {"cluster.api", "upstream_rq_total"}.
std::pair<std::string_view, std::string_view> splitName(std::string_view full) {
  const size_t dot = full.rfind('.');
  if (dot == std::string_view::npos) return {std::string_view(), full};
  return {full.substr(0, dot), full.substr(dot + 1)};
}

}  // namespace

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

Scope::Scope(std::shared_ptr<StatRegistry> registry, std::string_view prefix)
    : registry_(std::move(registry)) {
  const std::string clean = sanitizeStatName(prefix);
  std::lock_guard<std::mutex> lock(registry_->mutex());
  node_ = registry_->node(clean);
}

// Members die after the body: the nodes are released without the registry
// lock held, as ~StatNode takes it.
Scope::~Scope() = default;

const std::string& Scope::prefix() const { return node_->prefix(); }

size_t Scope::blockCount() const {
  std::lock_guard<std::mutex> lock(registry_->mutex());
  return node_->blockCount();
}

std::string Scope::fullName(std::string_view name) const {
  std::string tail = sanitizeStatName(name);
  if (prefix().empty()) return tail;
  if (tail.empty()) return prefix();
  std::string out;
  out.reserve(prefix().size() + 1 + tail.size());
  out += prefix();
  out.push_back('.');
  out += tail;
  return out;
}

StatNode& Scope::nodeLocked(std::string_view prefix) {
  if (prefix == node_->prefix()) return *node_;
  for (const auto& other : others_) {
    if (other->prefix() == prefix) return *other;
  }
  others_.push_back(registry_->node(prefix));
  return *others_.back();
}

void Scope::reserve(uint32_t counters, uint32_t gauges, uint32_t histograms) {
  std::lock_guard<std::mutex> lock(registry_->mutex());
  node_->reserve(counters * sizeof(Counter) + gauges * sizeof(Gauge) +
                 histograms * sizeof(Histogram));
}

Counter& Scope::counter(std::string_view name) {
  const std::string full = fullName(name);
  const auto [prefix, leaf] = splitName(full);
  std::lock_guard<std::mutex> lock(registry_->mutex());
  return nodeLocked(prefix).counter(registry_->internLeaf(leaf));
}

Gauge& Scope::gauge(std::string_view name, Gauge::ImportMode mode) {
  const std::string full = fullName(name);
  const auto [prefix, leaf] = splitName(full);
  std::lock_guard<std::mutex> lock(registry_->mutex());
  return nodeLocked(prefix).gauge(registry_->internLeaf(leaf), mode);
}

Histogram& Scope::histogram(std::string_view name, Histogram::Unit unit) {
  const std::string full = fullName(name);
  const auto [prefix, leaf] = splitName(full);
  std::lock_guard<std::mutex> lock(registry_->mutex());
  return nodeLocked(prefix).histogram(registry_->internLeaf(leaf), unit,
                                      registry_->bucketsFor(full));
}

namespace {
// createScope() needs a public constructor path for make_shared.
class ChildScope : public Scope {
 public:
  ChildScope(std::shared_ptr<StatRegistry> registry, std::string_view prefix)
      : Scope(std::move(registry), prefix) {}
};
}  // namespace

Result<std::shared_ptr<LabeledFamily>> Scope::labeledFamily(LabeledFamily::Options options) {
  return registry_->labeledFamily(std::move(options));
}

std::shared_ptr<Scope> Scope::createScope(std::string_view child_prefix) {
  std::string child = sanitizeStatName(child_prefix);
  std::string full = prefix().empty() ? child : (child.empty() ? prefix() : prefix() + "." + child);
  return std::make_shared<ChildScope>(registry_, full);
}

}  // namespace sheave::stats
