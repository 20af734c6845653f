#include "cli/mesh_plan.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "control/registry/identity.h"
#include "control/registry/local_registry.h"
#include "control/registry/vip_allocator.h"

namespace sheave::cli {

namespace {

constexpr uint32_t kFirstWorkloadOffset = 10;  // .1 is the bridge; .2-.9 stay free

void emitMap(YAML::Emitter& out, const char* key, const std::map<std::string, std::string>& m) {
  out << YAML::Key << key << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : m) out << YAML::Key << k << YAML::Value << v;
  out << YAML::EndMap;
}

void emitWorkloadEntry(YAML::Emitter& out, const std::string& name, const std::string& ns,
                       const std::string& address, const std::map<std::string, std::string>& labels,
                       const std::string& service_account,
                       const std::map<std::string, uint32_t>& ports) {
  out << YAML::BeginDoc << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "networking.istio.io/v1";
  out << YAML::Key << "kind" << YAML::Value << "WorkloadEntry";
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << name;
  out << YAML::Key << "namespace" << YAML::Value << ns << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "address" << YAML::Value << address;
  emitMap(out, "labels", labels);
  out << YAML::Key << "serviceAccount" << YAML::Value << service_account;
  if (!ports.empty()) {
    out << YAML::Key << "ports" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : ports) out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
}

bool selectsIngressGateway(const control::Gateway& g) {
  auto it = g.selector.find("istio");
  return g.selector.size() == 1 && it != g.selector.end() && it->second == "ingressgateway";
}

}  // namespace

