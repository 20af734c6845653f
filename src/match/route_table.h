#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "envoy/config/route/v3/route.pb.h"
#include "match/fractional_percent.h"
#include "match/hash_policy.h"
#include "match/header_map.h"
#include "match/header_matcher.h"
#include "match/header_mutation.h"
#include "match/rate_limit_policy.h"
#include "match/string_matcher.h"

namespace sheave {

// Retry conditions of RetryPolicy.retry_on (and x-envoy-retry-on /
// x-envoy-retry-grpc-on), one bit each.
struct RetryOn {
  static constexpr uint32_t k5xx = 1u << 0;
  static constexpr uint32_t kGatewayError = 1u << 1;
  static constexpr uint32_t kReset = 1u << 2;
  static constexpr uint32_t kResetBeforeRequest = 1u << 3;
  static constexpr uint32_t kConnectFailure = 1u << 4;
  static constexpr uint32_t kEnvoyRateLimited = 1u << 5;
  static constexpr uint32_t kRetriable4xx = 1u << 6;
  static constexpr uint32_t kRefusedStream = 1u << 7;
  static constexpr uint32_t kRetriableStatusCodes = 1u << 8;
  static constexpr uint32_t kRetriableHeaders = 1u << 9;
  static constexpr uint32_t kHttp3PostConnectFailure = 1u << 10;
  static constexpr uint32_t kGrpcCancelled = 1u << 11;
  static constexpr uint32_t kGrpcDeadlineExceeded = 1u << 12;
  static constexpr uint32_t kGrpcInternal = 1u << 13;
  static constexpr uint32_t kGrpcResourceExhausted = 1u << 14;
  static constexpr uint32_t kGrpcUnavailable = 1u << 15;
};

// Parses a comma-separated retry_on list ("5xx,reset, connect-failure");
// blanks around names are ignored, an unknown name is an Error naming it.
Result<uint32_t> parseRetryOn(std::string_view list);

// RetryPolicy with Envoy's defaults merged at load time.
struct RetryPolicy {
  uint32_t retry_on = 0;  // RetryOn bits
  uint32_t num_retries = 1;
  std::optional<std::chrono::milliseconds> per_try_timeout;
  std::optional<std::chrono::milliseconds> per_try_idle_timeout;
  std::vector<uint32_t> retriable_status_codes;
  std::vector<HeaderMatcher> retriable_headers;          // on the upstream response
  std::vector<HeaderMatcher> retriable_request_headers;  // on the request
  std::chrono::milliseconds base_interval{25};
  std::chrono::milliseconds max_interval{250};  // default: 10 x base_interval
  // retry_host_predicate names, e.g. "envoy.retry_host_predicates.previous_hosts".
  std::vector<std::string> retry_host_predicates;
  int64_t host_selection_retry_max_attempts = 1;
  std::string retry_priority;  // name, empty when none

  static Result<RetryPolicy> create(const envoy::config::route::v3::RetryPolicy& config);
};

struct DirectResponse {
  uint32_t status = 200;
  std::string body;
};

// RedirectAction compiled; location() builds the Location header value.
struct Redirect {
  bool https_redirect = false;
  std::string scheme_redirect;
  std::string host_redirect;
  uint32_t port_redirect = 0;  // 0: keep
  std::string path_redirect;
  bool path_redirect_has_query = false;
  std::string prefix_rewrite;
  std::optional<RegexSubstitution> regex_rewrite;
  uint32_t response_code = 301;
  bool strip_query = false;
};

// One RouteAction.request_mirror_policies entry: a fire-and-forget copy of
// the request to another cluster.
struct MirrorPolicy {
  std::string cluster;
  std::string cluster_header;   // lower-case; set instead of cluster
  Fraction fraction{100, 100};  // runtime_fraction.default_value; unset: every request
  bool disable_shadow_host_suffix_append = false;
  std::string host_rewrite_literal;
};

// One weighted_clusters entry.
struct WeightedClusterEntry {
  std::string name;
  std::string cluster_header;  // set instead of name: the cluster is that header's value
  uint32_t weight = 0;
  std::string host_rewrite_literal;
  HeaderMutations request_headers;
  HeaderMutations response_headers;

