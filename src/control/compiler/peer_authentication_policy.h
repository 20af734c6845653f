#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/peer_authentication.h"
#include "control/model/resource.h"

namespace sheave::control {

// Whether a workload-scoped policy's selector picks a workload with these
// labels. A missing or empty selector selects the whole namespace, which is
// not a match here (the caller treats those as namespace-wide).
bool selectorMatches(const WorkloadSelector& selector,
                     const std::map<std::string, std::string>& labels);
bool isNamespaceWide(const std::optional<WorkloadSelector>& selector);

// The mutual TLS mode a workload's inbound ports get after Istio's
// PeerAuthentication composition: the mesh-wide policy (root namespace, no
// selector), overridden by the namespace's (no selector), overridden by the
// workload's (a selector matching its labels); among several policies at one
// level the oldest (here: first in load order) wins. UNSET inherits from the
// level above; nothing at all means PERMISSIVE. portLevelMtls comes only from
// a workload-level policy, and an UNSET port inherits the workload's mode.
class PeerAuthenticationPolicy {
 public:
  PeerAuthenticationPolicy() = default;
  explicit PeerAuthenticationPolicy(MutualTLSMode mode) : mode_(mode) {}

  static PeerAuthenticationPolicy forWorkload(
      const std::vector<Resource<PeerAuthentication>>& policies, std::string_view root_namespace,
      std::string_view workload_namespace, const std::map<std::string, std::string>& labels);

  // Never kUnset.
  MutualTLSMode mode() const { return mode_; }
  // The mode for one workload (target) port; never kUnset.
  MutualTLSMode modeFor(uint32_t port) const;
  const std::map<uint32_t, MutualTLSMode>& portModes() const { return port_modes_; }

  void setPortMode(uint32_t port, MutualTLSMode mode) { port_modes_[port] = mode; }

 private:
  MutualTLSMode mode_ = MutualTLSMode::kPermissive;
  std::map<uint32_t, MutualTLSMode> port_modes_;
};

}  // namespace sheave::control
