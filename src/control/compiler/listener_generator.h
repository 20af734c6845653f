#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/compiler/jwt_authn_builder.h"
#include "control/compiler/mesh_config.h"
#include "control/compiler/peer_authentication_policy.h"
#include "control/compiler/proxy_context.h"
#include "control/model/config_set.h"
#include "control/model/resource.h"
#include "control/model/sidecar.h"
#include "control/registry/service.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace sheave::control {

// Everything the sidecar listener builder reads, passed explicitly so that it
// can be called (and tested) without a PushContext.
struct ListenerInputs {
  // The proxy: its IPs, namespace, and the service ports its workload serves
  // (service_instances), which become the inbound filter chains.
  const ProxyContext* proxy = nullptr;
  const MeshConfig* mesh = nullptr;
  // Services visible to the proxy (outbound listeners), sorted by hostname.
  std::vector<const Service*> services;
  // What traffic to unknown destinations gets: PassthroughCluster
  // (ALLOW_ANY) or BlackHoleCluster (REGISTRY_ONLY).
  OutboundTrafficPolicyMode outbound_policy = OutboundTrafficPolicyMode::kAllowAny;
  // The Sidecar resource that applies, or nullptr for the mesh default. Its
  // egress listeners select services from `services` by their `hosts`; its
  // ingress listeners replace the service instances as inbound chains.
  const Sidecar* sidecar = nullptr;
  // The Sidecar's name and namespace: "./*" in egress hosts means this
  // namespace (empty: the proxy's), and inbound chains built from ingress
  // listeners are traced as "<name>.<namespace>:<port>/*", as in Istio.
  std::string sidecar_name;
  std::string sidecar_namespace;

  // Inbound security of the proxy's workload. The effective
  // PeerAuthentication decides per workload port whether its chains accept
  // mTLS (STRICT), mTLS and plaintext (PERMISSIVE) or plaintext (DISABLE);
  // without one (nullopt) every inbound chain is plaintext, as before
  // security was compiled.
  std::optional<PeerAuthenticationPolicy> peer_authentication;
  // HTTP filters every inbound HCM (workload ports and the HTTP passthrough
  // chain) runs ahead of its own filters, in this order: jwt_authn, then the
  // RBAC filters (DENY before ALLOW); see jwt_authn_builder.h and
  // authorization_policy_builder.h.
  std::vector<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter>
      inbound_http_filters;
  // Network filters every inbound TCP chain runs before its tcp_proxy (RBAC).
  std::vector<envoy::config::listener::v3::Filter> inbound_network_filters;
};

// The listeners Istio's sidecar gets (LDS), sorted by name:
//   virtualOutbound (0.0.0.0:15001, original_dst hand-off, catch-all to
//   PassthroughCluster or BlackHoleCluster), outbound HTTP listeners
//   0.0.0.0_<port> (RDS route config "<port>"), outbound TCP listeners
//   <vip>_<port>, sniffed listeners for undeclared protocols, virtualInbound
//   (0.0.0.0:15006, one chain per workload port plus the passthrough chains),
//   and listeners that bind for real (Sidecar captureMode NONE).
// Conflicts Istio also refuses (two TCP services without an address on one
// port, HTTP mixed with a server-first protocol on one port, two workload
// ports with different protocols on one target port) keep the first and are
// reported in `errors` (may be null).
std::vector<envoy::config::listener::v3::Listener> buildSidecarListeners(
    const ListenerInputs& inputs, std::vector<ResourceError>* errors);

// Fills inputs' security fields for inputs->proxy's workload (its namespace
// and labels) from the config: the effective PeerAuthentication, the
// jwt_authn filter of the RequestAuthentications that select it, and the
// RBAC filters of its AuthorizationPolicies (HTTP and TCP), with the
// mesh's root namespace. Problems (unknown jwksUri, bad policy values) go to
// `errors` (may be null); the rest still applies.
void setInboundSecurity(ListenerInputs* inputs, const ConfigSet& config,
                        const JwksResolver& jwks_resolver, std::vector<ResourceError>* errors);

// Whether a Sidecar egress `hosts` entry ("ns/dnsName": "./*", "*/x.com",
// "prod/*.svc.cluster.local", "~/*") selects a service. `sidecar_namespace`
// is what "." means.
bool egressHostMatches(std::string_view host_entry, const Service& service,
                       std::string_view sidecar_namespace);

}  // namespace sheave::control
