#include "control/compiler/route_generator.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "control/model/config_set.h"
#include "control/registry/local_registry.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"

namespace sheave::control {
namespace {

namespace route = envoy::config::route::v3;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::string toJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

// Services used by most tests: reviews (one HTTP port, with versioned
// workloads), ratings (two ports), details in another namespace.
constexpr const char* kServices = R"(apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: default
spec:
  clusterIP: 10.96.0.10
  selector:
    app: reviews
  ports:
    - name: http
      port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: ratings
  namespace: default
spec:
  clusterIP: 10.96.0.11
  selector:
    app: ratings
  ports:
    - name: http
      port: 9080
    - name: http-admin
      port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: details
  namespace: other
spec:
  clusterIP: 10.96.0.12
  selector:
    app: details
  ports:
    - name: http
      port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: admin
  namespace: default
spec:
  clusterIP: 10.96.0.13
  selector:
    app: admin
  ports:
    - name: http
      port: 7000
---
)";

// Builds route configurations the way the RDS generator will: visible
// services with the port, mesh-bound VirtualServices in load order, the
// DestinationRule for a host by its FQDN.
class RouteFixture {
 public:
  explicit RouteFixture(const std::string& yaml, bool expect_clean = true) {
    config_ = parseDocuments(yaml, "test.yaml");
    if (expect_clean) {
      for (const ResourceError& e : config_.errors) ADD_FAILURE() << e.toString();
    }
    Result<RegistrySnapshot> snapshot = buildRegistrySnapshot(config_, RegistryOptions{});
    EXPECT_TRUE(snapshot.ok());
    registry_ = std::move(snapshot).value();
    proxy_.namespace_name = "default";
    proxy_.dns_domain = "default.svc.cluster.local";
    proxy_.labels = {{"app", "productpage"}, {"version", "v1"}};
  }

  ProxyContext& proxy() { return proxy_; }
  const ConfigSet& config() const { return config_; }

  OutboundRouteInputs inputs(uint32_t port) {
    OutboundRouteInputs in;
    in.proxy = &proxy_;
    in.mesh = &mesh_;
    in.registry = &registry_;
    in.port = port;
    for (const Service& s : registry_.services()) {
      const ServicePortInfo* p = s.findPort(port);
      if (p != nullptr && (isHttp(p->protocol) || p->protocol == Protocol::kUnsupported)) {
        in.services.push_back(&s);
      }
    }
    for (const auto& vs : config_.virtual_services) {
      const auto& gw = vs.spec.gateways;
      if (gw.empty() || std::find(gw.begin(), gw.end(), "mesh") != gw.end()) {
        in.virtual_services.push_back(&vs);
      }
    }
    in.destination_rule = [this](std::string_view host) -> const Resource<DestinationRule>* {
      for (const auto& dr : config_.destination_rules) {
        if (resolveHostname(dr.spec.host, dr.metadata.namespace_name) == host) return &dr;
      }
      return nullptr;
    };
    return in;
  }

  route::RouteConfiguration build(uint32_t port, std::vector<ResourceError>* errors = nullptr) {
    std::vector<ResourceError> local;
    route::RouteConfiguration rc = buildOutboundRouteConfiguration(inputs(port), &local);
    if (errors != nullptr) {
      *errors = local;
    } else {
      for (const ResourceError& e : local) ADD_FAILURE() << e.toString();
    }
    return rc;
  }

