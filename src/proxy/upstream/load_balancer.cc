#include "proxy/upstream/load_balancer.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace sheave::upstream {

// The balancer for hosts of one priority level (LoadBalancer::create without the level split).
std::unique_ptr<LoadBalancer> createForOneLevel(const LbConfig& config,
                                                std::shared_ptr<const HostVector> hosts,
                                                RandomGenerator& random);

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
      host = pick(context, i);
      if (!wasAttempted(context, host.get())) break;
    }
    return host;
  }

 protected:
  // `attempt`: how many picks for this choice came back with an attempted host.
  virtual HostSharedPtr pick(const LbContext* context, uint32_t attempt) = 0;

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
    return pickAndReschedule([](size_t, double weight) { return weight; });
  }
  // `reweight(index, weight)` gives the weight the picked entry goes back
  // with (least request: its weight divided by its active requests).
  template <typename Reweight>
  size_t pickAndReschedule(const Reweight& reweight) {
    Entry e = queue_.top();
    queue_.pop();
    current_ = e.deadline;
    const double w = std::max(reweight(e.index, e.weight), 1e-9);
    queue_.push(Entry{current_ + 1.0 / w, order_++, e.index, e.weight});
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

// Slow start for the weighted policies: the hosts' weights scaled by their
// ramp-up factor, re-read at most every kRefresh while a host is ramping.
// Clusters without slow_start_config pay one null pointer for it.
class SlowStartWeights {
 public:
  SlowStartWeights(const LbConfig& config, const HostVector& hosts) {
    if (!config.slow_start) return;
    state_ = std::make_unique<State>(State{*config.slow_start, config.clock, {}, {}, false});
    refresh(hosts, now());
  }
  // True while some host is still inside its window.
  bool active() const { return state_ && state_->active; }
  // Re-reads the factors when due; true when they changed.
  bool maybeRefresh(const HostVector& hosts) {
    if (!active()) return false;
    const auto t = now();
    if (t - state_->last_refresh < kRefresh) return false;
    refresh(hosts, t);
    return true;
  }
  double weight(size_t index, const Host& host) const {
    const double w = std::max<uint32_t>(host.weight(), 1);
    return active() ? w * state_->factors[index] : w;
  }

 private:
  static constexpr std::chrono::milliseconds kRefresh{50};
  struct State {
    SlowStart slow_start;
    std::function<std::chrono::steady_clock::time_point()> clock;
    std::vector<double> factors;
    std::chrono::steady_clock::time_point last_refresh;
    bool active;
  };
  std::chrono::steady_clock::time_point now() const {
    return state_->clock ? state_->clock() : std::chrono::steady_clock::now();
  }
  void refresh(const HostVector& hosts, std::chrono::steady_clock::time_point t) {
    State& s = *state_;
    s.last_refresh = t;
    s.active = false;
    s.factors.assign(hosts.size(), 1.0);
    const int64_t now_ns = t.time_since_epoch().count();
    for (size_t i = 0; i < hosts.size(); ++i) {
      const int64_t since = hosts[i]->slowStartSince();
      if (since == 0 || now_ns - since >= s.slow_start.window.count() * 1000000) continue;
      s.factors[i] = s.slow_start.factor(std::chrono::nanoseconds(now_ns - since));
      s.active = true;
    }
  }
  std::unique_ptr<State> state_;
};

class RoundRobinLoadBalancer : public LoadBalancerBase {
 public:
  RoundRobinLoadBalancer(std::shared_ptr<const HostVector> hosts, const LbConfig& config,
                         RandomGenerator& random)
      : LoadBalancerBase(std::move(hosts), config.panic_threshold_percent, random),
        slow_start_(config, *hosts_) {
    // Envoy starts each worker at a random offset so workers do not move in
    // lock step over the same hosts.
    const HostVector& list = *hosts_;
    if (!list.empty()) next_ = random_.uniform(list.size());
    weighted_ = !equal_weights_ || slow_start_.active();
    if (weighted_) schedule();
  }

 protected:
  HostSharedPtr pick(const LbContext*, uint32_t) override {
    const HostVector& hosts = *hosts_;
    if (slow_start_.maybeRefresh(hosts)) {
      weighted_ = !equal_weights_ || slow_start_.active();
      if (weighted_) schedule();
    }
    if (weighted_) return hosts[edf_.pickAndReschedule()];
    return hosts[next_++ % hosts.size()];
  }

 private:
  void schedule() {
    edf_ = EdfScheduler();
    const HostVector& list = *hosts_;
    for (size_t i = 0; i < list.size(); ++i) edf_.add(i, slow_start_.weight(i, *list[i]));
  }
  uint64_t next_ = 0;
  bool weighted_ = false;
  SlowStartWeights slow_start_;
  EdfScheduler edf_;
};

// Envoy's LEAST_REQUEST: with equal weights, power of N choices (sample
// choice_count hosts, take the one with the fewest active requests); with
// unequal weights (slow start included), weighted round robin whose weights
// are load_balancing_weight / (active requests + 1) at each pick.
class LeastRequestLoadBalancer : public LoadBalancerBase {
 public:
  LeastRequestLoadBalancer(std::shared_ptr<const HostVector> hosts, const LbConfig& config,
                           RandomGenerator& random)
      : LoadBalancerBase(std::move(hosts), config.panic_threshold_percent, random),
        choice_count_(std::max<uint32_t>(config.least_request_choice_count, 2)),
        slow_start_(config, *hosts_) {
    weighted_ = !equal_weights_ || slow_start_.active();
    if (weighted_) schedule();
  }

 protected:
  HostSharedPtr pick(const LbContext*, uint32_t) override {
    const HostVector& hosts = *hosts_;
    if (slow_start_.maybeRefresh(hosts)) {
      weighted_ = !equal_weights_ || slow_start_.active();
      if (weighted_) schedule();
    }
    if (weighted_) {
      return hosts[edf_.pickAndReschedule([&](size_t index, double) {
        return slow_start_.weight(index, *hosts[index]) / (active(*hosts[index]) + 1.0);
      })];
    }
    const HostSharedPtr* best = nullptr;
    double best_active = 0;
    for (uint32_t i = 0; i < choice_count_; ++i) {
      const HostSharedPtr& candidate = hosts[random_.uniform(hosts.size())];
      const double a = active(*candidate);
      if (best == nullptr || a < best_active) {
        best = &candidate;
        best_active = a;
      }
    }
    return *best;
  }

 private:
  static double active(const Host& host) {
    return static_cast<double>(host.stats().rq_active.load(std::memory_order_relaxed));
  }
  void schedule() {
    edf_ = EdfScheduler();
    const HostVector& list = *hosts_;
    for (size_t i = 0; i < list.size(); ++i) {
      edf_.add(i, slow_start_.weight(i, *list[i]) / (active(*list[i]) + 1.0));
    }
  }
  uint32_t choice_count_;
  bool weighted_ = false;
  SlowStartWeights slow_start_;
  EdfScheduler edf_;
};

class RandomLoadBalancer : public LoadBalancerBase {
 public:
  using LoadBalancerBase::LoadBalancerBase;

 protected:
  HostSharedPtr pick(const LbContext*, uint32_t) override {
    return (*hosts_)[random_.uniform(hosts_->size())];
  }
};

uint64_t xxHash64(std::string_view s, uint64_t seed = 0) { return XXH64(s.data(), s.size(), seed); }

// Ketama-style ring: each host owns a number of points proportional to its
// weight, at xxHash64("<address>_<i>"); a hash maps to the first point at or
// after it, wrapping around. Envoy's sizing: the lightest host gets at least
// ceil(its share * minimum_ring_size) points, the ring at most maximum_ring_size.
class RingHashTable : public HashTable {
 public:
  RingHashTable(const HostVector& hosts, uint64_t minimum_ring_size, uint64_t maximum_ring_size) {
    double total = 0;
    for (const auto& h : hosts) total += std::max<uint32_t>(h->weight(), 1);
    double min_share = 1.0;
    for (const auto& h : hosts) {
      min_share = std::min(min_share, std::max<uint32_t>(h->weight(), 1) / total);
    }
    const double scale =
        std::min(std::ceil(min_share * static_cast<double>(minimum_ring_size)) / min_share,
                 static_cast<double>(maximum_ring_size));
    ring_.reserve(static_cast<size_t>(scale) + hosts.size());
    double target = 0;
    uint64_t made = 0;
    for (uint32_t index = 0; index < hosts.size(); ++index) {
      const std::string prefix = hosts[index]->address().asString() + "_";
      target += scale * std::max<uint32_t>(hosts[index]->weight(), 1) / total;
      for (uint64_t i = 0; static_cast<double>(made) < target; ++i, ++made) {
        ring_.push_back(Point{xxHash64(prefix + std::to_string(i)), index});
      }
    }
    std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.index < b.index;
    });
  }

  uint32_t pick(uint64_t hash, uint32_t attempt) const override {
    auto it = std::lower_bound(ring_.begin(), ring_.end(), hash,
                               [](const Point& p, uint64_t h) { return p.hash < h; });
    size_t at = it == ring_.end() ? 0 : static_cast<size_t>(it - ring_.begin());
    // A retry avoiding earlier hosts behaves as if this point were not there.
    if (attempt > 0) at = (at + attempt) % ring_.size();
    return ring_[at].index;
  }

 private:
  struct Point {
    uint64_t hash;
    uint32_t index;
  };
  std::vector<Point> ring_;
};

