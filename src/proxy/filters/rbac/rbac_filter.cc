#include "proxy/filters/rbac/rbac_filter.h"

#include <nlohmann/json.hpp>

#include "proxy/accesslog/stream_info.h"
#include "proxy/config/proto_json.h"
#include "proxy/network/connection.h"

namespace sheave::rbac {

namespace {

using HttpRbac = envoy::extensions::filters::http::rbac::v3::RBAC;
using HttpRbacPerRoute = envoy::extensions::filters::http::rbac::v3::RBACPerRoute;
using NetworkRbac = envoy::extensions::filters::network::rbac::v3::RBAC;

constexpr std::string_view kDeniedBody = "RBAC: access denied";

Result<std::shared_ptr<const RbacEngine>> engineOrNull(bool present,
                                                       const envoy::config::rbac::v3::RBAC& proto,
                                                       std::string_view where) {
  if (!present) return std::shared_ptr<const RbacEngine>();
  auto e = RbacEngine::create(proto);
  if (!e.ok()) return std::move(e).error().at(where);
  return std::move(e).value();
}

std::string joinPrefix(std::string_view base) {
  std::string out(base);
  if (!out.empty() && out.back() != '.') out += '.';
  return out;
}

std::string_view engineResult(bool allowed) { return allowed ? "allowed" : "denied"; }

}  // namespace

Result<std::shared_ptr<const RbacEngines>> RbacEngines::create(const HttpRbac& proto) {
  auto out = std::make_shared<RbacEngines>();
  SHEAVE_ASSIGN_OR_RETURN(out->rules, engineOrNull(proto.has_rules(), proto.rules(), "rules"));
  SHEAVE_ASSIGN_OR_RETURN(out->shadow_rules, engineOrNull(proto.has_shadow_rules(),
                                                          proto.shadow_rules(), "shadow_rules"));
  out->rules_stat_prefix = proto.rules_stat_prefix();
  out->shadow_rules_stat_prefix = proto.shadow_rules_stat_prefix();
  return std::shared_ptr<const RbacEngines>(std::move(out));
}

RbacStats::RbacStats(stats::Scope& scope, std::string_view base, std::string_view rules_prefix,
                     std::string_view shadow_prefix)
    : allowed(scope.counter(joinPrefix(base) + "rbac." + std::string(rules_prefix) + "allowed")),
      denied(scope.counter(joinPrefix(base) + "rbac." + std::string(rules_prefix) + "denied")),
      shadow_allowed(scope.counter(joinPrefix(base) + "rbac." + std::string(shadow_prefix) +
                                   "shadow_allowed")),
      shadow_denied(scope.counter(joinPrefix(base) + "rbac." + std::string(shadow_prefix) +
                                  "shadow_denied")) {}

namespace {

IpAddress fromAddress(const Address& a) {
  IpAddress out;
  if (auto parsed = IpAddress::parse(a.ip())) {
    out = *parsed;
    out.port = a.port();
  }
  return out;
}

void fillConnection(const network::Connection& connection, RbacRequest& r) {
  r.direct_remote_ip = fromAddress(connection.remoteAddress());
  r.remote_ip = r.direct_remote_ip;
  r.destination_ip = fromAddress(connection.localAddress());
  r.requested_server_name = connection.requestedServerName();
  r.secure = connection.secure();
  if (const auto* peer = connection.peerCertificate()) {
    r.peer_uri_sans = peer->uri_sans;
    r.peer_dns_sans = peer->dns_sans;
    r.peer_subject = peer->subject;
  }
}

}  // namespace

RbacRequest httpRbacRequest(const HeaderMap& headers, const StreamInfo& info,
                            const network::Connection& connection) {
  RbacRequest r;
  fillConnection(connection, r);
  r.headers = &headers;
  if (const std::string* path = headers.get(":path")) r.path = *path;
  // The stream's view of the client (after XFF or PROXY protocol), when known.
  if (auto remote = IpAddress::parseIpPort(info.downstream_remote_address)) r.remote_ip = *remote;
  r.dynamic_metadata = &info.dynamic_metadata;
  return r;
}

RbacRequest connectionRbacRequest(const network::Connection& connection) {
  RbacRequest r;
  fillConnection(connection, r);
  return r;
}

http::FilterHeadersStatus HttpRbacFilter::decodeHeaders(HeaderMap& headers, bool) {
  const RbacEngines* engines = config_->engines.get();
  if (const PerFilterConfig* per_route = callbacks_->route().perFilterConfig(kHttpRbacFilterName)) {
    if (per_route->disabled) return http::FilterHeadersStatus::kContinue;
    if (const auto* e = dynamic_cast<const RbacEngines*>(per_route->parsed.get())) engines = e;
  }
  StreamInfo& info = callbacks_->streamInfo();
  const RbacRequest request = httpRbacRequest(headers, info, callbacks_->connection());
  const RbacStats& stats = config_->stats;

  nlohmann::json metadata = nlohmann::json::object();
  if (engines->shadow_rules) {
    const RbacResult shadow = engines->shadow_rules->evaluate(request);
    (shadow.allowed ? stats.shadow_allowed : stats.shadow_denied).inc();
    const std::string& prefix = engines->shadow_rules_stat_prefix;
    if (!shadow.matched_policy_name.empty()) {
      metadata[prefix + "shadow_effective_policy_id"] = shadow.matched_policy_name;
    }
    metadata[prefix + "shadow_engine_result"] = engineResult(shadow.allowed);
  }

  bool allowed = true;
  std::string matched;
  if (engines->rules) {
    RbacResult result = engines->rules->evaluate(request);
    allowed = result.allowed;
    matched = std::move(result.matched_policy_name);
    if (engines->rules->action() == RbacEngine::Action::kLog) {
      metadata["access_log_hint"] = !matched.empty();
    } else {
      (allowed ? stats.allowed : stats.denied).inc();
      const std::string& prefix = engines->rules_stat_prefix;
      if (!matched.empty()) metadata[prefix + "enforced_effective_policy_id"] = matched;
      metadata[prefix + "enforced_engine_result"] = engineResult(allowed);
    }
  }
  if (!metadata.empty()) {
    info.dynamic_metadata[std::string(kHttpRbacFilterName)] =
        std::make_shared<const nlohmann::json>(std::move(metadata));
  }
  if (allowed) return http::FilterHeadersStatus::kContinue;

  const std::string details = "rbac_access_denied_matched_policy[" +
                              (matched.empty() ? std::string("none") : matched) + "]";
  callbacks_->sendLocalReply(403, kDeniedBody, details);
  return http::FilterHeadersStatus::kStopIteration;
}

Result<std::shared_ptr<const NetworkRbacConfig>> NetworkRbacConfig::create(const NetworkRbac& proto,
                                                                           stats::Scope& root) {
  if (proto.stat_prefix().empty()) return invalidArgument("stat_prefix: required");
  std::shared_ptr<NetworkRbacConfig> out(
      new NetworkRbacConfig(root, proto.stat_prefix(), proto.shadow_rules_stat_prefix()));
  SHEAVE_ASSIGN_OR_RETURN(out->rules_, engineOrNull(proto.has_rules(), proto.rules(), "rules"));
  SHEAVE_ASSIGN_OR_RETURN(out->shadow_rules_, engineOrNull(proto.has_shadow_rules(),
                                                           proto.shadow_rules(), "shadow_rules"));
  return std::shared_ptr<const NetworkRbacConfig>(std::move(out));
}

bool NetworkRbacConfig::check(const network::Connection& connection) const {
  const RbacRequest request = connectionRbacRequest(connection);
  const RbacStats& stats = stats_;
  if (shadow_rules_) {
    (shadow_rules_->evaluate(request).allowed ? stats.shadow_allowed : stats.shadow_denied).inc();
  }
  if (!rules_) return true;
  const RbacResult result = rules_->evaluate(request);
  if (rules_->action() == RbacEngine::Action::kLog) return true;
  (result.allowed ? stats.allowed : stats.denied).inc();
  return result.allowed;
}

void registerRbacFilter(http::FilterRegistry& registry) {
  PerFilterConfigParsers::add(
      std::string(kHttpRbacPerRouteTypeName),
      [](const google::protobuf::Any& any)
          -> Result<std::shared_ptr<const RouteSpecificFilterConfig>> {
        SHEAVE_ASSIGN_OR_RETURN(auto proto,
                                config::unpackTypedConfig<HttpRbacPerRoute>(any, "typed_config"));
        // No `rbac`: an empty RbacEngines, i.e. nothing enforced on this route.
        SHEAVE_ASSIGN_OR_RETURN(auto engines, RbacEngines::create(proto.rbac()));
        return std::shared_ptr<const RouteSpecificFilterConfig>(std::move(engines));
      });
  registry.add(std::string(kHttpRbacTypeName),
               [](const google::protobuf::Any& any,
                  http::FilterFactoryContext& context) -> Result<http::FilterFactoryCb> {
                 SHEAVE_ASSIGN_OR_RETURN(auto proto,
                                         config::unpackTypedConfig<HttpRbac>(any, "typed_config"));
                 SHEAVE_ASSIGN_OR_RETURN(auto engines, RbacEngines::create(proto));
                 auto config = std::make_shared<const HttpRbacFilterConfig>(std::move(engines),
                                                                            context.scope);
                 return http::FilterFactoryCb([config](http::FilterChainBuilder& builder) {
                   builder.addDecoderFilter(std::make_unique<HttpRbacFilter>(config));
                 });
               });
}

}  // namespace sheave::rbac
