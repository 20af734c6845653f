#include "proxy/config/proto_json.h"

#include <gtest/gtest.h>

#include <string>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace sheave::config {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::listener::v3::Listener;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

std::string errorOf(std::string_view json, google::protobuf::Message& out) {
  Status s = jsonToMessage(json, out);
  return s.ok() ? "OK" : s.error().message();
}

std::string yamlErrorOf(std::string_view yaml, google::protobuf::Message& out) {
  Status s = yamlToMessage(yaml, out);
  return s.ok() ? "OK" : s.error().message();
}

TEST(JsonToMessage, AcceptsProtoAndJsonNames) {
  Cluster c;
  ASSERT_EQ(errorOf(R"({"name": "a", "connectTimeout": "1s", "lb_policy": "RANDOM"})", c), "OK");
  EXPECT_EQ(c.connect_timeout().seconds(), 1);
  EXPECT_EQ(c.lb_policy(), Cluster::RANDOM);
}

TEST(JsonToMessage, UnknownFieldNamesThePath) {
  Cluster c;
  EXPECT_EQ(
      errorOf(R"({"name": "a", "circuit_breakers": {"thresholds": [{}, {"max_conns": 1}]}})", c),
      "circuit_breakers.thresholds[1].max_conns: unknown field 'max_conns' in "
      "envoy.config.cluster.v3.CircuitBreakers.Thresholds");
}

TEST(JsonToMessage, UnknownFieldSuggestsTheNearestName) {
  Cluster c;
  EXPECT_EQ(errorOf(R"({"name": "a", "conect_timeout": "1s"})", c),
            "conect_timeout: unknown field 'conect_timeout' in envoy.config.cluster.v3.Cluster "
            "(did you mean 'connect_timeout'?)");
}

TEST(JsonToMessage, UnknownFieldInsideAnyNamesTheWholePath) {
  Listener l;
  std::string err = errorOf(R"({"name": "l", "filter_chains": [{"filters": [{
      "name": "hcm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "x",
        "http_filters": [{"name": "router", "typed_config": {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
          "suppress_envoy_header": true}}]}}]}]})",
                            l);
  EXPECT_EQ(err.substr(0, err.find(':')),
            "filter_chains[0].filters[0].typed_config.http_filters[0].typed_config."
            "suppress_envoy_header");
  EXPECT_NE(err.find("did you mean 'suppress_envoy_headers'"), std::string::npos) << err;
}

TEST(JsonToMessage, UnknownTypeUrl) {
  Listener l;
  EXPECT_EQ(errorOf(R"({"filter_chains": [{"filters": [{"name": "x",
                "typed_config": {"@type": "type.googleapis.com/envoy.nope.v3.Nope"}}]}]})",
                    l),
            "filter_chains[0].filters[0].typed_config.@type: unknown type URL "
            "'type.googleapis.com/envoy.nope.v3.Nope' (no such message type in this build)");
}

TEST(JsonToMessage, AnyWithoutType) {
  Listener l;
  std::string err = errorOf(R"({"filter_chains": [{"filters": [{"typed_config": {}}]}]})", l);
  EXPECT_EQ(err.rfind("filter_chains[0].filters[0].typed_config: missing '@type'", 0), 0u) << err;
}

TEST(JsonToMessage, WrongTypes) {
  Cluster c;
  EXPECT_EQ(errorOf(R"({"name": 5})", c), "name: expected a string, got a number");
  EXPECT_EQ(errorOf(R"({"health_checks": {}})", c),
            "health_checks: expected a list, got an object");
  EXPECT_EQ(errorOf(R"({"load_assignment": []})", c),
            "load_assignment: expected an object, got a list");
  EXPECT_EQ(errorOf(R"({"respect_dns_ttl": "yes"})", c),
            "respect_dns_ttl: expected true or false, got a string");
  EXPECT_EQ(errorOf(R"({"per_connection_buffer_limit_bytes": -1})", c),
            "per_connection_buffer_limit_bytes: -1 is out of range for uint32");
  EXPECT_EQ(errorOf(R"({"per_connection_buffer_limit_bytes": 1.5})", c),
            "per_connection_buffer_limit_bytes: expected an integer (uint32), got 1.500000");
  EXPECT_EQ(errorOf(R"({"connect_timeout": 5})", c),
            "connect_timeout: expected a duration string such as \"1.5s\", got a number");
  EXPECT_EQ(errorOf(R"({"connect_timeout": "5m"})", c),
            "connect_timeout: invalid duration '5m': expected seconds with an 's' suffix, such "
            "as \"30s\" or \"0.25s\"");
  std::string enum_err = errorOf(R"({"lb_policy": "FASTEST"})", c);
  EXPECT_EQ(
      enum_err.rfind("lb_policy: unknown value 'FASTEST' for enum "
                     "envoy.config.cluster.v3.Cluster.LbPolicy (expected one of ROUND_ROBIN, ",
                     0),
      0u)
      << enum_err;
}

