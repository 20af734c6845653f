#include "match/route_table.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

namespace sheave {
namespace {

using envoy::config::route::v3::RouteConfiguration;
using std::chrono::milliseconds;

RouteConfiguration parseText(const std::string& text) {
  RouteConfiguration config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return config;
}

std::shared_ptr<const RouteTable> build(const std::string& text) {
  auto table = RouteTable::create(parseText(text));
  EXPECT_TRUE(table.ok()) << (table.ok() ? "" : table.error().message());
  return table.ok() ? std::move(table).value() : nullptr;
}

std::string buildError(const std::string& text) {
  auto table = RouteTable::create(parseText(text));
  EXPECT_FALSE(table.ok());
  return table.ok() ? std::string() : table.error().message();
}

HeaderMap request(std::string_view authority, std::string_view path,
                  std::initializer_list<std::pair<std::string, std::string>> extra = {}) {
  HeaderMap h;
  h.add(":method", "GET");
  h.add(":scheme", "http");
  h.add(":authority", authority);
  h.add(":path", path);
  for (const auto& [k, v] : extra) h.add(k, v);
  return h;
}

// The virtual host name picked for `authority`, or "<none>".
std::string vhostFor(const RouteTable& table, std::string_view authority,
                     const HostPortPolicy& policy = {}) {
  const VirtualHostEntry* v = table.findVirtualHost(request(authority, "/"), policy);
  return v ? v->name : "<none>";
}

// The route name chosen for a request, or "<none>".
std::string routeFor(const RouteTable& table, const HeaderMap& h, uint64_t random = 0) {
  auto r = table.route(h, random);
  return r.route ? r.route->name : "<none>";
}

// ---------------------------------------------------------------------------
// Virtual host selection

constexpr const char* kDomains = R"(
  virtual_hosts { name: "exact" domains: "www.foo.com" domains: "api.foo.com:8080" }
  virtual_hosts { name: "suffix" domains: "*.foo.com" }
  virtual_hosts { name: "longer-suffix" domains: "*-bar.foo.com" }
  virtual_hosts { name: "prefix" domains: "foo.*" }
  virtual_hosts { name: "longer-prefix" domains: "foo.bar.*" }
  virtual_hosts { name: "default" domains: "*" }
  virtual_hosts { name: "v6" domains: "[::1]" }
)";

TEST(RouteTableDomainsTest, Precedence) {
  auto t = build(kDomains);
  ASSERT_TRUE(t);
  EXPECT_EQ(vhostFor(*t, "www.foo.com"), "exact");
  EXPECT_EQ(vhostFor(*t, "WWW.Foo.COM"), "exact");  // case-insensitive
  EXPECT_EQ(vhostFor(*t, "a.foo.com"), "suffix");
  EXPECT_EQ(vhostFor(*t, "baz-bar.foo.com"), "longer-suffix");
  EXPECT_EQ(vhostFor(*t, "x.baz-bar.foo.com"), "longer-suffix");
  // The wildcard stands for at least one character.
  EXPECT_EQ(vhostFor(*t, ".foo.com"), "default");
  EXPECT_EQ(vhostFor(*t, "foo.org"), "prefix");
  EXPECT_EQ(vhostFor(*t, "foo.bar.org"), "longer-prefix");
  // Suffix wildcards beat prefix wildcards.
  EXPECT_EQ(vhostFor(*t, "foo.foo.com"), "suffix");
  EXPECT_EQ(vhostFor(*t, "example.org"), "default");
  EXPECT_EQ(vhostFor(*t, ""), "default");
}

TEST(RouteTableDomainsTest, DotOnlyHostsAndMissingAuthority) {
  auto t = build(R"(
    virtual_hosts { name: "suffix" domains: "*.foo.com" }
    virtual_hosts { name: "exact" domains: "bar.com" })");
  ASSERT_TRUE(t);
  EXPECT_EQ(vhostFor(*t, ".foo.com"), "<none>");
  EXPECT_EQ(vhostFor(*t, "a.foo.com"), "suffix");
  HeaderMap no_authority;
  no_authority.add(":path", "/");
  EXPECT_EQ(t->findVirtualHost(no_authority), nullptr);
  // HTTP/1 callers that kept "host" instead of ":authority" still route.
  HeaderMap host_only;
  host_only.add("host", "bar.com");
  ASSERT_NE(t->findVirtualHost(host_only), nullptr);
  EXPECT_EQ(t->findVirtualHost(host_only)->name, "exact");
  // With only a "*" virtual host, the authority does not matter at all.
  auto only_default = build(R"(virtual_hosts { name: "d" domains: "*" })");
  EXPECT_EQ(only_default->findVirtualHost(no_authority)->name, "d");
}

TEST(RouteTableDomainsTest, PortInHost) {
  auto t = build(kDomains);
  ASSERT_TRUE(t);
  // By default the port is part of the name.
  EXPECT_EQ(vhostFor(*t, "www.foo.com:8080"), "default");
  EXPECT_EQ(vhostFor(*t, "api.foo.com:8080"), "exact");
  EXPECT_EQ(vhostFor(*t, "api.foo.com"), "suffix");
  HostPortPolicy any;
  any.strip_any_host_port = true;
  EXPECT_EQ(vhostFor(*t, "www.foo.com:8080", any), "exact");
  EXPECT_EQ(vhostFor(*t, "[::1]:443", any), "v6");
  EXPECT_EQ(vhostFor(*t, "[::1]", any), "v6");
  HostPortPolicy matching;
  matching.strip_matching_host_port = 8080;
  EXPECT_EQ(vhostFor(*t, "www.foo.com:8080", matching), "exact");
  EXPECT_EQ(vhostFor(*t, "www.foo.com:9090", matching), "default");

  auto ignoring = build(std::string(kDomains) + "ignore_port_in_host_matching: true");
  EXPECT_EQ(vhostFor(*ignoring, "www.foo.com:8080"), "exact");

  EXPECT_EQ(stripPortFromHost("a.com:80"), "a.com");
  EXPECT_EQ(stripPortFromHost("a.com"), "a.com");
  EXPECT_EQ(stripPortFromHost("[::1]"), "[::1]");
  EXPECT_EQ(stripPortFromHost("[::1]:80"), "[::1]");
  EXPECT_EQ(stripPortFromHost("a.com:80", 81), "a.com:80");
  EXPECT_EQ(stripPortFromHost("a.com:80", 80), "a.com");
}

TEST(RouteTableDomainsTest, ValidationErrors) {
  std::string dup = buildError(R"(
    virtual_hosts { name: "a" domains: "x.com" }
    virtual_hosts { name: "b" domains: "y.com" domains: "X.com" })");
  EXPECT_EQ(dup,
            "virtual_hosts[1].domains[1]: duplicate domain 'x.com' (also in virtual host 'a')");
  std::string two_defaults = buildError(R"(
    virtual_hosts { name: "a" domains: "*" }
    virtual_hosts { name: "b" domains: "*" })");
  EXPECT_EQ(two_defaults.rfind("virtual_hosts[1].domains[0]: only a single wildcard", 0), 0u)
      << two_defaults;
  std::string dup_wildcard = buildError(R"(
    virtual_hosts { name: "a" domains: "*.x.com" }
    virtual_hosts { name: "b" domains: "*.x.com" })");
  EXPECT_NE(dup_wildcard.find("duplicate domain '*.x.com'"), std::string::npos);
  std::string no_domains = buildError(R"(virtual_hosts { name: "a" })");
  EXPECT_EQ(no_domains, "virtual_hosts[0].domains: virtual host 'a' must have at least one domain");
  EXPECT_NE(buildError(R"(virtual_hosts { domains: "a" })").find("virtual_hosts[0].name"),
            std::string::npos);
}

// ---------------------------------------------------------------------------
// Route matching

TEST(RouteTableMatchTest, PathSpecifiers) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "exact" match { path: "/exact" } route { cluster: "c" } }
    routes { name: "sep" match { path_separated_prefix: "/api/dev" } route { cluster: "c" } }
    routes { name: "regex" match { safe_regex { regex: "/re/[0-9]+" } } route { cluster: "c" } }
    routes { name: "prefix" match { prefix: "/p" } route { cluster: "c" } }
  })");
  ASSERT_TRUE(t);
  EXPECT_EQ(routeFor(*t, request("h", "/exact")), "exact");
  EXPECT_EQ(routeFor(*t, request("h", "/exact?x=1")), "exact");
  EXPECT_EQ(routeFor(*t, request("h", "/exact/")), "<none>");
  EXPECT_EQ(routeFor(*t, request("h", "/EXACT")), "<none>");
  EXPECT_EQ(routeFor(*t, request("h", "/api/dev")), "sep");
  EXPECT_EQ(routeFor(*t, request("h", "/api/dev/")), "sep");
  EXPECT_EQ(routeFor(*t, request("h", "/api/dev/v1")), "sep");
  EXPECT_EQ(routeFor(*t, request("h", "/api/dev?param=true")), "sep");
  EXPECT_EQ(routeFor(*t, request("h", "/api/developer")), "<none>");
  EXPECT_EQ(routeFor(*t, request("h", "/re/123")), "regex");
  EXPECT_EQ(routeFor(*t, request("h", "/re/123?q=a")), "regex");  // query removed first
  EXPECT_EQ(routeFor(*t, request("h", "/re/123/x")), "<none>");   // whole path must match
  EXPECT_EQ(routeFor(*t, request("h", "/p")), "prefix");
  EXPECT_EQ(routeFor(*t, request("h", "/pxyz")), "prefix");
  EXPECT_EQ(routeFor(*t, request("h", "/q")), "<none>");
}