// Maglev (Eisenbud et al., NSDI 2016): each host walks its own permutation of
// the table's slots (offset and skip from two hashes of its address) and
// takes the next free slot in turn; a heavier host takes turns more often.
// Adding or removing a host moves about 1/N of the slots.
class MaglevTable : public HashTable {
 public:
  MaglevTable(const HostVector& hosts, uint64_t table_size) : table_(table_size) {
    struct Entry {
      uint64_t offset;
      uint64_t skip;
      uint64_t next = 0;
      double weight;
      double target = 0;
    };
    std::vector<Entry> entries;
    entries.reserve(hosts.size());
    double max_weight = 0;
    for (const auto& h : hosts) {
      const std::string key = h->address().asString();
      const double weight = std::max<uint32_t>(h->weight(), 1);
      max_weight = std::max(max_weight, weight);
      entries.push_back(Entry{xxHash64(key, 0) % table_size,
                              xxHash64(key, 1) % (table_size - 1) + 1, 0, weight, 0});
    }
    std::vector<bool> taken(table_size, false);
    uint64_t filled = 0;
    for (uint64_t iteration = 1; filled < table_size; ++iteration) {
      for (uint32_t i = 0; i < entries.size() && filled < table_size; ++i) {
        Entry& e = entries[i];
        // A host of the largest weight takes a slot every round, one of a third of it every third.
        if (static_cast<double>(iteration) * e.weight < e.target) continue;
        e.target += max_weight;
        uint64_t slot = (e.offset + e.skip * e.next) % table_size;
        while (taken[slot]) {
          ++e.next;
          slot = (e.offset + e.skip * e.next) % table_size;
        }
        taken[slot] = true;
        table_[slot] = i;
        ++e.next;
        ++filled;
      }
    }
  }