TEST(JsonToMessage, WrongTypeInsideAnyNamesThePath) {
  Listener l;
  EXPECT_EQ(errorOf(R"({"filter_chains": [{"filters": [{"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stream_idle_timeout": "forever"}}]}]})",
                    l)
                .substr(0, 61),
            "filter_chains[0].filters[0].typed_config.stream_idle_timeout:");
}

TEST(JsonToMessage, OneofConflict) {
  envoy::config::route::v3::RouteConfiguration rc;
  EXPECT_EQ(
      errorOf(R"({"virtual_hosts": [{"routes": [{"match": {"prefix": "/", "path": "/x"}}]}]})", rc),
      "virtual_hosts[0].routes[0].match.prefix: only one of 'path' and 'prefix' may be set "
      "(they are both in 'path_specifier')");
}

TEST(JsonToMessage, SameFieldTwiceUnderBothNames) {
  Cluster c;
  EXPECT_EQ(errorOf(R"({"lb_policy": "RANDOM", "lbPolicy": "MAGLEV"})", c),
            "lb_policy: field 'lb_policy' is given twice (as 'lb_policy' and as 'lbPolicy')");
}

TEST(JsonToMessage, SyntaxError) {
  Cluster c;
  std::string err = errorOf(R"({"name": )", c);
  EXPECT_EQ(err.rfind("invalid JSON: ", 0), 0u) << err;
}

TEST(JsonToMessage, TopLevelMustBeAnObject) {
  Cluster c;
  EXPECT_EQ(errorOf("[1]", c), "expected a JSON object at the top level, got a list");
}

TEST(JsonToMessage, WellKnownTypesParse) {
  Cluster c;
  ASSERT_EQ(errorOf(R"({"metadata": {"filter_metadata": {"istio": {"a": [1, {"b": null}]}}},
                       "max_requests_per_connection": 7,
                       "typed_extension_protocol_options": {
                         "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                           "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                           "explicit_http_config": {"http2_protocol_options": {}}}}})",
                    c),
            "OK");
  EXPECT_EQ(c.max_requests_per_connection().value(), 7u);
  EXPECT_EQ(c.typed_extension_protocol_options().size(), 1u);
}

TEST(JsonToMessage, AnyOfWellKnownTypeUsesValue) {
  envoy::config::route::v3::RouteConfiguration rc;
  ASSERT_EQ(errorOf(R"({"typed_per_filter_config": {"x": {
                "@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"}}})",
                    rc),
            "OK");
  EXPECT_EQ(errorOf(R"({"typed_per_filter_config": {"x": {
                "@type": "type.googleapis.com/google.protobuf.Duration", "value": 2}}})",
                    rc),
            "typed_per_filter_config[\"x\"].value: expected a duration string such as \"1.5s\", "
            "got a number");
}

TEST(YamlToMessage, Works) {
  envoy::config::route::v3::RouteConfiguration rc;
  ASSERT_EQ(yamlErrorOf(R"(
name: r
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - match: {safe_regex: {regex: "^/a.*"}, case_sensitive: false}
    route: {weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 3}]}}
)",
                        rc),
            "OK");
  const auto& route = rc.virtual_hosts(0).routes(0);
  EXPECT_EQ(route.match().safe_regex().regex(), "^/a.*");
  EXPECT_FALSE(route.match().case_sensitive().value());
  EXPECT_EQ(route.route().weighted_clusters().clusters(1).weight().value(), 3u);
}

TEST(YamlToMessage, QuotedNumbersStillFitIntegerFields) {
  Cluster c;
  ASSERT_EQ(yamlErrorOf("name: a\nper_connection_buffer_limit_bytes: \"32768\"\n", c), "OK");
  EXPECT_EQ(c.per_connection_buffer_limit_bytes().value(), 32768u);
}

TEST(UnpackTypedConfig, RightAndWrongType) {
  google::protobuf::Any any;
  envoy::extensions::filters::http::router::v3::Router router;
  router.set_suppress_envoy_headers(true);
  any.PackFrom(router);

  auto ok = unpackTypedConfig<envoy::extensions::filters::http::router::v3::Router>(
      any, "http_filters[0].typed_config");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->suppress_envoy_headers());

  auto bad = unpackTypedConfig<HttpConnectionManager>(any, "filters[0].typed_config");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            "filters[0].typed_config: expected typed_config of type "
            "'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager', got "
            "'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'");

  google::protobuf::Any empty;
  auto none = unpackTypedConfig<HttpConnectionManager>(empty, "typed_config");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("got no type URL"), std::string::npos);
}

TEST(TypeUrlOf, IsEnvoysForm) {
  EXPECT_EQ(typeUrlOf(*Cluster::descriptor()),
            "type.googleapis.com/envoy.config.cluster.v3.Cluster");
}

}  // namespace
}  // namespace sheave::config