TEST(RouteTableMatchTest, FirstMatchWinsAndCaseSensitivity) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "ci-prefix" match { prefix: "/Api" case_sensitive { value: false } }
             route { cluster: "c" } }
    routes { name: "ci-path" match { path: "/Exact" case_sensitive { value: false } }
             route { cluster: "c" } }
    routes { name: "ci-sep" match { path_separated_prefix: "/Sep" case_sensitive { value: false } }
             route { cluster: "c" } }
    routes { name: "cs" match { prefix: "/" } route { cluster: "c" } }
    routes { name: "never" match { prefix: "/never" } route { cluster: "c" } }
  })");
  ASSERT_TRUE(t);
  EXPECT_EQ(routeFor(*t, request("h", "/api/x")), "ci-prefix");
  EXPECT_EQ(routeFor(*t, request("h", "/API/x")), "ci-prefix");
  EXPECT_EQ(routeFor(*t, request("h", "/eXacT")), "ci-path");
  EXPECT_EQ(routeFor(*t, request("h", "/sep/a")), "ci-sep");
  EXPECT_EQ(routeFor(*t, request("h", "/never")), "cs");
}

TEST(RouteTableMatchTest, HeadersQueryParametersGrpcAndConnect) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "both-headers" match { prefix: "/"
               headers { name: "x-a" exact_match: "1" }
               headers { name: "x-b" present_match: true } } route { cluster: "c" } }
    routes { name: "not-canary" match { prefix: "/"
               headers { name: "x-canary" exact_match: "yes" invert_match: true } }
             route { cluster: "c" } }
    routes { name: "query" match { prefix: "/"
               query_parameters { name: "debug" present_match: true }
               query_parameters { name: "v" string_match { prefix: "2" } } } route { cluster: "c" } }
    routes { name: "grpc" match { prefix: "/" grpc {} } route { cluster: "c" } }
    routes { name: "connect" match { connect_matcher {} } route { cluster: "c" } }
  })");
  ASSERT_TRUE(t);
  EXPECT_EQ(routeFor(*t, request("h", "/", {{"x-a", "1"}, {"x-b", ""}})), "both-headers");
  EXPECT_EQ(routeFor(*t, request("h", "/", {{"x-a", "1"}, {"x-canary", "no"}})), "not-canary");
  EXPECT_EQ(routeFor(*t, request("h", "/?debug&v=2.1", {{"x-canary", "yes"}})), "query");
  EXPECT_EQ(routeFor(*t, request("h", "/?debug&v=1", {{"x-canary", "yes"}})), "<none>");
  EXPECT_EQ(routeFor(*t, request("h", "/?v=2", {{"x-canary", "yes"}})), "<none>");
  EXPECT_EQ(
      routeFor(*t, request("h", "/svc/M",
                           {{"x-canary", "yes"}, {"content-type", "application/grpc+proto"}})),
      "grpc");
  HeaderMap connect;
  connect.add(":method", "CONNECT");
  connect.add(":authority", "h:443");
  connect.add("x-canary", "yes");
  EXPECT_EQ(routeFor(*t, connect), "connect");
}

