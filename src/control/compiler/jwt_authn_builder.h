#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/model/request_authentication.h"
#include "control/model/resource.h"
#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace sheave::control {

// Returns the JWKS document behind a jwksUri, or nullopt when it is not
// (yet) known. Fetching and caching live outside the compiler.
using JwksResolver = std::function<std::optional<std::string>(const std::string& uri)>;

struct JwtAuthnInputs {
  std::string root_namespace;
  std::string workload_namespace;
  std::map<std::string, std::string> labels;
  JwksResolver
      jwks_resolver;  // may be empty: jwksUri rules then get a key set that matches nothing
};

// The RequestAuthentications that select a workload (root namespace and
// namespace ones without selector, selector ones matching its labels;
// targetRefs do not apply to sidecars), in load order.
std::vector<const Resource<RequestAuthentication>*> requestAuthenticationsFor(
    const std::vector<Resource<RequestAuthentication>>& all, const std::string& root_namespace,
    const std::string& workload_namespace, const std::map<std::string, std::string>& labels);

// Istio's jwt_authn config: one provider per issuer ("origins-<i>" in
// order of first appearance; a later rule for the same issuer is dropped),
// the payload stored in dynamic metadata under the issuer, the JWKS inline,
// and one requirement for every path: any provider, or no token at all
// (allow_missing). A missing token therefore passes authentication and is
// left to AuthorizationPolicy; an invalid one is rejected with 401.
// nullopt when no rule applies (no filter is needed).
std::optional<envoy::extensions::filters::http::jwt_authn::v3::JwtAuthentication>
buildJwtAuthentication(const std::vector<const Resource<RequestAuthentication>*>& policies,
                       const JwtAuthnInputs& inputs, std::vector<ResourceError>* errors);

// The same, wrapped as the HTTP filter `envoy.filters.http.jwt_authn`.
std::optional<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter>
buildJwtAuthnFilter(const std::vector<Resource<RequestAuthentication>>& all,
                    const JwtAuthnInputs& inputs, std::vector<ResourceError>* errors);

// The issuers of the applicable rules, in provider order (what
// AuthorizationInputs::jwt_issuers wants).
std::vector<std::string> jwtIssuers(
    const std::vector<const Resource<RequestAuthentication>*>& policies);

}  // namespace sheave::control
