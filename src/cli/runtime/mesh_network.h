#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace sheave::cli {

// Where the local mesh lives on this machine.
struct NetworkPlan {
  std::string bridge = "sheave0";
  std::string cidr = "198.18.0.0/15";       // the bridge takes the first host address
  std::string vip_cidr = "240.240.0.0/16";  // routed into each namespace's eth0, nowhere else
  std::string netns_prefix = "sheave-";     // every namespace we create starts with this
};

struct HostsEntry {
  std::string address;
  std::vector<std::string> names;
};

struct WorkloadNetworkSpec {
  std::string netns;              // full name; starts with the plan's netns_prefix
  std::string address;            // inside the plan's cidr, not the bridge's
  std::vector<HostsEntry> hosts;  // /etc/netns/<netns>/hosts, after the localhost lines
};

// Whether this process may build the mesh network: root (CAP_NET_ADMIN),
// `ip` and `iptables` installed. The error is one sentence saying what to do.
Status checkNetworkPrerequisites();

// The host end of a workload's veth pair: at most 15 characters, stable per
// namespace name ("shv" + 8 hex digits).
std::string vethName(const std::string& netns);

// The bridge and the namespaces hung off it. Nothing is routed, forwarded or
// NATed off the bridge, and namespaces get no default route: mesh traffic
// never leaves the machine.
class MeshNetwork {
 public:
  // Creates the bridge with its address, up. Fails when it already exists or
  // when the range overlaps an address or route already on the machine.
  static Result<MeshNetwork> create(NetworkPlan plan);

  const NetworkPlan& plan() const { return plan_; }
  std::string gatewayAddress() const { return gateway_; }
  int prefixLength() const { return prefix_length_; }

  // Namespace + veth pair (host end on the bridge, the namespace's end named
  // eth0 with the address), lo up, a route for the VIP range via eth0, and
  // the hosts file.
  Status addWorkload(const WorkloadNetworkSpec& spec);
  // Deletes the namespace (and with it its veth pair) and /etc/netns/<netns>.
  Status removeWorkload(const std::string& netns);
  // Every workload added, then the bridge.
  Status destroy();

 private:
  NetworkPlan plan_;
  std::string gateway_;
  int prefix_length_ = 0;
  std::vector<std::pair<std::string, std::string>> workloads_;  // netns, address
};

// Checks a spec against the plan (name prefix, address inside the range and
// not the bridge's). Pure; addWorkload calls it.
Status validateWorkloadSpec(const NetworkPlan& plan, const WorkloadNetworkSpec& spec);

}  // namespace sheave::cli