TEST(RouteTableMatchTest, RuntimeFractionUsesTheCallersRandomValue) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "quarter" match { prefix: "/" runtime_fraction {
               default_value { numerator: 25 } runtime_key: "ignored" } } route { cluster: "a" } }
    routes { name: "rest" match { prefix: "/" } route { cluster: "b" } }
  })");
  ASSERT_TRUE(t);
  int quarter = 0;
  for (uint64_t r = 0; r < 1000; ++r) {
    if (routeFor(*t, request("h", "/"), r) == "quarter") ++quarter;
  }
  EXPECT_EQ(quarter, 250);
  EXPECT_EQ(routeFor(*t, request("h", "/"), 24), "quarter");
  EXPECT_EQ(routeFor(*t, request("h", "/"), 25), "rest");
  EXPECT_EQ(routeFor(*t, request("h", "/"), 124), "quarter");

  auto million = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "tiny" match { prefix: "/" runtime_fraction {
               default_value { numerator: 3 denominator: MILLION } } } route { cluster: "a" } }
  })");
  int tiny = 0;
  for (uint64_t r : {0, 1, 2, 3, 999999, 1000000, 1000002, 1000003, 2500001}) {
    tiny += routeFor(*million, request("h", "/"), r) == "tiny";
  }
  EXPECT_EQ(tiny, 5);  // 0, 1, 2, 1000000, 1000002
}

TEST(RouteTableMatchTest, NoVirtualHostOrNoRoute) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "a.com"
    routes { match { prefix: "/a" } route { cluster: "c" } } })");
  auto none = t->route(request("b.com", "/a"), 0);
  EXPECT_EQ(none.virtual_host, nullptr);
  EXPECT_EQ(none.route, nullptr);
  EXPECT_FALSE(none);
  auto no_route = t->route(request("a.com", "/b"), 0);
  ASSERT_NE(no_route.virtual_host, nullptr);
  EXPECT_EQ(no_route.route, nullptr);
}

TEST(RouteTableMatchTest, ValidationErrorsNameTheField) {
  EXPECT_EQ(
      buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "c" } }
      routes { match { prefix: "/" } route { cluster: "c" } }
      routes { match { safe_regex { regex: "/a(" } } route { cluster: "c" } } })")
          .rfind("virtual_hosts[0].routes[2].match.safe_regex.regex: invalid regex '/a(': ", 0),
      0u);
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { } route { cluster: "c" } } })")
                .find("virtual_hosts[0].routes[0].match: one of prefix"),
            std::string::npos);
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { path_separated_prefix: "/a/" } route { cluster: "c" } } })")
                .find("virtual_hosts[0].routes[0].match.path_separated_prefix"),
            std::string::npos);
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" headers { name: "x" string_match { safe_regex { regex: "[" } } } }
               route { cluster: "c" } } })")
                .rfind("virtual_hosts[0].routes[0].match.headers[0].string_match.safe_regex.regex: "
                       "invalid regex '['",
                       0),
            0u);
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "c" prefix_rewrite: "/x"
               regex_rewrite { pattern { regex: "a" } substitution: "b" } } } })"),
            "virtual_hosts[0].routes[0].route: only one of prefix_rewrite and regex_rewrite may be "
            "set");
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "" } } })")
                .find("virtual_hosts[0].routes[0].route.cluster"),
            std::string::npos);
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } } })")
                .find("one of route, redirect or direct_response"),
            std::string::npos);
}

// ---------------------------------------------------------------------------
// Actions

