#include "control/compiler/gateway_generator.h"

#include <algorithm>
#include <map>
#include <set>

#include "control/compiler/names.h"
#include "control/registry/protocol.h"
#include "envoy/config/core/v3/address.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace sheave::control {

namespace {

using envoy::config::listener::v3::Listener;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

void report(std::vector<ResourceError>* errors, const Resource<Gateway>& gateway,
            const std::string& path, const std::string& message) {
  if (errors == nullptr) return;
  std::string text = gateway.source.toString();
  if (!text.empty()) text += ": ";
  errors->push_back(ResourceError{gateway.source, "Gateway", gateway.metadata.namespace_name,
                                  gateway.metadata.name,
                                  invalidArgument(text + path + ": " + message)});
}

// Istio's gateway connection manager: the edge of the mesh, so the client's
// address is the connection's (use_remote_address), and the HTTP filters of
// every Istio HCM (fault, CORS, router).
HttpConnectionManager gatewayConnectionManager(uint32_t port, bool http2) {
  HttpConnectionManager hcm;
  hcm.set_codec_type(HttpConnectionManager::AUTO);
  hcm.set_stat_prefix("outbound_0.0.0.0_" + std::to_string(port));
  hcm.mutable_normalize_path()->set_value(true);
  hcm.set_path_with_escaped_slashes_action(HttpConnectionManager::KEEP_UNCHANGED);
  hcm.mutable_use_remote_address()->set_value(true);
  hcm.add_upgrade_configs()->set_upgrade_type("websocket");
  hcm.mutable_stream_idle_timeout();
  hcm.set_server_name("istio-envoy");
  if (http2) hcm.mutable_http2_protocol_options();
  auto* rds = hcm.mutable_rds();
  rds->mutable_config_source()->mutable_ads();
  rds->mutable_config_source()->mutable_initial_fetch_timeout();
  rds->mutable_config_source()->set_resource_api_version(envoy::config::core::v3::V3);
  rds->set_route_config_name(gatewayRouteName(port));
  auto* fault = hcm.add_http_filters();
  fault->set_name("envoy.filters.http.fault");
  fault->mutable_typed_config()->set_type_url(
      "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault");
  auto* cors = hcm.add_http_filters();
  cors->set_name("envoy.filters.http.cors");
  cors->mutable_typed_config()->set_type_url(
      "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors");
  auto* router = hcm.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
  return hcm;
}

bool selects(const std::map<std::string, std::string>& selector,
             const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

std::vector<const Resource<Gateway>*> gatewaysForProxy(const ProxyContext& proxy,
                                                       const ConfigSet& config) {
  std::vector<const Resource<Gateway>*> out;
  for (const auto& gateway : config.gateways) {
    // An empty selector would select every proxy, sidecars included; Istio
    // applies such a Gateway to no workload, and so do we.
    if (!gateway.spec.selector.empty() && selects(gateway.spec.selector, proxy.labels)) {
      out.push_back(&gateway);
    }
  }
  return out;
}

std::string gatewayKey(const Resource<Gateway>& gateway) {
  return gateway.metadata.namespace_name + "/" + gateway.metadata.name;
}

bool namesGateway(const std::vector<std::string>& gateways, std::string_view vs_namespace,
                  const std::vector<std::string>& keys) {
  for (const std::string& g : gateways) {
    std::string key = g.find('/') == std::string::npos ? std::string(vs_namespace) + "/" + g : g;
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) return true;
  }
  return false;
}

std::vector<const Resource<VirtualService>*> gatewayVirtualServices(
    const ConfigSet& config, const std::vector<const Resource<Gateway>*>& gateways) {
  std::vector<std::string> keys;
  for (const auto* g : gateways) keys.push_back(gatewayKey(*g));
  std::vector<const Resource<VirtualService>*> out;
  for (const auto& vs : config.virtual_services) {
    if (namesGateway(vs.spec.gateways, vs.metadata.namespace_name, keys)) out.push_back(&vs);
  }
  return out;
}

std::vector<std::string> gatewayServerHosts(const std::vector<const Resource<Gateway>*>& gateways,
                                            uint32_t port) {
  std::vector<std::string> out;
  for (const auto* g : gateways) {
    for (const Server& server : g->spec.servers) {
      if (!server.port || server.port->number != port) continue;
      for (const std::string& h : server.hosts) {
        size_t slash = h.find('/');
        std::string host = slash == std::string::npos ? h : h.substr(slash + 1);
        if (std::find(out.begin(), out.end(), host) == out.end()) out.push_back(host);
      }
    }
  }
  return out;
}

std::string gatewayRouteName(uint32_t port) { return "http." + std::to_string(port); }

uint32_t gatewayRoutePort(std::string_view name) {
  constexpr std::string_view kPrefix = "http.";
  if (!name.starts_with(kPrefix)) return 0;
  std::string_view digits = name.substr(kPrefix.size());
  if (digits.empty() || digits.size() > 5 || digits.front() == '0') return 0;
  uint32_t port = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  return port <= 65535 ? port : 0;
}

std::vector<Listener> buildGatewayListeners(const std::vector<const Resource<Gateway>*>& gateways,
                                            const MeshConfig& /*mesh*/,
                                            std::vector<ResourceError>* errors) {
  struct PortPlan {
    std::string bind;
    bool http2 = false;
  };
  std::map<uint32_t, PortPlan> ports;
  for (const auto* g : gateways) {
    for (size_t i = 0; i < g->spec.servers.size(); ++i) {
      const Server& server = g->spec.servers[i];
      const std::string path = "servers[" + std::to_string(i) + "]";
      if (!server.port) continue;  // the model requires it
      if (server.tls) {
        report(errors, *g, path + ".tls",
               "TLS servers are not supported on gateways yet; the server is ignored");
        continue;
      }
      Protocol protocol = parseProtocol(server.port->protocol);
      if (!isHttp(protocol)) {
        report(errors, *g, path + ".port.protocol",
               "protocol " + server.port->protocol +
                   " is not supported on gateways yet (HTTP, HTTP2, GRPC); the server is ignored");
        continue;
      }
      std::string bind = server.bind.empty() ? "0.0.0.0" : server.bind;
      auto [it, inserted] = ports.emplace(server.port->number, PortPlan{bind, isHttp2(protocol)});
      if (!inserted && it->second.bind != bind) {
        report(errors, *g, path + ".bind",
               "port " + std::to_string(server.port->number) + " is already bound to " +
                   it->second.bind + " by another server; the server is ignored");
      }
    }
  }
  std::vector<Listener> out;
  for (const auto& [port, plan] : ports) {
    Listener l;
    l.set_name(listenerName("0.0.0.0", port));
    auto* socket = l.mutable_address()->mutable_socket_address();
    socket->set_address(plan.bind);
    socket->set_port_value(port);
    auto* filter = l.add_filter_chains()->add_filters();
    filter->set_name("envoy.filters.network.http_connection_manager");
    filter->mutable_typed_config()->PackFrom(gatewayConnectionManager(port, plan.http2));
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace sheave::control
