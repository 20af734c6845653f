#include "cli/analyze/describe.h"

#include <algorithm>
#include <set>

#include "control/compiler/peer_authentication_policy.h"
#include "control/registry/hostname.h"
#include "control/registry/identity.h"

namespace sheave::cli {

using control::Resource;
using control::Service;

namespace {

template <typename Spec>
std::string ref(const Resource<Spec>& r) {
  control::SourceLocation line = r.source;
  line.column = 0;
  return r.metadata.name + "." + r.metadata.namespace_name + " (" + line.toString() + ")";
}

// A resource in the -o json|yaml document: name, namespace and where it is written.
template <typename Spec>
nlohmann::json refJson(const Resource<Spec>& r) {
  control::SourceLocation line = r.source;
  line.column = 0;
  return {{"name", r.metadata.name},
          {"namespace", r.metadata.namespace_name},
          {"source", line.toString()}};
}

const std::map<std::string, std::string>* selectorOf(
    const std::optional<control::WorkloadSelector>& s) {
  return s && !s->match_labels.empty() ? &s->match_labels : nullptr;
}

// Whether a policy in namespace_name with this selector applies to w.
bool applies(const AnalysisContext& c, const std::map<std::string, std::string>* labels,
             const std::string& namespace_name, const AnalyzedWorkload& w) {
  if (labels == nullptr) {
    return namespace_name == w.namespace_name || namespace_name == c.options().root_namespace;
  }
  return namespace_name == w.namespace_name && labelsMatch(*labels, w.labels);
}

std::string_view modeName(control::MutualTLSMode mode) {
  switch (mode) {
    case control::MutualTLSMode::kDisable:
      return "DISABLE";
    case control::MutualTLSMode::kStrict:
      return "STRICT";
    default:
      return "PERMISSIVE";
  }
}

std::string_view actionName(control::AuthorizationAction a) {
  switch (a) {
    case control::AuthorizationAction::kAllow:
      return "ALLOW";
    case control::AuthorizationAction::kDeny:
      return "DENY";
    case control::AuthorizationAction::kAudit:
      return "AUDIT";
    case control::AuthorizationAction::kCustom:
      return "CUSTOM";
  }
  return "ALLOW";
}

// The VirtualServices whose routes send traffic to `service`.
std::vector<const Resource<control::VirtualService>*> routingTo(const AnalysisContext& c,
                                                                const Service& service) {
  std::vector<const Resource<control::VirtualService>*> out;
  for (const auto& vs : c.config().virtual_services) {
    bool hit = false;
    auto check = [&](const control::Destination& d) {
      hit = hit || c.resolve(d.host, vs.metadata.namespace_name) == &service;
    };
    for (const auto& r : vs.spec.http) {
      for (const auto& d : r.route) check(d.destination);
    }
    for (const auto& r : vs.spec.tcp) {
      for (const auto& d : r.route) check(d.destination);
    }
    for (const auto& r : vs.spec.tls) {
      for (const auto& d : r.route) check(d.destination);
    }
    if (hit) out.push_back(&vs);
  }
  return out;
}

std::string vsLine(const Resource<control::VirtualService>& vs) {
  std::string via;
  for (const auto& g : vs.spec.gateways) via += (via.empty() ? "" : ", ") + g;
  return "VirtualService: " + ref(vs) + (via.empty() ? "" : "\n      via gateways: " + via);
}

void serviceBlock(const AnalysisContext& c, const Service& s, const AnalyzedWorkload* w,
                  std::string& out, nlohmann::json& doc) {
  control::SourceLocation line = s.source;
  line.column = 0;
  out += "Service: " + s.hostname + " (" + s.resource_name + "." + s.namespace_name + " " +
         line.toString() + ")\n";
  out += "   Address: " + (s.vip.empty() ? std::string("none") : s.vip) + "\n";
  doc = {
      {"hostname", s.hostname},    {"name", s.resource_name}, {"namespace", s.namespace_name},
      {"source", line.toString()}, {"address", s.vip},        {"ports", nlohmann::json::array()}};
  for (const auto& p : s.ports) {
    out += "   Port: " + (p.name.empty() ? std::string("-") : p.name) + " " +
           std::to_string(p.port) + "/" + std::string(control::protocolName(p.protocol));
    if (p.target_port != 0) out += " targets port " + std::to_string(p.target_port);
    out += "\n";
    doc["ports"].push_back({{"name", p.name},
                            {"port", p.port},
                            {"protocol", std::string(control::protocolName(p.protocol))},
                            {"targetPort", p.target_port}});
  }
  const std::string client_ns = w != nullptr ? w->namespace_name : s.namespace_name;
  if (const auto* dr = c.destinationRuleFor(s, client_ns)) {
    out += "DestinationRule: " + ref(*dr) + "\n";
    nlohmann::json dr_doc = refJson(*dr);
    std::string subsets;
    dr_doc[w != nullptr ? "matchingSubsets" : "subsets"] = nlohmann::json::array();
    for (const auto& subset : dr->spec.subsets) {
      if (w == nullptr || labelsMatch(subset.labels, w->labels)) {
        subsets += (subsets.empty() ? "" : ", ") + subset.name;
        dr_doc[w != nullptr ? "matchingSubsets" : "subsets"].push_back(subset.name);
      }
    }
    if (w != nullptr) {
      out += "   Matching subsets: " + (subsets.empty() ? std::string("none") : subsets) + "\n";
    } else if (!subsets.empty()) {
      out += "   Subsets: " + subsets + "\n";
    }
    const auto& tp = dr->spec.traffic_policy;
    dr_doc["trafficPolicy"] = nlohmann::json::array();
    if (!tp) {
      out += "   No traffic policy\n";
    } else {
      for (const auto& [set, field] : {std::pair{tp->tls.has_value(), "tls"},
                                       {tp->load_balancer.has_value(), "loadBalancer"},
                                       {tp->connection_pool.has_value(), "connectionPool"},
                                       {tp->outlier_detection.has_value(), "outlierDetection"}}) {
        if (!set) continue;
        out += std::string("   Traffic policy: ") + field + "\n";
        dr_doc["trafficPolicy"].push_back(field);
      }
    }
    doc["destinationRule"] = dr_doc;
  } else {
    out += "DestinationRule: none\n";
    doc["destinationRule"] = nullptr;
  }
  auto routes = routingTo(c, s);
  if (routes.empty()) {
    out += "VirtualService: none (the service's default route, round robin over all endpoints)\n";
  }
  doc["virtualServices"] = nlohmann::json::array();
  for (const auto* vs : routes) {
    out += vsLine(*vs) + "\n";
    nlohmann::json vs_doc = refJson(*vs);
    vs_doc["gateways"] = vs->spec.gateways;
    doc["virtualServices"].push_back(vs_doc);
  }
}

void messagesAbout(const std::set<std::string>& origins,
                   const std::vector<AnalysisMessage>& messages, Description& d) {
  std::string lines;
  d.doc["messages"] = nlohmann::json::array();
  for (const auto& m : messages) {
    if (origins.count(m.resource.origin()) == 0) continue;
    lines += "   " + m.toLogLine() + "\n";
    d.doc["messages"].push_back({{"code", std::string(m.type->code)},
                                 {"level", std::string(levelName(m.level()))},
                                 {"origin", m.resource.origin()},
                                 {"message", m.text}});
  }
  if (!lines.empty()) d.text += "--------------------\nAnalyzer messages:\n" + lines;
}

template <typename Spec>
std::string origin(const Resource<Spec>& r) {
  return r.kind + " " + r.metadata.namespace_name + "/" + r.metadata.name;
}

}  // namespace

Result<Description> describeWorkload(const AnalysisContext& c, std::string_view name,
                                     const std::vector<AnalysisMessage>& messages) {
  const AnalyzedWorkload* w = nullptr;
  std::string available;
  for (const auto& candidate : c.workloads()) {
    const std::string full = candidate.name + "." + candidate.namespace_name;
    available += (available.empty() ? "" : ", ") + full;
    if (w != nullptr) continue;
    if (name == candidate.name || name == full ||
        (candidate.local != nullptr &&
         (name == candidate.local->metadata.name ||
          name == candidate.local->metadata.name + "." + candidate.namespace_name))) {
      w = &candidate;
    }
  }
  if (w == nullptr) {
    return notFound("no workload named " + std::string(name) + "; there are: " + available);
  }
  std::set<std::string> origins;
  Description d;
  std::string& out = d.text;
  nlohmann::json& doc = d.doc;
  const std::string identity = control::spiffeIdentity(w->namespace_name, w->service_account);
  out = "Pod: " + w->name + "." + w->namespace_name + "\n";
  doc = {{"pod", w->name + "." + w->namespace_name},
         {"identity", identity},
         {"address", w->address},
         {"labels", w->labels}};
  if (w->local != nullptr) {
    out += "   Workload: LocalWorkload " + ref(*w->local) + "\n";
    origins.insert(origin(*w->local));
    doc["localWorkload"] = refJson(*w->local);
  }
  out += "   Identity: " + identity + "\n";
  if (!w->address.empty()) out += "   Address: " + w->address + "\n";
  out += "   Labels: " + formatLabels(w->labels) + "\n";

  doc["services"] = nlohmann::json::array();
  for (const auto& s : c.registry().services()) {
    const auto members = c.workloadsOf(s);
    if (std::find(members.begin(), members.end(), w) == members.end()) continue;
    out += "--------------------\n";
    nlohmann::json service_doc;
    serviceBlock(c, s, w, out, service_doc);
    doc["services"].push_back(std::move(service_doc));
    if (const auto* dr = c.destinationRuleFor(s, w->namespace_name)) origins.insert(origin(*dr));
    for (const auto* vs : routingTo(c, s)) origins.insert(origin(*vs));
  }
  if (doc["services"].empty()) out += "--------------------\nService: none selects this workload\n";

  out += "--------------------\n";
  const auto mode = c.mtlsMode(*w);
  std::string decided = "mesh default";
  nlohmann::json decided_doc = nullptr;
  for (const auto& pa : c.config().peer_authentications) {
    if (applies(c, selectorOf(pa.spec.selector), pa.metadata.namespace_name, *w)) {
      decided = "PeerAuthentication " + ref(pa);
      decided_doc = refJson(pa);
      origins.insert(origin(pa));
    }
  }
  out += "Effective PeerAuthentication:\n   Workload mTLS mode: " + std::string(modeName(mode)) +
         " (" + decided + ")\n";
  doc["mtls"] = {{"mode", std::string(modeName(mode))}, {"peerAuthentication", decided_doc}};
  std::string policies;
  doc["authorizationPolicies"] = nlohmann::json::array();
  for (const auto& ap : c.config().authorization_policies) {
    if (!applies(c, selectorOf(ap.spec.selector), ap.metadata.namespace_name, *w)) continue;
    policies += "   " + std::string(actionName(ap.spec.action)) + " " + ref(ap) + ", " +
                std::to_string(ap.spec.rules.size()) + " rule(s)\n";
    nlohmann::json ap_doc = refJson(ap);
    ap_doc["action"] = std::string(actionName(ap.spec.action));
    ap_doc["rules"] = ap.spec.rules.size();
    doc["authorizationPolicies"].push_back(std::move(ap_doc));
    origins.insert(origin(ap));
  }
  out += "AuthorizationPolicies:\n" +
         (policies.empty() ? std::string("   none (every request is allowed)\n") : policies);
  std::string ras;
  doc["requestAuthentications"] = nlohmann::json::array();
  for (const auto& ra : c.config().request_authentications) {
    if (!applies(c, selectorOf(ra.spec.selector), ra.metadata.namespace_name, *w)) continue;
    ras += "   " + ref(ra) + "\n";
    doc["requestAuthentications"].push_back(refJson(ra));
    origins.insert(origin(ra));
  }
  if (!ras.empty()) out += "RequestAuthentications:\n" + ras;
  std::string sidecar;
  doc["sidecar"] = nullptr;
  for (const auto& sc : c.config().sidecars) {
    const auto* labels =
        sc.spec.workload_selector && !sc.spec.workload_selector->match_labels.empty()
            ? &sc.spec.workload_selector->match_labels
            : nullptr;
    if (applies(c, labels, sc.metadata.namespace_name, *w) && sidecar.empty()) {
      sidecar = ref(sc);
      doc["sidecar"] = refJson(sc);
      origins.insert(origin(sc));
    }
  }
  out += "Sidecar: " +
         (sidecar.empty() ? std::string("none (the proxy receives every service of the mesh)")
                          : sidecar) +
         "\n";
  doc["telemetries"] = nlohmann::json::array();
  for (const auto& t : c.config().telemetries) {
    if (applies(c, selectorOf(t.spec.selector), t.metadata.namespace_name, *w)) {
      out += "Telemetry: " + ref(t) + "\n";
      doc["telemetries"].push_back(refJson(t));
      origins.insert(origin(t));
    }
  }
  messagesAbout(origins, messages, d);
  return d;
}

Result<Description> describeService(const AnalysisContext& c, std::string_view name,
                                    const std::vector<AnalysisMessage>& messages) {
  std::string ns = "default";
  std::string host(name);
  const Service* s = c.registry().findService(host);
  if (s == nullptr) {
    if (auto dot = host.find('.'); dot != std::string::npos) {
      ns = host.substr(dot + 1);
      host = host.substr(0, dot);
    }
    s = c.resolve(host, ns);
  }
  if (s == nullptr) {
    std::string available;
    for (const auto& svc : c.registry().services()) {
      available += (available.empty() ? "" : ", ") + svc.hostname;
    }
    return notFound("no service named " + std::string(name) + "; there are: " + available);
  }
  std::set<std::string> origins;
  Description d;
  std::string& out = d.text;
  serviceBlock(c, *s, nullptr, out, d.doc);
  if (const auto* dr = c.destinationRuleFor(*s, s->namespace_name)) origins.insert(origin(*dr));
  for (const auto* vs : routingTo(c, *s)) origins.insert(origin(*vs));
  out += "--------------------\nEndpoints:\n";
  const auto* dr = c.destinationRuleFor(*s, s->namespace_name);
  const auto& endpoints = c.registry().endpoints(s->hostname);
  if (endpoints.empty()) out += "   none: requests get 503 UH (no healthy upstream)\n";
  d.doc["endpoints"] = nlohmann::json::array();
  for (const auto& e : endpoints) {
    std::string subsets;
    nlohmann::json subset_names = nlohmann::json::array();
    if (dr != nullptr) {
      for (const auto& subset : dr->spec.subsets) {
        if (labelsMatch(subset.labels, e.labels)) {
          subsets += (subsets.empty() ? "" : ",") + subset.name;
          subset_names.push_back(subset.name);
        }
      }
    }
    const std::string workload =
        e.workload_name.empty() ? std::string() : e.workload_name + "." + e.namespace_name;
    out += "   " + e.address + ":" + std::to_string(e.port) + "  " +
           (workload.empty() ? std::string("-") : workload) + "  " + formatLabels(e.labels) +
           (subsets.empty() ? "" : "  subsets: " + subsets) + "\n";
    d.doc["endpoints"].push_back({{"address", e.address},
                                  {"port", e.port},
                                  {"workload", workload},
                                  {"labels", e.labels},
                                  {"subsets", subset_names}});
  }
  for (const auto* w : c.workloadsOf(*s)) {
    for (const auto& pa : c.config().peer_authentications) {
      if (applies(c, selectorOf(pa.spec.selector), pa.metadata.namespace_name, *w)) {
        origins.insert(origin(pa));
      }
    }
    for (const auto& ap : c.config().authorization_policies) {
      if (applies(c, selectorOf(ap.spec.selector), ap.metadata.namespace_name, *w)) {
        origins.insert(origin(ap));
      }
    }
  }
  std::string policies;
  d.doc["workloadPolicies"] = nlohmann::json::array();
  for (const auto& o : origins) {
    if (o.rfind("PeerAuthentication", 0) == 0 || o.rfind("AuthorizationPolicy", 0) == 0) {
      policies += "   " + o + "\n";
      d.doc["workloadPolicies"].push_back(o);
    }
  }
  if (!policies.empty()) out += "--------------------\nPolicies on its workloads:\n" + policies;
  messagesAbout(origins, messages, d);
  return d;
}

}  // namespace sheave::cli