TEST(RouteTableActionTest, WeightedClustersExactDistribution) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "w" match { prefix: "/" } route { weighted_clusters {
      clusters { name: "one" weight { value: 1 } }
      clusters { name: "zero" weight { value: 0 } }
      clusters { name: "two" weight { value: 2 } }
      clusters { name: "three" weight { value: 3 } } } } } })");
  ASSERT_TRUE(t);
  const RouteEntry& route = t->virtualHosts()[0]->routes[0];
  EXPECT_EQ(route.action, RouteEntry::ActionKind::kWeightedClusters);
  EXPECT_EQ(route.total_weight, 6u);
  std::map<std::string, int> counts;
  HeaderMap h = request("h", "/");
  for (uint64_t r = 0; r < 6000; ++r) counts[route.pickCluster(h, r)]++;
  EXPECT_EQ(counts["one"], 1000);
  EXPECT_EQ(counts["two"], 2000);
  EXPECT_EQ(counts["three"], 3000);
  EXPECT_EQ(counts.count("zero"), 0u);
  // Intervals [0,1) [1,3) [3,6), by random % total.
  EXPECT_EQ(route.pickCluster(h, 0), "one");
  EXPECT_EQ(route.pickCluster(h, 1), "two");
  EXPECT_EQ(route.pickCluster(h, 2), "two");
  EXPECT_EQ(route.pickCluster(h, 3), "three");
  EXPECT_EQ(route.pickCluster(h, 5), "three");
  EXPECT_EQ(route.pickCluster(h, 6), "one");
  // The match result carries the pick made with the same random value.
  auto result = t->route(h, 7);
  ASSERT_NE(result.weighted_cluster, nullptr);
  EXPECT_EQ(result.cluster(h), "two");
}

TEST(RouteTableActionTest, WeightedClustersRandomHeaderAndClusterHeader) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/" } route { weighted_clusters {
      header_name: "x-random"
      clusters { name: "a" weight { value: 50 } }
      clusters { cluster_header: "X-Cluster" weight { value: 50 } } } } } })");
  ASSERT_TRUE(t);
  const RouteEntry& route = t->virtualHosts()[0]->routes[0];
  EXPECT_EQ(route.pickCluster(request("h", "/", {{"x-random", "10"}}), 99), "a");
  EXPECT_EQ(route.pickCluster(request("h", "/", {{"x-random", "60"}, {"x-cluster", "hdr"}}), 0),
            "hdr");
  // Invalid or repeated header: fall back to the caller's random value.
  EXPECT_EQ(route.pickCluster(request("h", "/", {{"x-random", "zz"}}), 10), "a");
  EXPECT_EQ(route.pickCluster(request("h", "/", {{"x-random", "1"}, {"x-random", "1"}}), 10), "a");
  // cluster_header absent: empty cluster name (the router answers 404/503).
  EXPECT_EQ(route.pickCluster(request("h", "/"), 70), "");

  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { weighted_clusters {
        clusters { name: "a" weight { value: 0 } } } } } })")
                .find("virtual_hosts[0].routes[0].route.weighted_clusters.clusters: the sum"),
            std::string::npos);
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { weighted_clusters { total_weight { value: 10 }
        clusters { name: "a" weight { value: 3 } } } } } })")
                .find("total_weight"),
            std::string::npos);
}

TEST(RouteTableActionTest, ClusterHeaderAndNotFoundCode) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/" } route { cluster_header: "X-Target"
             cluster_not_found_response_code: NOT_FOUND } } })");
  const RouteEntry& route = t->virtualHosts()[0]->routes[0];
  EXPECT_EQ(route.pickCluster(request("h", "/", {{"x-target", "svc"}}), 0), "svc");
  EXPECT_EQ(route.pickCluster(request("h", "/"), 0), "");
  EXPECT_EQ(route.cluster_not_found_response_code, 404u);
}

TEST(RouteTableActionTest, TimeoutsAndDefaults) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/default" } route { cluster: "c" } }
    routes { match { prefix: "/off" } route { cluster: "c" timeout {} } }
    routes { match { prefix: "/set" } route { cluster: "c" timeout { seconds: 2 nanos: 500000000 }
             idle_timeout { seconds: 7 } max_stream_duration { max_stream_duration { seconds: 9 } }
             auto_host_rewrite { value: true } } } })");
  ASSERT_TRUE(t);
  const auto& routes = t->virtualHosts()[0]->routes;
  EXPECT_EQ(routes[0].timeout, milliseconds(15000));
  EXPECT_FALSE(routes[0].idle_timeout);
  EXPECT_FALSE(routes[0].max_stream_duration);
  EXPECT_FALSE(routes[0].retry_policy);
  EXPECT_EQ(routes[1].timeout, milliseconds(0));
  EXPECT_EQ(routes[2].timeout, milliseconds(2500));
  EXPECT_EQ(routes[2].idle_timeout, milliseconds(7000));
  EXPECT_EQ(routes[2].max_stream_duration, milliseconds(9000));
  EXPECT_TRUE(routes[2].auto_host_rewrite);
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "c" timeout { seconds: -1 } } } })")
                .find("virtual_hosts[0].routes[0].route.timeout: must not be negative"),
            std::string::npos);
}

