#include "control/compiler/peer_authentication_policy.h"

namespace sheave::control {

bool isNamespaceWide(const std::optional<WorkloadSelector>& selector) {
  return !selector.has_value() || selector->match_labels.empty();
}

bool selectorMatches(const WorkloadSelector& selector,
                     const std::map<std::string, std::string>& labels) {
  if (selector.match_labels.empty()) return false;
  for (const auto& [key, value] : selector.match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

namespace {

bool isUnset(const std::optional<PeerAuthenticationMutualTLS>& mtls) {
  return !mtls.has_value() || mtls->mode == MutualTLSMode::kUnset;
}

}  // namespace

PeerAuthenticationPolicy PeerAuthenticationPolicy::forWorkload(
    const std::vector<Resource<PeerAuthentication>>& policies, std::string_view root_namespace,
    std::string_view workload_namespace, const std::map<std::string, std::string>& labels) {
  const PeerAuthentication* mesh = nullptr;
  const PeerAuthentication* ns = nullptr;
  const PeerAuthentication* workload = nullptr;
  // Load order stands in for creation time: the first one found is kept.
  for (const auto& policy : policies) {
    const std::string& policy_ns = policy.metadata.namespace_name;
    bool wide = isNamespaceWide(policy.spec.selector);
    if (policy_ns == root_namespace && wide && mesh == nullptr) mesh = &policy.spec;
    if (policy_ns != workload_namespace) continue;
    if (wide) {
      if (ns == nullptr) ns = &policy.spec;
    } else if (workload == nullptr && selectorMatches(*policy.spec.selector, labels)) {
      workload = &policy.spec;
    }
  }
  PeerAuthenticationPolicy out;
  if (mesh != nullptr && !isUnset(mesh->mtls)) out.mode_ = mesh->mtls->mode;
  if (ns != nullptr && !isUnset(ns->mtls)) out.mode_ = ns->mtls->mode;
  if (workload == nullptr) return out;
  if (!isUnset(workload->mtls)) out.mode_ = workload->mtls->mode;
  for (const auto& [port, mtls] : workload->port_level_mtls) {
    out.port_modes_[port] = mtls.mode == MutualTLSMode::kUnset ? out.mode_ : mtls.mode;
  }
  return out;
}

MutualTLSMode PeerAuthenticationPolicy::modeFor(uint32_t port) const {
  auto it = port_modes_.find(port);
  return it == port_modes_.end() ? mode_ : it->second;
}

}  // namespace sheave::control
