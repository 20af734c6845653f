#pragma once

#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/random.h"
#include "proxy/upstream/host.h"

namespace sheave::upstream {

// kClusterProvided: the cluster picks (ORIGINAL_DST clusters).
enum class LbPolicy { kRoundRobin, kLeastRequest, kRandom, kClusterProvided };

// What a pick may take into account: hosts already tried by this request
// (Envoy's previous_hosts retry predicate), and the downstream connection's
// local address, which after original_dst is its original destination
// (ORIGINAL_DST clusters connect there).
struct LbContext {
  const std::vector<const Host*>* attempted_hosts = nullptr;
  uint32_t host_selection_retry_max_attempts = 1;
  const Address* downstream_local_address = nullptr;
};

// Picks a host from one immutable host list. Each worker owns its own
// instance (state such as the round-robin cursor is per worker; the hosts'
// active-request counts are shared atomics).
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // nullptr when there is no host to pick (no_healthy_upstream).
  virtual HostSharedPtr chooseHost(const LbContext* context) = 0;

  // Builds the balancer for `policy` over `hosts`. Hosts marked unhealthy are
  // skipped unless fewer than `panic_threshold_percent` of them are healthy,
  // in which case all hosts are used (Envoy's panic mode).
  // `hosts` is shared, not copied, while every host is healthy.
  static std::unique_ptr<LoadBalancer> create(LbPolicy policy,
                                              std::shared_ptr<const HostVector> hosts,
                                              double panic_threshold_percent,
                                              uint32_t least_request_choice_count,
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