TEST(RouteTableActionTest, RetryPolicy) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    retry_policy { retry_on: "5xx" num_retries { value: 7 } }
    routes { match { prefix: "/inherit" } route { cluster: "c" } }
    routes { match { prefix: "/own" } route { cluster: "c" retry_policy {
      retry_on: " gateway-error, reset,connect-failure ,retriable-status-codes,cancelled,unavailable"
      per_try_timeout { seconds: 1 } per_try_idle_timeout { seconds: 2 }
      retriable_status_codes: 409 retriable_status_codes: 418
      retry_back_off { base_interval { nanos: 100000000 } }
      retry_host_predicate { name: "envoy.retry_host_predicates.previous_hosts" }
      host_selection_retry_max_attempts: 3
      retriable_headers { name: "x-retry" present_match: true } } } }
    routes { match { prefix: "/defaults" } route { cluster: "c" retry_policy {
      retry_back_off { base_interval { nanos: 500000 } max_interval { seconds: 1 } } } } } })");
  ASSERT_TRUE(t);
  const auto& routes = t->virtualHosts()[0]->routes;
  // No merging: the route's own policy replaces the virtual host's.
  ASSERT_TRUE(routes[0].retry_policy);
  EXPECT_EQ(routes[0].retry_policy->retry_on, RetryOn::k5xx);
  EXPECT_EQ(routes[0].retry_policy->num_retries, 7u);
  const RetryPolicy& own = *routes[1].retry_policy;
  EXPECT_EQ(own.retry_on, RetryOn::kGatewayError | RetryOn::kReset | RetryOn::kConnectFailure |
                              RetryOn::kRetriableStatusCodes | RetryOn::kGrpcCancelled |
                              RetryOn::kGrpcUnavailable);
  EXPECT_EQ(own.num_retries, 1u);  // Envoy's default when the policy is present
  EXPECT_EQ(own.per_try_timeout, milliseconds(1000));
  EXPECT_EQ(own.per_try_idle_timeout, milliseconds(2000));
  EXPECT_EQ(own.retriable_status_codes, (std::vector<uint32_t>{409, 418}));
  EXPECT_EQ(own.base_interval, milliseconds(100));
  EXPECT_EQ(own.max_interval, milliseconds(1000));
  EXPECT_EQ(own.retry_host_predicates,
            std::vector<std::string>{"envoy.retry_host_predicates.previous_hosts"});
  EXPECT_EQ(own.host_selection_retry_max_attempts, 3);
  ASSERT_EQ(own.retriable_headers.size(), 1u);
  const RetryPolicy& defaults = *routes[2].retry_policy;
  EXPECT_EQ(defaults.retry_on, 0u);
  EXPECT_EQ(defaults.base_interval, milliseconds(1));  // rounded up
  EXPECT_EQ(defaults.max_interval, milliseconds(1000));
  EXPECT_EQ(defaults.host_selection_retry_max_attempts, 1);
  EXPECT_FALSE(defaults.per_try_timeout);

  auto plain = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/" } route { cluster: "c" retry_policy { retry_on: "5xx" } } } })");
  EXPECT_EQ(plain->virtualHosts()[0]->routes[0].retry_policy->base_interval, milliseconds(25));
  EXPECT_EQ(plain->virtualHosts()[0]->routes[0].retry_policy->max_interval, milliseconds(250));

  uint32_t all = 0;
  for (const char* name :
       {"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
        "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
        "retriable-headers", "http3-post-connect-failure", "cancelled", "deadline-exceeded",
        "internal", "resource-exhausted", "unavailable"}) {
    auto bits = parseRetryOn(name);
    ASSERT_TRUE(bits.ok()) << name;
    EXPECT_EQ(all & *bits, 0u) << name;
    all |= *bits;
  }
  EXPECT_EQ(all, (1u << 16) - 1);
}

TEST(RouteTableActionTest, RetryPolicyErrors) {
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "c" } }
      routes { match { prefix: "/" } route { cluster: "c"
               retry_policy { retry_on: "5xx,bogus" } } } })"),
            "virtual_hosts[0].routes[1].route.retry_policy.retry_on: unknown retry condition "
            "'bogus'");
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
      retry_policy { retry_on: "nope" } })"),
            "virtual_hosts[0].retry_policy.retry_on: unknown retry condition 'nope'");
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "c" retry_policy {
        retry_back_off { base_interval { seconds: 2 } max_interval { seconds: 1 } } } } } })")
                .find("route.retry_policy.retry_back_off.max_interval: must be greater than or "
                      "equal to base_interval"),
            std::string::npos);
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "c" retry_policy {
        retry_back_off { } } } } })")
                .find("retry_back_off.base_interval: is required"),
            std::string::npos);
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } route { cluster: "c" retry_policy {
        retriable_headers { name: "x" safe_regex_match { regex: "(" } } } } } })")
                .rfind("virtual_hosts[0].routes[0].route.retry_policy.retriable_headers[0]."
                       "safe_regex_match.regex: invalid regex",
                       0),
            0u);
}

