#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/compiler/proxy_context.h"
#include "control/compiler/push_context.h"
#include "envoy/config/cluster/v3/cluster.pb.h"

namespace sheave::control {

// CDS: every cluster Istio's sidecar would get, sorted by name:
// outbound|<port>||<host> per visible service port and
// outbound|<port>|<subset>|<host> per DestinationRule subset, inbound|<port>||
// per workload port (STATIC to 127.0.0.1:<port>), and BlackHoleCluster,
// PassthroughCluster, InboundPassthroughClusterIpv4.
std::vector<envoy::config::cluster::v3::Cluster> generateClusters(const ProxyContext& proxy,
                                                                  const PushContext& push);

// The names of the EDS clusters among generateClusters()' output, sorted
// (what a wildcard EDS request means).
std::vector<std::string> edsClusterNames(const ProxyContext& proxy, const PushContext& push);

// The traffic policy that applies to one cluster after Istio's merge rules
// (MergeTrafficPolicy): the rule's top-level policy, its port-level settings
// for port replacing the top-level fields as a whole, then the subset's
// policy field by field, then the subset's port-level settings.
struct EffectiveTrafficPolicy {
  std::optional<LoadBalancerSettings> load_balancer;
  std::optional<ConnectionPoolSettings> connection_pool;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<ClientTLSSettings> tls;
};
EffectiveTrafficPolicy effectiveTrafficPolicy(const DestinationRule* rule, uint32_t port,
                                              const Subset* subset);

}  // namespace sheave::control
