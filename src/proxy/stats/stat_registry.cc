#include "proxy/stats/stat_registry.h"

#include <re2/re2.h>

#include <algorithm>
#include <cassert>
#include <new>
#include <type_traits>

namespace sheave::stats {
namespace {

// Small blocks: a cluster's ~45 stats (~1.1 KB) fill four or five of them,
// and a node with a handful of stats wastes little.
constexpr uint32_t kBlockBytes = 256;

static_assert(sizeof(Counter) == 24 && sizeof(Gauge) == 24 && sizeof(Histogram) == 32,
              "stat sizes are part of the memory budget (bench/memory_per_object.sh)");
static_assert(alignof(Counter) <= 8 && alignof(Gauge) <= 8 && alignof(Histogram) <= 8);

}  // namespace

StatNode::StatNode(std::shared_ptr<StatRegistry> registry, std::string prefix)
    : registry_(std::move(registry)), prefix_(std::move(prefix)) {}

StatNode::~StatNode() {
  registry_->forgetNode(*this);
  forEach([](Metric& m) {
    switch (m.kind()) {
      case Metric::Kind::kCounter:
        static_cast<Counter&>(m).~Counter();
        break;
      case Metric::Kind::kGauge:
        static_cast<Gauge&>(m).~Gauge();
        break;
      case Metric::Kind::kHistogram:
        static_cast<Histogram&>(m).~Histogram();
        break;
    }
  });
  for (Block* b = head_; b != nullptr;) {
    Block* next = b->next;
    b->~Block();
    ::operator delete(b);
    b = next;
  }
}

size_t StatNode::sizeOf(const Metric& m) {
  switch (m.kind_) {
    case Metric::Kind::kCounter:
      return sizeof(Counter);
    case Metric::Kind::kGauge:
      return sizeof(Gauge);
    case Metric::Kind::kHistogram:
      return sizeof(Histogram);
  }
  return sizeof(Counter);
}

Metric* StatNode::find(Metric::Kind kind, uint32_t leaf) const {
  Metric* found = nullptr;
  forEach([&](Metric& m) {
    if (found == nullptr && m.kind_ == kind && m.leaf_ == leaf) found = &m;
  });
  return found;
}

size_t StatNode::blockCount() const {
  size_t n = 0;
  for (const Block* b = head_; b != nullptr; b = b->next) ++n;
  return n;
}

void StatNode::reserve(size_t bytes) {
  if (tail_ != nullptr && tail_->capacity - tail_->used >= bytes) return;
  auto* block = new (::operator new(sizeof(Block) + bytes)) Block();
  block->capacity = static_cast<uint32_t>(bytes);
  (tail_ == nullptr ? head_ : tail_->next) = block;
  tail_ = block;
}

void* StatNode::allocate(size_t size) {
  if (tail_ == nullptr || tail_->capacity - tail_->used < size) {
    reserve(std::max<size_t>(kBlockBytes, size));
  }
  void* at = tail_->data() + tail_->used;
  tail_->used += static_cast<uint32_t>(size);
  return at;
}

template <typename T>
T& StatNode::adopt(T* stat, uint32_t leaf) {
  // forEach() reads each stat through its Metric base at the start of its slot.
  assert(static_cast<void*>(static_cast<Metric*>(stat)) == static_cast<void*>(stat));
  stat->node_ = this;
  stat->leaf_ = leaf;
  return *stat;
}

Counter& StatNode::counter(uint32_t leaf) {
  if (Metric* m = find(Metric::Kind::kCounter, leaf)) return static_cast<Counter&>(*m);
  return adopt(new (allocate(sizeof(Counter))) Counter(), leaf);
}

Gauge& StatNode::gauge(uint32_t leaf, Gauge::ImportMode mode) {
  if (Metric* m = find(Metric::Kind::kGauge, leaf)) return static_cast<Gauge&>(*m);
  return adopt(new (allocate(sizeof(Gauge))) Gauge(mode), leaf);
}

Histogram& StatNode::histogram(uint32_t leaf, Histogram::Unit unit,
                               const std::vector<double>* bounds) {
  if (Metric* m = find(Metric::Kind::kHistogram, leaf)) return static_cast<Histogram&>(*m);
  return adopt(new (allocate(sizeof(Histogram))) Histogram(unit, bounds), leaf);
}

StatRegistry::StatRegistry(TagProducer tags, BucketSettings bucket_settings)
    : tags_(std::move(tags)), bucket_settings_(std::move(bucket_settings)) {}

StatRegistry::~StatRegistry() = default;

Result<std::shared_ptr<LabeledFamily>> StatRegistry::labeledFamily(LabeledFamily::Options options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(options.name);
  if (it != families_.end()) {
    const LabeledFamily& f = *it->second;
    if (f.type() != options.type || f.labelNames() != options.label_names) {
      return invalidArgument("metric family '" + options.name +
                             "' already exists with another type or other label names");
    }
    return it->second;
  }
  std::string name = options.name;
  auto family = std::make_shared<LabeledFamily>(std::move(options));
  families_.emplace(std::move(name), family);
  return family;
}

std::vector<std::shared_ptr<LabeledFamily>> StatRegistry::labeledFamilies() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<LabeledFamily>> out;
  out.reserve(families_.size());
  for (const auto& [_, f] : families_) out.push_back(f);
  return out;
}

