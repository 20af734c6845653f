#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/model/duration.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// networking.istio.io VirtualService and the messages it is made of, field
// for field with Istio's API (camelCase names become snake_case; a oneof
// becomes a kind plus a value). std::optional marks Istio's message and
// wrapper fields, whose absence differs from their zero value.

// StringMatch: oneof exact / prefix / regex (RE2 syntax). An empty match
// (`{}`) is legal in headers, where it means "present with any value".
struct StringMatch {
  enum class Kind { kNone, kExact, kPrefix, kRegex };
  Kind kind = Kind::kNone;
  std::string value;
};

struct PortSelector {
  uint32_t number = 0;
};

struct Destination {
  std::string host;
  std::string subset;
  std::optional<PortSelector> port;
};

struct HeaderOperations {
  std::map<std::string, std::string> set;
  std::map<std::string, std::string> add;
  std::vector<std::string> remove;
};

struct Headers {
  std::optional<HeaderOperations> request;
  std::optional<HeaderOperations> response;
};

struct HTTPMatchRequest {
  std::string name;
  std::optional<StringMatch> uri;
  std::optional<StringMatch> scheme;
  std::optional<StringMatch> method;
  std::optional<StringMatch> authority;
  std::map<std::string, StringMatch> headers;
  uint32_t port = 0;
  std::map<std::string, std::string> source_labels;
  std::vector<std::string> gateways;
  std::map<std::string, StringMatch> query_params;
  bool ignore_uri_case = false;
  std::map<std::string, StringMatch> without_headers;
  std::string source_namespace;
  std::string stat_prefix;
};

struct HTTPRouteDestination {
  Destination destination;
  int32_t weight = 0;
  std::optional<Headers> headers;
};

struct RouteDestination {
  Destination destination;
  int32_t weight = 0;
};

enum class RedirectPortSelection { kFromProtocolDefault, kFromRequestPort };
template <>
struct EnumTraits<RedirectPortSelection> {
  static constexpr std::array<std::pair<std::string_view, RedirectPortSelection>, 2> kNames{{
      {"FROM_PROTOCOL_DEFAULT", RedirectPortSelection::kFromProtocolDefault},
      {"FROM_REQUEST_PORT", RedirectPortSelection::kFromRequestPort},
  }};
};

struct HTTPRedirect {
  std::string uri;
  std::string authority;
  uint32_t port = 0;                                 // oneof redirect_port
  std::optional<RedirectPortSelection> derive_port;  // oneof redirect_port
  std::string scheme;
  uint32_t redirect_code = 0;  // 0 means Istio's default, 301
};

// HTTPBody: oneof string / bytes (base64 in YAML, kept as written).
struct HTTPBody {
  std::optional<std::string> string;
  std::optional<std::string> bytes;
};

struct HTTPDirectResponse {
  uint32_t status = 0;
  std::optional<HTTPBody> body;
};

struct Delegate {
  std::string name;
  std::string namespace_name;  // "namespace"
};

struct RegexRewrite {
  std::string match;
  std::string rewrite;
};

struct HTTPRewrite {
  std::string uri;
  std::string authority;
  std::optional<RegexRewrite> uri_regex_rewrite;
};

struct HTTPRetry {
  int32_t attempts = 0;
  std::optional<Duration> per_try_timeout;
  std::string retry_on;
  std::optional<bool> retry_remote_localities;
};

struct HTTPFaultInjection {
  struct Delay {
    std::optional<Duration> fixed_delay;        // oneof http_delay_type
    std::optional<Duration> exponential_delay;  // oneof http_delay_type
    std::optional<double> percentage;
    int32_t percent = 0;  // deprecated integer form of percentage
  };
  struct Abort {
    int32_t http_status = 0;  // oneof error_type
    std::string grpc_status;  // oneof error_type
    std::string http2_error;  // oneof error_type
    std::optional<double> percentage;
  };
  std::optional<Delay> delay;
  std::optional<Abort> abort;
};

struct HTTPMirrorPolicy {
  Destination destination;
  std::optional<double> percentage;
};

enum class UnmatchedPreflights { kUnspecified, kForward, kIgnore };
template <>
struct EnumTraits<UnmatchedPreflights> {
  static constexpr std::array<std::pair<std::string_view, UnmatchedPreflights>, 3> kNames{{
      {"UNSPECIFIED", UnmatchedPreflights::kUnspecified},
      {"FORWARD", UnmatchedPreflights::kForward},
      {"IGNORE", UnmatchedPreflights::kIgnore},
  }};
};

struct CorsPolicy {
  std::vector<StringMatch> allow_origins;
  std::vector<std::string> allow_origin;  // deprecated exact-match form
  std::vector<std::string> allow_methods;
  std::vector<std::string> allow_headers;
  std::vector<std::string> expose_headers;
  std::optional<Duration> max_age;
  std::optional<bool> allow_credentials;
  UnmatchedPreflights unmatched_preflights = UnmatchedPreflights::kUnspecified;
};

struct HTTPRoute {
  std::string name;
  std::vector<HTTPMatchRequest> match;
  std::vector<HTTPRouteDestination> route;
  std::optional<HTTPRedirect> redirect;
  std::optional<HTTPDirectResponse> direct_response;
  std::optional<Delegate> delegate;
  std::optional<HTTPRewrite> rewrite;
  std::optional<Duration> timeout;
  std::optional<HTTPRetry> retries;
  std::optional<HTTPFaultInjection> fault;
  std::optional<Destination> mirror;
  std::optional<double> mirror_percentage;
  std::optional<uint32_t> mirror_percent;  // deprecated UInt32Value form
  std::vector<HTTPMirrorPolicy> mirrors;
  std::optional<CorsPolicy> cors_policy;
  std::optional<Headers> headers;
};

struct L4MatchAttributes {
  std::vector<std::string> destination_subnets;
  uint32_t port = 0;
  std::string source_subnet;
  std::map<std::string, std::string> source_labels;
  std::vector<std::string> gateways;
  std::string source_namespace;
};

struct TLSMatchAttributes {
  std::vector<std::string> sni_hosts;
  std::vector<std::string> destination_subnets;
  uint32_t port = 0;
  std::map<std::string, std::string> source_labels;
  std::vector<std::string> gateways;
  std::string source_namespace;
};

struct TCPRoute {
  std::vector<L4MatchAttributes> match;
  std::vector<RouteDestination> route;
};

struct TLSRoute {
  std::vector<TLSMatchAttributes> match;
  std::vector<RouteDestination> route;
};

struct VirtualService {
  std::vector<std::string> hosts;  // empty: a delegate VirtualService
  std::vector<std::string> gateways;
  std::vector<HTTPRoute> http;
  std::vector<TLSRoute> tls;
  std::vector<TCPRoute> tcp;
  std::vector<std::string> export_to;
};

}  // namespace sheave::control
