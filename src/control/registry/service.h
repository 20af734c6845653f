#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/source_location.h"
#include "control/registry/protocol.h"

namespace sheave::control {

// How a client reaches a service's endpoints, Istio's model.Resolution.
enum class Resolution {
  kClientSideLb,   // EDS: the proxy balances over the listed endpoints
                   // (Kubernetes Service, ServiceEntry STATIC)
  kDnsLb,          // STRICT_DNS: every address a name resolves to (ServiceEntry DNS,
                   // ExternalName)
  kDnsRoundRobin,  // LOGICAL_DNS: one address at a time (ServiceEntry DNS_ROUND_ROBIN)
  kPassthrough,    // ORIGINAL_DST: the caller's destination as is (ServiceEntry
                   // NONE, headless Service)
};
std::string_view resolutionName(Resolution resolution);

// Where a service came from.
enum class ServiceOrigin { kKubernetesService, kServiceEntry };

struct ServicePortInfo {
  std::string name;  // may be empty for a single unnamed Kubernetes port
  uint32_t port = 0;
  Protocol protocol = Protocol::kUnsupported;
  // Where endpoints listen when nothing maps this port by name: the
  // Service's numeric targetPort or the ServiceEntry's targetPort; 0 means
  // "same as port". target_port_name is a named Kubernetes targetPort.
  uint32_t target_port = 0;
  std::string target_port_name;

  bool operator==(const ServicePortInfo&) const = default;
};

// One service, named by its FQDN. A ServiceEntry with several hosts becomes
// several services, one per host, as in Istio.
struct Service {
  std::string hostname;
  std::string namespace_name;
  std::string resource_name;  // the Service or ServiceEntry that defined it
  ServiceOrigin origin = ServiceOrigin::kKubernetesService;
  SourceLocation source;

  // The address clients use: an explicit one (clusterIP, first ServiceEntry
  // address) or an allocated VIP; empty when there is none (headless, NONE
  // resolution without addresses, wildcard hosts, VIP range exhausted).
  std::string vip;
  bool vip_allocated = false;
  // Every declared address, as written (IPs, ServiceEntry CIDRs), in order.
  std::vector<std::string> addresses;

  std::vector<ServicePortInfo> ports;  // sorted by port number
  Resolution resolution = Resolution::kClientSideLb;
  bool mesh_external = false;
  bool headless = false;
  std::map<std::string, std::string> labels;  // the defining resource's labels
  std::vector<std::string> export_to;         // empty: exported everywhere
  std::vector<std::string> subject_alt_names;

  const ServicePortInfo* findPort(uint32_t port) const;
  const ServicePortInfo* findPortByName(std::string_view name) const;

  // Equal definitions; `source` is left out so that moving a resource within
  // or between files is not a change.
  bool operator==(const Service& other) const;
};

// One instance of one service port.
struct Endpoint {
  std::string address;        // IP, or a DNS name for DNS resolution, or unix:///path
  uint32_t port = 0;          // where the workload listens (0 for a unix socket)
  uint32_t service_port = 0;  // the ServicePortInfo::port this instance serves
  std::string service_port_name;

  std::string namespace_name;
  std::string workload_name;  // the WorkloadEntry's name; empty for inline endpoints
  std::map<std::string, std::string> labels;
  std::string network;
  std::string locality;
  uint32_t weight = 1;          // an unset (0) weight is 1, as Envoy needs >= 1
  std::string service_account;  // empty only for mesh-external endpoints
  std::string identity;         // spiffe://..., empty when service_account is

  bool operator==(const Endpoint&) const = default;
};

}  // namespace sheave::control