TEST(RouteTableActionTest, DirectResponse) {
  const std::string file = ::testing::TempDir() + "/sheave_direct_response_body.txt";
  {
    std::ofstream out(file, std::ios::binary);
    out << "from a file\n";
  }
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/s" } direct_response { status: 200 body { inline_string: "ok" } } }
    routes { match { prefix: "/b" } direct_response { status: 503 body { inline_bytes: "\001\002" } } }
    routes { match { prefix: "/f" } direct_response { status: 404 body { filename: ")" +
                 file + R"(" } } }
    routes { match { prefix: "/e" } direct_response { status: 204 } } })");
  ASSERT_TRUE(t);
  const auto& routes = t->virtualHosts()[0]->routes;
  ASSERT_TRUE(routes[0].direct_response);
  EXPECT_EQ(routes[0].action, RouteEntry::ActionKind::kDirectResponse);
  EXPECT_EQ(routes[0].direct_response->status, 200u);
  EXPECT_EQ(routes[0].direct_response->body, "ok");
  EXPECT_EQ(routes[1].direct_response->body, std::string("\001\002"));
  EXPECT_EQ(routes[2].direct_response->status, 404u);
  EXPECT_EQ(routes[2].direct_response->body, "from a file\n");
  EXPECT_EQ(routes[3].direct_response->body, "");
  EXPECT_EQ(routes[3].pickCluster(request("h", "/e"), 0), "");
  std::remove(file.c_str());

  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } direct_response { status: 600 } } })")
                .find("virtual_hosts[0].routes[0].direct_response.status"),
            std::string::npos);
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } direct_response { status: 200
               body { filename: "/nonexistent/sheave/file" } } } })")
                .find("direct_response.body.filename: cannot read file"),
            std::string::npos);
  std::string big(5000, 'x');
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/" } direct_response { status: 200
               body { inline_string: ")" +
                       big + R"(" } } } })")
                .find("max_direct_response_body_size_bytes (4096)"),
            std::string::npos);
  EXPECT_TRUE(build(R"(max_direct_response_body_size_bytes { value: 8000 }
      virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" }
      direct_response { status: 200 body { inline_string: ")" +
                    big + R"(" } } } })"));
}

TEST(RouteTableActionTest, RedirectLocation) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "https" match { prefix: "/https" } redirect { https_redirect: true } }
    routes { name: "host" match { prefix: "/host" } redirect { host_redirect: "new.example.com"
             response_code: FOUND } }
    routes { name: "port" match { prefix: "/port" } redirect { port_redirect: 8443
             scheme_redirect: "HTTPS" response_code: PERMANENT_REDIRECT } }
    routes { name: "path" match { prefix: "/path" } redirect { path_redirect: "/new"
             response_code: SEE_OTHER } }
    routes { name: "pathq" match { prefix: "/q" } redirect { path_redirect: "/new?foo=1"
             strip_query: true response_code: TEMPORARY_REDIRECT } }
    routes { name: "strip" match { prefix: "/strip" } redirect { path_redirect: "/new"
             strip_query: true } }
    routes { name: "prefix" match { prefix: "/old/" } redirect { prefix_rewrite: "/fresh/" } }
    routes { name: "regex" match { prefix: "/svc/" } redirect { regex_rewrite {
             pattern { regex: "^/svc/([^/]+)(/.*)$" } substitution: "\\2/instance/\\1" } } }
  })");
  ASSERT_TRUE(t);
  auto location = [&](std::string_view authority, std::string_view path,
                      std::initializer_list<std::pair<std::string, std::string>> extra = {}) {
    HeaderMap h = request(authority, path, extra);
    auto r = t->route(h, 0);
    EXPECT_TRUE(r.route && r.route->redirect) << path;
    return r.route ? r.route->redirectLocation(h) : std::string();
  };
  const auto& routes = t->virtualHosts()[0]->routes;
  EXPECT_EQ(routes[0].redirect->response_code, 301u);
  EXPECT_EQ(routes[1].redirect->response_code, 302u);
  EXPECT_EQ(routes[2].redirect->response_code, 308u);
  EXPECT_EQ(routes[3].redirect->response_code, 303u);
  EXPECT_EQ(routes[4].redirect->response_code, 307u);
  EXPECT_EQ(routes[0].action, RouteEntry::ActionKind::kRedirect);

  EXPECT_EQ(location("a.com", "/https/x?y=1"), "https://a.com/https/x?y=1");
  // http -> https drops an explicit :80, keeps other ports.
  EXPECT_EQ(location("a.com:80", "/https"), "https://a.com/https");
  EXPECT_EQ(location("a.com:8080", "/https"), "https://a.com:8080/https");
  EXPECT_EQ(location("a.com:80", "/https", {{"x-forwarded-proto", "https"}}),
            "https://a.com:80/https");
  EXPECT_EQ(location("[::1]:80", "/https"), "https://[::1]/https");
  EXPECT_EQ(location("a.com:80", "/host/p"), "http://new.example.com/host/p");
  EXPECT_EQ(location("a.com:80", "/port"), "https://a.com:8443/port");
  EXPECT_EQ(location("a.com", "/path?x=1"), "http://a.com/new?x=1");
  EXPECT_EQ(location("a.com", "/q?x=1"), "http://a.com/new?foo=1");
  EXPECT_EQ(location("a.com", "/strip?x=1"), "http://a.com/new");
  EXPECT_EQ(location("a.com", "/old/thing?k=v"), "http://a.com/fresh/thing?k=v");
  EXPECT_EQ(location("a.com", "/svc/foo/v1/api?z"), "http://a.com/v1/api/instance/foo?z");
}

