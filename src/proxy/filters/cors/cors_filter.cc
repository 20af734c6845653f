#include "proxy/filters/cors/cors_filter.h"

#include "match/fractional_percent.h"
#include "proxy/config/proto_json.h"

namespace sheave::cors {

namespace {

constexpr std::string_view kFilterTypeName = "envoy.extensions.filters.http.cors.v3.Cors";
constexpr std::string_view kPolicyTypeName = "envoy.extensions.filters.http.cors.v3.CorsPolicy";
constexpr std::string_view kLegacyPolicyTypeName = "envoy.config.route.v3.CorsPolicy";

const std::string kEmpty;

Result<CorsFraction> parseFraction(const envoy::config::core::v3::RuntimeFractionalPercent& f,
                                   std::string_view where) {
  SHEAVE_ASSIGN_OR_RETURN(
      Fraction fraction,
      parseFractionalPercent(f.default_value(), std::string(where) + ".default_value"));
  return CorsFraction{fraction.numerator, fraction.denominator};
}

// Both CorsPolicy messages carry the same fields under the same names.
template <typename Proto>
Result<std::shared_ptr<const CorsPolicy>> buildPolicy(const Proto& proto) {
  auto p = std::make_shared<CorsPolicy>();
  for (int i = 0; i < proto.allow_origin_string_match_size(); ++i) {
    auto m = StringMatcher::create(proto.allow_origin_string_match(i));
    if (!m.ok()) {
      return std::move(m).error().at("allow_origin_string_match[" + std::to_string(i) + "]");
    }
    p->allow_origins.push_back(std::move(m).value());
  }
  p->allow_methods = proto.allow_methods();
  p->allow_headers = proto.allow_headers();
  p->expose_headers = proto.expose_headers();
  p->max_age = proto.max_age();
  if (proto.has_allow_credentials()) p->allow_credentials = proto.allow_credentials().value();
  if (proto.has_filter_enabled()) {
    SHEAVE_ASSIGN_OR_RETURN(p->filter_enabled,
                            parseFraction(proto.filter_enabled(), "filter_enabled"));
  }
  if (proto.has_shadow_enabled()) {
    SHEAVE_ASSIGN_OR_RETURN(p->shadow_enabled,
                            parseFraction(proto.shadow_enabled(), "shadow_enabled"));
  }
  if (proto.has_allow_private_network_access()) {
    p->allow_private_network_access = proto.allow_private_network_access().value();
  }
  if (proto.has_forward_not_matching_preflights()) {
    p->forward_not_matching_preflights = proto.forward_not_matching_preflights().value();
  }
  return std::shared_ptr<const CorsPolicy>(std::move(p));
}

template <typename Proto>
PerFilterConfigParsers::Parser policyParser() {
  return [](const google::protobuf::Any& any)
             -> Result<std::shared_ptr<const RouteSpecificFilterConfig>> {
    SHEAVE_ASSIGN_OR_RETURN(auto proto, config::unpackTypedConfig<Proto>(any, "typed_config"));
    SHEAVE_ASSIGN_OR_RETURN(auto policy, buildPolicy(proto));
    return std::shared_ptr<const RouteSpecificFilterConfig>(std::move(policy));
  };
}

}  // namespace

Result<std::shared_ptr<const CorsPolicy>> CorsPolicy::create(
    const envoy::extensions::filters::http::cors::v3::CorsPolicy& proto) {
  return buildPolicy(proto);
}

Result<std::shared_ptr<const CorsPolicy>> CorsPolicy::create(
    const envoy::config::route::v3::CorsPolicy& proto) {
  return buildPolicy(proto);
}

CorsStats::CorsStats(stats::Scope& scope)
    : origin_valid(scope.counter("cors.origin_valid")),
      origin_invalid(scope.counter("cors.origin_invalid")) {}

const CorsPolicy* CorsFilter::mostSpecific() const {
  for (const CorsPolicy* p : policies_) {
    if (p != nullptr) return p;
  }
  return nullptr;
}

const std::vector<StringMatcher>* CorsFilter::allowOrigins() const {
  for (const CorsPolicy* p : policies_) {
    if (p != nullptr && !p->allow_origins.empty()) return &p->allow_origins;
  }
  return nullptr;
}

const std::string& CorsFilter::firstNonEmpty(std::string CorsPolicy::*field) const {
  for (const CorsPolicy* p : policies_) {
    if (p != nullptr && !(p->*field).empty()) return p->*field;
  }
  return kEmpty;
}

std::optional<bool> CorsFilter::firstSet(std::optional<bool> CorsPolicy::*field) const {
  for (const CorsPolicy* p : policies_) {
    if (p != nullptr && (p->*field).has_value()) return p->*field;
  }
  return std::nullopt;
}

bool CorsFilter::originAllowed(std::string_view origin) const {
  const auto* origins = allowOrigins();
  if (origins == nullptr) return false;
  for (const StringMatcher& m : *origins) {
    // A matcher that accepts "*" itself allows every origin, as in Envoy.
    if (m.match(origin) || m.match("*")) return true;
  }
  return false;
}

http::FilterHeadersStatus CorsFilter::decodeHeaders(HeaderMap& headers, bool) {
  const RouteMatchResult& route = callbacks_->route();
  if (route.route == nullptr) return http::FilterHeadersStatus::kContinue;
  const auto levels = route.perFilterConfigs(kCorsFilterName);
  bool most_specific = true;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i] == nullptr) continue;
    // A FilterConfig with disabled: true on the most specific level switches
    // CORS off for the request.
    if (most_specific && levels[i]->disabled) return http::FilterHeadersStatus::kContinue;
    most_specific = false;
    policies_[i] = dynamic_cast<const CorsPolicy*>(levels[i]->parsed.get());
  }
  const CorsPolicy* policy = mostSpecific();
  if (policy == nullptr) return http::FilterHeadersStatus::kContinue;

  RandomGenerator& random = callbacks_->random();
  const bool enabled = !policy->filter_enabled || policy->filter_enabled->enabled(random.next());
  const bool shadow = policy->shadow_enabled && policy->shadow_enabled->enabled(random.next());
  if (!enabled && !shadow) return http::FilterHeadersStatus::kContinue;

  const std::string* origin = headers.get("origin");
  if (origin == nullptr || origin->empty()) return http::FilterHeadersStatus::kContinue;

  const std::string* request_method = headers.get("access-control-request-method");
  const bool preflight =
      headers.method() == "OPTIONS" && request_method != nullptr && !request_method->empty();

  if (!originAllowed(*origin)) {
    config_->stats.origin_invalid.inc();
    if (enabled && preflight &&
        !firstSet(&CorsPolicy::forward_not_matching_preflights).value_or(true)) {
      // Answered here, without any Access-Control-Allow-* header: the browser
      // refuses the cross-origin request, and the upstream never sees it.
      HeaderMap response;
      response.add(":status", "200");
      callbacks_->streamInfo().response_code_details = "cors_response";
      callbacks_->encodeHeaders(std::move(response), true);
      return http::FilterHeadersStatus::kStopIteration;
    }
    return http::FilterHeadersStatus::kContinue;
  }
  config_->stats.origin_valid.inc();
  // Shadow mode only counts.
  if (!enabled) return http::FilterHeadersStatus::kContinue;

  latched_origin_ = *origin;
  if (!preflight) return http::FilterHeadersStatus::kContinue;

  HeaderMap response;
  response.add(":status", "200");
  response.add("access-control-allow-origin", latched_origin_);
  if (firstSet(&CorsPolicy::allow_credentials).value_or(false)) {
    response.add("access-control-allow-credentials", "true");
  }
  if (const std::string& v = firstNonEmpty(&CorsPolicy::allow_methods); !v.empty()) {
    response.add("access-control-allow-methods", v);
  }
  if (const std::string& v = firstNonEmpty(&CorsPolicy::allow_headers); !v.empty()) {
    response.add("access-control-allow-headers", v);
  }
  if (const std::string& v = firstNonEmpty(&CorsPolicy::max_age); !v.empty()) {
    response.add("access-control-max-age", v);
  }
  if (firstSet(&CorsPolicy::allow_private_network_access).value_or(false)) {
    const std::string* pna = headers.get("access-control-request-private-network");
    if (pna != nullptr && *pna == "true") {
      response.add("access-control-allow-private-network", "true");
    }
  }
  // The preflight's answer is complete; the response path must not add to it.
  latched_origin_.clear();
  callbacks_->streamInfo().response_code_details = "cors_response";
  callbacks_->encodeHeaders(std::move(response), true);
  return http::FilterHeadersStatus::kStopIteration;
}