  // The cluster name for this request (the header value for cluster_header).
  const std::string& clusterName(const HeaderMap& request_headers) const;
};

// A filter's settings for one route, virtual host or route configuration
// (typed_per_filter_config), parsed once when the table is built. Filters
// derive their per-route type from it and cast back.
class RouteSpecificFilterConfig {
 public:
  virtual ~RouteSpecificFilterConfig() = default;
};

struct PerFilterConfig {
  // As configured; an envoy.config.route.v3.FilterConfig wrapper is unwrapped.
  google::protobuf::Any typed_config;
  // Null when no parser is registered for the type (the entry is then only
  // carried along, as for filters this build does not have).
  std::shared_ptr<const RouteSpecificFilterConfig> parsed;
  bool disabled = false;  // FilterConfig.disabled: the filter skips this route
};

// Keyed by the HTTP filter's name ("envoy.filters.http.fault").
using PerFilterConfigs = std::map<std::string, PerFilterConfig, std::less<>>;

// Parsers for typed_per_filter_config values, keyed by type name
// ("envoy.extensions.filters.http.fault.v3.HTTPFault"). Process-wide because
// route tables are built wherever a RouteConfiguration arrives (bootstrap,
// RDS, tools) while filters register once at start-up; an error from a
// parser rejects the whole table, as Envoy rejects bad per-route config.
class PerFilterConfigParsers {
 public:
  using Parser = std::function<Result<std::shared_ptr<const RouteSpecificFilterConfig>>(
      const google::protobuf::Any&)>;
  static void add(std::string type_name, Parser parser);
  static std::optional<Parser> find(std::string_view type_name);
};

struct VirtualHostEntry;

// One route, precomputed at load time; immutable and protobuf-free.
struct RouteEntry {
  enum class PathKind { kPrefix, kPath, kRegex, kPathSeparatedPrefix, kConnect };
  enum class ActionKind { kCluster, kClusterHeader, kWeightedClusters, kDirectResponse, kRedirect };

  std::string name;
  const VirtualHostEntry* virtual_host = nullptr;

  // --- match
  PathKind path_kind = PathKind::kPrefix;
  std::string path;  // prefix, exact path or path_separated_prefix
  bool case_sensitive = true;
  RegexPtr path_regex;
  std::vector<HeaderMatcher> headers;
  std::vector<QueryParameterMatcher> query_parameters;
  bool grpc_only = false;
  // runtime_fraction.default_value: matches when random % denominator < numerator.
  std::optional<std::pair<uint64_t, uint64_t>> runtime_fraction;  // numerator, denominator

  // --- action
  ActionKind action = ActionKind::kCluster;
  std::string cluster;         // kCluster
  std::string cluster_header;  // kClusterHeader (lower-case)
  std::vector<WeightedClusterEntry> weighted_clusters;
  uint64_t total_weight = 0;
  std::string random_value_header;  // weighted_clusters.header_name
  uint32_t cluster_not_found_response_code = 503;
  std::optional<DirectResponse> direct_response;
  std::optional<Redirect> redirect;

  std::string prefix_rewrite;
  std::optional<RegexSubstitution> regex_rewrite;
  std::string host_rewrite_literal;
  bool auto_host_rewrite = false;
  std::string host_rewrite_header;  // lower-case

