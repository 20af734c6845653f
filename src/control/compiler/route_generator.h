#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/compiler/mesh_config.h"
#include "control/compiler/proxy_context.h"
#include "control/model/destination_rule.h"
#include "control/model/resource.h"
#include "control/model/sidecar.h"
#include "control/model/virtual_service.h"
#include "control/registry/registry_snapshot.h"
#include "envoy/config/route/v3/route.pb.h"

namespace sheave::control {

// Everything one outbound RDS resource ("9080") is compiled from. The caller
// (the RDS generator, from a PushContext and the proxy's SidecarScope) has
// already decided what the proxy may see; this builder only maps it.
struct OutboundRouteInputs {
  // Namespace, labels and DNS domain: short names in Host headers, and the
  // sourceLabels/sourceNamespace conditions of VirtualService matches.
  const ProxyContext* proxy = nullptr;
  const MeshConfig* mesh = nullptr;
  // Resolves destination hosts relative to the VirtualService's namespace.
  const RegistrySnapshot* registry = nullptr;
  // The listener port this route configuration serves.
  uint32_t port = 0;
  // Visible services that have an HTTP (or undeclared) port `port`, by hostname.
  std::vector<const Service*> services;
  // Visible VirtualServices bound to the "mesh" gateway, in precedence order.
  std::vector<const Resource<VirtualService>*> virtual_services;
  // The DestinationRule that applies to an FQDN for this proxy (consistent
  // hashing, subset checks); may be empty.
  std::function<const Resource<DestinationRule>*(std::string_view host)> destination_rule;
  OutboundTrafficPolicyMode outbound_policy = OutboundTrafficPolicyMode::kAllowAny;
  // Proxyless gRPC clients match the Host header with its port and read
  // max_stream_duration instead of max_grpc_timeout, as istiod serves them.
  bool proxyless_grpc = false;
  // Checks an RE2 pattern (uri/header/query regex matches, uriRegexRewrite).
  // A VirtualService with a bad pattern is left out with an error, because
  // one bad regex would make the proxy reject the whole route configuration.
  // Empty: patterns are not checked here.
  std::function<Status(std::string_view pattern)> check_regex;
  // Router proxies (gateways): the "<namespace>/<name>" of the Gateways whose
  // servers on `port` the proxy runs, and the hosts those servers admit.
  // When set, `virtual_services` are the ones bound to those Gateways and
  // the configuration is "http.<port>": a virtual host per admitted
  // VirtualService host, routes whose match names no gateway or one of
  // these, and no catch-all (an unknown Host gets Envoy's 404).
  std::vector<std::string> gateway_keys;
  std::vector<std::string> gateway_hosts;
};

// The outbound route configuration for one HTTP listener port: a virtual
// host "<host>:<port>" per visible service (its VirtualService's routes, or
// Istio's "default" route), then "allow_any" (PassthroughCluster) or
// "block_all" (502) for every other Host. Problems in a VirtualService
// (unknown destination host or subset, unsupported delegate, a duplicate
// host, a bad regex) are appended to errors when it is not null; the output
// is still a complete, loadable configuration.
envoy::config::route::v3::RouteConfiguration buildOutboundRouteConfiguration(
    const OutboundRouteInputs& inputs, std::vector<ResourceError>* errors);

// The inline route configuration of the inbound HTTP connection manager for
// one workload port: named after the inbound cluster ("inbound|9080||"), one
// "inbound|http|<service port>" virtual host matching every Host.
envoy::config::route::v3::RouteConfiguration buildInboundRouteConfiguration(
    const ProxyContext& proxy, uint32_t port);

}  // namespace sheave::control