Result<MeshPlan> planMesh(const control::ConfigSet& config, const PlanOptions& options) {
  if (config.local_workloads.empty()) {
    return invalidArgument(
        "the directory defines no LocalWorkload (apiVersion sheave.io/v1alpha1), so there is "
        "nothing to run; see examples/bookinfo for one");
  }
  SHEAVE_ASSIGN_OR_RETURN(control::Ipv4Range range,
                          control::Ipv4Range::parse(options.network.cidr));
  const uint32_t base = range.base();
  const uint64_t size = range.size();

  MeshPlan plan;
  std::vector<const control::Resource<control::LocalWorkload>*> workloads;
  for (const auto& w : config.local_workloads) workloads.push_back(&w);
  std::sort(workloads.begin(), workloads.end(), [](const auto* a, const auto* b) {
    return std::tie(a->metadata.namespace_name, a->metadata.name) <
           std::tie(b->metadata.namespace_name, b->metadata.name);
  });
  uint32_t next = kFirstWorkloadOffset;
  for (const auto* w : workloads) {
    for (uint32_t i = 0; i < w->spec.replicas; ++i) {
      if (next + 1 >= size) {
        return invalidArgument("network " + options.network.cidr + " has no room for " +
                               w->metadata.name + "; use a larger range");
      }
      ReplicaPlan r;
      r.workload = w->metadata.name;
      r.namespace_name = w->metadata.namespace_name;
      r.index = i;
      r.name = w->metadata.name + "-" + std::to_string(i);
      r.netns = options.network.netns_prefix + r.namespace_name + "-" + r.name;
      r.address = control::formatIpv4(base + next++);
      r.service_account = w->spec.service_account.empty() ? "default" : w->spec.service_account;
      r.identity =
          control::spiffeIdentity(r.namespace_name, r.service_account, options.trust_domain);
      r.node_id = "sidecar~" + r.address + "~" + r.name + "." + r.namespace_name + "~" +
                  r.namespace_name + ".svc." + options.domain_suffix;
      r.spec = w->spec;
      plan.replicas.push_back(std::move(r));
    }
  }

  YAML::Emitter out;
  for (const ReplicaPlan& r : plan.replicas) {
    emitWorkloadEntry(out, r.name, r.namespace_name, r.address, r.spec.labels, r.service_account,
                      r.spec.ports);
  }

  // A Service whose selector matches nothing here gets no endpoints: its callers see 503s.
  for (const auto& svc : config.services) {
    if (svc.spec.selector.empty() || svc.spec.type == "ExternalName") continue;
    auto selects = [&](const std::map<std::string, std::string>& labels) {
      for (const auto& [k, v] : svc.spec.selector) {
        auto it = labels.find(k);
        if (it == labels.end() || it->second != v) return false;
      }
      return true;
    };
    bool any = false;
    for (const ReplicaPlan& r : plan.replicas) {
      any = any || (r.namespace_name == svc.metadata.namespace_name && selects(r.spec.labels));
    }
    for (const auto& we : config.workload_entries) {
      any = any ||
            (we.metadata.namespace_name == svc.metadata.namespace_name && selects(we.spec.labels));
    }
    if (!any) {
      plan.warnings.push_back("Service " + svc.metadata.namespace_name + "/" + svc.metadata.name +
                              " selects no workload, so requests to it fail with 503 (" +
                              svc.source.toString() + ")");
    }
  }

  GatewayPlan gateway;
  std::set<uint32_t> ports;
  for (const auto& g : config.gateways) {
    if (!selectsIngressGateway(g.spec)) {
      plan.warnings.push_back("Gateway " + g.metadata.namespace_name + "/" + g.metadata.name +
                              " selects no gateway sheave up runs (only istio: ingressgateway)");
      continue;
    }
    for (const auto& server : g.spec.servers) {
      if (!server.port || !ports.insert(server.port->number).second) continue;
      gateway.ports.push_back(server.port->number);
      gateway.binds.push_back(server.bind.empty() ? "0.0.0.0" : server.bind);
    }
  }
  if (!gateway.ports.empty()) {
    gateway.address = control::formatIpv4(base + 1);
    gateway.identity = control::spiffeIdentity(gateway.namespace_name, gateway.service_account,
                                               options.trust_domain);
    gateway.node_id = "router~" + gateway.address + "~" + gateway.name + "." +
                      gateway.namespace_name + "~" + gateway.namespace_name + ".svc." +
                      options.domain_suffix;
    const std::map<std::string, std::string> labels{{"app", gateway.name},
                                                    {"istio", "ingressgateway"}};
    emitWorkloadEntry(out, gateway.name, gateway.namespace_name, gateway.address, labels,
                      gateway.service_account, {});
    // The Service that fronts the gateway workload, as Istio's installation has it.
    out << YAML::BeginDoc << YAML::BeginMap;
    out << YAML::Key << "apiVersion" << YAML::Value << "v1";
    out << YAML::Key << "kind" << YAML::Value << "Service";
    out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << gateway.name;
    out << YAML::Key << "namespace" << YAML::Value << gateway.namespace_name << YAML::EndMap;
    out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
    emitMap(out, "selector", labels);
    out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
    for (uint32_t port : gateway.ports) {
      out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "http-" + std::to_string(port)
          << YAML::Key << "port" << YAML::Value << port << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap << YAML::EndMap;
    plan.gateway = std::move(gateway);
  }
  plan.generated_yaml = std::string(out.c_str()) + "\n";

  // Names resolve the way Kubernetes DNS answers them: the short name in the
  // caller's namespace, <name>.<ns>, <name>.<ns>.svc and the FQDN anywhere.
  control::ConfigSet all = control::parseDocuments(plan.generated_yaml, "generated.yaml");
  for (const auto& e : all.errors)
    return internalError("generated WorkloadEntries: " + e.toString());
  control::ConfigSet copy = config;
  copy.merge(std::move(all));
  control::RegistryOptions registry_options;
  registry_options.trust_domain = options.trust_domain;
  registry_options.domain_suffix = options.domain_suffix;
  registry_options.vip_range = options.network.vip_cidr;
  SHEAVE_ASSIGN_OR_RETURN(control::RegistrySnapshot registry,
                          control::buildRegistrySnapshot(copy, registry_options));
  for (ReplicaPlan& r : plan.replicas) {
    for (const control::Service& s : registry.services()) {
      if (s.vip.empty()) continue;
      if (s.origin != control::ServiceOrigin::kKubernetesService) {
        if (s.hostname.find('*') == std::string::npos) r.hosts.push_back({s.vip, {s.hostname}});
        continue;
      }
      const std::string suffix = ".svc." + options.domain_suffix;
      if (!s.hostname.ends_with(suffix)) continue;
      std::string name_ns = s.hostname.substr(0, s.hostname.size() - suffix.size());
      std::string short_name = name_ns.substr(0, name_ns.find('.'));
      HostsEntry entry{s.vip, {}};
      if (s.namespace_name == r.namespace_name) entry.names.push_back(short_name);
      entry.names.push_back(name_ns);
      entry.names.push_back(name_ns + ".svc");
      entry.names.push_back(s.hostname);
      r.hosts.push_back(std::move(entry));
    }
  }
  return plan;
}

}  // namespace sheave::cli
