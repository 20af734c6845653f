#pragma once

#include <memory>
#include <queue>
#include <vector>

#include "common/random.h"
#include "proxy/upstream/host.h"

namespace sheave::upstream {

enum class LbPolicy { kRoundRobin, kLeastRequest, kRandom };

// What a pick may take into account: hosts already tried by this request
// (Envoy's previous_hosts retry predicate).
struct LbContext {
  const std::vector<const Host*>* attempted_hosts = nullptr;
  uint32_t host_selection_retry_max_attempts = 1;
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

}  // namespace sheave::upstream