std::shared_ptr<StatNode> StatRegistry::node(std::string_view prefix) {
  auto it = nodes_.find(prefix);
  if (it != nodes_.end()) {
    if (auto live = it->second.lock()) return live;
    // A dying node not yet forgotten: replace it (its key views its own prefix).
    nodes_.erase(it);
  }
  auto node = std::make_shared<StatNode>(shared_from_this(), std::string(prefix));
  nodes_.emplace(node->prefix(), node);
  return node;
}

void StatRegistry::forgetNode(const StatNode& node) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node.prefix());
  // A live entry is a newer node with the same prefix.
  if (it != nodes_.end() && it->second.expired()) nodes_.erase(it);
}

uint32_t StatRegistry::internLeaf(std::string_view leaf) {
  auto it = leaf_ids_.find(leaf);
  if (it != leaf_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(leaves_.size());
  leaves_.emplace_back(leaf);
  leaf_ids_.emplace(leaves_.back(), id);
  return id;
}

const std::vector<double>* StatRegistry::bucketsFor(const std::string& full_name) const {
  for (const auto& [re, buckets] : bucket_settings_) {
    if (re2::RE2::FullMatch(full_name, *re)) return buckets;
  }
  static const std::vector<double>* defaults = internBuckets(defaultHistogramBuckets());
  return defaults;
}

std::string StatRegistry::fullName(const StatNode& node, uint32_t leaf) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string& tail = leaves_[leaf];
  if (node.prefix().empty()) return tail;
  std::string out;
  out.reserve(node.prefix().size() + 1 + tail.size());
  out += node.prefix();
  out.push_back('.');
  out += tail;
  return out;
}

template <typename T>
std::vector<std::shared_ptr<T>> StatRegistry::collect() const {
  constexpr Metric::Kind kind = std::is_same_v<T, Counter> ? Metric::Kind::kCounter
                                : std::is_same_v<T, Gauge> ? Metric::Kind::kGauge
                                                           : Metric::Kind::kHistogram;
  std::vector<std::pair<std::string, std::shared_ptr<T>>> named;
  {
    std::vector<std::shared_ptr<StatNode>> live;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [_, weak] : nodes_) {
      std::shared_ptr<StatNode> node = weak.lock();
      if (node == nullptr) continue;
      node->forEach([&](Metric& m) {
        if (m.kind() != kind) return;
        const std::string& tail = leaves_[StatNode::leafOf(m)];
        std::string name = node->prefix().empty() ? tail : node->prefix() + "." + tail;
        // Aliasing: the stat pointer shares ownership of its node.
        named.emplace_back(std::move(name), std::shared_ptr<T>(node, static_cast<T*>(&m)));
      });
      // Keep the node until the lock is released: dropping the last
      // reference here would run ~StatNode, which takes the lock.
      live.push_back(std::move(node));
    }
  }  // `lock` is released before `live` dies (reverse declaration order)
  std::sort(named.begin(), named.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::shared_ptr<T>> out;
  out.reserve(named.size());
  for (auto& [_, stat] : named) out.push_back(std::move(stat));
  return out;
}

template std::vector<std::shared_ptr<Counter>> StatRegistry::collect<Counter>() const;
template std::vector<std::shared_ptr<Gauge>> StatRegistry::collect<Gauge>() const;
template std::vector<std::shared_ptr<Histogram>> StatRegistry::collect<Histogram>() const;

}  // namespace sheave::stats