  std::chrono::milliseconds timeout{15000};  // 0 disables
  std::optional<std::chrono::milliseconds> idle_timeout;
  std::optional<std::chrono::milliseconds> max_stream_duration;
  // gRPC: RouteAction.max_grpc_timeout / grpc_timeout_offset, or
  // max_stream_duration.grpc_timeout_header_max / _offset. When set, a gRPC
  // request's grpc-timeout is its timeout, capped at this (0: no cap).
  std::optional<std::chrono::milliseconds> max_grpc_timeout;
  std::chrono::milliseconds grpc_timeout_offset{0};
  // The effective policy: the route's own, else the virtual host's, else none.
  std::optional<RetryPolicy> retry_policy;
  // hash_policy: the request's hash for RING_HASH / MAGLEV clusters.
  HashPolicy hash_policy;
  // rate_limits: the descriptors a rate limit filter looks up.
  std::vector<RateLimitPolicy> rate_limits;
  // request_mirror_policies: the route's own, else the virtual host's.
  std::vector<MirrorPolicy> mirror_policies;
  // upgrade_configs: upgrade type (lower-case, "connect" for CONNECT) -> enabled on this route,
  // overriding the connection manager's upgrade_configs for that type.
  std::vector<std::pair<std::string, bool>> upgrade_configs;

  HeaderMutations request_headers;
  HeaderMutations response_headers;
  // typed_per_filter_config, plus the legacy `cors` field as
  // "envoy.filters.http.cors" when that key is not set.
  PerFilterConfigs per_filter_config;

  // --- request-path functions
  // The cluster for kCluster, kClusterHeader (first value of the header; empty
  // when absent) and kWeightedClusters; empty for direct responses/redirects.
  // A header-derived name refers into `request_headers`.
  const std::string& pickCluster(const HeaderMap& request_headers, uint64_t random) const;
  // Envoy's rule: (header_name value if set and valid, else random) % total
  // weight, then the entry whose cumulative weight interval holds it.
  const WeightedClusterEntry* pickWeightedCluster(const HeaderMap& request_headers,
                                                  uint64_t random) const;
  // The :path after prefix_rewrite/regex_rewrite (query kept), or nullopt when
  // the route rewrites nothing.
  std::optional<std::string> rewrittenPath(std::string_view path) const;
  // The Location header of a redirect route for this request.
  std::string redirectLocation(const HeaderMap& request_headers) const;

  bool matches(const HeaderMap& request_headers, std::optional<QueryParameters>& query,
               uint64_t random) const;
  // The prefix of `path_no_query` that the route matched, for prefix_rewrite.
  std::string_view matchedPath(std::string_view path_no_query) const;
};

struct VirtualHostEntry {
  std::string name;
  // x-envoy-attempt-count on the upstream request / on the response.
  bool include_request_attempt_count = false;
  bool include_attempt_count_in_response = false;
  std::vector<std::string> domains;
  std::vector<RouteEntry> routes;
  std::vector<RateLimitPolicy> rate_limits;
  HeaderMutations request_headers;
  HeaderMutations response_headers;
  PerFilterConfigs per_filter_config;  // as RouteEntry::per_filter_config
};

class RouteTable;

// The outcome of RouteTable::route(). Pointers stay valid while the table that
// produced them is alive. route == nullptr means no route (404, flag NR).
struct RouteMatchResult {
  const RouteTable* table = nullptr;
  const VirtualHostEntry* virtual_host = nullptr;
  const RouteEntry* route = nullptr;
  // The weighted cluster chosen for this request, picked with the same random
  // value Envoy uses for the route match.
  const WeightedClusterEntry* weighted_cluster = nullptr;

  explicit operator bool() const { return route != nullptr; }
  // The upstream cluster name (empty for redirects/direct responses, or when a
  // cluster_header is absent).
  const std::string& cluster(const HeaderMap& request_headers) const;

  // Header lists of the weighted cluster, route, virtual host and route
  // configuration, in Envoy's order: least specific applied last (so it wins)
  // unless most_specific_header_mutations_wins reverses the order.
  void applyRequestHeaderMutations(HeaderMap& request_headers) const;
  void applyResponseHeaderMutations(HeaderMap& response_headers) const;
  // prefix_rewrite / regex_rewrite on :path, query string kept.
  void rewritePath(HeaderMap& request_headers) const;
  // host_rewrite_literal (route, else weighted cluster) or host_rewrite_header
  // sets :authority. auto_host_rewrite is the proxy's job once it has picked a
  // host (RouteEntry::auto_host_rewrite).
  void rewriteHost(HeaderMap& request_headers) const;