  uint32_t pick(uint64_t hash, uint32_t attempt) const override {
    // A retry avoiding earlier hosts flips many bits of the hash.
    if (attempt > 0) hash ^= ~0ULL - attempt + 1;
    return table_[hash % table_.size()];
  }

 private:
  std::vector<uint32_t> table_;
};

// RING_HASH and MAGLEV: the request's hash (or a random one) through the
// cluster's shared table for the current host selection.
class HashLoadBalancer : public LoadBalancerBase {
 public:
  HashLoadBalancer(std::shared_ptr<const HostVector> hosts, const LbConfig& config,
                   RandomGenerator& random)
      : LoadBalancerBase(std::move(hosts), config.panic_threshold_percent, random) {
    if (hosts_->empty()) return;
    auto build = [&]() -> std::unique_ptr<HashTable> {
      return config.policy == LbPolicy::kMaglev
                 ? buildMaglev(*hosts_, config.maglev_table_size)
                 : buildRingHash(*hosts_, config.minimum_ring_size, config.maximum_ring_size);
    };
    table_ = config.hash_tables ? config.hash_tables->get(*hosts_, build)
                                : std::shared_ptr<const HashTable>(build());
  }

 protected:
  HostSharedPtr pick(const LbContext* context, uint32_t attempt) override {
    const uint64_t hash = context && context->hash_key ? *context->hash_key : random_.next();
    return (*hosts_)[table_->pick(hash, attempt)];
  }

 private:
  std::shared_ptr<const HashTable> table_;
};

