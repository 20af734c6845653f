#include "control/compiler/endpoint_generator.h"

#include <charconv>
#include <map>
#include <tuple>

#include "control/compiler/cluster_generator.h"
#include "control/compiler/names.h"

namespace sheave::control {
namespace {

namespace endpoint = envoy::config::endpoint::v3;

struct Locality {
  std::string region;
  std::string zone;
  std::string sub_zone;
  bool operator<(const Locality& o) const {
    return std::tie(region, zone, sub_zone) < std::tie(o.region, o.zone, o.sub_zone);
  }
};

Locality parseLocality(std::string_view text) {
  Locality out;
  std::string* parts[] = {&out.region, &out.zone, &out.sub_zone};
  for (std::string* part : parts) {
    if (text.empty()) break;
    size_t slash = text.find('/');
    *part = std::string(text.substr(0, slash));
    text = slash == std::string_view::npos ? std::string_view() : text.substr(slash + 1);
  }
  return out;
}

std::string labelOr(const std::map<std::string, std::string>& labels,
                    std::initializer_list<const char*> keys, const std::string& fallback) {
  for (const char* key : keys) {
    auto it = labels.find(key);
    if (it != labels.end() && !it->second.empty()) return it->second;
  }
  return fallback;
}

// Istio's "istio" endpoint metadata:
// "<workload>;<namespace>;<canonical service>;<canonical revision>;<cluster>",
// which telemetry reads to label the peer.
std::string workloadMetadata(const Endpoint& e) {
  std::string name = e.workload_name;
  std::string canonical =
      labelOr(e.labels, {"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"}, name);
  std::string revision = labelOr(
      e.labels, {"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"},
      "latest");
  return name + ";" + e.namespace_name + ";" + canonical + ";" + revision + ";Kubernetes";
}

bool hasLabels(const Endpoint& e, const std::map<std::string, std::string>& wanted) {
  for (const auto& [key, value] : wanted) {
    auto it = e.labels.find(key);
    if (it == e.labels.end() || it->second != value) return false;
  }
  return true;
}

void fillEndpoint(const Endpoint& e, endpoint::LbEndpoint* lb) {
  auto* address = lb->mutable_endpoint()->mutable_address();
  constexpr std::string_view kUnix = "unix://";
  if (std::string_view(e.address).starts_with(kUnix)) {
    address->mutable_pipe()->set_path(e.address.substr(kUnix.size()));
  } else {
    auto* socket = address->mutable_socket_address();
    socket->set_address(e.address);
    socket->set_port_value(e.port);
  }
  lb->mutable_load_balancing_weight()->set_value(e.weight == 0 ? 1 : e.weight);
  // In-mesh endpoints (they have an identity) speak Istio mTLS; the
  // tlsMode-istio transport socket match of auto-mTLS clusters keys on this.
  if (!e.service_account.empty()) {
    auto& match =
        (*lb->mutable_metadata()->mutable_filter_metadata())["envoy.transport_socket_match"];
    (*match.mutable_fields())["tlsMode"].set_string_value("istio");
  }
  if (!e.workload_name.empty() || !e.service_account.empty()) {
    auto& istio = (*lb->mutable_metadata()->mutable_filter_metadata())["istio"];
    (*istio.mutable_fields())["workload"].set_string_value(workloadMetadata(e));
  }
}

}  // namespace

bool parseOutboundClusterName(std::string_view name, OutboundClusterKey* key) {
  constexpr std::string_view kPrefix = "outbound|";
  if (!name.starts_with(kPrefix)) return false;
  name.remove_prefix(kPrefix.size());
  size_t bar = name.find('|');
  if (bar == std::string_view::npos) return false;
  uint32_t port = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + bar, port);
  if (ec != std::errc() || ptr != name.data() + bar || port == 0 || port > 65535) return false;
  name.remove_prefix(bar + 1);
  bar = name.find('|');
  if (bar == std::string_view::npos) return false;
  std::string_view subset = name.substr(0, bar);
  std::string_view host = name.substr(bar + 1);
  if (host.empty() || host.find('|') != std::string_view::npos) return false;
  key->port = port;
  key->subset = std::string(subset);
  key->hostname = std::string(host);
  return true;
}

endpoint::ClusterLoadAssignment buildLoadAssignment(
    std::string_view cluster_name, const RegistrySnapshot& registry, const Service& service,
    uint32_t service_port, const std::map<std::string, std::string>& subset_labels) {
  endpoint::ClusterLoadAssignment assignment;
  assignment.set_cluster_name(std::string(cluster_name));
  // Localities sorted, endpoints in the registry's order inside each.
  std::map<Locality, std::vector<const Endpoint*>> by_locality;
  std::vector<Endpoint> endpoints = registry.endpoints(service.hostname, service_port);
  for (const Endpoint& e : endpoints) {
    if (!hasLabels(e, subset_labels)) continue;
    by_locality[parseLocality(e.locality)].push_back(&e);
  }
  for (const auto& [locality, members] : by_locality) {
    endpoint::LocalityLbEndpoints* group = assignment.add_endpoints();
    if (!locality.region.empty()) group->mutable_locality()->set_region(locality.region);
    if (!locality.zone.empty()) group->mutable_locality()->set_zone(locality.zone);
    if (!locality.sub_zone.empty()) group->mutable_locality()->set_sub_zone(locality.sub_zone);
    uint32_t weight = 0;
    for (const Endpoint* e : members) {
      fillEndpoint(*e, group->add_lb_endpoints());
      weight += e->weight == 0 ? 1 : e->weight;
    }
    group->mutable_load_balancing_weight()->set_value(weight);
  }
  return assignment;
}

std::vector<endpoint::ClusterLoadAssignment> generateEndpoints(
    const ProxyContext& proxy, const PushContext& push,
    const std::vector<std::string>& cluster_names) {
  std::vector<std::string> names = cluster_names;
  if (names.empty()) names = edsClusterNames(proxy, push);
  std::shared_ptr<const SidecarScope> scope = push.scopeFor(proxy);

  std::vector<endpoint::ClusterLoadAssignment> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    OutboundClusterKey key;
    const Service* service = nullptr;
    if (parseOutboundClusterName(name, &key)) {
      for (const Service* candidate : scope->services()) {
        if (candidate->hostname == key.hostname) {
          service = candidate;
          break;
        }
      }
    }
    if (service == nullptr || service->resolution != Resolution::kClientSideLb ||
        service->findPort(key.port) == nullptr) {
      endpoint::ClusterLoadAssignment empty;
      empty.set_cluster_name(name);
      out.push_back(std::move(empty));
      continue;
    }
    std::map<std::string, std::string> labels;
    bool known_subset = key.subset.empty();
    if (!key.subset.empty()) {
      if (const Resource<DestinationRule>* rule = scope->destinationRule(service->hostname)) {
        for (const Subset& subset : rule->spec.subsets) {
          if (subset.name == key.subset) {
            labels = subset.labels;
            known_subset = true;
            break;
          }
        }
      }
    }
    if (!known_subset) {
      endpoint::ClusterLoadAssignment empty;
      empty.set_cluster_name(name);
      out.push_back(std::move(empty));
      continue;
    }
    out.push_back(buildLoadAssignment(name, push.registry(), *service, key.port, labels));
  }
  return out;
}

}  // namespace sheave::control
