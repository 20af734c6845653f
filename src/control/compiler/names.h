#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sheave::control {

// The names Istio gives the Envoy resources it generates. Operators read
// them in config dumps, stats and access logs, so they are kept exactly.

inline constexpr std::string_view kVirtualOutboundListenerName = "virtualOutbound";
inline constexpr std::string_view kVirtualInboundListenerName = "virtualInbound";
inline constexpr std::string_view kPassthroughClusterName = "PassthroughCluster";
inline constexpr std::string_view kBlackHoleClusterName = "BlackHoleCluster";
inline constexpr std::string_view kInboundPassthroughClusterIpv4 = "InboundPassthroughClusterIpv4";
inline constexpr std::string_view kInboundPassthroughClusterIpv6 = "InboundPassthroughClusterIpv6";
// SDS resource names a sidecar asks for: its own certificate and the trust bundle.
inline constexpr std::string_view kSdsDefaultSecretName = "default";
inline constexpr std::string_view kSdsRootSecretName = "ROOTCA";
// The static cluster a sidecar's bootstrap points ADS at.
inline constexpr std::string_view kXdsClusterName = "xds-grpc";

// "outbound|9080|v1|reviews.default.svc.cluster.local"; subset may be empty.
inline std::string outboundClusterName(uint32_t port, std::string_view subset,
                                       std::string_view hostname) {
  std::string name = "outbound|";
  name += std::to_string(port);
  name += '|';
  name += subset;
  name += '|';
  name += hostname;
  return name;
}

// "inbound|9080||": the cluster for traffic to the workload's own port.
inline std::string inboundClusterName(uint32_t port) {
  return "inbound|" + std::to_string(port) + "||";
}

// "0.0.0.0_9080" / "240.240.0.3_3306": outbound listeners per port or per VIP and port.
inline std::string listenerName(std::string_view address, uint32_t port) {
  std::string name(address);
  name += '_';
  name += std::to_string(port);
  return name;
}

// Outbound HTTP listeners fetch their routes over RDS by port number ("9080").
inline std::string outboundRouteName(uint32_t port) { return std::to_string(port); }

}  // namespace sheave::control
