#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/runtime/mesh_network.h"
#include "common/result.h"
#include "control/model/config_set.h"

namespace sheave::cli {

// One replica of a LocalWorkload as `sheave up` runs it: its own network
// namespace and address, the WorkloadEntry it is registered as, and the proxy
// node id that names that WorkloadEntry.
struct ReplicaPlan {
  std::string workload;        // the LocalWorkload's name
  std::string namespace_name;  // its (mesh) namespace
  uint32_t index = 0;
  std::string name;     // WorkloadEntry name: "<workload>-<index>"
  std::string netns;    // "sheave-<namespace>-<name>"
  std::string address;  // inside the mesh network (198.18.0.0/15)
  std::string service_account;
  std::string identity;  // spiffe://<trust domain>/ns/<namespace>/sa/<sa>
  std::string node_id;   // sidecar~<address>~<name>.<ns>~<ns>.svc.<suffix>
  control::LocalWorkload spec;
  std::vector<HostsEntry> hosts;  // service names -> VIPs, for /etc/hosts
};

// The ingress gateway: a router sheave-proxy on the host for the Gateways
// that select `istio: ingressgateway`, registered as the WorkloadEntry
// istio-system/istio-ingressgateway at the bridge's address.
struct GatewayPlan {
  std::string name = "istio-ingressgateway";
  std::string namespace_name = "istio-system";
  std::string service_account = "istio-ingressgateway-service-account";
  std::string address;
  std::string identity;
  std::string node_id;
  std::vector<uint32_t> ports;     // the Gateways' server ports
  std::vector<std::string> binds;  // the servers' bind addresses ("0.0.0.0" when none)
};

struct PlanOptions {
  NetworkPlan network;
  std::string trust_domain = "cluster.local";
  std::string domain_suffix = "cluster.local";
};

struct MeshPlan {
  std::vector<ReplicaPlan> replicas;  // sorted by (namespace, workload, index)
  std::optional<GatewayPlan> gateway;
  // WorkloadEntries for every replica (and the gateway with its Service):
  // sheave-control reads this next to the user's directory.
  std::string generated_yaml;
  std::vector<std::string> warnings;  // things that will not work as written
};

// Decides addresses, names and identities for a configuration. Fails with one
// sentence when there is nothing to run or the network is too small.
Result<MeshPlan> planMesh(const control::ConfigSet& config, const PlanOptions& options);

}  // namespace sheave::cli
