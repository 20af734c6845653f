#include "control/compiler/proxy_context.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "control/registry/identity.h"
#include "envoy/config/core/v3/base.pb.h"
#include "google/protobuf/struct.pb.h"

namespace sheave::control {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// A string-valued metadata field, or nullptr when absent or not a string
// (Istio's agent sends every one of these as a string).
const std::string* stringField(const google::protobuf::Struct& metadata, const std::string& key) {
  auto it = metadata.fields().find(key);
  if (it == metadata.fields().end() || !it->second.has_string_value()) return nullptr;
  return &it->second.string_value();
}

}  // namespace

Result<ProxyContext> ProxyContext::fromNode(const envoy::config::core::v3::Node& node,
                                            std::string_view trust_domain) {
  ProxyContext proxy;
  proxy.id = node.id();
  auto bad = [&](const std::string& what) {
    return invalidArgument("node id \"" + node.id() + "\": " + what +
                           " (expected <type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>)");
  };
  std::vector<std::string_view> parts = split(node.id(), '~');
  if (parts.size() != 4) {
    return bad("has " + std::to_string(parts.size()) + " '~'-separated parts, not 4");
  }
  if (parts[0] == "sidecar") {
    proxy.type = Type::kSidecar;
  } else if (parts[0] == "router") {
    proxy.type = Type::kRouter;
  } else {
    return bad("unknown proxy type \"" + std::string(parts[0]) + "\", want sidecar or router");
  }
  if (!isIpAddress(parts[1])) {
    return bad("\"" + std::string(parts[1]) + "\" is not an IP address");
  }
  if (parts[2].empty()) return bad("empty workload part");
  proxy.dns_domain = std::string(parts[3]);

  std::string id_namespace;
  if (size_t dot = parts[2].rfind('.'); dot != std::string_view::npos) {
    proxy.pod_name = std::string(parts[2].substr(0, dot));
    id_namespace = std::string(parts[2].substr(dot + 1));
  } else {
    proxy.pod_name = std::string(parts[2]);
  }
  // Istio takes the namespace from the DNS domain's first label when the
  // metadata does not carry it.
  std::string domain_namespace = std::string(split(parts[3], '.').front());

  const google::protobuf::Struct& metadata = node.metadata();
  if (const std::string* ns = stringField(metadata, "NAMESPACE"); ns != nullptr && !ns->empty()) {
    proxy.namespace_name = *ns;
  } else if (!domain_namespace.empty()) {
    proxy.namespace_name = domain_namespace;
  } else {
    proxy.namespace_name = id_namespace;
  }
  if (proxy.namespace_name.empty()) return bad("no namespace in the id and no NAMESPACE metadata");

  if (const std::string* ips = stringField(metadata, "INSTANCE_IPS"); ips != nullptr) {
    for (std::string_view ip : split(*ips, ',')) {
      ip = trim(ip);
      if (ip.empty()) continue;
      if (!isIpAddress(ip)) {
        return invalidArgument("node metadata INSTANCE_IPS: \"" + std::string(ip) +
                               "\" is not an IP address");
      }
      proxy.ips.emplace_back(ip);
    }
  }
  if (proxy.ips.empty()) proxy.ips.emplace_back(parts[1]);

  if (auto it = metadata.fields().find("LABELS");
      it != metadata.fields().end() && it->second.has_struct_value()) {
    for (const auto& [key, value] : it->second.struct_value().fields()) {
      if (value.has_string_value()) proxy.labels[key] = value.string_value();
    }
  }
  if (const std::string* sa = stringField(metadata, "SERVICE_ACCOUNT"); sa != nullptr) {
    proxy.service_account = *sa;
  }
  if (proxy.service_account.empty()) proxy.service_account = std::string(kDefaultServiceAccount);
  if (const std::string* workload = stringField(metadata, "WORKLOAD_NAME"); workload != nullptr) {
    proxy.workload_name = *workload;
  }
  proxy.identity = spiffeIdentity(proxy.namespace_name, proxy.service_account, trust_domain);
  return proxy;
}

void ProxyContext::attachWorkload(const RegistrySnapshot& registry, std::string_view trust_domain) {
  service_instances.clear();
  const Endpoint* chosen = nullptr;
  // (hostname order, then service port) is the snapshot's own order, so the
  // instances come out deterministic without another sort key.
  std::set<std::pair<const Service*, uint32_t>> seen;
  for (const Service& service : registry.services()) {
    for (const Endpoint& endpoint : registry.endpoints(service.hostname)) {
      if (endpoint.workload_name.empty() || endpoint.namespace_name != namespace_name) continue;
      if (std::find(ips.begin(), ips.end(), endpoint.address) == ips.end()) continue;
      // Several WorkloadEntries at one address: the first one by name fronts the proxy.
      if (chosen == nullptr || endpoint.workload_name < chosen->workload_name) chosen = &endpoint;
    }
  }
  if (chosen == nullptr) return;
  const std::string workload = chosen->workload_name;
  labels = chosen->labels;
  service_account = chosen->service_account.empty() ? std::string(kDefaultServiceAccount)
                                                    : chosen->service_account;
  workload_name = workload;
  identity = chosen->identity.empty()
                 ? spiffeIdentity(namespace_name, service_account, trust_domain)
                 : chosen->identity;

  for (const Service& service : registry.services()) {
    for (const Endpoint& endpoint : registry.endpoints(service.hostname)) {
      if (endpoint.workload_name != workload || endpoint.namespace_name != namespace_name) continue;
      if (std::find(ips.begin(), ips.end(), endpoint.address) == ips.end()) continue;
      if (!seen.emplace(&service, endpoint.service_port).second) continue;
      const ServicePortInfo* port = service.findPort(endpoint.service_port);
      if (port == nullptr) continue;
      ServiceInstance instance;
      instance.service = &service;
      instance.service_port = port->port;
      instance.port_name = port->name;
      instance.protocol = port->protocol;
      instance.target_port = endpoint.port != 0 ? endpoint.port : port->port;
      service_instances.push_back(std::move(instance));
    }
  }
  std::stable_sort(service_instances.begin(), service_instances.end(),
                   [](const ServiceInstance& a, const ServiceInstance& b) {
                     return std::tie(a.target_port, a.service->hostname, a.service_port) <
                            std::tie(b.target_port, b.service->hostname, b.service_port);
                   });
}

}  // namespace sheave::control
