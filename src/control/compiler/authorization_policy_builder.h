#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/authorization_policy.h"
#include "control/model/resource.h"
#include "envoy/config/listener/v3/listener_components.pb.h"
#include "envoy/config/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace sheave::control {

// Which workload the policies are compiled for, and what the compilation
// needs to know about the mesh.
struct AuthorizationInputs {
  std::string root_namespace;
  std::string workload_namespace;
  std::map<std::string, std::string> labels;
  // Issuers of the RequestAuthentications that apply to the workload: where
  // jwt_authn stores each issuer's payload (keyed by issuer), so that
  // requestPrincipals "*" and "*/sub" can be compiled.
  std::vector<std::string> jwt_issuers;
};

// The RBAC filters of one workload's inbound chains, in evaluation order
// (AUDIT as action LOG, then DENY, then ALLOW; CUSTOM is skipped with a
// logged note). Empty when no policy applies: everything is allowed.
struct AuthorizationFilters {
  std::vector<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter> http;
  std::vector<envoy::config::listener::v3::Filter> network;
};

// Istio's authorization builder: the policies that select the workload
// (root-namespace ones without selector mesh-wide, namespace ones without
// selector namespace-wide, selector ones where the labels match; targetRefs
// do not apply to sidecars) become one RBAC config per action with policies
// named "ns[<ns>]-policy[<name>]-rule[<i>]". `istio.io/dry-run: "true"`
// puts a policy into shadow_rules. An ALLOW policy without rules allows
// nothing, `rules: [{}]` allows everything. For TCP chains, HTTP-only
// fields (hosts, methods, paths, requestPrincipals, request.* conditions)
// drop an ALLOW rule entirely and are ignored in DENY/AUDIT rules, so TCP
// is never more open than HTTP. Unsupported condition keys are reported in
// `errors` and handled the same way.
AuthorizationFilters buildAuthorizationFilters(
    const std::vector<Resource<AuthorizationPolicy>>& policies, const AuthorizationInputs& inputs,
    std::vector<ResourceError>* errors);

// One rule as an RBAC policy; false when the rule cannot match on this
// protocol (an ALLOW rule with HTTP-only fields on TCP).
bool buildRbacPolicy(const Rule& rule, AuthorizationAction action, bool tcp,
                     const AuthorizationInputs& inputs, envoy::config::rbac::v3::Policy* out,
                     std::vector<std::string>* problems);

}  // namespace sheave::control
