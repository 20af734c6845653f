#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/registry/registry_snapshot.h"

namespace envoy::config::core::v3 {
class Node;
}

namespace sheave::control {

// One connected proxy as the compiler sees it (Istio's model.Proxy): what it
// is, where it runs, and which workload it fronts.
struct ProxyContext {
  enum class Type { kSidecar, kRouter };
  Type type = Type::kSidecar;
  std::string id;  // the node id as sent:
                   // "sidecar~198.18.0.5~productpage-v1.default~default.svc.cluster.local"
  std::vector<std::string> ips;  // the first one is the proxy's address
  std::string pod_name;          // "productpage-v1" (the id's third part before the namespace)
  std::string namespace_name;    // "default"
  std::string dns_domain;        // "default.svc.cluster.local"
  std::map<std::string, std::string> labels;
  std::string service_account;  // "default" when unknown
  std::string workload_name;    // the WorkloadEntry this proxy fronts, empty when none matched
  std::string identity;         // spiffe://<trust-domain>/ns/<ns>/sa/<sa>

  // The service ports this proxy's workload serves (inbound listeners and
  // inbound clusters come from these), filled by attachWorkload().
  struct ServiceInstance {
    const Service* service = nullptr;  // points into the snapshot passed to attachWorkload()
    uint32_t service_port = 0;
    std::string port_name;
    Protocol protocol = Protocol::kUnsupported;
    uint32_t target_port = 0;  // where the workload listens
  };
  std::vector<ServiceInstance> service_instances;

  // Parses Istio's node id "<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<suffix>"
  // (type "sidecar" or "router") and the node metadata Istio's agent sends
  // (NAMESPACE, LABELS, SERVICE_ACCOUNT, WORKLOAD_NAME, INSTANCE_IPS), which
  // wins over the id where both are present. A malformed id is an error
  // that says which part is wrong.
  static Result<ProxyContext> fromNode(const envoy::config::core::v3::Node& node,
                                       std::string_view trust_domain);

  // Finds the registered workload at this proxy's IP in its namespace and
  // takes its labels, service account and service instances from the
  // registry (what the control plane knows beats what a proxy claims). A
  // proxy that matches no workload keeps what it sent and has no service
  // instances: it still gets its namespace's outbound configuration.
  void attachWorkload(const RegistrySnapshot& registry, std::string_view trust_domain);

  const std::string& ip() const {
    static const std::string kNone;
    return ips.empty() ? kNone : ips.front();
  }
};

}  // namespace sheave::control
