#include "control/compiler/proxy_resources.h"

#include <re2/re2.h>

#include <set>

#include "control/compiler/gateway_generator.h"
#include "control/compiler/listener_generator.h"
#include "control/compiler/route_generator.h"
#include "control/registry/protocol.h"

namespace sheave::control {

namespace {

bool parsePort(std::string_view name, uint32_t* port) {
  if (name.empty() || name.size() > 5) return false;
  uint32_t value = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535 || (name.size() > 1 && name.front() == '0')) return false;
  *port = value;
  return true;
}

}  // namespace

Status checkRegex(std::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re.ok())
    return invalidArgument("invalid RE2 pattern \"" + std::string(pattern) + "\": " + re.error());
  return okStatus();
}

std::vector<uint32_t> httpRoutePorts(const SidecarScope& scope) {
  std::set<uint32_t> ports;
  for (const Service* service : scope.services()) {
    for (const ServicePortInfo& port : service->ports) {
      if (isHttp(port.protocol) || port.protocol == Protocol::kUnsupported) ports.insert(port.port);
    }
  }
  return {ports.begin(), ports.end()};
}

std::vector<envoy::config::listener::v3::Listener> generateListeners(
    const ProxyContext& proxy, const PushContext& push, std::vector<ResourceError>* errors) {
  if (proxy.type == ProxyContext::Type::kRouter) {
    return buildGatewayListeners(gatewaysForProxy(proxy, push.config()), push.mesh(), errors);
  }
  auto scope = push.scopeFor(proxy);
  ListenerInputs inputs;
  inputs.proxy = &proxy;
  inputs.mesh = &push.mesh();
  inputs.services = scope->services();
  inputs.outbound_policy = scope->outboundTrafficPolicy();
  if (const Resource<Sidecar>* sidecar = scope->sidecar()) {
    inputs.sidecar = &sidecar->spec;
    inputs.sidecar_name = sidecar->metadata.name;
    inputs.sidecar_namespace = sidecar->metadata.namespace_name;
  }
  // PeerAuthentication, AuthorizationPolicy and RequestAuthentication for this workload.
  // jwksUri is not fetched yet: such issuers get an empty key set (their tokens fail).
  setInboundSecurity(&inputs, push.config(), nullptr, errors);
  return buildSidecarListeners(inputs, errors);
}

std::vector<envoy::config::route::v3::RouteConfiguration> generateRoutes(
    const ProxyContext& proxy, const PushContext& push, const std::vector<std::string>& names,
    std::vector<ResourceError>* errors) {
  std::vector<envoy::config::route::v3::RouteConfiguration> out;
  auto scope = push.scopeFor(proxy);
  if (proxy.type == ProxyContext::Type::kRouter) {
    auto gateways = gatewaysForProxy(proxy, push.config());
    auto virtual_services = gatewayVirtualServices(push.config(), gateways);
    for (const std::string& name : names) {
      uint32_t port = gatewayRoutePort(name);
      if (port == 0 || gateways.empty()) continue;
      OutboundRouteInputs inputs;
      inputs.proxy = &proxy;
      inputs.mesh = &push.mesh();
      inputs.registry = &push.registry();
      inputs.port = port;
      inputs.services = scope->services();
      inputs.virtual_services = virtual_services;
      inputs.destination_rule = [scope](std::string_view host) {
        return scope->destinationRule(host);
      };
      inputs.check_regex = checkRegex;
      for (const auto* g : gateways) inputs.gateway_keys.push_back(gatewayKey(*g));
      inputs.gateway_hosts = gatewayServerHosts(gateways, port);
      out.push_back(buildOutboundRouteConfiguration(inputs, errors));
    }
    return out;
  }
  std::vector<uint32_t> ports;
  if (names.empty()) {
    ports = httpRoutePorts(*scope);
  } else {
    for (const std::string& name : names) {
      uint32_t port = 0;
      if (parsePort(name, &port)) ports.push_back(port);
    }
  }
  for (uint32_t port : ports) {
    OutboundRouteInputs inputs;
    inputs.proxy = &proxy;
    inputs.mesh = &push.mesh();
    inputs.registry = &push.registry();
    inputs.port = port;
    for (const Service* service : scope->services()) {
      const ServicePortInfo* info = service->findPort(port);
      if (info != nullptr && (isHttp(info->protocol) || info->protocol == Protocol::kUnsupported)) {
        inputs.services.push_back(service);
      }
    }
    inputs.virtual_services = scope->virtualServices();
    inputs.destination_rule = [scope](std::string_view host) {
      return scope->destinationRule(host);
    };
    inputs.outbound_policy = scope->outboundTrafficPolicy();
    inputs.check_regex = checkRegex;
    out.push_back(buildOutboundRouteConfiguration(inputs, errors));
  }
  return out;
}

}  // namespace sheave::control
