#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "proxy/stats/counter.h"
#include "proxy/stats/gauge.h"
#include "proxy/stats/histogram.h"
#include "proxy/stats/labeled_family.h"
#include "proxy/stats/tag_extractor.h"

namespace re2 {
class RE2;
}

namespace sheave::stats {

class StatRegistry;

// The stats whose full names share everything up to the last '.': the node
// "cluster.api" holds cluster.api.upstream_rq_total, cluster.api.upstream_cx_active, ...
// The stats live inside the node, packed in small blocks (no heap node, no
// name string and no control block per stat), and die with it. Scopes own
// nodes by shared_ptr: a node, and every stat in it, lives while a scope that
// created a stat in it (or whose prefix it is) lives.
class StatNode {
 public:
  StatNode(std::shared_ptr<StatRegistry> registry, std::string prefix);
  ~StatNode();
  StatNode(const StatNode&) = delete;
  StatNode& operator=(const StatNode&) = delete;

  const std::string& prefix() const { return prefix_; }
  StatRegistry& registry() const { return *registry_; }

  // Find or create by interned last segment. Caller holds the registry mutex.
  Counter& counter(uint32_t leaf);
  Gauge& gauge(uint32_t leaf, Gauge::ImportMode mode);
  Histogram& histogram(uint32_t leaf, Histogram::Unit unit, const std::vector<double>* bounds);

  // Makes sure `bytes` of stats fit without another block. Caller holds the registry mutex.
  void reserve(size_t bytes);

  // Visits every stat in creation order. Caller holds the registry mutex.
  template <typename F>
  void forEach(F&& f) const;

  static uint32_t leafOf(const Metric& m) { return m.leaf_; }

  // How many blocks hold the stats (a reserve() that fit: 1). Caller holds the registry mutex.
  size_t blockCount() const;

 private:
  struct Block;
  Metric* find(Metric::Kind kind, uint32_t leaf) const;
  void* allocate(size_t size);
  template <typename T>
  T& adopt(T* stat, uint32_t leaf);
  static size_t sizeOf(const Metric& m);

  std::shared_ptr<StatRegistry> registry_;
  const std::string prefix_;
  Block* head_ = nullptr;
  Block* tail_ = nullptr;
};

// Every live node, by prefix, plus what nodes share: the interned last name
// segments, the tag producer and the histogram bucket settings. One mutex
// guards it all; it is taken at config load and by admin output, never on
// the request path.
class StatRegistry : public std::enable_shared_from_this<StatRegistry> {
 public:
  using BucketSettings =
      std::vector<std::pair<std::unique_ptr<re2::RE2>, const std::vector<double>*>>;

  StatRegistry(TagProducer tags, BucketSettings bucket_settings);
  ~StatRegistry();

  std::mutex& mutex() const { return mu_; }
  const TagProducer& tagProducer() const { return tags_; }

  // Under mutex(): the live node for `prefix`, created if needed.
  std::shared_ptr<StatNode> node(std::string_view prefix);
  // Under mutex(): the id of a last name segment. Segments are a small
  // vocabulary ("upstream_rq_total", "upstream_rq_503") and are kept forever.
  uint32_t internLeaf(std::string_view leaf);
  // Under mutex().
  const std::string& leafLocked(uint32_t id) const { return leaves_[id]; }
  const std::vector<double>* bucketsFor(const std::string& full_name) const;

  // Takes mutex().
  std::string fullName(const StatNode& node, uint32_t leaf) const;
  void forgetNode(const StatNode& node);

  // Live stats of one kind, sorted by full name. Each shared_ptr keeps its node alive.
  template <typename T>
  std::vector<std::shared_ptr<T>> collect() const;

  // Takes mutex(). The family named options.name, created if needed; an error
  // when a family of that name exists with another type or label names.
  Result<std::shared_ptr<LabeledFamily>> labeledFamily(LabeledFamily::Options options);
  // Takes mutex(). Sorted by name.
  std::vector<std::shared_ptr<LabeledFamily>> labeledFamilies() const;

 private:
  TagProducer tags_;
  BucketSettings bucket_settings_;

  mutable std::mutex mu_;
  std::unordered_map<std::string_view, std::weak_ptr<StatNode>>
      nodes_;  // key views the node's prefix
  std::deque<std::string> leaves_;
  std::unordered_map<std::string_view, uint32_t> leaf_ids_;  // key views leaves_
  // Kept for the registry's life: counters must not reset when a listener is replaced.
  std::map<std::string, std::shared_ptr<LabeledFamily>, std::less<>> families_;
};

// Internal layout of a node's storage, here so forEach() can be inline.
struct StatNode::Block {
  Block* next = nullptr;
  uint32_t used = 0;
  uint32_t capacity = 0;
  std::byte* data() { return reinterpret_cast<std::byte*>(this + 1); }
  const std::byte* data() const { return reinterpret_cast<const std::byte*>(this + 1); }
};

template <typename F>
void StatNode::forEach(F&& f) const {
  for (const Block* b = head_; b != nullptr; b = b->next) {
    for (uint32_t off = 0; off < b->used;) {
      auto* m = reinterpret_cast<Metric*>(const_cast<std::byte*>(b->data() + off));
      off += static_cast<uint32_t>(sizeOf(*m));
      f(*m);
    }
  }
}

}  // namespace sheave::stats
