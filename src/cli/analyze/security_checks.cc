// Security analyzers: Istio's selector and mTLS-conflict checks, and
// Sheave's AuthorizationPolicy checks (shadowed policies, rules that can never
// match, paths the proxy's normalization would never produce) and STRICT
// workloads reachable from outside the mesh.
#include <algorithm>

#include "cli/analyze/analyzer.h"

namespace sheave::cli {

using control::AuthorizationAction;
using control::AuthorizationPolicy;
using control::MutualTLSMode;
using control::Resource;

namespace {

std::string_view modeName(MutualTLSMode mode) {
  switch (mode) {
    case MutualTLSMode::kDisable:
      return "DISABLE";
    case MutualTLSMode::kPermissive:
      return "PERMISSIVE";
    case MutualTLSMode::kStrict:
      return "STRICT";
    case MutualTLSMode::kUnset:
      return "UNSET";
  }
  return "UNSET";
}

const std::map<std::string, std::string>* selectorLabels(
    const std::optional<control::WorkloadSelector>& selector) {
  return selector && !selector->match_labels.empty() ? &selector->match_labels : nullptr;
}

template <typename Spec>
void checkSelector(AnalysisContext& c, const Resource<Spec>& resource,
                   const std::optional<control::WorkloadSelector>& selector) {
  const auto* labels = selectorLabels(selector);
  if (labels == nullptr) return;
  if (c.selected(labels, resource.metadata.namespace_name).empty()) {
    c.report(messages::kNoMatchingWorkloadsFound, resource,
             "No matching workloads for this resource with the following labels: " +
                 formatLabels(*labels));
  }
}

// The PeerAuthentication that decides a workload's mode, as
// PeerAuthenticationPolicy composes them: workload level, then namespace,
// then mesh; nullptr when none does (PERMISSIVE by default).
const Resource<control::PeerAuthentication>* decidingPeerAuthentication(const AnalysisContext& c,
                                                                        const AnalyzedWorkload& w) {
  auto mode_of = [](const Resource<control::PeerAuthentication>& pa) {
    return pa.spec.mtls ? pa.spec.mtls->mode : MutualTLSMode::kUnset;
  };
  const auto& all = c.config().peer_authentications;
  for (const auto& pa : all) {
    const auto* labels = selectorLabels(pa.spec.selector);
    if (pa.metadata.namespace_name == w.namespace_name && labels != nullptr &&
        labelsMatch(*labels, w.labels) && mode_of(pa) != MutualTLSMode::kUnset) {
      return &pa;
    }
  }
  for (const std::string& ns : {w.namespace_name, c.options().root_namespace}) {
    for (const auto& pa : all) {
      if (pa.metadata.namespace_name == ns && selectorLabels(pa.spec.selector) == nullptr &&
          mode_of(pa) != MutualTLSMode::kUnset) {
        return &pa;
      }
    }
  }
  return nullptr;
}

void checkMtlsConflicts(AnalysisContext& c) {
  using control::ClientTLSMode;
  for (const auto& dr : c.config().destination_rules) {
    if (!dr.spec.traffic_policy || !dr.spec.traffic_policy->tls) continue;
    const ClientTLSMode mode = dr.spec.traffic_policy->tls->mode;
    if (mode != ClientTLSMode::kDisable && mode != ClientTLSMode::kIstioMutual) continue;
    const auto* service = c.resolve(dr.spec.host, dr.metadata.namespace_name);
    if (service == nullptr) continue;
    for (const auto* w : c.workloadsOf(*service)) {
      const MutualTLSMode server = c.mtlsMode(*w);
      const bool conflict =
          (mode == ClientTLSMode::kDisable && server == MutualTLSMode::kStrict) ||
          (mode == ClientTLSMode::kIstioMutual && server == MutualTLSMode::kDisable);
      if (!conflict) continue;
      const auto* pa = decidingPeerAuthentication(c, *w);
      std::string policy = pa == nullptr ? std::string("(mesh default)")
                                         : pa->metadata.namespace_name + "/" + pa->metadata.name;
      c.report(messages::kMTLSPolicyConflict, dr,
               "A DestinationRule and Policy are in conflict with regards to mTLS for host " +
                   service->hostname + ". The DestinationRule \"" + dr.metadata.namespace_name +
                   "/" + dr.metadata.name + "\" specifies that mTLS must be " +
                   (mode == ClientTLSMode::kIstioMutual ? "true" : "false") +
                   " but the Policy object \"" + policy + "\" specifies " +
                   std::string(modeName(server)) + ".");
      break;  // one message per DestinationRule
    }
  }
}

bool emptyRule(const control::Rule& rule) {
  return rule.from.empty() && rule.to.empty() && rule.when.empty();
}

bool decidesEverything(const AuthorizationPolicy& p) {
  return std::any_of(p.rules.begin(), p.rules.end(), emptyRule);
}

// Whether policy `outer` applies to every workload `inner` applies to.
bool covers(const AnalysisContext& c, const Resource<AuthorizationPolicy>& outer,
            const Resource<AuthorizationPolicy>& inner) {
  const auto* outer_labels = selectorLabels(outer.spec.selector);
  if (outer_labels == nullptr) {
    return outer.metadata.namespace_name == c.options().root_namespace ||
           outer.metadata.namespace_name == inner.metadata.namespace_name;
  }
  const auto* inner_labels = selectorLabels(inner.spec.selector);
  return outer.metadata.namespace_name == inner.metadata.namespace_name &&
         inner_labels != nullptr && labelsMatch(*outer_labels, *inner_labels);
}

std::string where(const Resource<AuthorizationPolicy>& p) {
  control::SourceLocation line = p.source;
  line.column = 0;
  return p.metadata.namespace_name + "/" + p.metadata.name + " (" + line.toString() + ")";
}

void checkShadowedPolicies(AnalysisContext& c) {
  const auto& policies = c.config().authorization_policies;
  for (size_t i = 0; i < policies.size(); ++i) {
    const auto& p = policies[i];
    if (p.spec.action != AuthorizationAction::kAllow) continue;
    for (size_t j = 0; j < policies.size(); ++j) {
      const auto& other = policies[j];
      if (i == j || !decidesEverything(other.spec) || !covers(c, other, p)) continue;
      if (other.spec.action == AuthorizationAction::kDeny) {
        c.report(messages::kAuthorizationPolicyShadowed, p,
                 "DENY policy " + where(other) +
                     " denies every request to these workloads, and DENY is evaluated before "
                     "ALLOW: this policy never allows anything.");
        break;
      }
      if (other.spec.action == AuthorizationAction::kAllow &&
          (!decidesEverything(p.spec) || j < i)) {
        c.report(messages::kAuthorizationPolicyShadowed, p,
                 "ALLOW policy " + where(other) +
                     " already allows every request to these workloads: this policy's rules "
                     "add nothing.");
        break;
      }
    }
  }
}

template <typename T>
bool allExcluded(const std::vector<T>& values, const std::vector<T>& excluded) {
  if (values.empty()) return false;
  return std::all_of(values.begin(), values.end(), [&](const T& v) {
    return std::find(excluded.begin(), excluded.end(), v) != excluded.end();
  });
}

bool requestAuthenticationApplies(const AnalysisContext& c, const AnalyzedWorkload& w) {
  for (const auto& ra : c.config().request_authentications) {
    const auto* labels = selectorLabels(ra.spec.selector);
    if (labels == nullptr) {
      if (ra.metadata.namespace_name == c.options().root_namespace ||
          ra.metadata.namespace_name == w.namespace_name) {
        return true;
      }
    } else if (ra.metadata.namespace_name == w.namespace_name && labelsMatch(*labels, w.labels)) {
      return true;
    }
  }
  return false;
}

// Why a rule can never match, or "".
std::string neverMatchesReason(const control::Rule& rule,
                               const std::vector<const AnalyzedWorkload*>& workloads,
                               const AnalysisContext& c) {
  for (const auto& to : rule.to) {
    if (!to.operation) continue;
    const auto& op = *to.operation;
    if (allExcluded(op.methods, op.not_methods)) return "every method it names is in notMethods";
    if (allExcluded(op.paths, op.not_paths)) return "every path it names is in notPaths";
    if (allExcluded(op.hosts, op.not_hosts)) return "every host it names is in notHosts";
    if (allExcluded(op.ports, op.not_ports)) return "every port it names is in notPorts";
  }
  bool needs_peer_identity = false;
  bool needs_request_identity = false;
  for (const auto& from : rule.from) {
    if (!from.source) continue;
    needs_peer_identity = needs_peer_identity || !from.source->principals.empty() ||
                          !from.source->namespaces.empty() ||
                          !from.source->service_accounts.empty();
    needs_request_identity = needs_request_identity || !from.source->request_principals.empty();
  }
  for (const auto& cond : rule.when) {
    if (cond.key.rfind("request.auth.", 0) == 0 && !cond.values.empty()) {
      needs_request_identity = true;
    }
    if ((cond.key == "source.principal" || cond.key == "source.namespace") &&
        !cond.values.empty()) {
      needs_peer_identity = true;
    }
  }
  if (workloads.empty()) return "";
  if (needs_peer_identity &&
      std::all_of(workloads.begin(), workloads.end(), [&](const AnalyzedWorkload* w) {
        return c.mtlsMode(*w) == MutualTLSMode::kDisable;
      })) {
    return "it matches on the caller's principal or namespace, which only mutual TLS provides, "
           "and PeerAuthentication sets mTLS to DISABLE for these workloads";
  }
  if (needs_request_identity &&
      std::none_of(workloads.begin(), workloads.end(), [&](const AnalyzedWorkload* w) {
        return requestAuthenticationApplies(c, *w);
      })) {
    return "it matches on requestPrincipals or request.auth claims, but no "
           "RequestAuthentication applies to these workloads, so no request ever has them";
  }
  return "";
}

// Why a path as written can never equal a normalized request path, or "".
std::string unnormalizedReason(std::string_view path) {
  std::string_view p = path;
  if (!p.empty() && p.front() == '*') p.remove_prefix(1);
  if (!p.empty() && p.back() == '*') p.remove_suffix(1);
  if (p.empty()) return "";
  auto contains = [&](std::string_view what) { return p.find(what) != std::string_view::npos; };
  if (path.front() != '*' && p.front() != '/') return "it does not begin with '/'";
  if (contains("?") || contains("#")) {
    return "the query or fragment is not part of the path the policy matches";
  }
  if (contains("//")) return "'//' is merged into '/' (merge_slashes)";
  if (contains("/./") || contains("/../") || p.ends_with("/.") || p.ends_with("/..")) {
    return "'.' and '..' segments are resolved (RFC 3986 normalization)";
  }
  if (contains("\\")) return "backslashes are turned into '/'";
  for (std::string_view enc : {"%2f", "%2F", "%5c", "%5C"}) {
    if (contains(enc)) return "escaped slashes are decoded or rejected";
  }
  for (size_t i = 0; i + 2 < p.size(); ++i) {
    if (p[i] != '%') continue;
    const char a = static_cast<char>(std::toupper(static_cast<unsigned char>(p[i + 1])));
    const char b = static_cast<char>(std::toupper(static_cast<unsigned char>(p[i + 2])));
    const int value =
        (a >= 'A' ? a - 'A' + 10 : a - '0') * 16 + (b >= 'A' ? b - 'A' + 10 : b - '0');
    if (std::isalnum(value) || value == '-' || value == '.' || value == '_' || value == '~') {
      return "percent-encoded unreserved characters are decoded";
    }
  }
  return "";
}

void checkAuthorizationRules(AnalysisContext& c) {
  for (const auto& p : c.config().authorization_policies) {
    if (p.spec.action == AuthorizationAction::kCustom) continue;
    const auto workloads = c.selected(selectorLabels(p.spec.selector), p.metadata.namespace_name);
    const bool deny = p.spec.action == AuthorizationAction::kDeny;
    for (size_t i = 0; i < p.spec.rules.size(); ++i) {
      const auto& rule = p.spec.rules[i];
      std::string reason = neverMatchesReason(rule, workloads, c);
      if (!reason.empty()) {
        c.report(messages::kAuthorizationRuleNeverMatches, p,
                 "rule #" + std::to_string(i) + " can never match: " + reason + " (it " +
                     (deny ? "denies" : "allows") + " nothing).");
      }
      for (const auto& to : rule.to) {
        if (!to.operation) continue;
        for (const auto* list : {&to.operation->paths, &to.operation->not_paths}) {
          for (const auto& path : *list) {
            std::string why = unnormalizedReason(path);
            if (why.empty()) continue;
            c.report(messages::kAuthorizationPathNotNormalized, p,
                     "rule #" + std::to_string(i) + " path \"" + path +
                         "\" never matches a request: the proxy normalizes request paths before "
                         "authorization, and " +
                         why + ".");
          }
        }
      }
    }
  }
}

void checkStrictWithOutsideCallers(AnalysisContext& c) {
  for (const auto& svc : c.config().services) {
    const std::string& type = svc.spec.type;
    if (type != "NodePort" && type != "LoadBalancer") continue;
    const auto* service = c.registry().findService(control::serviceHostname(
        svc.metadata.name, svc.metadata.namespace_name, c.registry().domainSuffix()));
    if (service == nullptr) continue;
    std::vector<std::string> strict;
    for (const auto* w : c.workloadsOf(*service)) {
      if (c.mtlsMode(*w) == MutualTLSMode::kStrict) strict.push_back(w->name);
    }
    if (strict.empty()) continue;
    std::string names;
    for (const auto& n : strict) names += (names.empty() ? "" : ",") + n;
    c.report(messages::kStrictMtlsWithCallersOutsideMesh, svc,
             "type " + type + " lets clients outside the mesh connect to [" + names +
                 "] directly, but their mTLS mode is STRICT: those clients have no mesh "
                 "certificate and every connection is refused. Send outside clients through the "
                 "ingress gateway, or make the port PERMISSIVE.");
  }
}

}  // namespace

void runSecurityChecks(AnalysisContext& context) {
  for (const auto& pa : context.config().peer_authentications) {
    checkSelector(context, pa, pa.spec.selector);
  }
  for (const auto& ap : context.config().authorization_policies) {
    checkSelector(context, ap, ap.spec.selector);
  }
  for (const auto& ra : context.config().request_authentications) {
    checkSelector(context, ra, ra.spec.selector);
  }
  checkMtlsConflicts(context);
  checkShadowedPolicies(context);
  checkAuthorizationRules(context);
  checkStrictWithOutsideCallers(context);
}

}  // namespace sheave::cli