TEST(RouteTableActionTest, PathAndHostRewrites) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { name: "prefix" match { prefix: "/API/" case_sensitive { value: false } }
             route { cluster: "c" prefix_rewrite: "/" host_rewrite_literal: "backend" } }
    routes { name: "exact" match { path: "/exact" } route { cluster: "c" prefix_rewrite: "/e" } }
    routes { name: "regex" match { safe_regex { regex: "/r/.*" } }
             route { cluster: "c" regex_rewrite { pattern { regex: "^/r/(.*)$" }
                                                  substitution: "/rr/\\1" } } }
    routes { name: "whole" match { safe_regex { regex: "/w/.*" } }
             route { cluster: "c" prefix_rewrite: "/whole" host_rewrite_header: "x-host" } }
    routes { name: "weighted" match { prefix: "/wc" } route {
             weighted_clusters { clusters { name: "a" weight { value: 1 }
                                            host_rewrite_literal: "a.internal" } } } }
    routes { name: "none" match { prefix: "/" } route { cluster: "c" } }
  })");
  ASSERT_TRUE(t);
  auto rewrite = [&](std::string_view path,
                     std::initializer_list<std::pair<std::string, std::string>> extra = {}) {
    HeaderMap h = request("front", path, extra);
    auto r = t->route(h, 0);
    EXPECT_TRUE(r.route);
    r.rewritePath(h);
    r.rewriteHost(h);
    return std::string(h.path()) + " " + std::string(h.authority());
  };
  EXPECT_EQ(rewrite("/api/users?id=1"), "/users?id=1 backend");
  EXPECT_EQ(rewrite("/exact?q"), "/e?q front");
  EXPECT_EQ(rewrite("/r/a/b?q=1"), "/rr/a/b?q=1 front");
  EXPECT_EQ(rewrite("/w/x?q", {{"x-host", "from-header"}}), "/whole?q from-header");
  EXPECT_EQ(rewrite("/wc/x"), "/wc/x a.internal");
  EXPECT_EQ(rewrite("/other?x"), "/other?x front");
  EXPECT_EQ(t->virtualHosts()[0]->routes[5].rewrittenPath("/x"), std::nullopt);
}

// ---------------------------------------------------------------------------
// Header mutations

constexpr const char* kMutations = R"(
  request_headers_to_add { header { key: "x-level" value: "config" } append_action: OVERWRITE_IF_EXISTS_OR_ADD }
  request_headers_to_add { header { key: "x-all" value: "config" } }
  request_headers_to_remove: "x-remove-config"
  response_headers_to_add { header { key: "x-level" value: "config" } append { value: false } }
  virtual_hosts { name: "v" domains: "*"
    request_headers_to_add { header { key: "x-level" value: "vhost" } append_action: OVERWRITE_IF_EXISTS_OR_ADD }
    request_headers_to_add { header { key: "x-all" value: "vhost" } }
    response_headers_to_add { header { key: "x-level" value: "vhost" } append { value: false } }
    routes { match { prefix: "/w" } route { weighted_clusters { clusters { name: "a" weight { value: 1 }
      request_headers_to_add { header { key: "x-level" value: "cluster" } append_action: OVERWRITE_IF_EXISTS_OR_ADD }
      request_headers_to_add { header { key: "x-all" value: "cluster" } }
      response_headers_to_add { header { key: "x-level" value: "cluster" } append { value: false } } } } }
      request_headers_to_add { header { key: "x-level" value: "route" } append_action: OVERWRITE_IF_EXISTS_OR_ADD }
      request_headers_to_add { header { key: "x-all" value: "route" } }
      response_headers_to_add { header { key: "x-level" value: "route" } append { value: false } } }
  }
)";

std::vector<std::string> values(const HeaderMap& h, std::string_view name) {
  std::vector<std::string> out;
  for (auto v : h.getAll(name)) out.emplace_back(v);
  return out;
}

TEST(RouteTableHeaderMutationTest, LeastSpecificWinsByDefault) {
  auto t = build(kMutations);
  ASSERT_TRUE(t);
  HeaderMap h = request("h", "/w", {{"x-level", "client"}, {"x-remove-config", "1"}});
  auto r = t->route(h, 0);
  ASSERT_TRUE(r.route);
  r.applyRequestHeaderMutations(h);
  EXPECT_EQ(values(h, "x-level"), std::vector<std::string>{"config"});
  EXPECT_EQ(values(h, "x-all"), (std::vector<std::string>{"cluster", "route", "vhost", "config"}));
  EXPECT_FALSE(h.has("x-remove-config"));

  HeaderMap resp;
  resp.add(":status", "200");
  r.applyResponseHeaderMutations(resp);
  EXPECT_EQ(values(resp, "x-level"), std::vector<std::string>{"config"});
}

TEST(RouteTableHeaderMutationTest, MostSpecificWinsWhenAsked) {
  auto t = build(std::string(kMutations) + "most_specific_header_mutations_wins: true");
  ASSERT_TRUE(t);
  HeaderMap h = request("h", "/w");
  auto r = t->route(h, 0);
  r.applyRequestHeaderMutations(h);
  EXPECT_EQ(values(h, "x-level"), std::vector<std::string>{"cluster"});
  EXPECT_EQ(values(h, "x-all"), (std::vector<std::string>{"config", "vhost", "route", "cluster"}));
  HeaderMap resp;
  r.applyResponseHeaderMutations(resp);
  EXPECT_EQ(values(resp, "x-level"), std::vector<std::string>{"cluster"});
}