// Priority levels (LocalityLbEndpoints.priority): one balancer per level
// over that level's hosts, and a level picked per request by the loads
// computePriorityLoad gives (the request's hash decides it for hash policies,
// so a key stays on its level).
class PriorityLoadBalancer : public LoadBalancer {
 public:
  PriorityLoadBalancer(const LbConfig& config, const HostVector& hosts, RandomGenerator& random)
      : random_(random) {
    uint32_t levels = 0;
    for (const auto& h : hosts) levels = std::max(levels, h->priority() + 1);
    std::vector<HostVector> by_level(levels);
    std::vector<uint32_t> available(levels, 0);
    std::vector<uint32_t> total(levels, 0);
    for (const auto& h : hosts) {
      by_level[h->priority()].push_back(h);
      ++total[h->priority()];
      available[h->priority()] += h->available();
    }
    const PriorityLoad load = computePriorityLoad(available, total, config.overprovisioning_factor,
                                                  config.panic_threshold_percent);
    LbConfig child = config;
    // Panic is decided for the cluster as a whole: then every level balances
    // over all its hosts, else over its available ones only.
    child.panic_threshold_percent = load.panic ? 101.0 : 0.0;
    child.hash_tables = nullptr;  // one table per level, built per worker
    uint32_t cumulative = 0;
    for (uint32_t level = 0; level < levels; ++level) {
      if (load.load[level] == 0) continue;
      cumulative += load.load[level];
      levels_.push_back(Level{
          cumulative,
          createForOneLevel(child, std::make_shared<const HostVector>(std::move(by_level[level])),
                            random)});
    }
  }

  HostSharedPtr chooseHost(const LbContext* context) override {
    if (levels_.empty()) return nullptr;
    const uint64_t r = (context && context->hash_key ? *context->hash_key : random_.next()) % 100;
    for (const Level& level : levels_) {
      if (r < level.cumulative_load) return level.lb->chooseHost(context);
    }
    return levels_.back().lb->chooseHost(context);
  }

 private:
  struct Level {
    uint32_t cumulative_load;
    std::unique_ptr<LoadBalancer> lb;
  };
  RandomGenerator& random_;
  std::vector<Level> levels_;
};

// common_lb_config.locality_weighted_lb_config: a locality first, by EDF on
// its effective weight (locality weight x min(1, overprovisioning x available
// share), as Envoy), then a host of that locality with the cluster's policy.
// Localities without a weight take no traffic. When the level as a whole is
// in panic, or no locality has an effective weight, it balances over all
// its hosts as if locality weighting were off.
class LocalityWeightedLoadBalancer : public LoadBalancer {
 public:
  LocalityWeightedLoadBalancer(const LbConfig& config, std::shared_ptr<const HostVector> hosts,
                               RandomGenerator& random) {
    LbConfig child = config;
    child.locality_weighted = false;
    child.hash_tables = nullptr;
    struct Group {
      const Locality* locality;
      uint32_t weight = 0;
      HostVector hosts;
      uint32_t available = 0;
    };
    std::vector<Group> groups;
    uint32_t available = 0;
    for (const auto& h : *hosts) {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const Group& g) { return *g.locality == h->locality(); });
      if (it == groups.end()) {
        groups.push_back(Group{&h->locality(), 0, {}, 0});
        it = std::prev(groups.end());
      }
      it->weight = std::max(it->weight, h->localityWeight());
      it->hosts.push_back(h);
      it->available += h->available();
      available += h->available();
    }
    const bool panic = hosts->empty() || 100.0 * available / static_cast<double>(hosts->size()) <
                                             config.panic_threshold_percent;
    if (!panic) {
      child.panic_threshold_percent = 0;  // within a locality: its available hosts only
      for (Group& g : groups) {
        const double share =
            std::min(1.0, config.overprovisioning_factor / 100.0 * g.available / g.hosts.size());
        const double effective = g.weight * share;
        if (effective <= 0) continue;
        edf_.add(localities_.size(), effective);
        localities_.push_back(createForOneLevel(
            child, std::make_shared<const HostVector>(std::move(g.hosts)), random));
      }
    }
    if (localities_.empty()) {
      child.panic_threshold_percent = config.panic_threshold_percent;
      fallback_ = createForOneLevel(child, std::move(hosts), random);
    }
  }

  HostSharedPtr chooseHost(const LbContext* context) override {
    if (fallback_) return fallback_->chooseHost(context);
    return localities_[edf_.pickAndReschedule()]->chooseHost(context);
  }

 private:
  std::vector<std::unique_ptr<LoadBalancer>> localities_;
  EdfScheduler edf_;
  std::unique_ptr<LoadBalancer> fallback_;
};

}  // namespace

double SlowStart::factor(std::chrono::nanoseconds elapsed) const {
  const double window_ns = static_cast<double>(window.count()) * 1e6;
  if (window_ns <= 0 || static_cast<double>(elapsed.count()) >= window_ns) return 1.0;
  const double t = std::max(0.0, static_cast<double>(elapsed.count())) / window_ns;
  return std::max(min_weight_percent / 100.0, std::pow(t, 1.0 / aggression));
}