 private:
  ConfigSet config_;
  RegistrySnapshot registry_;
  ProxyContext proxy_;
  MeshConfig mesh_;
};

std::string vs(const std::string& name, const std::string& spec,
               const std::string& ns = "default") {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

std::string dr(const std::string& name, const std::string& spec,
               const std::string& ns = "default") {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

const route::VirtualHost* findVhost(const route::RouteConfiguration& rc, const std::string& name) {
  for (const auto& vh : rc.virtual_hosts()) {
    if (vh.name() == name) return &vh;
  }
  return nullptr;
}

std::vector<std::string> vhostNames(const route::RouteConfiguration& rc) {
  std::vector<std::string> out;
  for (const auto& vh : rc.virtual_hosts()) out.push_back(vh.name());
  return out;
}

std::vector<std::string> domainsOf(const route::VirtualHost& vh) {
  return {vh.domains().begin(), vh.domains().end()};
}

// A copy, so that callers may pass a temporary configuration.
route::VirtualHost reviewsVhost(const route::RouteConfiguration& rc) {
  const route::VirtualHost* vh = findVhost(rc, "reviews.default.svc.cluster.local:9080");
  if (vh == nullptr) {
    ADD_FAILURE() << "no reviews virtual host in " << toJson(rc);
    return {};
  }
  return *vh;
}

std::string errorsText(const std::vector<ResourceError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.toString() + "\n";
  return out;
}

constexpr const char* kReviewsCluster = "outbound|9080||reviews.default.svc.cluster.local";

// --- route configuration shape ------------------------------------------------

TEST(OutboundRoutes, DefaultRouteForServiceWithoutVirtualService) {
  RouteFixture f(kServices);
  route::RouteConfiguration rc = f.build(9080);
  EXPECT_EQ(rc.name(), "9080");
  ASSERT_TRUE(rc.has_validate_clusters());
  EXPECT_FALSE(rc.validate_clusters().value());
  EXPECT_TRUE(rc.ignore_port_in_host_matching());
  EXPECT_EQ(rc.max_direct_response_body_size_bytes().value(), 1024u * 1024u);
  // Sorted by name, the catch-all last; admin has no port 9080.
  EXPECT_THAT(vhostNames(rc), ElementsAre("details.other.svc.cluster.local:9080",
                                          "ratings.default.svc.cluster.local:9080",
                                          "reviews.default.svc.cluster.local:9080", "allow_any"));

  const route::VirtualHost& vh = reviewsVhost(rc);
  EXPECT_THAT(domainsOf(vh), ElementsAre("reviews.default.svc.cluster.local", "reviews",
                                         "reviews.default.svc", "reviews.default", "10.96.0.10"));
  EXPECT_TRUE(vh.include_request_attempt_count());
  ASSERT_EQ(vh.routes_size(), 1);
  const route::Route& r = vh.routes(0);
  EXPECT_EQ(r.name(), "default");
  EXPECT_EQ(r.match().prefix(), "/");
  EXPECT_FALSE(r.match().has_case_sensitive());
  EXPECT_EQ(r.decorator().operation(), "reviews.default.svc.cluster.local:9080/*");
  const route::RouteAction& a = r.route();
  EXPECT_EQ(a.cluster(), kReviewsCluster);
  EXPECT_TRUE(a.has_timeout());
  EXPECT_EQ(a.timeout().seconds(), 0);
  EXPECT_TRUE(a.has_max_grpc_timeout());
  EXPECT_EQ(a.max_grpc_timeout().seconds(), 0);
  const route::RetryPolicy& retry = a.retry_policy();
  EXPECT_EQ(retry.retry_on(),
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
  EXPECT_EQ(retry.num_retries().value(), 2u);
  EXPECT_THAT(retry.retriable_status_codes(), ElementsAre(503u));
  EXPECT_EQ(retry.host_selection_retry_max_attempts(), 5);
  ASSERT_EQ(retry.retry_host_predicate_size(), 1);
  EXPECT_EQ(retry.retry_host_predicate(0).name(), "envoy.retry_host_predicates.previous_hosts");
  EXPECT_EQ(retry.retry_host_predicate(0).typed_config().type_url(),
            "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
            "PreviousHostsPredicate");

  const route::VirtualHost& any = rc.virtual_hosts(rc.virtual_hosts_size() - 1);
  EXPECT_EQ(any.name(), "allow_any");
  EXPECT_THAT(domainsOf(any), ElementsAre("*"));
  ASSERT_EQ(any.routes_size(), 1);
  EXPECT_EQ(any.routes(0).name(), "allow_any");
  EXPECT_EQ(any.routes(0).match().prefix(), "/");
  EXPECT_EQ(any.routes(0).route().cluster(), "PassthroughCluster");
  EXPECT_TRUE(any.routes(0).route().has_timeout());
  EXPECT_TRUE(any.routes(0).route().has_max_grpc_timeout());
}

TEST(OutboundRoutes, DomainsFromAnotherNamespaceAreQualified) {
  RouteFixture f(kServices);
  route::RouteConfiguration rc = f.build(9080);
  const route::VirtualHost* vh = findVhost(rc, "details.other.svc.cluster.local:9080");
  ASSERT_NE(vh, nullptr);
  EXPECT_THAT(domainsOf(*vh), ElementsAre("details.other.svc.cluster.local", "details.other",
                                          "details.other.svc", "10.96.0.12"));
}

TEST(OutboundRoutes, ProxylessGrpcGetsDomainsWithPort) {
  RouteFixture f(kServices);
  OutboundRouteInputs in = f.inputs(9080);
  in.proxyless_grpc = true;
  route::RouteConfiguration rc = buildOutboundRouteConfiguration(in, nullptr);
  EXPECT_THAT(
      domainsOf(reviewsVhost(rc)),
      ElementsAre("reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080",
                  "reviews", "reviews:9080", "reviews.default.svc", "reviews.default.svc:9080",
                  "reviews.default", "reviews.default:9080", "10.96.0.10", "10.96.0.10:9080"));
}

TEST(OutboundRoutes, RegistryOnlyBlocksUnknownHosts) {
  RouteFixture f(kServices);
  OutboundRouteInputs in = f.inputs(9080);
  in.outbound_policy = OutboundTrafficPolicyMode::kRegistryOnly;
  route::RouteConfiguration rc = buildOutboundRouteConfiguration(in, nullptr);
  const route::VirtualHost& last = rc.virtual_hosts(rc.virtual_hosts_size() - 1);
  EXPECT_EQ(last.name(), "block_all");
  EXPECT_THAT(domainsOf(last), ElementsAre("*"));
  ASSERT_EQ(last.routes_size(), 1);
  EXPECT_EQ(last.routes(0).name(), "block_all");
  EXPECT_EQ(last.routes(0).direct_response().status(), 502u);
}

TEST(OutboundRoutes, OtherPortOnlyListsItsServices) {
  RouteFixture f(kServices);
  route::RouteConfiguration rc = f.build(8080);
  EXPECT_EQ(rc.name(), "8080");
  EXPECT_THAT(vhostNames(rc), ElementsAre("ratings.default.svc.cluster.local:8080", "allow_any"));
  EXPECT_EQ(rc.virtual_hosts(0).routes(0).route().cluster(),
            "outbound|8080||ratings.default.svc.cluster.local");
}

// --- matches ------------------------------------------------------------------

TEST(OutboundRoutes, MatchConditions) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - name: api
      match:
        - name: exact
          uri:
            exact: /api/v1
          method:
            exact: GET
          authority:
            prefix: reviews
          scheme:
            exact: http
        - name: regex
          uri:
            regex: "/api/v[0-9]+/.*"
          ignoreUriCase: true
          headers:
            x-user:
              exact: jason
            x-any: {}
            x-star:
              regex: "*"
            x-prefix:
              prefix: beta
          withoutHeaders:
            x-debug:
              exact: "1"
            x-trace: {}
          queryParams:
            version:
              exact: v2
            flag: {}
      route:
        - destination:
            host: reviews
    - match:
        - uri:
            prefix: /static
      route:
        - destination:
            host: reviews
)"));
  route::RouteConfiguration rc = f.build(9080);
  const route::VirtualHost& vh = reviewsVhost(rc);
  ASSERT_EQ(vh.routes_size(), 3) << toJson(vh);

  const route::Route& exact = vh.routes(0);
  EXPECT_EQ(exact.name(), "api.exact");
  EXPECT_EQ(exact.match().path(), "/api/v1");
  EXPECT_TRUE(exact.match().case_sensitive().value());
  ASSERT_EQ(exact.match().headers_size(), 3);
  EXPECT_EQ(exact.match().headers(0).name(), ":method");
  EXPECT_EQ(exact.match().headers(0).string_match().exact(), "GET");
  EXPECT_EQ(exact.match().headers(1).name(), ":authority");
  EXPECT_EQ(exact.match().headers(1).string_match().prefix(), "reviews");
  EXPECT_EQ(exact.match().headers(2).name(), ":scheme");
  EXPECT_EQ(exact.route().cluster(), kReviewsCluster);
  EXPECT_EQ(exact.decorator().operation(), "reviews.default.svc.cluster.local:9080/api/v1");
  EXPECT_EQ(exact.metadata().filter_metadata().at("istio").fields().at("config").string_value(),
            "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews");

  const route::Route& regex = vh.routes(1);
  EXPECT_EQ(regex.name(), "api.regex");
  EXPECT_EQ(regex.match().safe_regex().regex(), "/api/v[0-9]+/.*");
  EXPECT_FALSE(regex.match().case_sensitive().value());
  // Headers and withoutHeaders together, sorted by name.
  ASSERT_EQ(regex.match().headers_size(), 6) << toJson(regex.match());
  const auto& h = regex.match().headers();
  EXPECT_EQ(h[0].name(), "x-any");
  EXPECT_TRUE(h[0].present_match());
  EXPECT_EQ(h[1].name(), "x-debug");
  EXPECT_TRUE(h[1].invert_match());
  EXPECT_TRUE(h[1].treat_missing_header_as_empty());
  EXPECT_EQ(h[1].string_match().exact(), "1");
  EXPECT_EQ(h[2].name(), "x-prefix");
  EXPECT_EQ(h[2].string_match().prefix(), "beta");
  EXPECT_EQ(h[3].name(), "x-star");
  EXPECT_TRUE(h[3].present_match());
  EXPECT_EQ(h[4].name(), "x-trace");
  EXPECT_TRUE(h[4].present_match());
  EXPECT_TRUE(h[4].invert_match());
  EXPECT_FALSE(h[4].treat_missing_header_as_empty());
  EXPECT_EQ(h[5].name(), "x-user");
  EXPECT_EQ(h[5].string_match().exact(), "jason");
  ASSERT_EQ(regex.match().query_parameters_size(), 2);
  EXPECT_EQ(regex.match().query_parameters(0).name(), "flag");
  EXPECT_TRUE(regex.match().query_parameters(0).present_match());
  EXPECT_EQ(regex.match().query_parameters(1).name(), "version");
  EXPECT_EQ(regex.match().query_parameters(1).string_match().exact(), "v2");

  EXPECT_EQ(vh.routes(2).match().prefix(), "/static");
  EXPECT_EQ(vh.routes(2).name(), "");
  // No catch-all is added after the rules: unmatched requests get 404 NR.
}

TEST(OutboundRoutes, CatchAllRuleEndsTheRouteList) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri:
            prefix: /
        - uri:
            prefix: /never
      route:
        - destination:
            host: reviews
    - route:
        - destination:
            host: reviews
            port:
              number: 9080
)"));
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  ASSERT_EQ(vh.routes_size(), 1);
  EXPECT_EQ(vh.routes(0).match().prefix(), "/");
  EXPECT_TRUE(vh.routes(0).match().case_sensitive().value());
}

