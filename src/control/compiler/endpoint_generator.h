#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "control/compiler/proxy_context.h"
#include "control/compiler/push_context.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"

namespace sheave::control {

// EDS: the ClusterLoadAssignment of each named cluster, in the order asked
// (empty names: every EDS cluster the proxy gets from generateClusters(),
// sorted by name). A name that is not an outbound cluster of a service this
// proxy can see, or names a subset no DestinationRule defines, gets an empty
// assignment, because Envoy waits for one per name it asked for.
std::vector<envoy::config::endpoint::v3::ClusterLoadAssignment> generateEndpoints(
    const ProxyContext& proxy, const PushContext& push,
    const std::vector<std::string>& cluster_names);

// The endpoints of one service port whose labels contain subset_labels,
// grouped by locality ("region/zone/subzone"), with Istio's endpoint
// metadata. Also used for the inline load_assignment of DNS clusters.
envoy::config::endpoint::v3::ClusterLoadAssignment buildLoadAssignment(
    std::string_view cluster_name, const RegistrySnapshot& registry, const Service& service,
    uint32_t service_port, const std::map<std::string, std::string>& subset_labels);

// Parts of "outbound|<port>|<subset>|<host>"; false for any other name.
struct OutboundClusterKey {
  uint32_t port = 0;
  std::string subset;
  std::string hostname;
};
bool parseOutboundClusterName(std::string_view name, OutboundClusterKey* key);

}  // namespace sheave::control
