#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sheave::control {

// The parts of Kubernetes core/v1 Service and Namespace the mesh reads.

// targetPort is an IntOrString: a number, or the name of a container port.
struct IntOrString {
  int32_t number = 0;
  std::string name;  // set instead of number for a named port
  bool isSet() const { return number != 0 || !name.empty(); }
};

struct KubernetesServicePort {
  std::string name;
  std::string protocol = "TCP";  // TCP | UDP | SCTP
  std::string app_protocol;
  int32_t port = 0;
  IntOrString target_port;  // unset: same as port
  int32_t node_port = 0;
};

// spec of a v1 Service.
struct KubernetesService {
  std::map<std::string, std::string> selector;
  std::vector<KubernetesServicePort> ports;
  std::string cluster_ip;  // "clusterIP"; "None" for a headless service
  std::vector<std::string> cluster_ips;
  std::string type;  // ClusterIP (default) | NodePort | LoadBalancer | ExternalName
  std::string external_name;
};

// A v1 Namespace: everything the mesh reads (labels) is in its metadata.
struct KubernetesNamespace {};

}  // namespace sheave::control
