#include "control/compiler/push_context.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>

namespace sheave::control {
namespace {

// Istio's exportTo: empty exports everywhere, "*" too, "." is the resource's
// own namespace, "~" nowhere, anything else a namespace by name.
bool exportedTo(const std::vector<std::string>& export_to, std::string_view resource_namespace,
                std::string_view proxy_namespace) {
  if (export_to.empty()) return true;
  for (const std::string& entry : export_to) {
    if (entry == "*") return true;
    if (entry == "." && resource_namespace == proxy_namespace) return true;
    if (entry == proxy_namespace) return true;
  }
  return false;
}

bool startsWithStar(std::string_view host) { return !host.empty() && host.front() == '*'; }

// Whether two host patterns overlap (Istio's host.Name.Matches in both
// directions): "*" overlaps everything, "*.example.com" overlaps every host
// and wildcard under example.com.
bool hostsOverlap(std::string_view a, std::string_view b) {
  if (a == b) return true;
  bool wild_a = startsWithStar(a);
  bool wild_b = startsWithStar(b);
  std::string_view suffix_a = wild_a ? a.substr(1) : a;
  std::string_view suffix_b = wild_b ? b.substr(1) : b;
  if (wild_a && wild_b) {
    return suffix_a.size() <= suffix_b.size() ? b.ends_with(suffix_a) : a.ends_with(suffix_b);
  }
  if (wild_a) return b.ends_with(suffix_a);
  if (wild_b) return a.ends_with(suffix_b);
  return false;
}

// Whether a DestinationRule host covers a service host. Returns the
// specificity (higher is better), or -1: an exact host beats any wildcard,
// and a longer wildcard beats a shorter one.
int coverage(std::string_view rule_host, std::string_view service_host) {
  if (rule_host == service_host) return 1 << 20;
  if (!startsWithStar(rule_host)) return -1;
  std::string_view suffix = rule_host.substr(1);
  if (service_host.ends_with(suffix)) return static_cast<int>(suffix.size());
  return -1;
}

bool selects(const WorkloadSelector& selector, const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector.match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

bool boundToMesh(const VirtualService& vs) {
  if (vs.gateways.empty()) return true;
  return std::find(vs.gateways.begin(), vs.gateways.end(), "mesh") != vs.gateways.end();
}

// One Sidecar egress host, "namespace/dnsName".
struct EgressHost {
  std::string namespace_name;  // ".", "*", "~" or a name
  std::string dns_name;
};

std::vector<EgressHost> egressHosts(const Sidecar& sidecar) {
  std::vector<EgressHost> out;
  for (const IstioEgressListener& listener : sidecar.egress) {
    for (const std::string& host : listener.hosts) {
      size_t slash = host.find('/');
      // Istio's validation requires the namespace part; without it the host
      // reads as visible from any namespace.
      if (slash == std::string::npos) {
        out.push_back({"*", host});
      } else {
        out.push_back({host.substr(0, slash), host.substr(slash + 1)});
      }
    }
  }
  return out;
}

bool namespaceMatches(std::string_view pattern, std::string_view config_namespace,
                      std::string_view proxy_namespace) {
  if (pattern == "*") return true;
  if (pattern == "~") return false;
  if (pattern == ".") return config_namespace == proxy_namespace;
  return pattern == config_namespace;
}

bool egressAllows(const std::vector<EgressHost>& hosts, std::string_view config_namespace,
                  std::string_view hostname, std::string_view proxy_namespace) {
  for (const EgressHost& host : hosts) {
    if (namespaceMatches(host.namespace_name, config_namespace, proxy_namespace) &&
        hostsOverlap(host.dns_name, hostname)) {
      return true;
    }
  }
  return false;
}

template <typename Spec>
ResourceError conflictError(const Resource<Spec>& loser, const Resource<Spec>& winner,
                            std::string_view field, const std::string& host) {
  Error error =
      invalidArgument(loser.source.toString() + ": " + std::string(field) + ": host \"" + host +
                      "\" is already used by " + winner.kind + " " +
                      winner.metadata.namespace_name + "/" + winner.metadata.name + " at " +
                      winner.source.toString() + "; the first one applies and this one is ignored");
  return ResourceError{loser.source, loser.kind, loser.metadata.namespace_name, loser.metadata.name,
                       std::move(error)};
}

}  // namespace

struct PushContext::Index {
  struct IndexedVirtualService {
    const Resource<VirtualService>* resource;
    std::vector<std::string> hosts;  // resolved against the resource's namespace
  };
  struct IndexedDestinationRule {
    const Resource<DestinationRule>* resource;
    std::string host;  // resolved
  };
  std::vector<IndexedVirtualService> virtual_services;  // mesh-bound, load order
  std::vector<IndexedDestinationRule> destination_rules;
};

struct PushContext::Cache {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const SidecarScope>, std::less<>> scopes;
};

const Resource<DestinationRule>* SidecarScope::destinationRule(std::string_view hostname) const {
  auto it = destination_rules_.find(hostname);
  return it == destination_rules_.end() ? nullptr : it->second;
}

std::shared_ptr<const PushContext> PushContext::build(
    std::shared_ptr<const ConfigSet> config, std::shared_ptr<const RegistrySnapshot> registry,
    MeshConfig mesh) {
  std::shared_ptr<PushContext> push(new PushContext());
  push->config_ = config ? std::move(config) : std::make_shared<const ConfigSet>();
  push->registry_ = registry ? std::move(registry) : std::make_shared<const RegistrySnapshot>();
  push->mesh_ = std::move(mesh);
  push->cache_ = std::make_shared<Cache>();
  auto index = std::make_shared<Index>();
  const std::string& suffix = push->mesh_.domain_suffix;

  // Two mesh VirtualServices claiming one host in one namespace: Istio's
  // result would depend on merge order, so the first (load order) keeps the
  // host and the other is reported and left out.
  std::map<std::pair<std::string, std::string>, const Resource<VirtualService>*> vs_owner;
  for (const Resource<VirtualService>& vs : push->config_->virtual_services) {
    if (!boundToMesh(vs.spec) || vs.spec.hosts.empty()) continue;
    Index::IndexedVirtualService entry{&vs, {}};
    const std::string& ns = vs.metadata.namespace_name;
    std::optional<ResourceError> conflict;
    for (const std::string& host : vs.spec.hosts) {
      std::string resolved = resolveHostname(host, ns, suffix);
      auto it = vs_owner.find({ns, resolved});
      if (it != vs_owner.end() && it->second != &vs) {
        if (!conflict) conflict = conflictError(vs, *it->second, "spec.hosts", resolved);
        continue;
      }
      entry.hosts.push_back(std::move(resolved));
    }
    if (conflict) {
      push->errors_.push_back(std::move(*conflict));
      continue;
    }
    for (const std::string& host : entry.hosts) vs_owner[{ns, host}] = &vs;
    index->virtual_services.push_back(std::move(entry));
  }

  // The same for DestinationRules without a workload selector; rules with a
  // selector apply to some workloads only, so they may share a host.
  std::map<std::pair<std::string, std::string>, const Resource<DestinationRule>*> dr_owner;
  for (const Resource<DestinationRule>& dr : push->config_->destination_rules) {
    if (dr.spec.host.empty()) continue;
    std::string host = resolveHostname(dr.spec.host, dr.metadata.namespace_name, suffix);
    if (!dr.spec.workload_selector) {
      auto [it, inserted] = dr_owner.emplace(std::pair(dr.metadata.namespace_name, host), &dr);
      if (!inserted) {
        push->errors_.push_back(conflictError(dr, *it->second, "spec.host", host));
        continue;
      }
    }
    index->destination_rules.push_back({&dr, std::move(host)});
  }
  push->index_ = std::move(index);
  return push;
}

std::shared_ptr<const SidecarScope> PushContext::scopeFor(const ProxyContext& proxy) const {
  const std::string& ns = proxy.namespace_name;
  // Istio's Sidecar choice: a selecting Sidecar in the proxy's namespace,
  // else the namespace's selector-less one, else the root namespace's.
  const Resource<Sidecar>* sidecar = nullptr;
  const Resource<Sidecar>* namespace_default = nullptr;
  const Resource<Sidecar>* root_default = nullptr;
  for (const Resource<Sidecar>& candidate : config_->sidecars) {
    const std::string& candidate_ns = candidate.metadata.namespace_name;
    if (candidate_ns == ns) {
      if (candidate.spec.workload_selector) {
        if (sidecar == nullptr && selects(*candidate.spec.workload_selector, proxy.labels)) {
          sidecar = &candidate;
        }
      } else if (namespace_default == nullptr) {
        namespace_default = &candidate;
      }
    }
    if (candidate_ns == mesh_.root_namespace && !candidate.spec.workload_selector &&
        root_default == nullptr) {
      root_default = &candidate;
    }
  }
  if (sidecar == nullptr) sidecar = namespace_default;
  if (sidecar == nullptr) sidecar = root_default;

  // Selector DestinationRules make the scope depend on the workload's labels.
  std::vector<size_t> selector_rules;
  for (size_t i = 0; i < index_->destination_rules.size(); ++i) {
    const Resource<DestinationRule>& dr = *index_->destination_rules[i].resource;
    if (dr.spec.workload_selector && dr.metadata.namespace_name == ns &&
        selects(*dr.spec.workload_selector, proxy.labels)) {
      selector_rules.push_back(i);
    }
  }

  std::string key = ns;
  key += '|';
  key += sidecar == nullptr
             ? std::string("-")
             : std::to_string(static_cast<size_t>(sidecar - config_->sidecars.data()));
  for (size_t i : selector_rules) key += "|" + std::to_string(i);

  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->scopes.find(key);
    if (it != cache_->scopes.end()) return it->second;
  }
  std::shared_ptr<const SidecarScope> scope = computeScope(proxy, sidecar, selector_rules);
  std::lock_guard<std::mutex> lock(cache_->mutex);
  // Another thread may have computed the same scope meanwhile; keep one.
  auto [it, inserted] = cache_->scopes.emplace(std::move(key), scope);
  return it->second;
}

std::shared_ptr<const SidecarScope> PushContext::computeScope(
    const ProxyContext& proxy, const Resource<Sidecar>* sidecar,
    const std::vector<size_t>& selector_rules) const {
  const std::string& ns = proxy.namespace_name;
  auto scope = std::make_shared<SidecarScope>();
  scope->sidecar_ = sidecar;
  scope->outbound_policy_ = mesh_.outbound_traffic_policy;
  if (sidecar != nullptr && sidecar->spec.outbound_traffic_policy) {
    scope->outbound_policy_ = sidecar->spec.outbound_traffic_policy->mode;
  }
  // A Sidecar without egress listeners leaves egress as the mesh default.
  std::optional<std::vector<EgressHost>> egress;
  if (sidecar != nullptr && !sidecar->spec.egress.empty()) egress = egressHosts(sidecar->spec);

  for (const Service& service : registry_->services()) {
    if (!exportedTo(service.export_to, service.namespace_name, ns)) continue;
    if (egress && !egressAllows(*egress, service.namespace_name, service.hostname, ns)) continue;
    scope->services_.push_back(&service);
  }

  std::vector<const Resource<VirtualService>*> own;
  std::vector<const Resource<VirtualService>*> others;
  for (const Index::IndexedVirtualService& entry : index_->virtual_services) {
    const Resource<VirtualService>& vs = *entry.resource;
    const std::string& vs_ns = vs.metadata.namespace_name;
    if (!exportedTo(vs.spec.export_to, vs_ns, ns)) continue;
    if (egress) {
      bool allowed = false;
      for (const std::string& host : entry.hosts) {
        if (egressAllows(*egress, vs_ns, host, ns)) {
          allowed = true;
          break;
        }
      }
      if (!allowed) continue;
    }
    (vs_ns == ns ? own : others).push_back(&vs);
  }
  scope->virtual_services_ = std::move(own);
  scope->virtual_services_.insert(scope->virtual_services_.end(), others.begin(), others.end());

  // The best rule for host among those in rule_ns visible to this proxy:
  // the most specific host wins, then load order.
  auto bestIn = [&](std::string_view rule_ns, std::string_view host,
                    bool selector) -> const Resource<DestinationRule>* {
    const Resource<DestinationRule>* best = nullptr;
    int best_score = -1;
    auto consider = [&](const Index::IndexedDestinationRule& entry) {
      const Resource<DestinationRule>& dr = *entry.resource;
      if (dr.metadata.namespace_name != rule_ns) return;
      if (!exportedTo(dr.spec.export_to, rule_ns, ns)) return;
      int score = coverage(entry.host, host);
      if (score > best_score) {
        best = &dr;
        best_score = score;
      }
    };
    if (selector) {
      for (size_t i : selector_rules) consider(index_->destination_rules[i]);
    } else {
      for (const Index::IndexedDestinationRule& entry : index_->destination_rules) {
        if (!entry.resource->spec.workload_selector) consider(entry);
      }
    }
    return best;
  };
  for (const Service* service : scope->services_) {
    const std::string& host = service->hostname;
    const Resource<DestinationRule>* rule = bestIn(ns, host, true);
    if (rule == nullptr) rule = bestIn(ns, host, false);
    if (rule == nullptr && service->namespace_name != ns) {
      rule = bestIn(service->namespace_name, host, false);
    }
    if (rule == nullptr && mesh_.root_namespace != ns)
      rule = bestIn(mesh_.root_namespace, host, false);
    if (rule != nullptr) scope->destination_rules_.emplace(host, rule);
  }
  return scope;
}

}  // namespace sheave::control
