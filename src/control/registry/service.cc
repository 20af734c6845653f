#include "control/registry/service.h"

#include <tuple>

namespace sheave::control {

std::string_view resolutionName(Resolution resolution) {
  switch (resolution) {
    case Resolution::kClientSideLb:
      return "ClientSideLB";
    case Resolution::kDnsLb:
      return "DNSLB";
    case Resolution::kDnsRoundRobin:
      return "DNSRoundRobinLB";
    case Resolution::kPassthrough:
      return "Passthrough";
  }
  return "ClientSideLB";
}

const ServicePortInfo* Service::findPort(uint32_t port) const {
  for (const ServicePortInfo& p : ports) {
    if (p.port == port) return &p;
  }
  return nullptr;
}

const ServicePortInfo* Service::findPortByName(std::string_view name) const {
  for (const ServicePortInfo& p : ports) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool Service::operator==(const Service& other) const {
  auto fields = [](const Service& s) {
    return std::tie(s.hostname, s.namespace_name, s.resource_name, s.origin, s.vip, s.vip_allocated,
                    s.addresses, s.ports, s.resolution, s.mesh_external, s.headless, s.labels,
                    s.export_to, s.subject_alt_names);
  };
  return fields(*this) == fields(other);
}

}  // namespace sheave::control
