#include "proxy/upstream/load_balancer.h"

#include <algorithm>

namespace sheave::upstream {
namespace {

// Shared by all policies: the host list to choose from after health and panic
// filtering, and retry avoidance of already-attempted hosts.
class LoadBalancerBase : public LoadBalancer {
 public:
  LoadBalancerBase(std::shared_ptr<const HostVector> all, double panic_threshold_percent,
                   RandomGenerator& random)
      : random_(random) {
    const HostVector& hosts = *all;
    const size_t healthy_count = static_cast<size_t>(std::count_if(
        hosts.begin(), hosts.end(), [](const HostSharedPtr& h) { return h->available(); }));
    const double healthy_percent =
        hosts.empty() ? 0.0 : 100.0 * static_cast<double>(healthy_count) / hosts.size();
    if (healthy_count == hosts.size() || healthy_percent < panic_threshold_percent) {
      // All healthy, or panic: balance over every host, sharing the list.
      hosts_ = std::move(all);
    } else {
      auto healthy = std::make_shared<HostVector>();
      healthy->reserve(healthy_count);
      for (const auto& h : hosts) {
        if (h->available()) healthy->push_back(h);
      }
      hosts_ = std::move(healthy);
    }
    for (const auto& h : *hosts_) {
      if (h->weight() != hosts_->front()->weight()) equal_weights_ = false;
    }
  }

  HostSharedPtr chooseHost(const LbContext* context) override {
    if (hosts_->empty()) return nullptr;
    const uint32_t attempts =
        (context && context->attempted_hosts && !context->attempted_hosts->empty())
            ? std::max<uint32_t>(context->host_selection_retry_max_attempts, 1)
            : 1;
    HostSharedPtr host;
    for (uint32_t i = 0; i < attempts; ++i) {
      host = pick();
      if (!wasAttempted(context, host.get())) break;
    }
    return host;
  }

 protected:
  virtual HostSharedPtr pick() = 0;

  static bool wasAttempted(const LbContext* context, const Host* host) {
    if (!context || !context->attempted_hosts) return false;
    const auto& v = *context->attempted_hosts;
    return std::find(v.begin(), v.end(), host) != v.end();
  }

  std::shared_ptr<const HostVector> hosts_;
  bool equal_weights_ = true;
  RandomGenerator& random_;
};

// Earliest-deadline-first scheduling gives weighted round robin in O(log n)
// per pick: each host's next deadline advances by 1/weight.
class EdfScheduler {
 public:
  void add(size_t index, double weight) {
    queue_.push(Entry{current_ + 1.0 / weight, order_++, index, weight});
  }
  size_t pickAndReschedule() {
    Entry e = queue_.top();
    queue_.pop();
    current_ = e.deadline;
    queue_.push(Entry{current_ + 1.0 / e.weight, order_++, e.index, e.weight});
    return e.index;
  }
  bool empty() const { return queue_.empty(); }

 private:
  struct Entry {
    double deadline;
    uint64_t order;  // ties broken by insertion order, so equal weights alternate
    size_t index;
    double weight;
    bool operator>(const Entry& o) const {
      return deadline != o.deadline ? deadline > o.deadline : order > o.order;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue_;
  double current_ = 0;
  uint64_t order_ = 0;
};

class RoundRobinLoadBalancer : public LoadBalancerBase {
 public:
  RoundRobinLoadBalancer(std::shared_ptr<const HostVector> hosts, double panic,
                         RandomGenerator& random)
      : LoadBalancerBase(std::move(hosts), panic, random) {
    // Envoy starts each worker at a random offset so workers do not move in
    // lock step over the same hosts.
    const HostVector& list = *hosts_;
    if (!list.empty()) next_ = random_.uniform(list.size());
    if (!equal_weights_) {
      for (size_t i = 0; i < list.size(); ++i) {
        edf_.add(i, std::max<uint32_t>(list[i]->weight(), 1));
      }
    }
  }

 protected:
  HostSharedPtr pick() override {
    const HostVector& hosts = *hosts_;
    if (!equal_weights_) return hosts[edf_.pickAndReschedule()];
    return hosts[next_++ % hosts.size()];
  }

 private:
  uint64_t next_ = 0;
  EdfScheduler edf_;
};

// Power of N choices: sample choice_count hosts at random and take the one
// with the fewest active requests (weighted by the host's weight).
class LeastRequestLoadBalancer : public LoadBalancerBase {
 public:
  LeastRequestLoadBalancer(std::shared_ptr<const HostVector> hosts, double panic,
                           uint32_t choice_count, RandomGenerator& random)
      : LoadBalancerBase(std::move(hosts), panic, random),
        choice_count_(std::max<uint32_t>(choice_count, 2)) {}

 protected:
  HostSharedPtr pick() override {
    const HostSharedPtr* best = nullptr;
    double best_score = 0;
    for (uint32_t i = 0; i < choice_count_; ++i) {
      const HostSharedPtr& candidate = (*hosts_)[random_.uniform(hosts_->size())];
      const double active =
          static_cast<double>(candidate->stats().rq_active.load(std::memory_order_relaxed));
      const double score = (active + 1.0) / std::max<uint32_t>(candidate->weight(), 1);
      if (best == nullptr || score < best_score) {
        best = &candidate;
        best_score = score;
      }
    }
    return *best;
  }

 private:
  uint32_t choice_count_;
};

class RandomLoadBalancer : public LoadBalancerBase {
 public:
  using LoadBalancerBase::LoadBalancerBase;

 protected:
  HostSharedPtr pick() override { return (*hosts_)[random_.uniform(hosts_->size())]; }
};

}  // namespace

std::unique_ptr<LoadBalancer> LoadBalancer::create(LbPolicy policy,
                                                   std::shared_ptr<const HostVector> hosts,
                                                   double panic_threshold_percent,
                                                   uint32_t least_request_choice_count,
                                                   RandomGenerator& random) {
  switch (policy) {
    case LbPolicy::kRoundRobin:
      return std::make_unique<RoundRobinLoadBalancer>(std::move(hosts), panic_threshold_percent,
                                                      random);
    case LbPolicy::kLeastRequest:
      return std::make_unique<LeastRequestLoadBalancer>(std::move(hosts), panic_threshold_percent,
                                                        least_request_choice_count, random);
    case LbPolicy::kRandom:
      return std::make_unique<RandomLoadBalancer>(std::move(hosts), panic_threshold_percent,
                                                  random);
    case LbPolicy::kClusterProvided:
      return std::make_unique<OriginalDstLoadBalancer>();
  }
  return nullptr;
}

HostSharedPtr OriginalDstLoadBalancer::chooseHost(const LbContext* context) {
  if (context == nullptr || context->downstream_local_address == nullptr ||
      context->downstream_local_address->empty()) {
    return nullptr;
  }
  const Address destination = port_override_ == 0
                                  ? *context->downstream_local_address
                                  : context->downstream_local_address->withPort(port_override_);
  auto [it, inserted] = hosts_.try_emplace(destination.asString());
  if (inserted) it->second.host = std::make_shared<Host>(destination, "", 1);
  it->second.used = true;
  return it->second.host;
}

void OriginalDstLoadBalancer::cleanup() {
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    if (!it->second.used) {
      it = hosts_.erase(it);
    } else {
      it->second.used = false;
      ++it;
    }
  }
}

bool OriginalDstLoadBalancer::has(const Host* host) const {
  for (const auto& [key, entry] : hosts_) {
    if (entry.host.get() == host) return true;
  }
  return false;
}

}  // namespace sheave::upstream