PriorityLoad computePriorityLoad(const std::vector<uint32_t>& available,
                                 const std::vector<uint32_t>& total,
                                 uint32_t overprovisioning_factor, double panic_threshold_percent) {
  PriorityLoad out;
  out.load.assign(total.size(), 0);
  std::vector<uint32_t> health(total.size(), 0);
  uint32_t sum = 0;
  for (size_t i = 0; i < total.size(); ++i) {
    if (total[i] == 0) continue;
    const uint64_t h = static_cast<uint64_t>(overprovisioning_factor) * available[i] / total[i];
    health[i] = static_cast<uint32_t>(std::min<uint64_t>(100, h));
    sum += health[i];
  }
  const uint32_t normalized = std::min<uint32_t>(100, sum);
  out.panic = normalized < panic_threshold_percent;
  if (normalized == 0) {
    // Nothing available anywhere: the first level with hosts takes it all.
    for (size_t i = 0; i < total.size(); ++i) {
      if (total[i] > 0) {
        out.load[i] = 100;
        break;
      }
    }
    return out;
  }
  // Each level keeps what its health covers; when all levels together cover
  // less than 100%, the load is shared in proportion to their health.
  uint32_t remaining = 100;
  size_t first_healthy = total.size();
  for (size_t i = 0; i < total.size(); ++i) {
    out.load[i] = std::min<uint32_t>(remaining, health[i] * 100 / normalized);
    remaining -= out.load[i];
    if (health[i] > 0 && first_healthy == total.size()) first_healthy = i;
  }
  if (remaining > 0 && first_healthy < total.size()) out.load[first_healthy] += remaining;
  return out;
}

std::unique_ptr<HashTable> buildRingHash(const HostVector& hosts, uint64_t minimum_ring_size,
                                         uint64_t maximum_ring_size) {
  return std::make_unique<RingHashTable>(hosts, minimum_ring_size, maximum_ring_size);
}

std::unique_ptr<HashTable> buildMaglev(const HostVector& hosts, uint64_t table_size) {
  return std::make_unique<MaglevTable>(hosts, table_size);
}

std::shared_ptr<const HashTable> HashTableCache::get(
    const HostVector& hosts, const std::function<std::unique_ptr<HashTable>()>& build) {
  std::vector<const Host*> key;
  key.reserve(hosts.size());
  for (const auto& h : hosts) key.push_back(h.get());
  std::lock_guard lock(mutex_);
  if (table_ == nullptr || key != key_) {
    table_ = build();
    key_ = std::move(key);
  }
  return table_;
}

std::unique_ptr<LoadBalancer> LoadBalancer::create(const LbConfig& config,
                                                   std::shared_ptr<const HostVector> hosts,
                                                   RandomGenerator& random) {
  if (config.policy != LbPolicy::kClusterProvided &&
      std::any_of(hosts->begin(), hosts->end(),
                  [](const HostSharedPtr& h) { return h->priority() > 0; })) {
    return std::make_unique<PriorityLoadBalancer>(config, *hosts, random);
  }
  return createForOneLevel(config, std::move(hosts), random);
}

std::unique_ptr<LoadBalancer> createForOneLevel(const LbConfig& config,
                                                std::shared_ptr<const HostVector> hosts,
                                                RandomGenerator& random) {
  if (config.locality_weighted && config.policy != LbPolicy::kClusterProvided &&
      std::any_of(hosts->begin(), hosts->end(),
                  [](const HostSharedPtr& h) { return h->localityWeight() > 0; })) {
    return std::make_unique<LocalityWeightedLoadBalancer>(config, std::move(hosts), random);
  }
  const double panic = config.panic_threshold_percent;
  switch (config.policy) {
    case LbPolicy::kRoundRobin:
      return std::make_unique<RoundRobinLoadBalancer>(std::move(hosts), config, random);
    case LbPolicy::kLeastRequest:
      return std::make_unique<LeastRequestLoadBalancer>(std::move(hosts), config, random);
    case LbPolicy::kRandom:
      return std::make_unique<RandomLoadBalancer>(std::move(hosts), panic, random);
    case LbPolicy::kRingHash:
    case LbPolicy::kMaglev:
      return std::make_unique<HashLoadBalancer>(std::move(hosts), config, random);
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
