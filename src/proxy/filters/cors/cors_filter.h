#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "match/route_table.h"
#include "match/string_matcher.h"
#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"
#include "proxy/stats/scope.h"

namespace sheave::cors {

inline constexpr std::string_view kCorsFilterName = "envoy.filters.http.cors";

// A RuntimeFractionalPercent's default value (there is no runtime layer).
struct CorsFraction {
  uint64_t numerator = 100;
  uint64_t denominator = 100;
  bool enabled(uint64_t random) const { return random % denominator < numerator; }
};

// One CORS policy, from typed_per_filter_config["envoy.filters.http.cors"]
// (envoy.extensions.filters.http.cors.v3.CorsPolicy) or from the legacy
// route / virtual host `cors` field (envoy.config.route.v3.CorsPolicy); both
// have the same fields. Unset fields stay unset so that a less specific
// level can supply them, field by field, as Envoy merges them.
struct CorsPolicy : RouteSpecificFilterConfig {
  std::vector<StringMatcher> allow_origins;
  std::string allow_methods;
  std::string allow_headers;
  std::string expose_headers;
  std::string max_age;
  std::optional<bool> allow_credentials;
  std::optional<CorsFraction> filter_enabled;  // unset: enabled
  std::optional<CorsFraction> shadow_enabled;  // unset: off
  std::optional<bool> allow_private_network_access;
  std::optional<bool> forward_not_matching_preflights;  // unset: true

  static Result<std::shared_ptr<const CorsPolicy>> create(
      const envoy::extensions::filters::http::cors::v3::CorsPolicy& proto);
  static Result<std::shared_ptr<const CorsPolicy>> create(
      const envoy::config::route::v3::CorsPolicy& proto);
};

// http.<stat_prefix>.cors.*, Envoy's names.
struct CorsStats {
  explicit CorsStats(stats::Scope& scope);
  stats::Counter& origin_valid;
  stats::Counter& origin_invalid;
};

struct CorsFilterConfig {
  CorsStats stats;  // in the connection manager's scope, which outlives this config
  explicit CorsFilterConfig(stats::Scope& scope) : stats(scope) {}
};

// envoy.filters.http.cors: answers a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) from an allowed origin itself, with the
// Access-Control-Allow-* headers; adds Access-Control-Allow-Origin (and
// credentials, exposed headers) to the response of any other request from an
// allowed origin. Requests without an Origin, or from an origin the policy
// does not allow, pass untouched (a non-matching preflight is answered with
// a bare 200 when forward_not_matching_preflights is false).
class CorsFilter : public http::PassThroughStreamFilter {
 public:
  explicit CorsFilter(std::shared_ptr<const CorsFilterConfig> config)
      : config_(std::move(config)) {}

  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;
  http::FilterHeadersStatus encodeHeaders(HeaderMap& headers, bool end_stream) override;

 private:
  // The policies of the route and its virtual host, most specific first.
  std::array<const CorsPolicy*, 3> policies_{};

  bool originAllowed(std::string_view origin) const;
  const std::vector<StringMatcher>* allowOrigins() const;
  const std::string& firstNonEmpty(std::string CorsPolicy::*field) const;
  std::optional<bool> firstSet(std::optional<bool> CorsPolicy::*field) const;
  const CorsPolicy* mostSpecific() const;

  std::shared_ptr<const CorsFilterConfig> config_;
  // The allowed Origin of this request, for the response; empty when the
  // response is left alone.
  std::string latched_origin_;
};

// Registers the filter (envoy.extensions.filters.http.cors.v3.Cors) and the
// per-route parsers for both CorsPolicy types.
void registerCorsFilter(http::FilterRegistry& registry);

}  // namespace sheave::cors
