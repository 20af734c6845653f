#include "control/compiler/jwt_authn_builder.h"

#include <set>

#include "control/compiler/deterministic_any.h"
#include "control/compiler/peer_authentication_policy.h"

namespace sheave::control {
namespace {

namespace jwt = envoy::extensions::filters::http::jwt_authn::v3;

// A key set no token verifies against: an issuer whose keys are unknown
// must fail its tokens, never accept them.
constexpr std::string_view kEmptyJwks = R"({"keys":[]})";

}  // namespace

std::vector<const Resource<RequestAuthentication>*> requestAuthenticationsFor(
    const std::vector<Resource<RequestAuthentication>>& all, const std::string& root_namespace,
    const std::string& workload_namespace, const std::map<std::string, std::string>& labels) {
  std::vector<const Resource<RequestAuthentication>*> out;
  for (const auto& policy : all) {
    const std::string& ns = policy.metadata.namespace_name;
    if (ns != root_namespace && ns != workload_namespace) continue;
    if (!policy.spec.target_refs.empty() || policy.spec.target_ref.has_value()) continue;
    if (isNamespaceWide(policy.spec.selector) || selectorMatches(*policy.spec.selector, labels)) {
      out.push_back(&policy);
    }
  }
  return out;
}

std::vector<std::string> jwtIssuers(
    const std::vector<const Resource<RequestAuthentication>*>& policies) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto* policy : policies) {
    for (const auto& rule : policy->spec.jwt_rules) {
      if (!rule.issuer.empty() && seen.insert(rule.issuer).second) out.push_back(rule.issuer);
    }
  }
  return out;
}

std::optional<jwt::JwtAuthentication> buildJwtAuthentication(
    const std::vector<const Resource<RequestAuthentication>*>& policies,
    const JwtAuthnInputs& inputs, std::vector<ResourceError>* errors) {
  jwt::JwtAuthentication config;
  std::set<std::string> seen;
  std::vector<std::string> provider_names;
  auto report = [&](const Resource<RequestAuthentication>& policy, std::string message) {
    if (errors == nullptr) return;
    errors->push_back(ResourceError{policy.source, policy.kind, policy.metadata.namespace_name,
                                    policy.metadata.name,
                                    invalidArgument(policy.source.toString() + ": " + message)});
  };
  for (const auto* policy : policies) {
    for (const auto& rule : policy->spec.jwt_rules) {
      if (rule.issuer.empty() || !seen.insert(rule.issuer).second) continue;
      std::string name = "origins-" + std::to_string(provider_names.size());
      jwt::JwtProvider provider;
      provider.set_issuer(rule.issuer);
      for (const auto& aud : rule.audiences) provider.add_audiences(aud);
      std::string jwks = rule.jwks;
      if (jwks.empty() && !rule.jwks_uri.empty()) {
        std::optional<std::string> fetched;
        if (inputs.jwks_resolver) fetched = inputs.jwks_resolver(rule.jwks_uri);
        if (fetched.has_value()) {
          jwks = *fetched;
        } else {
          report(*policy, "jwksUri " + rule.jwks_uri + " is not available yet; tokens of " +
                              rule.issuer + " are rejected until it is");
        }
      }
      if (jwks.empty()) jwks = std::string(kEmptyJwks);
      provider.mutable_local_jwks()->set_inline_string(jwks);
      provider.set_forward(rule.forward_original_token);
      for (const auto& header : rule.from_headers) {
        auto* h = provider.add_from_headers();
        h->set_name(header.name);
        h->set_value_prefix(header.prefix);
      }
      for (const auto& param : rule.from_params) provider.add_from_params(param);
      for (const auto& cookie : rule.from_cookies) provider.add_from_cookies(cookie);
      provider.set_forward_payload_header(rule.output_payload_to_header);
      provider.set_payload_in_metadata(rule.issuer);
      for (const auto& claim : rule.output_claim_to_headers) {
        auto* c = provider.add_claim_to_headers();
        c->set_header_name(claim.header);
        c->set_claim_name(claim.claim);
      }
      (*config.mutable_providers())[name] = std::move(provider);
      provider_names.push_back(name);
    }
  }
  if (provider_names.empty()) return std::nullopt;
  auto* rule = config.add_rules();
  rule->mutable_match()->set_prefix("/");
  auto* any = rule->mutable_requires_()->mutable_requires_any();
  for (const auto& name : provider_names) any->add_requirements()->set_provider_name(name);
  any->add_requirements()->mutable_allow_missing();
  config.set_bypass_cors_preflight(true);
  return config;
}

std::optional<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter>
buildJwtAuthnFilter(const std::vector<Resource<RequestAuthentication>>& all,
                    const JwtAuthnInputs& inputs, std::vector<ResourceError>* errors) {
  auto policies = requestAuthenticationsFor(all, inputs.root_namespace, inputs.workload_namespace,
                                            inputs.labels);
  auto config = buildJwtAuthentication(policies, inputs, errors);
  if (!config.has_value()) return std::nullopt;
  envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter filter;
  filter.set_name("envoy.filters.http.jwt_authn");
  packDeterministicInto(*config, filter.mutable_typed_config());
  return filter;
}

}  // namespace sheave::control
