#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sheave::stats {

// A tag pulled out of a stat name by a TagExtractor, e.g. envoy.cluster_name=api.
struct Tag {
  std::string name;
  std::string value;

  bool operator==(const Tag& other) const = default;
};

class StatNode;

// What every stat has besides its value. A proxy holds tens of thousands of
// stats (~45 per cluster), so the header is 16 bytes: the node it lives in
// (which owns the shared name prefix, "cluster.api") and the id of its last
// name segment ("upstream_rq_2xx") in the registry's table of interned
// segments. The full name, the tag-extracted name and the tags are derived
// when asked for (admin output), never stored per stat.
class Metric {
 public:
  enum class Kind : uint8_t { kCounter, kGauge, kHistogram };

  Metric(const Metric&) = delete;
  Metric& operator=(const Metric&) = delete;

  // "cluster.api.upstream_rq_2xx"; empty for a stat made outside a Store.
  std::string name() const;
  // "cluster.upstream_rq_xx" and {envoy.response_code_class=2, envoy.cluster_name=api},
  // computed by the Store's tag extractors on each call.
  std::string tagExtractedName() const;
  std::vector<Tag> tags() const;
  // True once the stat has been written, for /stats?usedonly.
  bool used() const { return used_.load(std::memory_order_relaxed); }
  Kind kind() const { return kind_; }

 protected:
  explicit Metric(Kind kind, uint8_t aux = 0) : kind_(kind), aux_(aux) {}
  ~Metric() = default;

  // Load before store so that, once set, the flag's cache line stays shared
  // between workers instead of bouncing on every write.
  void markUsed() {
    if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  }
  uint8_t aux() const { return aux_; }
  // A spare flag for subclasses (Histogram: an interval was closed).
  std::atomic<bool>& flag() { return flag_; }
  const std::atomic<bool>& flag() const { return flag_; }

 private:
  friend class StatNode;

  const StatNode* node_ = nullptr;
  uint32_t leaf_ = 0;
  const Kind kind_;
  std::atomic<bool> used_{false};
  const uint8_t aux_;  // Gauge: import mode; Histogram: unit
  std::atomic<bool> flag_{false};
};

}  // namespace sheave::stats