TEST(RouteTableHeaderMutationTest, AppendActionsAndEmptyValues) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" }
    route { cluster: "c" }
    request_headers_to_remove: "x-gone"
    request_headers_to_add { header { key: "x-gone" value: "re-added" } }
    request_headers_to_add { header { key: "x-append" value: "2" } }
    request_headers_to_add { header { key: "x-absent" value: "new" } append_action: ADD_IF_ABSENT }
    request_headers_to_add { header { key: "x-present" value: "new" } append_action: ADD_IF_ABSENT }
    request_headers_to_add { header { key: "x-ow" value: "new" } append_action: OVERWRITE_IF_EXISTS }
    request_headers_to_add { header { key: "x-ow-missing" value: "new" } append_action: OVERWRITE_IF_EXISTS }
    request_headers_to_add { header { key: "x-empty" value: "" } }
    request_headers_to_add { header { key: "x-kept-empty" value: "" } keep_empty_value: true }
    request_headers_to_add { header { key: "X-Upper" value: "v" } append { value: true } } } })");
  ASSERT_TRUE(t);
  HeaderMap h = request("h", "/",
                        {{"x-gone", "old"},
                         {"x-append", "1"},
                         {"x-present", "old"},
                         {"x-ow", "old1"},
                         {"x-ow", "old2"}});
  auto r = t->route(h, 0);
  r.applyRequestHeaderMutations(h);
  EXPECT_EQ(values(h, "x-gone"), std::vector<std::string>{"re-added"});  // remove before add
  EXPECT_EQ(values(h, "x-append"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(values(h, "x-absent"), std::vector<std::string>{"new"});
  EXPECT_EQ(values(h, "x-present"), std::vector<std::string>{"old"});
  EXPECT_EQ(values(h, "x-ow"), std::vector<std::string>{"new"});
  EXPECT_FALSE(h.has("x-ow-missing"));
  EXPECT_FALSE(h.has("x-empty"));
  EXPECT_EQ(values(h, "x-kept-empty"), std::vector<std::string>{""});
  EXPECT_EQ(values(h, "x-upper"), std::vector<std::string>{"v"});
}

TEST(RouteTableHeaderMutationTest, Errors) {
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" }
      route { cluster: "c" }
      request_headers_to_add { header { key: "x" value: "1" } }
      request_headers_to_add { header { key: ":path" value: "/x" } } } })"),
            "virtual_hosts[0].routes[0].request_headers_to_add[1].header.key: ':'-prefixed or host "
            "headers may not be modified (':path')");
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
      response_headers_to_remove: "Host" })"),
            "virtual_hosts[0].response_headers_to_remove[0]: ':'-prefixed or host headers may not "
            "be removed ('Host')");
  EXPECT_EQ(buildError(R"(request_headers_to_add { header { key: "x" value: "1" }
      append { value: true } append_action: ADD_IF_ABSENT })"),
            "request_headers_to_add[0]: both append and append_action are set, which is not "
            "allowed");
  EXPECT_NE(buildError(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" }
      route { weighted_clusters { clusters { name: "a" weight { value: 1 }
      request_headers_to_add { header { key: "" value: "1" } } } } } } })")
                .find("virtual_hosts[0].routes[0].route.weighted_clusters.clusters[0]."
                      "request_headers_to_add[0].header.key"),
            std::string::npos);
}

// ---------------------------------------------------------------------------
// The seed example (examples/standalone/envoy.yaml's route_config), as JSON.

TEST(RouteTableSeedTest, TwoPrefixRoutes) {
  const std::string json = R"({
    "name": "local_route",
    "virtual_hosts": [{
      "name": "backend",
      "domains": ["*"],
      "routes": [
        {"match": {"prefix": "/api/v1"},
         "route": {"cluster": "api_service", "timeout": "30s",
                   "retry_policy": {"retry_on": "5xx,reset,connect-failure", "num_retries": 3,
                                    "per_try_timeout": "10s"}}},
        {"match": {"prefix": "/api/v2"},
         "route": {"cluster": "api_v2_service", "timeout": "30s"}}
      ]
    }]
  })";
  RouteConfiguration config;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &config).ok());
  auto table = RouteTable::create(config);
  ASSERT_TRUE(table.ok()) << table.error().message();
  const RouteTable& t = **table;
  EXPECT_EQ(t.name(), "local_route");

  HeaderMap v1 = request("localhost:8080", "/api/v1/users?id=7");
  auto r1 = t.route(v1, 12345);
  ASSERT_TRUE(r1.route);
  EXPECT_EQ(r1.virtual_host->name, "backend");
  EXPECT_EQ(r1.cluster(v1), "api_service");
  EXPECT_EQ(r1.route->action, RouteEntry::ActionKind::kCluster);
  EXPECT_EQ(r1.route->timeout, milliseconds(30000));
  ASSERT_TRUE(r1.route->retry_policy);
  EXPECT_EQ(r1.route->retry_policy->retry_on,
            RetryOn::k5xx | RetryOn::kReset | RetryOn::kConnectFailure);
  EXPECT_EQ(r1.route->retry_policy->num_retries, 3u);
  EXPECT_EQ(r1.route->retry_policy->per_try_timeout, milliseconds(10000));

  HeaderMap v2 = request("anything", "/api/v2");
  auto r2 = t.route(v2, 0);
  ASSERT_TRUE(r2.route);
  EXPECT_EQ(r2.cluster(v2), "api_v2_service");
  EXPECT_EQ(r2.route->timeout, milliseconds(30000));
  EXPECT_FALSE(r2.route->retry_policy);

  // Plain prefixes: "/api/v10" starts with "/api/v1".
  EXPECT_EQ(t.route(request("h", "/api/v10"), 0).cluster(request("h", "/api/v10")), "api_service");
  auto none = t.route(request("h", "/api/v3"), 0);
  EXPECT_NE(none.virtual_host, nullptr);
  EXPECT_EQ(none.route, nullptr);
}

TEST(RouteTableSeedTest, SharedAcrossThreads) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/a" } route { cluster: "a" } }
    routes { match { safe_regex { regex: "/b/[0-9]+" } } route { cluster: "b" } } })");
  ASSERT_TRUE(t);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int n = 0; n < 2000; ++n) {
        HeaderMap h = request("h", n % 2 ? "/a/x" : "/b/42");
        auto r = t->route(h, n);
        if (!r.route || r.cluster(h) != (n % 2 ? "a" : "b")) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace sheave