http::FilterHeadersStatus CorsFilter::encodeHeaders(HeaderMap& headers, bool) {
  if (latched_origin_.empty()) return http::FilterHeadersStatus::kContinue;
  headers.set("access-control-allow-origin", latched_origin_);
  if (firstSet(&CorsPolicy::allow_credentials).value_or(false)) {
    headers.set("access-control-allow-credentials", "true");
  }
  if (const std::string& v = firstNonEmpty(&CorsPolicy::expose_headers); !v.empty()) {
    headers.set("access-control-expose-headers", v);
  }
  return http::FilterHeadersStatus::kContinue;
}

void registerCorsFilter(http::FilterRegistry& registry) {
  PerFilterConfigParsers::add(
      std::string(kPolicyTypeName),
      policyParser<envoy::extensions::filters::http::cors::v3::CorsPolicy>());
  PerFilterConfigParsers::add(std::string(kLegacyPolicyTypeName),
                              policyParser<envoy::config::route::v3::CorsPolicy>());
  registry.add(std::string(kFilterTypeName),
               [](const google::protobuf::Any& any,
                  http::FilterFactoryContext& context) -> Result<http::FilterFactoryCb> {
                 // Cors has no fields; unpacking still rejects a wrong type.
                 auto proto =
                     config::unpackTypedConfig<envoy::extensions::filters::http::cors::v3::Cors>(
                         any, "typed_config");
                 if (!proto.ok()) return std::move(proto).error();
                 auto config = std::make_shared<const CorsFilterConfig>(context.scope);
                 return http::FilterFactoryCb([config](http::FilterChainBuilder& builder) {
                   builder.addStreamFilter(std::make_unique<CorsFilter>(config));
                 });
               });
}

}  // namespace sheave::cors