TEST(OutboundRoutes, MatchPortRestrictsTheRuleToThatListener) {
  RouteFixture f(std::string(kServices) + vs("ratings", R"(  hosts: [ratings]
  http:
    - match:
        - port: 8080
          uri:
            prefix: /admin
      route:
        - destination:
            host: ratings
            port:
              number: 8080
    - route:
        - destination:
            host: ratings
            subset: v1
)") + dr("ratings", R"(  host: ratings
  subsets:
    - name: v1
      labels:
        version: v1
)"));
  route::RouteConfiguration on8080 = f.build(8080);
  const route::VirtualHost* vh = findVhost(on8080, "ratings.default.svc.cluster.local:8080");
  ASSERT_NE(vh, nullptr);
  ASSERT_EQ(vh->routes_size(), 2);
  EXPECT_EQ(vh->routes(0).match().prefix(), "/admin");
  EXPECT_EQ(vh->routes(0).route().cluster(), "outbound|8080||ratings.default.svc.cluster.local");
  // ratings has two ports: without a port the destination takes the listener's.
  EXPECT_EQ(vh->routes(1).route().cluster(), "outbound|8080|v1|ratings.default.svc.cluster.local");

  route::RouteConfiguration on9080 = f.build(9080);
  vh = findVhost(on9080, "ratings.default.svc.cluster.local:9080");
  ASSERT_NE(vh, nullptr);
  ASSERT_EQ(vh->routes_size(), 1);
  EXPECT_EQ(vh->routes(0).route().cluster(), "outbound|9080|v1|ratings.default.svc.cluster.local");
}

TEST(OutboundRoutes, SourceLabelsAndNamespaceSelectRulesPerProxy) {
  const std::string yaml = std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - sourceLabels:
            app: productpage
          sourceNamespace: default
      route:
        - destination:
            host: reviews
            port:
              number: 9080
          headers:
            request:
              set:
                x-from: productpage
    - match:
        - sourceLabels:
            app: other
      route:
        - destination:
            host: reviews
          headers:
            request:
              set:
                x-from: other
)");
  RouteFixture f(yaml);
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  ASSERT_EQ(vh.routes_size(), 1);
  EXPECT_EQ(vh.routes(0).request_headers_to_add(0).header().value(), "productpage");

  RouteFixture other(yaml);
  other.proxy().labels = {{"app", "other"}};
  other.proxy().namespace_name = "other";
  other.proxy().dns_domain = "other.svc.cluster.local";
  route::RouteConfiguration rc = other.build(9080);
  const route::VirtualHost& ovh = reviewsVhost(rc);
  ASSERT_EQ(ovh.routes_size(), 1);
  EXPECT_EQ(ovh.routes(0).request_headers_to_add(0).header().value(), "other");
  EXPECT_THAT(domainsOf(ovh), ElementsAre("reviews.default.svc.cluster.local", "reviews.default",
                                          "reviews.default.svc", "10.96.0.10"));

  // A proxy no rule applies to gets no routes from the VirtualService, so the
  // service falls back to its default route.
  RouteFixture nobody(yaml);
  nobody.proxy().labels = {{"app", "nobody"}};
  const route::VirtualHost& nvh = reviewsVhost(nobody.build(9080));
  ASSERT_EQ(nvh.routes_size(), 1);
  EXPECT_EQ(nvh.routes(0).name(), "default");
}

// --- destinations -------------------------------------------------------------

TEST(OutboundRoutes, WeightedSubsetsAndDroppedZeroWeights) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - route:
        - destination:
            host: reviews
            subset: v1
          weight: 75
          headers:
            request:
              set:
                x-version: v1
            response:
              remove: [x-internal]
        - destination:
            host: reviews
            subset: v2
          weight: 25
        - destination:
            host: reviews
            subset: v3
          weight: 0
)") + dr("reviews", R"(  host: reviews
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
    - name: v3
      labels: {version: v3}
)"));
  route::Route r = reviewsVhost(f.build(9080)).routes(0);
  const auto& wc = r.route().weighted_clusters();
  ASSERT_EQ(wc.clusters_size(), 2) << toJson(r);
  EXPECT_EQ(wc.clusters(0).name(), "outbound|9080|v1|reviews.default.svc.cluster.local");
  EXPECT_EQ(wc.clusters(0).weight().value(), 75u);
  EXPECT_EQ(wc.clusters(0).request_headers_to_add(0).header().key(), "x-version");
  EXPECT_THAT(wc.clusters(0).response_headers_to_remove(), ElementsAre("x-internal"));
  EXPECT_EQ(wc.clusters(1).name(), "outbound|9080|v2|reviews.default.svc.cluster.local");
  EXPECT_EQ(wc.clusters(1).weight().value(), 25u);
  EXPECT_FALSE(wc.has_total_weight());
  // Several destinations: the operation names the VirtualService.
  EXPECT_EQ(r.decorator().operation(), "reviews:9080/*");
  EXPECT_TRUE(r.route().has_retry_policy());
}

TEST(OutboundRoutes, DestinationPortDefaultsToTheServicesOnlyPort) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri:
            prefix: /admin
      route:
        - destination:
            host: admin
    - match:
        - uri:
            prefix: /details
      route:
        - destination:
            host: details.other.svc.cluster.local
    - route:
        - destination:
            host: ratings
)"));
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  ASSERT_EQ(vh.routes_size(), 3);
  EXPECT_EQ(vh.routes(0).route().cluster(), "outbound|7000||admin.default.svc.cluster.local");
  EXPECT_EQ(vh.routes(1).route().cluster(), "outbound|9080||details.other.svc.cluster.local");
  EXPECT_EQ(vh.routes(2).route().cluster(), "outbound|9080||ratings.default.svc.cluster.local");
}

TEST(OutboundRoutes, HostOutsideTheRegistryIsReported) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - route:
        - destination:
            host: reviews.default
            subset: v9
)") + dr("reviews", R"(  host: reviews
  subsets:
    - name: v1
      labels: {version: v1}
)"));
  std::vector<ResourceError> errors;
  route::RouteConfiguration rc = f.build(9080, &errors);
  // The cluster is named as Istio names it; the proxy answers 503 NC.
  EXPECT_EQ(reviewsVhost(rc).routes(0).route().cluster(), "outbound|9080|v9|reviews.default");
  ASSERT_EQ(errors.size(), 1u) << errorsText(errors);
  EXPECT_EQ(errors[0].kind, "VirtualService");
  EXPECT_EQ(errors[0].name, "reviews");
  EXPECT_THAT(errors[0].toString(), HasSubstr("http[0].route[0].destination.host"));
  EXPECT_THAT(errors[0].toString(), HasSubstr("did you mean reviews.default.svc.cluster.local"));
  EXPECT_THAT(errors[0].toString(), HasSubstr("test.yaml:"));
}

TEST(OutboundRoutes, UndefinedSubsetIsReported) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - route:
        - destination:
            host: reviews
            subset: v2
)") + dr("reviews", R"(  host: reviews
  subsets:
    - name: v1
      labels: {version: v1}
)"));
  std::vector<ResourceError> errors;
  route::RouteConfiguration rc = f.build(9080, &errors);
  EXPECT_EQ(reviewsVhost(rc).routes(0).route().cluster(),
            "outbound|9080|v2|reviews.default.svc.cluster.local");
  ASSERT_EQ(errors.size(), 1u) << errorsText(errors);
  EXPECT_THAT(errors[0].toString(), HasSubstr("subset v2"));
}

