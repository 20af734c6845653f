#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/compiler/mesh_config.h"
#include "control/compiler/proxy_context.h"
#include "control/model/config_set.h"
#include "envoy/config/listener/v3/listener.pb.h"

namespace sheave::control {

// The Gateways a router proxy runs: those whose selector matches the proxy's
// labels, in any namespace (Istio's default), in config order.
std::vector<const Resource<Gateway>*> gatewaysForProxy(const ProxyContext& proxy,
                                                       const ConfigSet& config);

// "<namespace>/<name>" of a Gateway, the form VirtualServices may use.
std::string gatewayKey(const Resource<Gateway>& gateway);

// Whether a VirtualService's `gateways` (or an HTTP match's) names one of
// `keys`; a short name is in the VirtualService's namespace.
bool namesGateway(const std::vector<std::string>& gateways, std::string_view vs_namespace,
                  const std::vector<std::string>& keys);

// The VirtualServices bound to any of the gateways, in config order.
std::vector<const Resource<VirtualService>*> gatewayVirtualServices(
    const ConfigSet& config, const std::vector<const Resource<Gateway>*>& gateways);

// The hosts the gateways' servers on `port` admit ("*", "bookinfo.example.com";
// a "namespace/" prefix is dropped).
std::vector<std::string> gatewayServerHosts(const std::vector<const Resource<Gateway>*>& gateways,
                                            uint32_t port);

// Route configuration name of a gateway's HTTP server port, as Istio: "http.8080".
std::string gatewayRouteName(uint32_t port);
// The port in a gateway route name, 0 when `name` is not one.
uint32_t gatewayRoutePort(std::string_view name);

// The listeners of a router proxy (LDS), sorted by name: one "0.0.0.0_<port>"
// listener per server port (address: the server's `bind`, else 0.0.0.0) with
// an HTTP connection manager reading RDS "http.<port>". Servers with TLS
// settings or a non-HTTP protocol are reported in `errors` (may be null) and
// left out; so is a second server on a port with a different bind.
std::vector<envoy::config::listener::v3::Listener> buildGatewayListeners(
    const std::vector<const Resource<Gateway>*>& gateways, const MeshConfig& mesh,
    std::vector<ResourceError>* errors);

}  // namespace sheave::control
