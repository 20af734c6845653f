#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>

namespace sheave::upstream {

// A circuit-breaker budget (Envoy's ResourceManager): one per cluster and
// priority, shared by all workers, so limits hold for the whole proxy.
class Resource {
 public:
  explicit Resource(uint64_t max) : max_(max) {}
  virtual ~Resource() = default;
  bool canCreate() const { return current() < max(); }
  // Takes one unit if the limit allows; returns false on overflow.
  bool tryInc() {
    const uint64_t limit = max();
    uint64_t cur = current_.load(std::memory_order_relaxed);
    while (cur < limit) {
      if (current_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  void inc() { current_.fetch_add(1, std::memory_order_relaxed); }
  void dec() { current_.fetch_sub(1, std::memory_order_relaxed); }
  uint64_t current() const { return current_.load(std::memory_order_relaxed); }
  virtual uint64_t max() const { return max_; }

 private:
  const uint64_t max_;
  std::atomic<uint64_t> current_{0};
};

// circuit_breakers.thresholds.retry_budget: concurrent retries may be at most
// budget_percent of the cluster's active and pending requests, and never
// fewer than min_retry_concurrency. Envoy's defaults: 20%, 3.
struct RetryBudget {
  double budget_percent = 20.0;
  uint32_t min_retry_concurrency = 3;
};

// Envoy's defaults: 1024 connections, pending requests and requests, 3
// concurrent retries. A retry budget, when set, replaces max_retries.
struct ResourceLimits {
  uint64_t max_connections = 1024;
  uint64_t max_pending_requests = 1024;
  uint64_t max_requests = 1024;
  uint64_t max_retries = 3;
  std::optional<RetryBudget> retry_budget;
};

// The retries resource: a fixed max_retries, or a limit that follows the
// cluster's load when a retry budget is configured (as Envoy computes it).
class RetryResource : public Resource {
 public:
  RetryResource(uint64_t max, std::optional<RetryBudget> budget, const Resource& requests,
                const Resource& pending)
      : Resource(max), budget_(budget), requests_(requests), pending_(pending) {}
  uint64_t max() const override {
    if (!budget_) return Resource::max();
    const double active = static_cast<double>(requests_.current() + pending_.current());
    return std::max<uint64_t>(static_cast<uint64_t>(budget_->budget_percent / 100.0 * active),
                              budget_->min_retry_concurrency);
  }
  bool budgeted() const { return budget_.has_value(); }

 private:
  std::optional<RetryBudget> budget_;
  const Resource& requests_;
  const Resource& pending_;
};

class ResourceManager {
 public:
  explicit ResourceManager(const ResourceLimits& limits)
      : connections(limits.max_connections),
        pending_requests(limits.max_pending_requests),
        requests(limits.max_requests),
        retries(limits.max_retries, limits.retry_budget, requests, pending_requests) {}

  Resource connections;
  Resource pending_requests;
  Resource requests;
  RetryResource retries;
};

}  // namespace sheave::upstream
