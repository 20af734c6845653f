#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/model/destination_rule.h"
#include "control/model/gateway.h"
#include "control/model/virtual_service.h"
#include "control/model/workload_selector.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// networking.istio.io Sidecar, field for field with Istio's API.

struct SidecarPort {
  uint32_t number = 0;
  std::string protocol;
  std::string name;
  uint32_t target_port = 0;
};

enum class CaptureMode { kDefault, kIptables, kNone };
template <>
struct EnumTraits<CaptureMode> {
  static constexpr std::array<std::pair<std::string_view, CaptureMode>, 3> kNames{{
      {"DEFAULT", CaptureMode::kDefault},
      {"IPTABLES", CaptureMode::kIptables},
      {"NONE", CaptureMode::kNone},
  }};
};

struct IstioIngressListener {
  std::optional<SidecarPort> port;
  std::string bind;
  CaptureMode capture_mode = CaptureMode::kDefault;
  std::string default_endpoint;
  std::optional<ServerTLSSettings> tls;
  std::optional<ConnectionPoolSettings> connection_pool;
};

struct IstioEgressListener {
  std::optional<SidecarPort> port;
  std::string bind;
  CaptureMode capture_mode = CaptureMode::kDefault;
  std::vector<std::string> hosts;  // "namespace/dnsName": "./*", "ns/*", "*/host"
};

enum class OutboundTrafficPolicyMode { kRegistryOnly, kAllowAny };
template <>
struct EnumTraits<OutboundTrafficPolicyMode> {
  static constexpr std::array<std::pair<std::string_view, OutboundTrafficPolicyMode>, 2> kNames{{
      {"REGISTRY_ONLY", OutboundTrafficPolicyMode::kRegistryOnly},
      {"ALLOW_ANY", OutboundTrafficPolicyMode::kAllowAny},
  }};
};

struct OutboundTrafficPolicy {
  OutboundTrafficPolicyMode mode = OutboundTrafficPolicyMode::kRegistryOnly;
  std::optional<Destination> egress_proxy;
};

struct Sidecar {
  std::optional<NetworkingWorkloadSelector> workload_selector;
  std::vector<IstioIngressListener> ingress;
  std::vector<IstioEgressListener> egress;
  std::optional<ConnectionPoolSettings> inbound_connection_pool;
  std::optional<OutboundTrafficPolicy> outbound_traffic_policy;
};

}  // namespace sheave::control
