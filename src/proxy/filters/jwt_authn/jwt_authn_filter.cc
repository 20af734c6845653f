#include "proxy/filters/jwt_authn/jwt_authn_filter.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "match/jwt/base64url.h"
#include "match/string_matcher.h"
#include "proxy/config/proto_json.h"

namespace sheave::jwt_authn {

namespace {

namespace v3 = envoy::extensions::filters::http::jwt_authn::v3;
constexpr std::string_view kTypeName =
    "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
constexpr std::string_view kPerRouteTypeName =
    "envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig";
constexpr std::string_view kDetailsPrefix = "jwt_authn_access_denied";

using jwt::JwtStatus;

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

Result<std::string> readJwks(const envoy::config::core::v3::DataSource& source,
                             const std::string& where) {
  switch (source.specifier_case()) {
    case envoy::config::core::v3::DataSource::kInlineString:
      return source.inline_string();
    case envoy::config::core::v3::DataSource::kInlineBytes:
      return source.inline_bytes();
    case envoy::config::core::v3::DataSource::kFilename: {
      std::ifstream in(source.filename(), std::ios::binary);
      if (!in) return invalidArgument("cannot read " + source.filename()).at(where + ".filename");
      std::ostringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
    default:
      return invalidArgument("needs inline_string, inline_bytes or filename").at(where);
  }
}

Result<std::unique_ptr<JwtProviderConfig>> buildProvider(const std::string& name,
                                                         const v3::JwtProvider& p,
                                                         const std::string& where) {
  auto out = std::make_unique<JwtProviderConfig>();
  out->name = name;
  out->rules.issuer = p.issuer();
  out->rules.audiences.assign(p.audiences().begin(), p.audiences().end());
  out->rules.clock_skew_seconds = p.clock_skew_seconds() == 0 ? 60 : p.clock_skew_seconds();
  out->rules.require_expiration = p.require_expiration();
  // Restrictions this filter cannot enforce are refused, never dropped.
  if (p.has_subjects()) return invalidArgument("is not supported").at(where + ".subjects");
  if (p.has_max_lifetime()) return invalidArgument("is not supported").at(where + ".max_lifetime");
  switch (p.jwks_source_specifier_case()) {
    case v3::JwtProvider::kLocalJwks: {
      SHEAVE_ASSIGN_OR_RETURN(auto text, readJwks(p.local_jwks(), where + ".local_jwks"));
      auto jwks = jwt::Jwks::parse(text);
      if (!jwks.ok()) return std::move(jwks).error().at(where + ".local_jwks");
      out->jwks = std::move(jwks).value();
      break;
    }
    case v3::JwtProvider::kRemoteJwks:
      // Istio's control plane fetches jwksUri itself and inlines the keys;
      // the proxy does not fetch keys (yet).
      return invalidArgument(
                 "is not supported: give the keys inline (local_jwks); the control plane "
                 "inlines a RequestAuthentication's jwksUri")
          .at(where + ".remote_jwks");
    default:
      return invalidArgument("one of local_jwks or remote_jwks is required").at(where);
  }
  if (p.from_cookies_size() > 0) {
    return invalidArgument("is not supported").at(where + ".from_cookies");
  }
  if (p.claim_to_headers_size() > 0) {
    return invalidArgument("is not supported").at(where + ".claim_to_headers");
  }
  out->forward = p.forward();
  for (int i = 0; i < p.from_headers_size(); ++i) {
    const auto& h = p.from_headers(i);
    if (h.name().empty()) {
      return invalidArgument("must not be empty")
          .at(where + ".from_headers[" + std::to_string(i) + "].name");
    }
    out->locations.push_back({asciiLower(h.name()), h.value_prefix(), ""});
  }
  for (const auto& param : p.from_params()) out->locations.push_back({"", "", param});
  if (out->locations.empty()) {
    // Envoy's defaults (RFC 6750): the bearer header, then access_token.
    out->locations.push_back({"authorization", "Bearer ", ""});
    out->locations.push_back({"", "", "access_token"});
  }
  out->forward_payload_header = asciiLower(p.forward_payload_header());
  out->pad_forward_payload_header = p.pad_forward_payload_header();
  out->payload_in_metadata = p.payload_in_metadata();
  return out;
}

using ProviderMap = std::map<std::string, const JwtProviderConfig*, std::less<>>;

Result<JwtRequirementNode> buildRequirement(const v3::JwtRequirement& r,
                                            const ProviderMap& providers,
                                            const std::string& where) {
  JwtRequirementNode node;
  auto provider = [&](const std::string& name,
                      const std::string& at) -> Result<const JwtProviderConfig*> {
    auto it = providers.find(name);
    if (it == providers.end()) return invalidArgument("unknown provider '" + name + "'").at(at);
    return it->second;
  };
  switch (r.requires_type_case()) {
    case v3::JwtRequirement::kProviderName: {
      node.kind = JwtRequirementNode::Kind::kProvider;
      SHEAVE_ASSIGN_OR_RETURN(node.provider, provider(r.provider_name(), where + ".provider_name"));
      break;
    }
    case v3::JwtRequirement::kProviderAndAudiences: {
      node.kind = JwtRequirementNode::Kind::kProvider;
      SHEAVE_ASSIGN_OR_RETURN(node.provider,
                              provider(r.provider_and_audiences().provider_name(),
                                       where + ".provider_and_audiences.provider_name"));
      node.audiences.assign(r.provider_and_audiences().audiences().begin(),
                            r.provider_and_audiences().audiences().end());
      break;
    }
    case v3::JwtRequirement::kRequiresAny:
    case v3::JwtRequirement::kRequiresAll: {
      const bool any = r.requires_type_case() == v3::JwtRequirement::kRequiresAny;
      node.kind = any ? JwtRequirementNode::Kind::kAny : JwtRequirementNode::Kind::kAll;
      const auto& list = any ? r.requires_any().requirements() : r.requires_all().requirements();
      const std::string lw = where + (any ? ".requires_any" : ".requires_all") + ".requirements";
      if (list.size() < 2) return invalidArgument("needs at least 2 requirements").at(lw);
      for (int i = 0; i < list.size(); ++i) {
        SHEAVE_ASSIGN_OR_RETURN(
            auto child, buildRequirement(list[i], providers, lw + "[" + std::to_string(i) + "]"));
        node.children.push_back(std::move(child));
      }
      break;
    }
    case v3::JwtRequirement::kAllowMissingOrFailed:
      node.kind = JwtRequirementNode::Kind::kAllowMissingOrFailed;
      break;
    case v3::JwtRequirement::kAllowMissing:
      node.kind = JwtRequirementNode::Kind::kAllowMissing;
      break;
    default:
      node.kind = JwtRequirementNode::Kind::kNone;
  }
  return node;
}

// One token found in the request, and where.
struct FoundToken {
  std::string value;
  const JwtLocation* location = nullptr;
};

// A verified token's effects, applied only once the whole requirement passes.
struct Verified {
  const JwtProviderConfig* provider = nullptr;
  const JwtLocation* location = nullptr;
  std::string payload_base64;
  std::shared_ptr<const nlohmann::json> payload;
};

// Per-request evaluation of one requirement tree.
class RequestVerifier {
 public:
  RequestVerifier(const JwtAuthnConfig& config, const HeaderMap& headers)
      : config_(config), headers_(headers), query_(QueryParameters::parse(headers.path())) {}

  JwtStatus evaluate(const JwtRequirementNode& node) {
    using Kind = JwtRequirementNode::Kind;
    switch (node.kind) {
      case Kind::kNone:
        return JwtStatus::kOk;
      case Kind::kProvider:
        return verifyProvider(*node.provider, node.audiences);
      case Kind::kAny: {
        std::optional<JwtStatus> result;
        for (const auto& child : node.children) {
          const JwtStatus s = evaluate(child);
          if (s == JwtStatus::kOk) return s;
          // A real failure says more than "missing" from another branch.
          if (!result || *result == JwtStatus::kJwtMissed) result = s;
        }
        return result.value_or(JwtStatus::kJwtMissed);
      }
      case Kind::kAll:
        for (const auto& child : node.children) {
          const JwtStatus s = evaluate(child);
          if (s != JwtStatus::kOk) return s;
        }
        return JwtStatus::kOk;
      case Kind::kAllowMissing: {
        const JwtStatus s = verifyByIssuer();
        return s == JwtStatus::kJwtMissed ? JwtStatus::kOk : s;
      }
      case Kind::kAllowMissingOrFailed:
        (void)verifyByIssuer();
        return JwtStatus::kOk;
    }
    return JwtStatus::kJwtVerificationFail;
  }

  const std::vector<Verified>& verified() const { return verified_; }

 private:
  std::vector<FoundToken> extract(const JwtProviderConfig& provider) const {
    std::vector<FoundToken> out;
    for (const auto& loc : provider.locations) {
      if (loc.header.empty()) {
        if (auto v = query_.first(loc.param); v && !v->empty()) {
          out.push_back({std::string(*v), &loc});
        }
        continue;
      }
      for (std::string_view value : headers_.getAll(loc.header)) {
        if (!loc.value_prefix.empty()) {
          if (!startsWithIgnoreCase(value, loc.value_prefix)) continue;
          value.remove_prefix(loc.value_prefix.size());
        }
        // The token ends at the first separator, as Envoy's extractor reads it.
        const size_t end = value.find_first_of(", \t");
        if (end != std::string_view::npos) value = value.substr(0, end);
        if (!value.empty()) out.push_back({std::string(value), &loc});
      }
    }
    return out;
  }

  JwtStatus verifyOne(const JwtProviderConfig& provider, const FoundToken& token,
                      const std::vector<std::string>& audiences) {
    jwt::Jwt parsed;
    JwtStatus s = jwt::Jwt::parse(token.value, parsed);
    if (s != JwtStatus::kOk) return s;
    return verifyParsed(provider, token, parsed, audiences);
  }

  JwtStatus verifyParsed(const JwtProviderConfig& provider, const FoundToken& token,
                         const jwt::Jwt& parsed, const std::vector<std::string>& audiences) {
    JwtStatus s;
    if (audiences.empty()) {
      s = jwt::verifyJwt(parsed, *provider.jwks, provider.rules, config_.now());
    } else {
      jwt::JwtClaimRules rules = provider.rules;
      rules.audiences = audiences;
      s = jwt::verifyJwt(parsed, *provider.jwks, rules, config_.now());
    }
    if (s == JwtStatus::kOk) {
      verified_.push_back({&provider, token.location, parsed.payload_base64,
                           std::make_shared<const nlohmann::json>(parsed.payload)});
    }
    return s;
  }

  // Every token the provider finds must verify: a good token next to a bad
  // one must not carry the bad one through to the backend.
  JwtStatus verifyProvider(const JwtProviderConfig& provider,
                           const std::vector<std::string>& audiences) {
    const auto tokens = extract(provider);
    if (tokens.empty()) return JwtStatus::kJwtMissed;
    for (const auto& token : tokens) {
      const JwtStatus s = verifyOne(provider, token, audiences);
      if (s != JwtStatus::kOk) return s;
    }
    return JwtStatus::kOk;
  }

  // allow_missing / allow_missing_or_failed: any provider's locations; each
  // token is checked by the provider whose issuer it names.
  JwtStatus verifyByIssuer() {
    std::set<std::string, std::less<>> seen;
    std::optional<JwtStatus> result;
    for (const auto& provider : config_.providers()) {
      for (const auto& token : extract(*provider)) {
        if (!seen.insert(token.value).second) continue;
        jwt::Jwt parsed;
        JwtStatus s = jwt::Jwt::parse(token.value, parsed);
        if (s == JwtStatus::kOk) {
          const JwtProviderConfig* owner = nullptr;
          for (const auto& p : config_.providers()) {
            if (p->rules.issuer == parsed.iss || p->rules.issuer.empty()) {
              owner = p.get();
              if (!p->rules.issuer.empty()) break;
            }
          }
          s = owner == nullptr ? JwtStatus::kJwtUnknownIssuer
                               : verifyParsed(*owner, {token.value, token.location}, parsed, {});
        }
        if (s != JwtStatus::kOk && !result) result = s;
      }
    }
    if (seen.empty()) return JwtStatus::kJwtMissed;
    return result.value_or(JwtStatus::kOk);
  }

  const JwtAuthnConfig& config_;
  const HeaderMap& headers_;
  QueryParameters query_;
  std::vector<Verified> verified_;
};

std::string detailsFor(JwtStatus status) {
  std::string details(kDetailsPrefix);
  details += '{';
  for (char c : jwt::jwtStatusMessage(status)) details += (c == ' ' ? '_' : c);
  details += '}';
  return details;
}

}  // namespace

JwtAuthnStats::JwtAuthnStats(stats::Scope& scope)
    : allowed(scope.counter("jwt_authn.allowed")),
      denied(scope.counter("jwt_authn.denied")),
      cors_preflight_bypassed(scope.counter("jwt_authn.cors_preflight_bypassed")) {}

Result<std::shared_ptr<const JwtAuthnConfig>> JwtAuthnConfig::create(
    const v3::JwtAuthentication& proto, stats::Scope& scope, Clock clock) {
  std::shared_ptr<JwtAuthnConfig> config(new JwtAuthnConfig(scope));
  config->clock_ = clock ? std::move(clock) : [] {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
  };
  config->bypass_cors_preflight_ = proto.bypass_cors_preflight();
  config->strip_failure_response_ = proto.strip_failure_response();
  if (proto.has_filter_state_rules()) {
    return invalidArgument("is not supported").at("filter_state_rules");
  }
  ProviderMap by_name;
  // Sorted, so the allow_missing issuer lookup does not depend on map order.
  std::map<std::string, const v3::JwtProvider*> sorted;
  for (const auto& [name, p] : proto.providers()) sorted.emplace(name, &p);
  for (const auto& [name, p] : sorted) {
    SHEAVE_ASSIGN_OR_RETURN(auto provider, buildProvider(name, *p, "providers[" + name + "]"));
    by_name.emplace(name, provider.get());
    config->providers_.push_back(std::move(provider));
  }
  for (const auto& [name, r] : proto.requirement_map()) {
    SHEAVE_ASSIGN_OR_RETURN(auto node,
                            buildRequirement(r, by_name, "requirement_map[" + name + "]"));
    config->requirement_map_.emplace(name, std::move(node));
  }
  envoy::config::route::v3::RouteConfiguration table;
  auto* vhost = table.add_virtual_hosts();
  vhost->set_name("jwt_authn_rules");
  vhost->add_domains("*");
  for (int i = 0; i < proto.rules_size(); ++i) {
    const auto& rule = proto.rules(i);
    const std::string where = "rules[" + std::to_string(i) + "]";
    if (!rule.has_match()) return invalidArgument("is required").at(where + ".match");
    auto* route = vhost->add_routes();
    *route->mutable_match() = rule.match();
    route->mutable_direct_response()->set_status(200);
    JwtRequirementNode node;
    if (rule.requirement_type_case() == v3::RequirementRule::kRequires) {
      SHEAVE_ASSIGN_OR_RETURN(node,
                              buildRequirement(rule.requires_(), by_name, where + ".requires"));
    } else if (rule.requirement_type_case() == v3::RequirementRule::kRequirementName) {
      auto it = config->requirement_map_.find(rule.requirement_name());
      if (it == config->requirement_map_.end()) {
        return invalidArgument("'" + rule.requirement_name() + "' is not in requirement_map")
            .at(where + ".requirement_name");
      }
      node = it->second;
    }
    config->rules_.push_back(std::move(node));
  }
  auto built = RouteTable::create(table);
  if (!built.ok()) {
    // Route errors carry the synthetic table's path; say which rule instead.
    return invalidArgument("rules: " + built.error().message());
  }
  config->rule_table_ = std::move(built).value();
  return std::shared_ptr<const JwtAuthnConfig>(std::move(config));
}

const JwtRequirementNode* JwtAuthnConfig::requirementFor(const HeaderMap& headers,
                                                         uint64_t random) const {
  if (rules_.empty()) return nullptr;
  const auto& routes = rule_table_->virtualHosts().front()->routes;
  std::optional<QueryParameters> query;
  for (size_t i = 0; i < routes.size() && i < rules_.size(); ++i) {
    if (routes[i].matches(headers, query, random)) return &rules_[i];
  }
  return nullptr;
}

const JwtRequirementNode* JwtAuthnConfig::namedRequirement(std::string_view name) const {
  auto it = requirement_map_.find(name);
  return it == requirement_map_.end() ? nullptr : &it->second;
}

http::FilterHeadersStatus JwtAuthnFilter::decodeHeaders(HeaderMap& headers, bool) {
  const JwtAuthnConfig& config = *config_;
  // A client must not be able to pose as a verified payload.
  for (const auto& p : config.providers()) {
    if (!p->forward_payload_header.empty()) headers.remove(p->forward_payload_header);
  }

  const JwtRequirementNode* requirement = nullptr;
  const PerFilterConfig* per_route = callbacks_->route().perFilterConfig(kJwtAuthnFilterName);
  if (per_route != nullptr && per_route->disabled) return http::FilterHeadersStatus::kContinue;
  const auto* route_config = per_route != nullptr
                                 ? dynamic_cast<const JwtAuthnPerRoute*>(per_route->parsed.get())
                                 : nullptr;
  if (route_config != nullptr && route_config->disabled) {
    return http::FilterHeadersStatus::kContinue;
  }
  if (route_config != nullptr && !route_config->requirement_name.empty()) {
    requirement = config.namedRequirement(route_config->requirement_name);
    if (requirement == nullptr) {
      config.stats().denied.inc();
      callbacks_->sendLocalReply(
          403,
          "Failed JWT authentication: Wrong requirement_name: " + route_config->requirement_name,
          "jwt_authn_access_denied{wrong_requirement_name}");
      return http::FilterHeadersStatus::kStopIteration;
    }
  } else {
    requirement = config.requirementFor(headers, callbacks_->random().next());
  }
  if (requirement == nullptr || requirement->kind == JwtRequirementNode::Kind::kNone) {
    return http::FilterHeadersStatus::kContinue;
  }
  if (config.bypassCorsPreflight() && headers.method() == "OPTIONS" && headers.has("origin") &&
      headers.has("access-control-request-method")) {
    config.stats().cors_preflight_bypassed.inc();
    return http::FilterHeadersStatus::kContinue;
  }

  RequestVerifier verifier(config, headers);
  const JwtStatus status = verifier.evaluate(*requirement);
  if (status != JwtStatus::kOk) {
    config.stats().denied.inc();
    reject(headers, status);
    return http::FilterHeadersStatus::kStopIteration;
  }
  config.stats().allowed.inc();

  std::shared_ptr<const nlohmann::json> metadata;
  for (const auto& v : verifier.verified()) {
    if (!v.provider->forward && v.location != nullptr && !v.location->header.empty()) {
      headers.remove(v.location->header);
    }
    if (!v.provider->forward_payload_header.empty()) {
      std::string value = v.payload_base64;
      if (v.provider->pad_forward_payload_header) {
        while (value.size() % 4 != 0) value += '=';
      }
      headers.set(v.provider->forward_payload_header, value);
    }
    if (!v.provider->payload_in_metadata.empty()) {
      auto& slot = callbacks_->streamInfo().dynamic_metadata[std::string(kJwtAuthnFilterName)];
      nlohmann::json updated = slot ? *slot : nlohmann::json::object();
      updated[v.provider->payload_in_metadata] = *v.payload;
      slot = std::make_shared<const nlohmann::json>(std::move(updated));
    }
  }
  return http::FilterHeadersStatus::kContinue;
}

void JwtAuthnFilter::reject(const HeaderMap& headers, JwtStatus status) {
  const int code = status == JwtStatus::kJwtAudienceNotAllowed ? 403 : 401;
  const std::string details = detailsFor(status);
  const std::string_view content_type =
      headers.get("content-type") != nullptr ? std::string_view(*headers.get("content-type")) : "";
  if (config_->stripFailureResponse() || content_type.rfind("application/grpc", 0) == 0) {
    // gRPC clients read a status, which the connection manager's local reply makes.
    callbacks_->sendLocalReply(
        code, config_->stripFailureResponse() ? "" : jwt::jwtStatusMessage(status), details);
    return;
  }
  callbacks_->streamInfo().response_code_details = details;
  const std::string_view body = jwt::jwtStatusMessage(status);
  // The realm is the request's URL without its query, which may hold the token.
  std::string_view path = headers.path();
  if (const size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  std::string realm = std::string(headers.scheme().empty() ? "http" : headers.scheme()) + "://" +
                      std::string(headers.authority()) + std::string(path);
  std::string challenge = "Bearer realm=\"" + realm + "\"";
  if (status != JwtStatus::kJwtMissed) challenge += ", error=\"invalid_token\"";
  HeaderMap response;
  response.add(":status", std::to_string(code));
  response.add("www-authenticate", challenge);
  response.add("content-length", std::to_string(body.size()));
  response.add("content-type", "text/plain");
  if (headers.method() == "HEAD") {
    callbacks_->encodeHeaders(std::move(response), true);
    return;
  }
  callbacks_->encodeHeaders(std::move(response), false);
  network::Buffer b;
  b.add(body);
  callbacks_->encodeData(b, true);
}

void registerJwtAuthnFilter(http::FilterRegistry& registry) {
  PerFilterConfigParsers::add(
      std::string(kPerRouteTypeName),
      [](const google::protobuf::Any& any)
          -> Result<std::shared_ptr<const RouteSpecificFilterConfig>> {
        SHEAVE_ASSIGN_OR_RETURN(auto proto,
                                config::unpackTypedConfig<v3::PerRouteConfig>(any, "typed_config"));
        auto out = std::make_shared<JwtAuthnPerRoute>();
        switch (proto.requirement_specifier_case()) {
          case v3::PerRouteConfig::kDisabled:
            out->disabled = proto.disabled();
            break;
          case v3::PerRouteConfig::kRequirementName:
            if (proto.requirement_name().empty()) {
              return invalidArgument("must not be empty").at("requirement_name");
            }
            out->requirement_name = proto.requirement_name();
            break;
          default:
            return invalidArgument("one of disabled or requirement_name is required");
        }
        return std::shared_ptr<const RouteSpecificFilterConfig>(std::move(out));
      });
  registry.add(std::string(kTypeName),
               [](const google::protobuf::Any& any,
                  http::FilterFactoryContext& context) -> Result<http::FilterFactoryCb> {
                 SHEAVE_ASSIGN_OR_RETURN(
                     auto proto,
                     config::unpackTypedConfig<v3::JwtAuthentication>(any, "typed_config"));
                 SHEAVE_ASSIGN_OR_RETURN(auto config, JwtAuthnConfig::create(proto, context.scope));
                 return http::FilterFactoryCb([config](http::FilterChainBuilder& builder) {
                   builder.addDecoderFilter(std::make_unique<JwtAuthnFilter>(config));
                 });
               });
}

}  // namespace sheave::jwt_authn
