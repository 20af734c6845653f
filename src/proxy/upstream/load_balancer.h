#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/random.h"
#include "proxy/upstream/host.h"

namespace sheave::upstream {

// kClusterProvided: the cluster picks (ORIGINAL_DST clusters).
enum class LbPolicy { kRoundRobin, kLeastRequest, kRandom, kRingHash, kMaglev, kClusterProvided };

// What a pick may take into account: hosts already tried by this request
// (Envoy's previous_hosts retry predicate), and the downstream connection's
// local address, which after original_dst is its original destination
// (ORIGINAL_DST clusters connect there).
struct LbContext {
  const std::vector<const Host*>* attempted_hosts = nullptr;
  uint32_t host_selection_retry_max_attempts = 1;
  const Address* downstream_local_address = nullptr;
  // The request's hash from the route's hash_policy, for RING_HASH and MAGLEV
  // (which pick at random without one).
  std::optional<uint64_t> hash_key;
};

// A consistent-hash lookup structure (ketama ring or Maglev table) over one
// list of hosts: pick() returns an index into that list. Immutable, so the
// workers of a cluster share one.
class HashTable {
 public:
  virtual ~HashTable() = default;
  // `attempt` > 0 (a retry that must avoid earlier hosts) moves the pick as
  // Envoy does: to a later ring entry, or to a mutated Maglev hash.
  virtual uint32_t pick(uint64_t hash, uint32_t attempt) const = 0;
};

// Where the workers of one cluster find the hash table for their host list:
// the first worker to see a list builds it, the others reuse it (a Maglev
// table is 65537 entries; one per cluster, not one per worker).
class HashTableCache {
 public:
  std::shared_ptr<const HashTable> get(const HostVector& hosts,
                                       const std::function<std::unique_ptr<HashTable>()>& build);

 private:
  std::mutex mutex_;
  std::vector<const Host*> key_;
  std::shared_ptr<const HashTable> table_;
};

// slow_start_config: a host new to the cluster (or back from failed health
// checks) ramps up over `window`: its weight is scaled by
// max(min_weight_percent / 100, (time in window / window) ^ (1 / aggression)).
struct SlowStart {
  std::chrono::milliseconds window{0};
  double aggression = 1.0;
  double min_weight_percent = 10.0;
  // The factor for a host `elapsed` into its window (1 once it is through).
  double factor(std::chrono::nanoseconds elapsed) const;
};

struct LbConfig {
  LbPolicy policy = LbPolicy::kRoundRobin;
  // common_lb_config.healthy_panic_threshold: below this share of available
  // hosts, balance over all of them.
  double panic_threshold_percent = 50.0;
  uint32_t least_request_choice_count = 2;
  // ring_hash_lb_config (Envoy's defaults).
  uint64_t minimum_ring_size = 1024;
  uint64_t maximum_ring_size = 8 * 1024 * 1024;
  // maglev_lb_config.table_size: a prime.
  uint64_t maglev_table_size = 65537;
  // Shared by a cluster's workers; null: each balancer builds its own table.
  HashTableCache* hash_tables = nullptr;
  // Priority levels: a level's health (its share of available hosts) times
  // this percentage, capped at 100, is the load it keeps; the rest spills to
  // the next level (Envoy's overprovisioning factor, default 140).
  uint32_t overprovisioning_factor = 140;
  // ROUND_ROBIN / LEAST_REQUEST slow_start_config.
  std::optional<SlowStart> slow_start;
  // common_lb_config.locality_weighted_lb_config: within a priority level,
  // pick a locality by its effective weight first (locality weight x
  // min(1, overprovisioning x available share)), then a host in it.
  bool locality_weighted = false;
  // The clock slow start reads (tests set it); null: steady_clock.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

// The share of requests (percent, summing to 100) each priority level gets,
// and whether the cluster as a whole is in panic (every level balances over
// all its hosts). `available` and `total` are per level (index = priority).
struct PriorityLoad {
  std::vector<uint32_t> load;
  bool panic = false;
};
PriorityLoad computePriorityLoad(const std::vector<uint32_t>& available,
                                 const std::vector<uint32_t>& total,
                                 uint32_t overprovisioning_factor, double panic_threshold_percent);

// The hash tables themselves, for tests and benchmarks.
std::unique_ptr<HashTable> buildRingHash(const HostVector& hosts, uint64_t minimum_ring_size,
                                         uint64_t maximum_ring_size);
std::unique_ptr<HashTable> buildMaglev(const HostVector& hosts, uint64_t table_size);

// Picks a host from one immutable host list. Each worker owns its own
// instance (state such as the round-robin cursor is per worker; the hosts'
// active-request counts are shared atomics).
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // nullptr when there is no host to pick (no_healthy_upstream).
  virtual HostSharedPtr chooseHost(const LbContext* context) = 0;

  // Builds the balancer for `config.policy` over `hosts`. Hosts marked
  // unhealthy are skipped unless fewer than `panic_threshold_percent` of them
  // are healthy, in which case all hosts are used (Envoy's panic mode).
  // `hosts` is shared, not copied, while every host is healthy.
  static std::unique_ptr<LoadBalancer> create(const LbConfig& config,
                                              std::shared_ptr<const HostVector> hosts,
                                              RandomGenerator& random);
};

// ORIGINAL_DST clusters: the host is the downstream connection's original
// destination, made on first use and kept (with its stats and pooled
// connections) while it is picked again within cleanup_interval. One per
// worker, like every balancer.
class OriginalDstLoadBalancer : public LoadBalancer {
 public:
  // port_override: original_dst_lb_config.upstream_port_override (0: keep the port).
  explicit OriginalDstLoadBalancer(uint16_t port_override = 0) : port_override_(port_override) {}
  // nullptr without a downstream local address (no downstream connection).
  HostSharedPtr chooseHost(const LbContext* context) override;
  // Forgets the hosts not picked since the previous call.
  void cleanup();
  bool has(const Host* host) const;
  size_t size() const { return hosts_.size(); }

 private:
  struct Entry {
    HostSharedPtr host;
    bool used = true;
  };
  uint16_t port_override_;
  std::unordered_map<std::string, Entry> hosts_;  // by "ip:port"
};

}  // namespace sheave::upstream
