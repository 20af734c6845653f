#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/compiler/mesh_config.h"
#include "control/compiler/proxy_context.h"
#include "control/model/config_set.h"
#include "control/registry/registry_snapshot.h"

namespace sheave::control {

// What one proxy may see (Istio's SidecarScope): the services, the
// VirtualServices and the DestinationRules its Sidecar resource (or the
// mesh default) makes visible, honouring every resource's exportTo.
class SidecarScope {
 public:
  // The Sidecar that applies, or nullptr for the mesh default (every
  // service exported to the proxy's namespace).
  const Resource<Sidecar>* sidecar() const { return sidecar_; }
  // Visible services, sorted by hostname.
  const std::vector<const Service*>& services() const { return services_; }
  // VirtualServices bound to the "mesh" gateway whose hosts are visible, in
  // Istio's precedence order (the proxy's own namespace first, then by
  // creation order, here load order).
  const std::vector<const Resource<VirtualService>*>& virtualServices() const {
    return virtual_services_;
  }
  // The DestinationRule that applies to hostname for this proxy (own
  // namespace first, then the host's namespace, then the root namespace;
  // exact host before wildcard), or nullptr.
  const Resource<DestinationRule>* destinationRule(std::string_view hostname) const;
  OutboundTrafficPolicyMode outboundTrafficPolicy() const { return outbound_policy_; }

 private:
  friend class PushContext;
  const Resource<Sidecar>* sidecar_ = nullptr;
  std::vector<const Service*> services_;
  std::vector<const Resource<VirtualService>*> virtual_services_;
  std::map<std::string, const Resource<DestinationRule>*, std::less<>> destination_rules_;
  OutboundTrafficPolicyMode outbound_policy_ = OutboundTrafficPolicyMode::kAllowAny;
};

// Everything one push compiles from (Istio's PushContext): the config and
// the registry at one moment, indexed once, immutable and shared by every
// proxy's generators during the push.
class PushContext {
 public:
  static std::shared_ptr<const PushContext> build(std::shared_ptr<const ConfigSet> config,
                                                  std::shared_ptr<const RegistrySnapshot> registry,
                                                  MeshConfig mesh);

  const ConfigSet& config() const { return *config_; }
  const RegistrySnapshot& registry() const { return *registry_; }
  const MeshConfig& mesh() const { return mesh_; }

  // The scope for one proxy (computed per namespace and Sidecar, cached).
  std::shared_ptr<const SidecarScope> scopeFor(const ProxyContext& proxy) const;

  // Problems found while indexing (e.g. two VirtualServices for one host in
  // one namespace: the first wins, the other is reported here).
  const std::vector<ResourceError>& errors() const { return errors_; }

 private:
  PushContext() = default;
  std::shared_ptr<const ConfigSet> config_;
  std::shared_ptr<const RegistrySnapshot> registry_;
  MeshConfig mesh_;
  std::vector<ResourceError> errors_;
  // The config indexed once per push: mesh-bound VirtualServices and
  // DestinationRules with their hosts resolved, conflicts removed.
  struct Index;
  std::shared_ptr<const Index> index_;
  std::shared_ptr<const SidecarScope> computeScope(const ProxyContext& proxy,
                                                   const Resource<Sidecar>* sidecar,
                                                   const std::vector<size_t>& selector_rules) const;
  struct Cache;
  std::shared_ptr<Cache> cache_;  // scopes by (namespace, sidecar); guarded inside
};

}  // namespace sheave::control
