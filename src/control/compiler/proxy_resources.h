#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/compiler/proxy_context.h"
#include "control/compiler/push_context.h"
#include "control/model/resource.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"

namespace sheave::control {

// The listeners (LDS) of one proxy: a sidecar's virtualOutbound/virtualInbound
// and per-port listeners with its inbound security, or a router's Gateway
// listeners. What sheave-control serves and what `sheave explain` walks.
std::vector<envoy::config::listener::v3::Listener> generateListeners(
    const ProxyContext& proxy, const PushContext& push, std::vector<ResourceError>* errors);

// The route configurations (RDS) named `names` ("9080" for a sidecar port,
// "http.8080" for a gateway port); a sidecar with no names gets one per HTTP
// port of the services in its scope.
std::vector<envoy::config::route::v3::RouteConfiguration> generateRoutes(
    const ProxyContext& proxy, const PushContext& push, const std::vector<std::string>& names,
    std::vector<ResourceError>* errors);

// The route configuration names ("<port>") RDS serves for a sidecar: the HTTP
// and undeclared ports of the services it can see, ascending.
std::vector<uint32_t> httpRoutePorts(const SidecarScope& scope);

// RE2's verdict on a pattern, as the proxy will compile it.
Status checkRegex(std::string_view pattern);

}  // namespace sheave::control