TEST(OutboundRoutes, ModelRejectsWeightsNotAddingUpTo100) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - route:
        - destination: {host: reviews, subset: v1}
          weight: 30
        - destination: {host: reviews, subset: v2}
          weight: 30
)"),
                 /*expect_clean=*/false);
  ASSERT_EQ(f.config().errors.size(), 1u);
  EXPECT_THAT(f.config().errors[0].toString(), HasSubstr("must add up to 100"));
  // The rejected VirtualService does not exist: the default route applies.
  EXPECT_EQ(reviewsVhost(f.build(9080)).routes(0).name(), "default");
}

TEST(OutboundRoutes, WeightsAreKeptAsWrittenForEnvoyToNormalize) {
  RouteFixture f(kServices);
  Resource<VirtualService> v;
  v.api_version = "networking.istio.io/v1";
  v.kind = "VirtualService";
  v.metadata.name = "reviews";
  v.spec.hosts = {"reviews"};
  HTTPRoute rule;
  for (auto [subset, weight] : {std::pair{"v1", 30}, std::pair{"v2", 20}}) {
    HTTPRouteDestination d;
    d.destination.host = "reviews";
    d.destination.subset = subset;
    d.weight = weight;
    rule.route.push_back(d);
  }
  v.spec.http.push_back(rule);
  OutboundRouteInputs in = f.inputs(9080);
  in.virtual_services = {&v};
  route::RouteConfiguration rc = buildOutboundRouteConfiguration(in, nullptr);
  const auto wc = reviewsVhost(rc).routes(0).route().weighted_clusters();
  ASSERT_EQ(wc.clusters_size(), 2);
  EXPECT_EQ(wc.clusters(0).weight().value(), 30u);
  EXPECT_EQ(wc.clusters(1).weight().value(), 20u);

  // All-zero weights cannot route anything: the rule is left out and reported.
  v.spec.http[0].route[0].weight = 0;
  v.spec.http[0].route[1].weight = 0;
  std::vector<ResourceError> errors;
  rc = buildOutboundRouteConfiguration(in, &errors);
  EXPECT_EQ(reviewsVhost(rc).routes(0).name(), "default");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].toString(), HasSubstr("weight 0"));
}

// --- actions ------------------------------------------------------------------

TEST(OutboundRoutes, RedirectDirectResponseAndRewrite) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri: {exact: /old}
      redirect:
        uri: /new
        authority: reviews.example.com
        scheme: https
        port: 8443
        redirectCode: 308
    - match:
        - uri: {exact: /same-port}
      redirect:
        uri: /other
        derivePort: FROM_REQUEST_PORT
    - match:
        - uri: {exact: /gone}
      directResponse:
        status: 410
        body:
          string: "gone for good"
    - match:
        - uri: {exact: /bytes}
      directResponse:
        status: 200
        body:
          bytes: aGVsbG8=
    - match:
        - uri: {prefix: /v1}
      rewrite:
        uri: /v2
        authority: reviews.internal
      route:
        - destination: {host: reviews}
    - match:
        - uri: {exact: /login}
      rewrite:
        uri: /auth/login
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /re}
      rewrite:
        uriRegexRewrite:
          match: "^/re/(.*)$"
          rewrite: "/\\1"
      route:
        - destination: {host: reviews}
)"));
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  ASSERT_EQ(vh.routes_size(), 7) << toJson(vh);
  const route::RedirectAction& redirect = vh.routes(0).redirect();
  EXPECT_EQ(redirect.path_redirect(), "/new");
  EXPECT_EQ(redirect.host_redirect(), "reviews.example.com");
  EXPECT_EQ(redirect.scheme_redirect(), "https");
  EXPECT_EQ(redirect.port_redirect(), 8443u);
  EXPECT_EQ(redirect.response_code(), route::RedirectAction::PERMANENT_REDIRECT);
  EXPECT_EQ(vh.routes(0).decorator().operation(), "reviews:9080/old");

  EXPECT_EQ(vh.routes(1).redirect().port_redirect(), 9080u);
  EXPECT_EQ(vh.routes(1).redirect().response_code(), route::RedirectAction::MOVED_PERMANENTLY);

  EXPECT_EQ(vh.routes(2).direct_response().status(), 410u);
  EXPECT_EQ(vh.routes(2).direct_response().body().inline_string(), "gone for good");
  EXPECT_EQ(vh.routes(3).direct_response().body().inline_bytes(), "hello");

  const route::RouteAction& prefix = vh.routes(4).route();
  EXPECT_EQ(prefix.prefix_rewrite(), "/v2");
  EXPECT_EQ(prefix.host_rewrite_literal(), "reviews.internal");
  EXPECT_EQ(vh.routes(5).match().path(), "/login");
  EXPECT_EQ(vh.routes(5).route().prefix_rewrite(), "/auth/login");
  EXPECT_EQ(vh.routes(6).route().regex_rewrite().pattern().regex(), "^/re/(.*)$");
  EXPECT_EQ(vh.routes(6).route().regex_rewrite().substitution(), "/\\1");
}

TEST(OutboundRoutes, RedirectToDefaultPortOmitsThePort) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - redirect:
        uri: /x
        port: 80
)"));
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  EXPECT_EQ(vh.routes(0).redirect().port_redirect(), 0u);
}

TEST(OutboundRoutes, TimeoutsAndRetries) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri: {prefix: /a}
      timeout: 2.5s
      retries:
        attempts: 4
        perTryTimeout: 500ms
        retryOn: "gateway-error, 503 ,reset,429"
        retryRemoteLocalities: true
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /b}
      retries:
        attempts: 0
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /c}
      retries:
        attempts: 3
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /d}
      retries:
        attempts: 1
        retryOn: 5xx
      route:
        - destination: {host: reviews}
)"));
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  ASSERT_EQ(vh.routes_size(), 4);
  const route::RouteAction& a = vh.routes(0).route();
  EXPECT_EQ(a.timeout().seconds(), 2);
  EXPECT_EQ(a.timeout().nanos(), 500000000);
  EXPECT_EQ(a.max_grpc_timeout().seconds(), 2);
  EXPECT_EQ(a.max_grpc_timeout().nanos(), 500000000);
  EXPECT_EQ(a.retry_policy().num_retries().value(), 4u);
  EXPECT_EQ(a.retry_policy().retry_on(), "gateway-error,reset,retriable-status-codes");
  EXPECT_THAT(a.retry_policy().retriable_status_codes(), ElementsAre(503u, 429u));
  EXPECT_EQ(a.retry_policy().per_try_timeout().nanos(), 500000000);
  EXPECT_EQ(a.retry_policy().retry_priority().name(), "envoy.retry_priorities.previous_priorities");
  EXPECT_EQ(a.retry_policy().host_selection_retry_max_attempts(), 5);
  EXPECT_EQ(a.retry_policy().retry_host_predicate_size(), 1);

  // attempts 0 turns retries off; a default timeout of 0 means none.
  EXPECT_FALSE(vh.routes(1).route().has_retry_policy());
  EXPECT_EQ(vh.routes(1).route().timeout().seconds(), 0);
  EXPECT_TRUE(vh.routes(1).route().has_timeout());

  // Attempts alone keep Istio's default conditions.
  const route::RetryPolicy& c = vh.routes(2).route().retry_policy();
  EXPECT_EQ(c.num_retries().value(), 3u);
  EXPECT_EQ(c.retry_on(),
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
  EXPECT_THAT(c.retriable_status_codes(), ElementsAre(503u));

  const route::RetryPolicy& d = vh.routes(3).route().retry_policy();
  EXPECT_EQ(d.retry_on(), "5xx");
  EXPECT_THAT(d.retriable_status_codes(), IsEmpty());
}