  // typed_per_filter_config for `filter_name` at each level, most specific
  // first (route, virtual host, route configuration); null where unset.
  std::array<const PerFilterConfig*, 3> perFilterConfigs(std::string_view filter_name) const;
  // The most specific entry, or null.
  const PerFilterConfig* perFilterConfig(std::string_view filter_name) const;
  // The most specific parsed entry of type T, or null.
  template <typename T>
  const T* mostSpecificFilterConfig(std::string_view filter_name) const {
    const PerFilterConfig* c = perFilterConfig(filter_name);
    return c != nullptr ? dynamic_cast<const T*>(c->parsed.get()) : nullptr;
  }
};

// How the Host header's port takes part in virtual host selection. By default
// the port is part of the name ("foo.com:8080" does not match "foo.com"), as
// in Envoy; the HCM options strip it first.
struct HostPortPolicy {
  bool strip_any_host_port = false;                  // HCM strip_any_host_port
  std::optional<uint32_t> strip_matching_host_port;  // HCM strip_matching_host_port: listener port
};

// Returns `host` without a trailing ":port" (IPv6 "[::1]:80" -> "[::1]"), or
// unchanged when there is none, or when `only_port` is set and differs.
std::string_view stripPortFromHost(std::string_view host,
                                   std::optional<uint32_t> only_port = std::nullopt);

// A RouteConfiguration compiled and validated once; immutable afterwards and
// safe to use from any thread.
class RouteTable {
 public:
  static Result<std::shared_ptr<const RouteTable>> create(
      const envoy::config::route::v3::RouteConfiguration& config);

  RouteMatchResult route(const HeaderMap& request_headers, uint64_t random,
                         const HostPortPolicy& port_policy = {}) const;
  // Virtual host selection alone: exact domain, longest suffix wildcard
  // ("*.foo.com", "*-bar.foo.com"), longest prefix wildcard ("foo.*"), then "*".
  const VirtualHostEntry* findVirtualHost(const HeaderMap& request_headers,
                                          const HostPortPolicy& port_policy = {}) const;

  const std::string& name() const { return name_; }
  const std::vector<std::unique_ptr<VirtualHostEntry>>& virtualHosts() const {
    return virtual_hosts_;
  }
  const HeaderMutations& requestHeaders() const { return request_headers_; }
  const HeaderMutations& responseHeaders() const { return response_headers_; }
  bool mostSpecificHeaderMutationsWins() const { return most_specific_wins_; }
  const std::vector<std::string>& internalOnlyHeaders() const { return internal_only_headers_; }
  const PerFilterConfigs& perFilterConfig() const { return per_filter_config_; }

 private:
  RouteTable() = default;
  const VirtualHostEntry* findWildcard(
      std::string_view host,
      const std::map<size_t, std::unordered_map<std::string, const VirtualHostEntry*>,
                     std::greater<>>& table,
      bool suffix) const;

  std::string name_;
  std::vector<std::unique_ptr<VirtualHostEntry>> virtual_hosts_;
  std::unordered_map<std::string, const VirtualHostEntry*> exact_;
  // Wildcards keyed by length of the part without '*', longest first.
  std::map<size_t, std::unordered_map<std::string, const VirtualHostEntry*>, std::greater<>>
      suffix_wildcards_;
  std::map<size_t, std::unordered_map<std::string, const VirtualHostEntry*>, std::greater<>>
      prefix_wildcards_;
  const VirtualHostEntry* default_ = nullptr;
  bool ignore_port_in_host_matching_ = false;
  bool most_specific_wins_ = false;
  HeaderMutations request_headers_;
  HeaderMutations response_headers_;
  std::vector<std::string> internal_only_headers_;
  PerFilterConfigs per_filter_config_;
};

}  // namespace sheave
