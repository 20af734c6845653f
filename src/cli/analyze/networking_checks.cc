// Istio's networking analyzers: references, conflicts and unreachable rules
// in VirtualServices, DestinationRules, Gateways, Sidecars, ServiceEntries,
// Telemetries and Services, plus Sheave's protocol checks (SHV0005, SHV0006,
// SHV0010).
#include <re2/re2.h>

#include <algorithm>
#include <set>

#include "cli/analyze/analyzer.h"
#include "control/registry/hostname.h"
#include "control/registry/protocol.h"

namespace sheave::cli {

using control::Resource;
using control::Service;
using control::StringMatch;
using control::VirtualService;

namespace {

bool boundToMesh(const VirtualService& vs) {
  return vs.gateways.empty() ||
         std::find(vs.gateways.begin(), vs.gateways.end(), "mesh") != vs.gateways.end();
}

// A gateway reference as written ("name" or "namespace/name") from a resource
// in namespace_name.
const Resource<control::Gateway>* findGateway(const control::ConfigSet& config,
                                              std::string_view ref,
                                              std::string_view namespace_name) {
  std::string ns(namespace_name);
  std::string name(ref);
  if (auto slash = ref.find('/'); slash != std::string_view::npos) {
    ns = std::string(ref.substr(0, slash));
    name = std::string(ref.substr(slash + 1));
  } else if (auto dot = ref.find('.'); dot != std::string_view::npos) {
    // Istio's older "name.namespace" form.
    name = std::string(ref.substr(0, dot));
    ns = std::string(ref.substr(dot + 1));
  }
  for (const auto& gw : config.gateways) {
    if (gw.metadata.name == name && gw.metadata.namespace_name == ns) return &gw;
  }
  return nullptr;
}

// Gateway server host "ns/host" or "host" against a VirtualService host.
bool gatewayHostCovers(std::string_view server_host, std::string_view vs_host) {
  if (auto slash = server_host.find('/'); slash != std::string_view::npos) {
    server_host.remove_prefix(slash + 1);
  }
  if (server_host == "*" || server_host == vs_host) return true;
  if (server_host.size() > 1 && server_host.substr(0, 2) == "*.") {
    std::string_view suffix = server_host.substr(1);  // ".example.com"
    if (vs_host.size() > suffix.size() &&
        vs_host.substr(vs_host.size() - suffix.size()) == suffix) {
      return true;
    }
  }
  if (vs_host.size() > 1 && vs_host.substr(0, 2) == "*.") {
    std::string_view suffix = vs_host.substr(1);
    return server_host.size() > suffix.size() &&
           server_host.substr(server_host.size() - suffix.size()) == suffix;
  }
  return false;
}

std::string stringMatchKey(const std::optional<StringMatch>& m) {
  if (!m) return "-";
  return std::to_string(static_cast<int>(m->kind)) + ":" + m->value;
}

std::string stringMatchMapKey(const std::map<std::string, StringMatch>& m) {
  std::string out;
  for (const auto& [k, v] : m) {
    out += k + "=" + std::to_string(static_cast<int>(v.kind)) + ":" + v.value + ";";
  }
  return out;
}

// Two matches with the same key match the same requests.
std::string matchKey(const control::HTTPMatchRequest& m) {
  std::string key = stringMatchKey(m.uri) + "|" + stringMatchKey(m.scheme) + "|" +
                    stringMatchKey(m.method) + "|" + stringMatchKey(m.authority) + "|" +
                    stringMatchMapKey(m.headers) + "|" + std::to_string(m.port) + "|" +
                    formatLabels(m.source_labels) + "|" + stringMatchMapKey(m.query_params) + "|" +
                    (m.ignore_uri_case ? "i" : "") + "|" + stringMatchMapKey(m.without_headers) +
                    "|" + m.source_namespace + "|";
  std::vector<std::string> gws = m.gateways;
  std::sort(gws.begin(), gws.end());
  for (const auto& g : gws) key += g + ",";
  return key;
}

// A match that every request satisfies: no condition, or only "uri prefix /".
bool matchesEverything(const control::HTTPMatchRequest& m) {
  control::HTTPMatchRequest copy = m;
  copy.name.clear();
  if (copy.uri && copy.uri->kind == StringMatch::Kind::kPrefix && copy.uri->value == "/") {
    copy.uri.reset();
  }
  return matchKey(copy) == matchKey(control::HTTPMatchRequest{});
}

void checkRegex(AnalysisContext& c, const Resource<VirtualService>& vs, const std::string& where,
                const StringMatch& m) {
  if (m.kind != StringMatch::Kind::kRegex) return;
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(m.value, options);
  if (!re.ok()) {
    c.report(messages::kInvalidRegexp, vs,
             "Field \"" + where + "\" regular expression invalid: \"" + m.value + "\" (" +
                 re.error() + ")");
  }
}

void checkVirtualServiceRegexes(AnalysisContext& c, const Resource<VirtualService>& vs) {
  for (size_t i = 0; i < vs.spec.http.size(); ++i) {
    const auto& route = vs.spec.http[i];
    const std::string prefix = "http[" + std::to_string(i) + "].match";
    for (const auto& m : route.match) {
      if (m.uri) checkRegex(c, vs, prefix + ".uri", *m.uri);
      if (m.scheme) checkRegex(c, vs, prefix + ".scheme", *m.scheme);
      if (m.method) checkRegex(c, vs, prefix + ".method", *m.method);
      if (m.authority) checkRegex(c, vs, prefix + ".authority", *m.authority);
      for (const auto& [h, sm] : m.headers) checkRegex(c, vs, prefix + ".headers." + h, sm);
      for (const auto& [q, sm] : m.query_params) {
        checkRegex(c, vs, prefix + ".queryParams." + q, sm);
      }
      for (const auto& [h, sm] : m.without_headers) {
        checkRegex(c, vs, prefix + ".withoutHeaders." + h, sm);
      }
    }
    if (route.rewrite && route.rewrite->uri_regex_rewrite) {
      checkRegex(c, vs, "http[" + std::to_string(i) + "].rewrite.uriRegexRewrite.match",
                 StringMatch{StringMatch::Kind::kRegex, route.rewrite->uri_regex_rewrite->match});
    }
  }
}

// IST0130 / IST0131: rules after a catch-all, and matches that repeat an
// earlier rule's.
void checkUnreachableRules(AnalysisContext& c, const Resource<VirtualService>& vs) {
  std::map<std::string, size_t> seen;  // match key -> rule index
  std::optional<size_t> catch_all;
  for (size_t i = 0; i < vs.spec.http.size(); ++i) {
    const auto& route = vs.spec.http[i];
    if (catch_all) {
      c.report(messages::kVirtualServiceUnreachableRule, vs,
               "VirtualService rule #" + std::to_string(i) + " not used (rule #" +
                   std::to_string(*catch_all) + " before it matches every request).");
      continue;
    }
    if (route.match.empty()) {
      catch_all = i;
      continue;
    }
    size_t duplicates = 0;
    for (size_t j = 0; j < route.match.size(); ++j) {
      const auto& m = route.match[j];
      if (matchesEverything(m)) catch_all = i;
      auto key = matchKey(m);
      auto it = seen.find(key);
      if (it != seen.end()) {
        ++duplicates;
        c.report(messages::kVirtualServiceIneffectiveMatch, vs,
                 "VirtualService rule #" + std::to_string(i) + " match #" + std::to_string(j) +
                     " is not used (duplicate/overlapping match in rule #" +
                     std::to_string(it->second) + ").");
      } else {
        seen.emplace(key, i);
      }
    }
    if (duplicates == route.match.size()) {
      c.report(messages::kVirtualServiceUnreachableRule, vs,
               "VirtualService rule #" + std::to_string(i) +
                   " not used (all matches used by prior rules).");
    }
  }
}

void checkDestination(AnalysisContext& c, const Resource<VirtualService>& vs,
                      const control::Destination& d, bool gateway_bound) {
  if (d.host.empty() || control::isWildcardHostname(d.host)) return;
  const Service* service = c.resolve(d.host, vs.metadata.namespace_name);
  if (service == nullptr) {
    c.report(messages::kReferencedResourceNotFound, vs,
             "Referenced host not found: \"" + d.host + "\"");
    return;
  }
  if (!d.subset.empty()) {
    const auto* dr = c.destinationRuleFor(*service, vs.metadata.namespace_name);
    bool found = false;
    if (dr != nullptr) {
      for (const auto& s : dr->spec.subsets) found = found || s.name == d.subset;
    }
    if (!found) {
      c.report(messages::kReferencedResourceNotFound, vs,
               "Referenced host+subset in destinationrule not found: \"" + d.host + "+" + d.subset +
                   "\"");
    }
  }
  if (gateway_bound && !d.port && service->ports.size() > 1) {
    std::string ports;
    for (const auto& p : service->ports) {
      ports += (ports.empty() ? "" : " ") + std::to_string(p.port);
    }
    c.report(messages::kVirtualServiceDestinationPortSelectorRequired, vs,
             "This VirtualService routes to a service \"" + d.host +
                 "\" that exposes multiple ports [" + ports +
                 "]. Specifying a port in the destination is required to disambiguate.");
  }
}

void checkDeprecatedFields(AnalysisContext& c, const Resource<VirtualService>& vs) {
  for (size_t i = 0; i < vs.spec.http.size(); ++i) {
    const auto& r = vs.spec.http[i];
    const std::string at = "http[" + std::to_string(i) + "]";
    if (r.mirror_percent) {
      c.report(messages::kDeprecated, vs,
               "Deprecated: " + at + ".mirrorPercent; use mirrorPercentage.value");
    }
    if (r.fault && r.fault->delay && r.fault->delay->percent != 0) {
      c.report(messages::kDeprecated, vs,
               "Deprecated: " + at + ".fault.delay.percent; use percentage.value");
    }
    if (r.cors_policy && !r.cors_policy->allow_origin.empty()) {
      c.report(messages::kDeprecated, vs,
               "Deprecated: " + at + ".corsPolicy.allowOrigin; use allowOrigins");
    }
  }
}

void checkVirtualServices(AnalysisContext& c) {
  const auto& config = c.config();
  std::map<std::string, std::vector<const Resource<VirtualService>*>> mesh_hosts;
  for (const auto& vs : config.virtual_services) {
    std::vector<const Resource<control::Gateway>*> gateways;
    bool gateway_bound = false;
    for (const auto& g : vs.spec.gateways) {
      if (g == "mesh") continue;
      gateway_bound = true;
      const auto* gw = findGateway(config, g, vs.metadata.namespace_name);
      if (gw == nullptr) {
        c.report(messages::kReferencedResourceNotFound, vs,
                 "Referenced gateway not found: \"" + g + "\"");
      } else {
        gateways.push_back(gw);
      }
    }
    for (const auto& r : vs.spec.http) {
      for (const auto& m : r.match) {
        for (const auto& g : m.gateways) {
          if (g != "mesh" && findGateway(config, g, vs.metadata.namespace_name) == nullptr) {
            c.report(messages::kReferencedResourceNotFound, vs,
                     "Referenced gateway not found: \"" + g + "\"");
          }
        }
      }
    }
    for (const auto* gw : gateways) {
      std::vector<std::string> missing;
      for (const auto& h : vs.spec.hosts) {
        bool covered = false;
        for (const auto& server : gw->spec.servers) {
          for (const auto& sh : server.hosts) covered = covered || gatewayHostCovers(sh, h);
        }
        if (!covered) missing.push_back(h);
      }
      if (!missing.empty() && missing.size() == vs.spec.hosts.size()) {
        std::string list;
        for (const auto& h : missing) list += (list.empty() ? "" : " ") + h;
        c.report(messages::kVirtualServiceHostNotFoundInGateway, vs,
                 "one or more host [" + list + "] defined in VirtualService " +
                     vs.metadata.namespace_name + "/" + vs.metadata.name +
                     " not found in Gateway " + gw->metadata.namespace_name + "/" +
                     gw->metadata.name + ".");
      }
    }
    for (const auto& r : vs.spec.http) {
      for (const auto& d : r.route) checkDestination(c, vs, d.destination, gateway_bound);
      if (r.mirror) checkDestination(c, vs, *r.mirror, false);
      for (const auto& m : r.mirrors) checkDestination(c, vs, m.destination, false);
    }
    for (const auto& r : vs.spec.tcp) {
      for (const auto& d : r.route) checkDestination(c, vs, d.destination, false);
    }
    for (const auto& r : vs.spec.tls) {
      for (const auto& d : r.route) checkDestination(c, vs, d.destination, false);
    }
    checkVirtualServiceRegexes(c, vs);
    checkUnreachableRules(c, vs);
    checkDeprecatedFields(c, vs);
    if (boundToMesh(vs.spec)) {
      for (const auto& h : vs.spec.hosts) {
        mesh_hosts[control::resolveHostname(h, vs.metadata.namespace_name,
                                            c.registry().domainSuffix())]
            .push_back(&vs);
      }
    }
  }
  for (const auto& [host, list] : mesh_hosts) {
    if (list.size() < 2) continue;
    std::string names;
    for (const auto* vs : list) {
      names += (names.empty() ? "" : ",") + vs->metadata.namespace_name + "/" + vs->metadata.name;
    }
    for (const auto* vs : list) {
      c.report(messages::kConflictingMeshGatewayVirtualServiceHosts, *vs,
               "The VirtualServices " + names + " associated with mesh gateway define the same " +
                   "host " + host + " which can lead to undefined behavior. This can be fixed " +
                   "by merging the conflicting VirtualServices into a single resource.");
    }
  }
}

void checkDestinationRules(AnalysisContext& c) {
  for (const auto& dr : c.config().destination_rules) {
    const Service* service = c.resolve(dr.spec.host, dr.metadata.namespace_name);
    if (service != nullptr) {
      const auto& endpoints = c.registry().endpoints(service->hostname);
      for (const auto& subset : dr.spec.subsets) {
        bool any = std::any_of(endpoints.begin(), endpoints.end(),
                               [&](const auto& e) { return labelsMatch(subset.labels, e.labels); });
        if (!any) {
          c.report(messages::kDestinationRuleSubsetNotSelectPods, dr,
                   "The Subset " + subset.name +
                       " defined in the DestinationRule does not select any pods. Which may "
                       "lead to 503 UH (NoHealthyUpstream).");
        }
      }
    }
    auto check_tls = [&](const std::optional<control::ClientTLSSettings>& tls,
                         const std::string& host) {
      if (!tls) return;
      using control::ClientTLSMode;
      if (tls->mode != ClientTLSMode::kSimple && tls->mode != ClientTLSMode::kMutual) return;
      if (!tls->ca_certificates.empty() || !tls->credential_name.empty()) return;
      if (tls->insecure_skip_verify.value_or(false)) return;
      c.report(messages::kNoServerCertificateVerificationDestinationLevel, dr,
               "DestinationRule " + dr.metadata.name + " in namespace " +
                   dr.metadata.namespace_name + " has TLS mode set to " +
                   (tls->mode == ClientTLSMode::kSimple ? "SIMPLE" : "MUTUAL") +
                   " but no caCertificates are set to validate server identity for host: " + host);
    };
    if (dr.spec.traffic_policy) check_tls(dr.spec.traffic_policy->tls, dr.spec.host);
  }
}

void checkSidecars(AnalysisContext& c) {
  std::map<std::string, std::vector<const Resource<control::Sidecar>*>> without_selector;
  std::map<std::string, std::vector<const Resource<control::Sidecar>*>> by_workload;
  for (const auto& sc : c.config().sidecars) {
    const auto* labels =
        sc.spec.workload_selector ? &sc.spec.workload_selector->match_labels : nullptr;
    if (labels == nullptr || labels->empty()) {
      without_selector[sc.metadata.namespace_name].push_back(&sc);
      continue;
    }
    auto picked = c.selected(labels, sc.metadata.namespace_name);
    if (picked.empty()) {
      c.report(messages::kNoMatchingWorkloadsFound, sc,
               "No matching workloads for this resource with the following labels: " +
                   formatLabels(*labels));
    }
    for (const auto* w : picked) by_workload[w->namespace_name + "/" + w->name].push_back(&sc);
  }
  for (const auto& [ns, list] : without_selector) {
    if (list.size() < 2) continue;
    std::string names;
    for (const auto* sc : list) names += (names.empty() ? "" : ",") + sc->metadata.name;
    for (const auto* sc : list) {
      c.report(messages::kMultipleSidecarsWithoutWorkloadSelectors, *sc,
               "The Sidecars [" + names + "] in namespace \"" + ns +
                   "\" have no workload selector, which can lead to undefined behavior.");
    }
  }
  for (const auto& [workload, list] : by_workload) {
    if (list.size() < 2) continue;
    std::string names;
    for (const auto* sc : list) names += (names.empty() ? "" : ",") + sc->metadata.name;
    for (const auto* sc : list) {
      c.report(messages::kConflictingSidecarWorkloadSelectors, *sc,
               "The Sidecars [" + names + "] in namespace \"" + sc->metadata.namespace_name +
                   "\" select the same workload pod \"" + workload +
                   "\", which can lead to undefined behavior.");
    }
  }
}

void checkGateways(AnalysisContext& c) {
  const auto& gateways = c.config().gateways;
  for (const auto& gw : gateways) {
    // A gateway's selector looks at workloads in every namespace.
    bool any = std::any_of(c.workloads().begin(), c.workloads().end(),
                           [&](const auto& w) { return labelsMatch(gw.spec.selector, w.labels); });
    if (!any) {
      c.report(messages::kReferencedResourceNotFound, gw,
               "Referenced selector not found: \"" + formatLabels(gw.spec.selector) + "\"");
    }
  }
  for (size_t i = 0; i < gateways.size(); ++i) {
    for (size_t j = 0; j < gateways.size(); ++j) {
      if (i == j || gateways[i].spec.selector != gateways[j].spec.selector) continue;
      for (const auto& a : gateways[i].spec.servers) {
        for (const auto& b : gateways[j].spec.servers) {
          if (!a.port || !b.port || a.port->number != b.port->number) continue;
          bool tls_a = a.tls.has_value(), tls_b = b.tls.has_value();
          if (tls_a || tls_b) continue;  // SNI tells TLS servers apart
          std::vector<std::string> shared;
          for (const auto& ha : a.hosts) {
            for (const auto& hb : b.hosts) {
              if (ha == hb) shared.push_back(ha);
            }
          }
          if (shared.empty()) continue;
          std::string hosts;
          for (const auto& h : shared) hosts += (hosts.empty() ? "" : " ") + h;
          c.report(messages::kConflictingGateways, gateways[i],
                   "Conflict with gateways " + gateways[j].metadata.namespace_name + "/" +
                       gateways[j].metadata.name + " (workload selector " +
                       formatLabels(gateways[i].spec.selector) + ", port " +
                       std::to_string(a.port->number) + ", hosts [" + hosts + "]).");
        }
      }
    }
  }
}

void checkTelemetries(AnalysisContext& c) {
  std::map<std::string, std::vector<const Resource<control::Telemetry>*>> without_selector;
  for (const auto& t : c.config().telemetries) {
    const auto* labels = t.spec.selector ? &t.spec.selector->match_labels : nullptr;
    if (labels == nullptr || labels->empty()) {
      if (!t.spec.target_ref && t.spec.target_refs.empty()) {
        without_selector[t.metadata.namespace_name].push_back(&t);
      }
      continue;
    }
    if (c.selected(labels, t.metadata.namespace_name).empty()) {
      c.report(messages::kNoMatchingWorkloadsFound, t,
               "No matching workloads for this resource with the following labels: " +
                   formatLabels(*labels));
    }
  }
  for (const auto& [ns, list] : without_selector) {
    if (list.size() < 2) continue;
    std::string names;
    for (const auto* t : list) names += (names.empty() ? "" : ",") + t->metadata.name;
    for (const auto* t : list) {
      c.report(messages::kMultipleTelemetriesWithoutWorkloadSelectors, *t,
               "The Telemetries [" + names + "] in namespace \"" + ns +
                   "\" have no workload selector, which can lead to undefined behavior.");
    }
  }
}

void checkServiceEntries(AnalysisContext& c) {
  for (const auto& se : c.config().service_entries) {
    if (!se.spec.addresses.empty()) continue;
    if (se.spec.resolution == control::ServiceEntryResolution::kNone) continue;
    bool needs_address = std::any_of(se.spec.ports.begin(), se.spec.ports.end(), [](auto& p) {
      auto proto = control::parseProtocol(p.protocol);
      return proto == control::Protocol::kTcp || proto == control::Protocol::kUnsupported;
    });
    if (needs_address) {
      c.report(messages::kServiceEntryAddressesRequired, se,
               "ServiceEntry addresses are required for this protocol.");
    }
  }
}

// Well-known ports of protocols where the server speaks first, which the
// registry does not already treat as TCP when undeclared.
std::string_view serverFirstProtocol(int32_t port) {
  switch (port) {
    case 21:
      return "FTP";
    case 22:
      return "SSH";
    case 110:
      return "POP3";
    case 143:
      return "IMAP";
    default:
      return {};
  }
}

void checkServices(AnalysisContext& c) {
  using control::Protocol;
  for (const auto& svc : c.config().services) {
    const Service* service = c.registry().findService(control::serviceHostname(
        svc.metadata.name, svc.metadata.namespace_name, c.registry().domainSuffix()));
    bool all_tls = !svc.spec.ports.empty();
    for (const auto& port : svc.spec.ports) {
      const Protocol proto = control::protocolForServicePort(port);
      const std::string target =
          port.target_port.name.empty()
              ? std::to_string(port.target_port.isSet() ? port.target_port.number : port.port)
              : port.target_port.name;
      if (proto == Protocol::kUnsupported) {
        c.report(messages::kPortNameIsNotUnderNamingConvention, svc,
                 "Port name " + port.name + " (port: " + std::to_string(port.port) +
                     ", targetPort: " + target +
                     ") doesn't follow the naming convention of Istio port.");
        auto server_first = serverFirstProtocol(port.port);
        if (server_first.empty()) server_first = serverFirstProtocol(port.target_port.number);
        if (!server_first.empty()) {
          c.report(messages::kServerFirstProtocolUndeclared, svc,
                   "Port " + std::to_string(port.port) + " is usually " +
                       std::string(server_first) +
                       ", where the server speaks first; undeclared, the sidecar waits for "
                       "the client's first bytes to detect the protocol and each connection "
                       "stalls until that times out. Name the port tcp-" +
                       (port.name.empty() ? std::string("...") : port.name) +
                       " or set appProtocol: tcp.");
        }
      }
      const bool app_tls = control::isTls(proto);
      all_tls = all_tls && app_tls;
      if (app_tls && service != nullptr) {
        std::vector<std::string> meshed;
        for (const auto* w : c.workloadsOf(*service)) {
          if (c.mtlsMode(*w) != control::MutualTLSMode::kDisable) meshed.push_back(w->name);
        }
        if (!meshed.empty()) {
          c.report(messages::kDoubleEncryption, svc,
                   "Port " + std::to_string(port.port) + " (" +
                       std::string(control::protocolName(proto)) +
                       ") carries the application's own TLS, and the mesh wraps it in mutual TLS "
                       "as well: traffic is encrypted twice and the sidecars can route it only by "
                       "SNI, never by path or header. Either let the mesh do the encryption (plain "
                       "HTTP in the application) or disable mesh mTLS for this port.");
        }
      }
    }
    if (all_tls && service != nullptr) {
      for (const auto* vs : c.meshVirtualServicesFor(service->hostname)) {
        if (!vs->spec.http.empty()) {
          c.report(messages::kHttpRoutesOnTlsPort, *vs,
                   "The http routes for " + service->hostname +
                       " never apply: every port of the service carries TLS, which the sidecar "
                       "cannot read. Route it with tls routes (sniHosts) instead.");
        }
      }
    }
  }
}

}  // namespace

void runNetworkingChecks(AnalysisContext& context) {
  checkVirtualServices(context);
  checkDestinationRules(context);
  checkSidecars(context);
  checkGateways(context);
  checkTelemetries(context);
  checkServiceEntries(context);
  checkServices(context);
}

}  // namespace sheave::cli