TEST(OutboundRoutes, ProxylessGrpcTimeoutIsMaxStreamDuration) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - timeout: 3s
      route:
        - destination: {host: reviews}
)"));
  OutboundRouteInputs in = f.inputs(9080);
  in.proxyless_grpc = true;
  route::RouteConfiguration rc = buildOutboundRouteConfiguration(in, nullptr);
  route::RouteAction a = reviewsVhost(rc).routes(0).route();
  EXPECT_EQ(a.max_stream_duration().max_stream_duration().seconds(), 3);
  EXPECT_FALSE(a.has_max_grpc_timeout());
}

TEST(OutboundRoutes, FaultInjection) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri: {prefix: /delay}
      fault:
        delay:
          percentage:
            value: 12.5
          fixedDelay: 7s
        abort:
          percentage:
            value: 0.1
          httpStatus: 503
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /grpc}
      fault:
        delay:
          percent: 20
          fixedDelay: 100ms
        abort:
          grpcStatus: UNAVAILABLE
      route:
        - destination: {host: reviews}
)"));
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  ASSERT_EQ(vh.routes_size(), 2);
  const auto& config = vh.routes(0).typed_per_filter_config();
  ASSERT_EQ(config.count("envoy.filters.http.fault"), 1u);
  const google::protobuf::Any& any = config.at("envoy.filters.http.fault");
  EXPECT_EQ(any.type_url(), "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault");
  envoy::extensions::filters::http::fault::v3::HTTPFault fault;
  ASSERT_TRUE(any.UnpackTo(&fault));
  EXPECT_EQ(fault.delay().fixed_delay().seconds(), 7);
  EXPECT_EQ(fault.delay().percentage().numerator(), 125000u);
  EXPECT_EQ(fault.delay().percentage().denominator(), envoy::type::v3::FractionalPercent::MILLION);
  EXPECT_EQ(fault.abort().http_status(), 503u);
  EXPECT_EQ(fault.abort().percentage().numerator(), 1000u);

  ASSERT_TRUE(
      vh.routes(1).typed_per_filter_config().at("envoy.filters.http.fault").UnpackTo(&fault));
  EXPECT_EQ(fault.delay().percentage().numerator(), 20u);
  EXPECT_EQ(fault.delay().percentage().denominator(), envoy::type::v3::FractionalPercent::HUNDRED);
  EXPECT_EQ(fault.delay().fixed_delay().nanos(), 100000000);
  EXPECT_EQ(fault.abort().grpc_status(), 14u);
  EXPECT_FALSE(fault.abort().has_percentage());
}

TEST(OutboundRoutes, MirrorPolicies) {
  RouteFixture f(
      std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri: {prefix: /a}
      mirror:
        host: ratings
        subset: shadow
      mirrorPercentage:
        value: 50
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /b}
      mirror:
        host: reviews
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /c}
      mirrors:
        - destination: {host: ratings, port: {number: 8080}}
          percentage: {value: 5}
        - destination: {host: details.other.svc.cluster.local}
      route:
        - destination: {host: reviews}
    - match:
        - uri: {prefix: /d}
      mirror:
        host: reviews
      mirrorPercentage:
        value: 0
      route:
        - destination: {host: reviews}
)") +
      dr("ratings",
         "  host: ratings\n  subsets:\n    - name: shadow\n      labels: {version: shadow}\n"));
  const route::VirtualHost& vh = reviewsVhost(f.build(9080));
  ASSERT_EQ(vh.routes_size(), 4);
  const auto& a = vh.routes(0).route().request_mirror_policies();
  ASSERT_EQ(a.size(), 1);
  EXPECT_EQ(a[0].cluster(), "outbound|9080|shadow|ratings.default.svc.cluster.local");
  EXPECT_EQ(a[0].runtime_fraction().default_value().numerator(), 500000u);
  EXPECT_FALSE(a[0].trace_sampled().value());
  const auto& b = vh.routes(1).route().request_mirror_policies();
  ASSERT_EQ(b.size(), 1);
  EXPECT_EQ(b[0].runtime_fraction().default_value().numerator(), 100u);
  EXPECT_EQ(b[0].runtime_fraction().default_value().denominator(),
            envoy::type::v3::FractionalPercent::HUNDRED);
  const auto& c = vh.routes(2).route().request_mirror_policies();
  ASSERT_EQ(c.size(), 2);
  EXPECT_EQ(c[0].cluster(), "outbound|8080||ratings.default.svc.cluster.local");
  EXPECT_EQ(c[0].runtime_fraction().default_value().numerator(), 50000u);
  EXPECT_EQ(c[1].cluster(), "outbound|9080||details.other.svc.cluster.local");
  // mirrorPercentage 0 turns mirroring off.
  EXPECT_EQ(vh.routes(3).route().request_mirror_policies_size(), 0);
}

TEST(OutboundRoutes, CorsPolicy) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - corsPolicy:
        allowOrigins:
          - exact: https://example.com
          - regex: "https://.*\\.example\\.org"
        allowMethods: [GET, POST]
        allowHeaders: [x-a, x-b]
        exposeHeaders: [x-c]
        maxAge: 24h
        allowCredentials: true
        unmatchedPreflights: IGNORE
      route:
        - destination: {host: reviews}
)"));
  route::Route r = reviewsVhost(f.build(9080)).routes(0);
  const google::protobuf::Any& any = r.typed_per_filter_config().at("envoy.filters.http.cors");
  EXPECT_EQ(any.type_url(), "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
  envoy::extensions::filters::http::cors::v3::CorsPolicy cors;
  ASSERT_TRUE(any.UnpackTo(&cors));
  ASSERT_EQ(cors.allow_origin_string_match_size(), 2);
  EXPECT_EQ(cors.allow_origin_string_match(0).exact(), "https://example.com");
  EXPECT_EQ(cors.allow_origin_string_match(1).safe_regex().regex(), "https://.*\\.example\\.org");
  EXPECT_EQ(cors.allow_methods(), "GET,POST");
  EXPECT_EQ(cors.allow_headers(), "x-a,x-b");
  EXPECT_EQ(cors.expose_headers(), "x-c");
  EXPECT_EQ(cors.max_age(), "86400");
  EXPECT_TRUE(cors.allow_credentials().value());
  EXPECT_FALSE(cors.forward_not_matching_preflights().value());
  EXPECT_EQ(cors.filter_enabled().default_value().numerator(), 100u);
}

