#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb.h"
#include "match/rbac/rbac_engine.h"
#include "match/route_table.h"
#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"
#include "proxy/stats/scope.h"

namespace sheave::network {
class Connection;
}

namespace sheave::rbac {

inline constexpr std::string_view kHttpRbacFilterName = "envoy.filters.http.rbac";
inline constexpr std::string_view kNetworkRbacFilterName = "envoy.filters.network.rbac";
inline constexpr std::string_view kHttpRbacTypeName = "envoy.extensions.filters.http.rbac.v3.RBAC";
inline constexpr std::string_view kHttpRbacPerRouteTypeName =
    "envoy.extensions.filters.http.rbac.v3.RBACPerRoute";
inline constexpr std::string_view kNetworkRbacTypeName =
    "envoy.extensions.filters.network.rbac.v3.RBAC";

// The two engines of one RBAC config; either may be absent (no rules: nothing
// is enforced; no shadow rules: nothing is shadowed).
struct RbacEngines : RouteSpecificFilterConfig {
  std::shared_ptr<const RbacEngine> rules;
  std::shared_ptr<const RbacEngine> shadow_rules;
  std::string rules_stat_prefix;
  std::string shadow_rules_stat_prefix;

  static Result<std::shared_ptr<const RbacEngines>> create(
      const envoy::extensions::filters::http::rbac::v3::RBAC& proto);
};

// Envoy's rbac counters: "<scope><base>rbac.<rules_stat_prefix>allowed",
// "...rbac.<shadow_rules_stat_prefix>shadow_allowed" and so on.
struct RbacStats {
  RbacStats(stats::Scope& scope, std::string_view base, std::string_view rules_prefix,
            std::string_view shadow_prefix);
  stats::Counter& allowed;
  stats::Counter& denied;
  stats::Counter& shadow_allowed;
  stats::Counter& shadow_denied;
};

struct HttpRbacFilterConfig {
  std::shared_ptr<const RbacEngines> engines;
  RbacStats stats;  // in the connection manager's "http.<stat_prefix>." scope

  HttpRbacFilterConfig(std::shared_ptr<const RbacEngines> e, stats::Scope& scope)
      : engines(std::move(e)),
        stats(scope, "", engines->rules_stat_prefix, engines->shadow_rules_stat_prefix) {}
};

// The request as the engine sees it, from a stream's headers, its stream info
// and its downstream connection. Views into all three.
RbacRequest httpRbacRequest(const HeaderMap& headers, const StreamInfo& info,
                            const network::Connection& connection);
RbacRequest connectionRbacRequest(const network::Connection& connection);

// envoy.filters.http.rbac: shadow rules are evaluated and counted (and left in
// dynamic metadata) but never enforced; enforced rules answer 403
// "RBAC: access denied". A route's (else its virtual host's) RBACPerRoute
// replaces the listener's engines, and an RBACPerRoute without `rbac` turns
// the filter off for that route.
class HttpRbacFilter : public http::PassThroughDecoderFilter {
 public:
  explicit HttpRbacFilter(std::shared_ptr<const HttpRbacFilterConfig> config)
      : config_(std::move(config)) {}

  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;

 private:
  std::shared_ptr<const HttpRbacFilterConfig> config_;
};

// envoy.filters.network.rbac, parsed once per filter chain. The check runs once
// per connection, when its first bytes arrive (ONE_TIME_ON_FIRST_BYTE; TLS is
// established by then, so the peer certificate is known). CONTINUOUS is
// treated the same way: with no per-request data on a plain connection
// there is nothing new to re-check.
class NetworkRbacConfig {
 public:
  static Result<std::shared_ptr<const NetworkRbacConfig>> create(
      const envoy::extensions::filters::network::rbac::v3::RBAC& proto, stats::Scope& root);

  // True when the connection may proceed; counts "<stat_prefix>rbac.*".
  bool check(const network::Connection& connection) const;

 private:
  NetworkRbacConfig(stats::Scope& root, std::string_view stat_prefix,
                    std::string_view shadow_prefix)
      : stats_(root, stat_prefix, "", shadow_prefix) {}

  RbacStats stats_;  // in the root scope, which outlives listeners
  std::shared_ptr<const RbacEngine> rules_;
  std::shared_ptr<const RbacEngine> shadow_rules_;
};

// Registers envoy.filters.http.rbac (and its RBACPerRoute parser).
void registerRbacFilter(http::FilterRegistry& registry);

}  // namespace sheave::rbac
