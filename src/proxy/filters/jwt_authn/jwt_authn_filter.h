#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb.h"
#include "match/jwt/jwks.h"
#include "match/jwt/jwt.h"
#include "match/jwt/jwt_verifier.h"
#include "match/route_table.h"
#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"
#include "proxy/stats/scope.h"

namespace sheave::jwt_authn {

inline constexpr std::string_view kJwtAuthnFilterName = "envoy.filters.http.jwt_authn";

// Where a provider looks for its token: a header (with a value prefix such
// as "Bearer ") or a query parameter.
struct JwtLocation {
  std::string header;        // lower-case; empty for a query parameter
  std::string value_prefix;  // compared case-insensitively
  std::string param;         // the query parameter name when header is empty
};

// One JwtProvider, parsed and its JWKS decoded once.
struct JwtProviderConfig {
  std::string name;
  jwt::JwtClaimRules rules;
  std::shared_ptr<const jwt::Jwks> jwks;
  bool forward = false;
  std::vector<JwtLocation> locations;
  std::string forward_payload_header;  // lower-case; empty: not forwarded
  bool pad_forward_payload_header = false;
  std::string payload_in_metadata;  // empty: not stored
};

// A JwtRequirement tree with provider names resolved.
struct JwtRequirementNode {
  enum class Kind { kNone, kProvider, kAny, kAll, kAllowMissing, kAllowMissingOrFailed };
  Kind kind = Kind::kNone;
  const JwtProviderConfig* provider = nullptr;  // kProvider
  std::vector<std::string> audiences;           // provider_and_audiences override; empty: none
  std::vector<JwtRequirementNode> children;     // kAny, kAll
};

// typed_per_filter_config["envoy.filters.http.jwt_authn"] (PerRouteConfig).
struct JwtAuthnPerRoute : RouteSpecificFilterConfig {
  bool disabled = false;
  std::string requirement_name;
};

struct JwtAuthnStats {
  explicit JwtAuthnStats(stats::Scope& scope);
  stats::Counter& allowed;
  stats::Counter& denied;
  stats::Counter& cors_preflight_bypassed;
};

// The filter's configuration, built once on the main thread and shared,
// immutable, by every worker's streams.
class JwtAuthnConfig {
 public:
  using Clock = std::function<int64_t()>;  // seconds since the epoch

  static Result<std::shared_ptr<const JwtAuthnConfig>> create(
      const envoy::extensions::filters::http::jwt_authn::v3::JwtAuthentication& proto,
      stats::Scope& scope, Clock clock = {});

  // The requirement of the first rule that matches, or null (no JWT needed).
  const JwtRequirementNode* requirementFor(const HeaderMap& headers, uint64_t random) const;
  const JwtRequirementNode* namedRequirement(std::string_view name) const;

  const std::vector<std::unique_ptr<JwtProviderConfig>>& providers() const { return providers_; }
  bool bypassCorsPreflight() const { return bypass_cors_preflight_; }
  bool stripFailureResponse() const { return strip_failure_response_; }
  int64_t now() const { return clock_(); }
  JwtAuthnStats& stats() const { return stats_; }

 private:
  explicit JwtAuthnConfig(stats::Scope& scope) : stats_(scope) {}

  std::vector<std::unique_ptr<JwtProviderConfig>> providers_;
  std::map<std::string, JwtRequirementNode, std::less<>> requirement_map_;
  // Rule matches reuse the route table's RouteMatch evaluation: one virtual
  // host, route i standing for rules_[i].
  std::shared_ptr<const RouteTable> rule_table_;
  std::vector<JwtRequirementNode> rules_;
  bool bypass_cors_preflight_ = false;
  bool strip_failure_response_ = false;
  Clock clock_;
  mutable JwtAuthnStats stats_;
};

// envoy.filters.http.jwt_authn: verifies the request's JWTs against the
// requirement of its route (first matching rule, or the route's
// PerRouteConfig), with local JWKS only. On success the token header is
// removed unless `forward`, the payload may go upstream in a header and into
// dynamic metadata; on failure the request ends with Envoy's 401 (403 for a
// wrong audience) and its www-authenticate challenge.
class JwtAuthnFilter : public http::PassThroughDecoderFilter {
 public:
  explicit JwtAuthnFilter(std::shared_ptr<const JwtAuthnConfig> config)
      : config_(std::move(config)) {}

  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;

 private:
  void reject(const HeaderMap& headers, jwt::JwtStatus status);

  std::shared_ptr<const JwtAuthnConfig> config_;
};

// Registers the filter (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication)
// and its per-route config parser (PerRouteConfig).
void registerJwtAuthnFilter(http::FilterRegistry& registry);

}  // namespace sheave::jwt_authn