TEST(OutboundRoutes, HeaderOperations) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - headers:
        request:
          set:
            x-b: "2"
            x-a: "1"
            host: ignored.example.com
          add:
            x-c: "3"
          remove: [x-d, ":path"]
        response:
          set:
            x-e: "5"
          add:
            x-f: "6"
          remove: [x-g]
      route:
        - destination: {host: reviews}
          headers:
            request:
              add:
                x-h: "8"
            response:
              set:
                ":authority": nope
)"));
  route::Route r = reviewsVhost(f.build(9080)).routes(0);
  using HVO = envoy::config::core::v3::HeaderValueOption;
  ASSERT_EQ(r.request_headers_to_add_size(), 4) << toJson(r);
  EXPECT_EQ(r.request_headers_to_add(0).header().key(), "x-a");
  EXPECT_EQ(r.request_headers_to_add(0).append_action(), HVO::OVERWRITE_IF_EXISTS_OR_ADD);
  EXPECT_EQ(r.request_headers_to_add(1).header().key(), "x-b");
  EXPECT_EQ(r.request_headers_to_add(2).header().key(), "x-c");
  EXPECT_EQ(r.request_headers_to_add(2).append_action(), HVO::APPEND_IF_EXISTS_OR_ADD);
  EXPECT_EQ(r.request_headers_to_add(3).header().key(), "x-h");
  EXPECT_THAT(r.request_headers_to_remove(), ElementsAre("x-d"));
  ASSERT_EQ(r.response_headers_to_add_size(), 2);
  EXPECT_EQ(r.response_headers_to_add(0).header().key(), "x-e");
  EXPECT_EQ(r.response_headers_to_add(1).append_action(), HVO::APPEND_IF_EXISTS_OR_ADD);
  EXPECT_THAT(r.response_headers_to_remove(), ElementsAre("x-g"));
  // Setting Host rewrites the authority instead of adding a header.
  EXPECT_EQ(r.route().host_rewrite_literal(), "ignored.example.com");
}

TEST(OutboundRoutes, ConsistentHashFromDestinationRule) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri: {prefix: /one}
      route:
        - destination: {host: reviews, subset: v1}
    - match:
        - uri: {prefix: /two}
      route:
        - destination: {host: reviews, subset: v2}
    - route:
        - destination: {host: reviews, subset: v1}
          weight: 50
        - destination: {host: reviews, subset: v2}
          weight: 50
)") + dr("reviews", R"(  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: session
          path: /
          ttl: 60s
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
      trafficPolicy:
        loadBalancer:
          consistentHash:
            useSourceIp: true
)") + dr("ratings", R"(  host: ratings
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpHeaderName: x-user
    portLevelSettings:
      - port: {number: 8080}
        loadBalancer:
          consistentHash:
            httpQueryParameterName: user
)"));
  route::RouteConfiguration rc = f.build(9080);
  const route::VirtualHost& vh = reviewsVhost(rc);
  ASSERT_EQ(vh.routes_size(), 3);
  const route::RouteAction& one = vh.routes(0).route();
  ASSERT_EQ(one.hash_policy_size(), 1);
  EXPECT_EQ(one.hash_policy(0).cookie().name(), "session");
  EXPECT_EQ(one.hash_policy(0).cookie().path(), "/");
  EXPECT_EQ(one.hash_policy(0).cookie().ttl().seconds(), 60);
  // With consistent hashing a retry stays on the same host.
  EXPECT_EQ(one.retry_policy().retry_host_predicate_size(), 0);
  ASSERT_EQ(vh.routes(1).route().hash_policy_size(), 1);
  EXPECT_TRUE(vh.routes(1).route().hash_policy(0).connection_properties().source_ip());
  EXPECT_EQ(vh.routes(2).route().hash_policy_size(), 2);

  const route::VirtualHost* ratings = findVhost(rc, "ratings.default.svc.cluster.local:9080");
  ASSERT_NE(ratings, nullptr);
  EXPECT_EQ(ratings->routes(0).route().hash_policy(0).header().header_name(), "x-user");
  route::RouteConfiguration rc8080 = f.build(8080);
  EXPECT_EQ(rc8080.virtual_hosts(0).routes(0).route().hash_policy(0).query_parameter().name(),
            "user");
}

// --- bad input ----------------------------------------------------------------

TEST(OutboundRoutes, DelegateRulesAreReportedAndSkipped) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - uri: {prefix: /delegated}
      delegate:
        name: reviews-delegate
        namespace: default
    - route:
        - destination: {host: reviews, port: {number: 9080}}
)"));
  std::vector<ResourceError> errors;
  const route::VirtualHost& vh = reviewsVhost(f.build(9080, &errors));
  ASSERT_EQ(vh.routes_size(), 1);
  EXPECT_EQ(vh.routes(0).route().cluster(), kReviewsCluster);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].toString(), HasSubstr("http[0].delegate"));
  EXPECT_THAT(errors[0].toString(), HasSubstr("not supported"));
}

