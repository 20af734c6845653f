#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "proxy/stats/metric.h"

namespace re2 {
class RE2;
}

namespace sheave::stats {

// Envoy's well-known tag names (config.metrics.v3.TagSpecifier.tag_name).
// In Prometheus output the dots become underscores: envoy_cluster_name.
namespace tag_names {
inline constexpr std::string_view kResponseCode = "envoy.response_code";
inline constexpr std::string_view kResponseCodeClass = "envoy.response_code_class";
inline constexpr std::string_view kClusterName = "envoy.cluster_name";
inline constexpr std::string_view kHttpConnManagerPrefix = "envoy.http_conn_manager_prefix";
inline constexpr std::string_view kListenerAddress = "envoy.listener_address";
inline constexpr std::string_view kTcpPrefix = "envoy.tcp_prefix";
inline constexpr std::string_view kUdpPrefix = "envoy.udp_prefix";
inline constexpr std::string_view kWorkerId = "envoy.worker_id";
inline constexpr std::string_view kVirtualHost = "envoy.virtual_host";
inline constexpr std::string_view kVirtualCluster = "envoy.virtual_cluster";
inline constexpr std::string_view kRoute = "envoy.route";
inline constexpr std::string_view kRdsRouteConfig = "envoy.rds_route_config";
inline constexpr std::string_view kHttpUserAgent = "envoy.http_user_agent";
inline constexpr std::string_view kFaultDownstreamCluster = "envoy.fault_downstream_cluster";
inline constexpr std::string_view kSslCipher = "envoy.ssl_cipher";
inline constexpr std::string_view kSslCipherSuite = "cipher_suite";
inline constexpr std::string_view kSslCurve = "envoy.ssl_curve";
inline constexpr std::string_view kSslSigalg = "envoy.ssl_sigalg";
inline constexpr std::string_view kSslVersion = "envoy.ssl_version";
inline constexpr std::string_view kGrpcBridgeService = "envoy.grpc_bridge_service";
inline constexpr std::string_view kGrpcBridgeMethod = "envoy.grpc_bridge_method";
inline constexpr std::string_view kRatelimitPrefix = "envoy.ratelimit_prefix";
inline constexpr std::string_view kLocalHttpRatelimitPrefix = "envoy.local_http_ratelimit_prefix";
inline constexpr std::string_view kLocalNetworkRatelimitPrefix =
    "envoy.local_network_ratelimit_prefix";
inline constexpr std::string_view kExtAuthzPrefix = "envoy.ext_authz_prefix";
}  // namespace tag_names

// One tag extraction rule: a regex whose first capture group is the part of
// the name to cut out and whose second group (or the first, when there is
// only one) is the tag value. The regexes run against the full stat name, so
// extractors do not depend on each other's order.
class TagExtractor {
 public:
  // `negative_value`: a captured value equal to it is not a match (Envoy
  // keeps "listener.admin." out of envoy.listener_address).
  static Result<std::unique_ptr<TagExtractor>> create(std::string tag_name, std::string_view regex,
                                                      std::string negative_value = "");
  ~TagExtractor();

  const std::string& tagName() const { return tag_name_; }

  // On a match appends the tag and the [begin, end) range of `name` to
  // remove, and returns true.
  bool extract(std::string_view name, std::vector<Tag>& tags,
               std::vector<std::pair<size_t, size_t>>& removals) const;

 private:
  TagExtractor(std::string tag_name, std::unique_ptr<re2::RE2> regex, std::string negative_value);

  std::string tag_name_;
  std::unique_ptr<re2::RE2> regex_;
  std::string negative_value_;
};

// stats_config.stats_tags entry: a custom regex, a fixed value for every stat,
// or (neither) a request for the default extractor of that name.
struct TagSpecifier {
  std::string tag_name;
  std::string regex;
  std::string fixed_value;
};

// Turns a stat name into its tag-extracted name and tags, as Envoy's
// TagProducer with the default extractors (well_known_names.cc) does:
//   cluster.api.upstream_rq_2xx -> cluster.upstream_rq_xx
//                                  {envoy.response_code_class=2, envoy.cluster_name=api}
// Runs when a stat is created (config load), never per request.
class TagProducer {
 public:
  // Custom specifiers first; a custom regex under a default tag name replaces
  // the default. With `use_all_default_tags` false only the defaults named in
  // `specifiers` (without regex) are used.
  static Result<TagProducer> create(const std::vector<TagSpecifier>& specifiers = {},
                                    bool use_all_default_tags = true);
  // Extracts nothing.
  TagProducer();
  TagProducer(TagProducer&&) noexcept;
  TagProducer& operator=(TagProducer&&) noexcept;
  ~TagProducer();

  // Returns the tag-extracted name and appends the tags in extractor order.
  std::string produceTags(std::string_view name, std::vector<Tag>& tags) const;

 private:
  std::vector<std::unique_ptr<TagExtractor>> extractors_;
  std::vector<Tag> fixed_tags_;
};

}  // namespace sheave::stats