TEST(OutboundRoutes, InvalidRegexLeavesTheVirtualServiceOut) {
  RouteFixture f(std::string(kServices) + vs("reviews", R"(  hosts: [reviews]
  http:
    - match:
        - headers:
            x-user:
              regex: "(unclosed"
      route:
        - destination: {host: reviews, subset: v2}
)"));
  OutboundRouteInputs in = f.inputs(9080);
  // The route generator takes RE2 from its caller; this stand-in rejects
  // unbalanced parentheses.
  in.check_regex = [](std::string_view pattern) -> Status {
    int depth = 0;
    for (char c : pattern) depth += c == '(' ? 1 : c == ')' ? -1 : 0;
    if (depth != 0) return invalidArgument("missing )");
    return okStatus();
  };
  std::vector<ResourceError> errors;
  route::RouteConfiguration rc = buildOutboundRouteConfiguration(in, &errors);
  EXPECT_EQ(reviewsVhost(rc).routes(0).name(), "default");
  ASSERT_EQ(errors.size(), 1u) << errorsText(errors);
  EXPECT_THAT(errors[0].toString(), HasSubstr("http[0].match[0].headers.x-user"));
  EXPECT_THAT(errors[0].toString(), HasSubstr("invalid regex"));
}

TEST(OutboundRoutes, SecondVirtualServiceForAHostIsReported) {
  RouteFixture f(std::string(kServices) +
                 vs("reviews-a",
                    "  hosts: [reviews]\n  http:\n    - route:\n"
                    "        - destination: {host: reviews, port: {number: 9080}}\n") +
                 vs("reviews-b",
                    "  hosts: [reviews.default.svc.cluster.local]\n  http:\n"
                    "    - route:\n        - destination: {host: ratings}\n"));
  std::vector<ResourceError> errors;
  route::RouteConfiguration rc = f.build(9080, &errors);
  EXPECT_EQ(reviewsVhost(rc).routes(0).route().cluster(), kReviewsCluster);
  ASSERT_EQ(errors.size(), 1u) << errorsText(errors);
  EXPECT_EQ(errors[0].name, "reviews-b");
  EXPECT_THAT(errors[0].toString(),
              HasSubstr("already routed by VirtualService default/reviews-a"));
}

TEST(OutboundRoutes, WildcardHostsAndHostsOutsideTheRegistry) {
  RouteFixture f(std::string(kServices) +
                 vs("wild", R"(  hosts: ["*.default.svc.cluster.local", "www.example.com"]
  http:
    - route:
        - destination: {host: ratings, port: {number: 9080}}
)"));
  route::RouteConfiguration rc = f.build(9080);
  // The wildcard claims every default-namespace service on the port; the
  // external host joins them because the VirtualService is used here.
  EXPECT_THAT(
      vhostNames(rc),
      ElementsAre("details.other.svc.cluster.local:9080", "ratings.default.svc.cluster.local:9080",
                  "reviews.default.svc.cluster.local:9080", "www.example.com:9080", "allow_any"));
  EXPECT_EQ(reviewsVhost(rc).routes(0).route().cluster(),
            "outbound|9080||ratings.default.svc.cluster.local");
  EXPECT_THAT(domainsOf(*findVhost(rc, "www.example.com:9080")), ElementsAre("www.example.com"));
  EXPECT_EQ(findVhost(rc, "details.other.svc.cluster.local:9080")->routes(0).name(), "default");
}

TEST(OutboundRoutes, ExternalHostOnlyOnPort80) {
  RouteFixture f(std::string(kServices) + vs("ext", R"(  hosts: [api.example.com]
  http:
    - route:
        - destination: {host: reviews, port: {number: 9080}}
)"));
  std::vector<ResourceError> errors;
  EXPECT_EQ(findVhost(f.build(9080, &errors), "api.example.com:9080"), nullptr);
  route::RouteConfiguration rc80 = f.build(80);
  const route::VirtualHost* vh = findVhost(rc80, "api.example.com:80");
  ASSERT_NE(vh, nullptr) << toJson(rc80);
  EXPECT_EQ(vh->routes(0).route().cluster(), kReviewsCluster);
}

// --- inbound ------------------------------------------------------------------

TEST(InboundRoutes, OneCatchAllVirtualHostPerWorkloadPort) {
  RouteFixture f(kServices);
  const Service* reviews = nullptr;
  OutboundRouteInputs in = f.inputs(9080);
  for (const Service* s : in.services) {
    if (s->hostname == "reviews.default.svc.cluster.local") reviews = s;
  }
  ASSERT_NE(reviews, nullptr);
  ProxyContext proxy;
  proxy.service_instances.push_back({reviews, 9080, "http", Protocol::kHttp, 8080});
  route::RouteConfiguration rc = buildInboundRouteConfiguration(proxy, 8080);
  EXPECT_EQ(rc.name(), "inbound|8080||");
  EXPECT_FALSE(rc.validate_clusters().value());
  ASSERT_EQ(rc.virtual_hosts_size(), 1);
  const route::VirtualHost& vh = rc.virtual_hosts(0);
  EXPECT_EQ(vh.name(), "inbound|http|9080");
  EXPECT_THAT(domainsOf(vh), ElementsAre("*"));
  ASSERT_EQ(vh.routes_size(), 1);
  const route::Route& r = vh.routes(0);
  EXPECT_EQ(r.name(), "default");
  EXPECT_EQ(r.match().prefix(), "/");
  EXPECT_EQ(r.decorator().operation(), "reviews.default.svc.cluster.local:9080/*");
  EXPECT_EQ(r.route().cluster(), "inbound|8080||");
  EXPECT_TRUE(r.route().has_timeout());
  EXPECT_TRUE(r.route().max_stream_duration().has_max_stream_duration());
  EXPECT_TRUE(r.route().max_stream_duration().has_grpc_timeout_header_max());
  EXPECT_EQ(r.route().retry_policy().retry_on(), "reset-before-request");
  EXPECT_EQ(r.route().retry_policy().num_retries().value(), 2u);

  proxy.service_instances[0].protocol = Protocol::kGrpc;
  EXPECT_FALSE(buildInboundRouteConfiguration(proxy, 8080)
                   .virtual_hosts(0)
                   .routes(0)
                   .route()
                   .has_retry_policy());
}

// --- seed manifests -----------------------------------------------------------

std::string readSeed(const std::string& name) {
  std::filesystem::path dir =
      std::filesystem::path(__FILE__).parent_path().parent_path() / "model" / "testdata";
  std::ifstream in(dir / name);
  EXPECT_TRUE(in.good()) << (dir / name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str() + "\n---\n";
}

std::string service(const std::string& name, const std::string& ns, uint32_t port) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
         "\nspec:\n  selector:\n    app: " + name +
         "\n  ports:\n    - name: http\n      port: " + std::to_string(port) + "\n---\n";
}

// Several seeds name subsets without shipping the DestinationRule that
// defines them; that is reported, nothing else may be.
void expectOnlySubsetErrors(const std::vector<ResourceError>& errors) {
  for (const ResourceError& e : errors) {
    EXPECT_THAT(e.toString(), HasSubstr("is not defined by any DestinationRule"));
  }
}

// The host's routes on its port, for a proxy in the VirtualService's namespace.
route::VirtualHost seedVhost(const std::string& yaml, const std::string& ns,
                             const std::string& host, uint32_t port) {
  RouteFixture f(yaml);
  f.proxy().namespace_name = ns;
  f.proxy().dns_domain = ns + ".svc.cluster.local";
  std::vector<ResourceError> errors;
  route::RouteConfiguration rc = f.build(port, &errors);
  expectOnlySubsetErrors(errors);
  const route::VirtualHost* vh = findVhost(rc, host + ":" + std::to_string(port));
  if (vh == nullptr) {
    ADD_FAILURE() << "no virtual host for " << host << " in " << toJson(rc);
    return {};
  }
  return *vh;
}

TEST(SeedRoutes, OrderServiceCanary) {
  route::VirtualHost vh = seedVhost(service("order-service", "default", 80) +
                                        readSeed("seed001-01-virtualservice-order-service-"
                                                 "routing.yaml") +
                                        readSeed("seed001-02-destinationrule-order-service-"
                                                 "subsets.yaml"),
                                    "default", "order-service.default.svc.cluster.local", 80);
  ASSERT_EQ(vh.routes_size(), 1);
  const auto& wc = vh.routes(0).route().weighted_clusters();
  ASSERT_EQ(wc.clusters_size(), 2);
  EXPECT_EQ(wc.clusters(0).name(), "outbound|80|v1|order-service.default.svc.cluster.local");
  EXPECT_EQ(wc.clusters(0).weight().value(), 90u);
  EXPECT_EQ(wc.clusters(1).name(), "outbound|80|v2|order-service.default.svc.cluster.local");
  EXPECT_EQ(wc.clusters(1).weight().value(), 10u);
}

TEST(SeedRoutes, WebAppVariants) {
  const std::string base =
      service("web-app", "default", 8080) + readSeed("seed002-03-destinationrule-web-app.yaml");
  const std::string host = "web-app.default.svc.cluster.local";
  {
    route::VirtualHost vh = seedVhost(
        base + readSeed("seed002-02-virtualservice-web-app-prefix.yaml"), "default", host, 8080);
    ASSERT_EQ(vh.routes_size(), 1);
    EXPECT_EQ(vh.routes(0).match().prefix(), "/api");
    EXPECT_EQ(vh.routes(0).route().weighted_clusters().clusters(1).name(),
              "outbound|8080|v2|" + host);
  }
  {
    route::VirtualHost vh = seedVhost(
        base + readSeed("seed002-04-virtualservice-web-app-header.yaml"), "default", host, 8080);
    ASSERT_EQ(vh.routes_size(), 2);
    EXPECT_EQ(vh.routes(0).match().headers(0).name(), "user-agent");
    EXPECT_EQ(vh.routes(0).match().headers(0).string_match().safe_regex().regex(), ".*Chrome.*");
    EXPECT_EQ(vh.routes(0).route().cluster(), "outbound|8080|v2|" + host);
    EXPECT_EQ(vh.routes(1).route().weighted_clusters().clusters(0).weight().value(), 95u);
  }
  {
    route::VirtualHost vh = seedVhost(
        base + readSeed("seed002-05-virtualservice-web-app-retries.yaml"), "default", host, 8080);
    const route::RetryPolicy& retry = vh.routes(0).route().retry_policy();
    EXPECT_EQ(retry.num_retries().value(), 3u);
    EXPECT_EQ(retry.per_try_timeout().seconds(), 2);
    EXPECT_EQ(vh.routes(0).route().cluster(), "outbound|8080||" + host);
  }
  {
    route::VirtualHost vh = seedVhost(
        base + readSeed("seed002-06-virtualservice-web-app-timeout.yaml"), "default", host, 8080);
    EXPECT_EQ(vh.routes(0).route().timeout().seconds(), 10);
    EXPECT_EQ(vh.routes(0).route().max_grpc_timeout().seconds(), 10);
  }
  {
    // Subsets blue/green are not in the DestinationRule: reported, still routed.
    RouteFixture f(service("web-app", "default", 8080) +
                   readSeed("seed002-03-destinationrule-web-app.yaml") +
                   readSeed("seed002-09-virtualservice-web-app-blue-green.yaml"));
    std::vector<ResourceError> errors;
    route::RouteConfiguration rc = f.build(8080, &errors);
    const route::VirtualHost* vh = findVhost(rc, host + ":8080");
    ASSERT_NE(vh, nullptr);
    const auto& wc = vh->routes(0).route().weighted_clusters();
    ASSERT_EQ(wc.clusters_size(), 1);  // green has weight 0
    EXPECT_EQ(wc.clusters(0).name(), "outbound|8080|blue|" + host);
    ASSERT_EQ(errors.size(), 1u) << errorsText(errors);
    EXPECT_THAT(errors[0].toString(), HasSubstr("subset blue"));
  }
  {
    RouteFixture f(service("web-app", "default", 8080) +
                   readSeed("seed002-11-virtualservice-web-app-paths.yaml"));
    std::vector<ResourceError> errors;
    route::RouteConfiguration rc = f.build(8080, &errors);
    EXPECT_EQ(errors.size(), 3u);
    expectOnlySubsetErrors(errors);
    const route::VirtualHost* vh = findVhost(rc, host + ":8080");
    ASSERT_NE(vh, nullptr);
    ASSERT_EQ(vh->routes_size(), 3);
    EXPECT_EQ(vh->routes(0).route().cluster(), "outbound|8080|admin|" + host);
    EXPECT_EQ(vh->routes(1).route().cluster(), "outbound|8080|api|" + host);
    EXPECT_EQ(vh->routes(2).route().cluster(), "outbound|8080|web|" + host);
  }
}

TEST(SeedRoutes, CheckoutCanaryWithRetries) {
  route::VirtualHost vh = seedVhost(service("checkout", "payments", 8080) +
                                        readSeed("seed003-01-virtualservice-checkout.yaml") +
                                        readSeed("seed003-02-destinationrule-checkout.yaml"),
                                    "payments", "checkout.payments.svc.cluster.local", 8080);
  const route::RouteAction& a = vh.routes(0).route();
  EXPECT_EQ(a.weighted_clusters().clusters(0).name(),
            "outbound|8080|stable|checkout.payments.svc.cluster.local");
  EXPECT_EQ(a.timeout().seconds(), 2);
  EXPECT_EQ(a.retry_policy().num_retries().value(), 2u);
  EXPECT_EQ(a.retry_policy().per_try_timeout().nanos(), 500000000);
  EXPECT_EQ(a.retry_policy().retry_on(),
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
  EXPECT_THAT(a.retry_policy().retriable_status_codes(), IsEmpty());
}

TEST(SeedRoutes, ProductionReviewsFaultsAndAbTest) {
  const std::string services = service("reviews", "production", 9080) +
                               service("payments", "production", 9080) +
                               service("frontend", "production", 9080);
  {
    route::VirtualHost vh =
        seedVhost(services + readSeed("seed004-01-virtualservice-reviews-routing.yaml") +
                      readSeed("seed004-02-destinationrule-reviews-destination.yaml"),
                  "production", "reviews.production.svc.cluster.local", 9080);
    ASSERT_EQ(vh.routes_size(), 2);
    EXPECT_EQ(vh.routes(0).match().headers(0).name(), "x-canary-user");
    const route::RetryPolicy& retry = vh.routes(1).route().retry_policy();
    EXPECT_EQ(retry.retry_on(), "5xx,reset,connect-failure,retriable-4xx");
    EXPECT_EQ(retry.num_retries().value(), 3u);
    EXPECT_EQ(vh.routes(1).route().timeout().seconds(), 10);
  }
  {
    route::VirtualHost vh =
        seedVhost(services + readSeed("seed004-09a-virtualservice-reviews-fault-injection.yaml"),
                  "production", "reviews.production.svc.cluster.local", 9080);
    envoy::extensions::filters::http::fault::v3::HTTPFault fault;
    ASSERT_TRUE(
        vh.routes(0).typed_per_filter_config().at("envoy.filters.http.fault").UnpackTo(&fault));
    EXPECT_EQ(fault.delay().fixed_delay().seconds(), 5);
    EXPECT_EQ(fault.delay().percentage().numerator(), 100000u);
  }
  {
    route::VirtualHost vh =
        seedVhost(services + readSeed("seed004-09b-virtualservice-payments-chaos.yaml"),
                  "production", "payments.production.svc.cluster.local", 9080);
    envoy::extensions::filters::http::fault::v3::HTTPFault fault;
    ASSERT_TRUE(
        vh.routes(0).typed_per_filter_config().at("envoy.filters.http.fault").UnpackTo(&fault));
    EXPECT_EQ(fault.abort().http_status(), 503u);
    EXPECT_EQ(fault.abort().percentage().numerator(), 50000u);
  }
  {
    route::VirtualHost vh =
        seedVhost(services + readSeed("seed004-09c-virtualservice-frontend-ab-test.yaml"),
                  "production", "frontend.production.svc.cluster.local", 9080);
    ASSERT_EQ(vh.routes_size(), 2);
    EXPECT_EQ(vh.routes(0).match().headers(0).string_match().exact(), "new-checkout");
    EXPECT_EQ(vh.routes(1).route().cluster(),
              "outbound|9080|v1|frontend.production.svc.cluster.local");
  }
  {
    // Bound to a gateway only: sidecars ignore it.
    RouteFixture f(services + service("api-v1", "production", 8080) +
                   readSeed("seed004-04-virtualservice-api-ingress.yaml"));
    f.proxy().namespace_name = "production";
    route::RouteConfiguration rc = f.build(8080);
    EXPECT_THAT(vhostNames(rc),
                ElementsAre("api-v1.production.svc.cluster.local:8080", "allow_any"));
    EXPECT_EQ(rc.virtual_hosts(0).routes(0).name(), "default");
  }
  {
    route::VirtualHost vh =
        seedVhost(services + readSeed("seed004-08-virtualservice-reviews-canary.yaml"),
                  "production", "reviews.production.svc.cluster.local", 9080);
    EXPECT_EQ(vh.routes(0).route().weighted_clusters().clusters(1).name(),
              "outbound|9080|v2|reviews.production.svc.cluster.local");
  }
}

TEST(SeedRoutes, BookinfoReviewsShift) {
  const std::string base =
      service("reviews", "bookinfo", 9080) + readSeed("seed004-13a-destinationrule-reviews.yaml");
  route::VirtualHost start = seedVhost(base + readSeed("seed004-13b-virtualservice-reviews.yaml"),
                                       "bookinfo", "reviews.bookinfo.svc.cluster.local", 9080);
  // A single destination with weight 100 is a plain cluster route.
  EXPECT_EQ(start.routes(0).route().cluster(),
            "outbound|9080|v1|reviews.bookinfo.svc.cluster.local");
  route::VirtualHost shift =
      seedVhost(base + readSeed("seed004-14-virtualservice-reviews-shift.yaml"), "bookinfo",
                "reviews.bookinfo.svc.cluster.local", 9080);
  EXPECT_EQ(shift.routes(0).route().weighted_clusters().clusters(1).weight().value(), 10u);
}

}  // namespace
}  // namespace sheave::control
