// Every Istio / Kubernetes manifest of the seed documents, re-indented into
// testdata/, must load without loss; several are checked field by field.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "control/model/config_set.h"

namespace sheave::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::filesystem::path kTestdata = SHEAVE_MODEL_TESTDATA;

ConfigSet load(const std::string& name) {
  Result<ConfigSet> set = loadFile(kTestdata / name);
  EXPECT_TRUE(set.ok()) << name;
  return set.ok() ? std::move(*set) : ConfigSet{};
}

std::string errorsOf(const ConfigSet& set) {
  std::string out;
  for (const ResourceError& e : set.errors) out += e.toString() + "\n";
  return out;
}

TEST(SeedManifestsTest, EveryManifestLoads) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kTestdata)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("seed", 0) != 0) continue;
    ++files;
    ConfigSet set = load(name);
    if (name == "seed002-10-destinationrule-web-app-outlier.yaml") continue;  // below
    EXPECT_TRUE(set.errors.empty()) << name << ": " << errorsOf(set);
    EXPECT_EQ(set.resourceCount(), 1u) << name;
  }
  EXPECT_EQ(files, 47);
}

// The seed's outlierDetection has "minRequestVolume", which Istio's
// OutlierDetection does not have: strict decoding rejects it, by name.
TEST(SeedManifestsTest, OutlierDetectionWithFieldIstioLacksIsRejected) {
  ConfigSet set = load("seed002-10-destinationrule-web-app-outlier.yaml");
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_EQ(set.resourceCount(), 0u);
  const ResourceError& e = set.errors[0];
  EXPECT_EQ(e.kind, "DestinationRule");
  EXPECT_EQ(e.namespace_name, "default");
  EXPECT_EQ(e.name, "web-app");
  EXPECT_EQ(e.source.line, 1);
  const std::string file = (kTestdata / "seed002-10-destinationrule-web-app-outlier.yaml").string();
  EXPECT_EQ(e.error.message(), file +
                                   ":13:7: spec.trafficPolicy.outlierDetection.minRequestVolume: "
                                   "unknown field \"minRequestVolume\"");
}

TEST(SeedManifestsTest, CanaryVirtualServiceWithRetriesAndTimeout) {
  ConfigSet set = load("seed004-01-virtualservice-reviews-routing.yaml");
  ASSERT_EQ(set.virtual_services.size(), 1u) << errorsOf(set);
  const Resource<VirtualService>& r = set.virtual_services[0];
  EXPECT_EQ(r.api_version, "networking.istio.io/v1beta1");
  EXPECT_EQ(r.kind, "VirtualService");
  EXPECT_EQ(r.metadata.name, "reviews-routing");
  EXPECT_EQ(r.metadata.namespace_name, "production");
  EXPECT_EQ(r.source.line, 2);  // after the leading comment
  EXPECT_EQ(r.source.column, 1);
  const VirtualService& vs = r.spec;
  ASSERT_EQ(vs.hosts, std::vector<std::string>{"reviews.production.svc.cluster.local"});
  EXPECT_TRUE(vs.gateways.empty());
  ASSERT_EQ(vs.http.size(), 2u);

  const HTTPRoute& canary = vs.http[0];
  ASSERT_EQ(canary.match.size(), 1u);
  ASSERT_EQ(canary.match[0].headers.count("x-canary-user"), 1u);
  const StringMatch& header = canary.match[0].headers.at("x-canary-user");
  EXPECT_EQ(header.kind, StringMatch::Kind::kExact);
  EXPECT_EQ(header.value, "true");
  ASSERT_EQ(canary.route.size(), 1u);
  EXPECT_EQ(canary.route[0].destination.host, "reviews.production.svc.cluster.local");
  EXPECT_EQ(canary.route[0].destination.subset, "v2");
  EXPECT_EQ(canary.route[0].weight, 0);
  EXPECT_FALSE(canary.timeout);
  EXPECT_FALSE(canary.retries);

  const HTTPRoute& split = vs.http[1];
  EXPECT_TRUE(split.match.empty());
  ASSERT_EQ(split.route.size(), 2u);
  EXPECT_EQ(split.route[0].destination.subset, "v1");
  EXPECT_EQ(split.route[0].weight, 90);
  EXPECT_EQ(split.route[1].destination.subset, "v2");
  EXPECT_EQ(split.route[1].weight, 10);
  ASSERT_TRUE(split.retries);
  EXPECT_EQ(split.retries->attempts, 3);
  EXPECT_EQ(split.retries->per_try_timeout, seconds(2));
  EXPECT_EQ(split.retries->retry_on, "5xx,reset,connect-failure,retriable-4xx");
  EXPECT_FALSE(split.retries->retry_remote_localities);
  EXPECT_EQ(split.timeout, seconds(10));
}

TEST(SeedManifestsTest, DestinationRuleWithPoliciesAndSubsetOverride) {
  ConfigSet set = load("seed004-02-destinationrule-reviews-destination.yaml");
  ASSERT_EQ(set.destination_rules.size(), 1u) << errorsOf(set);
  const DestinationRule& dr = set.destination_rules[0].spec;
  EXPECT_EQ(dr.host, "reviews.production.svc.cluster.local");
  ASSERT_TRUE(dr.traffic_policy);
  const TrafficPolicy& tp = *dr.traffic_policy;
  ASSERT_TRUE(tp.connection_pool && tp.connection_pool->tcp && tp.connection_pool->http);
  EXPECT_EQ(tp.connection_pool->tcp->max_connections, 100);
  EXPECT_FALSE(tp.connection_pool->tcp->connect_timeout);
  const auto& http = *tp.connection_pool->http;
  EXPECT_EQ(http.h2_upgrade_policy, H2UpgradePolicy::kUpgrade);
  EXPECT_EQ(http.http1_max_pending_requests, 100);
  EXPECT_EQ(http.http2_max_requests, 1000);
  EXPECT_EQ(http.max_requests_per_connection, 10);
  EXPECT_EQ(http.max_retries, 0);
  ASSERT_TRUE(tp.outlier_detection);
  EXPECT_EQ(tp.outlier_detection->consecutive_5xx_errors, 5u);
  EXPECT_FALSE(tp.outlier_detection->consecutive_gateway_errors);
  EXPECT_EQ(tp.outlier_detection->interval, seconds(10));
  EXPECT_EQ(tp.outlier_detection->base_ejection_time, seconds(30));
  EXPECT_EQ(tp.outlier_detection->max_ejection_percent, 50);
  ASSERT_TRUE(tp.load_balancer && tp.load_balancer->simple);
  EXPECT_EQ(*tp.load_balancer->simple, SimpleLB::kLeastRequest);
  EXPECT_EQ(enumName(*tp.load_balancer->simple), "LEAST_REQUEST");
  EXPECT_FALSE(tp.tls);
  ASSERT_EQ(dr.subsets.size(), 2u);
  EXPECT_EQ(dr.subsets[0].name, "v1");
  EXPECT_EQ(dr.subsets[0].labels, (std::map<std::string, std::string>{{"version", "v1"}}));
  EXPECT_FALSE(dr.subsets[0].traffic_policy);
  EXPECT_EQ(dr.subsets[1].name, "v2");
  ASSERT_TRUE(dr.subsets[1].traffic_policy && dr.subsets[1].traffic_policy->connection_pool);
  EXPECT_EQ(dr.subsets[1].traffic_policy->connection_pool->http->http2_max_requests, 500);
}

TEST(SeedManifestsTest, CircuitBreakerDestinationRule) {
  ConfigSet set = load("seed004-10-destinationrule-payments-circuit-breaker.yaml");
  ASSERT_EQ(set.destination_rules.size(), 1u) << errorsOf(set);
  const TrafficPolicy& tp = *set.destination_rules[0].spec.traffic_policy;
  EXPECT_EQ(tp.connection_pool->tcp->connect_timeout, seconds(5));
  EXPECT_EQ(tp.connection_pool->http->max_retries, 3);
  EXPECT_EQ(tp.connection_pool->http->http1_max_pending_requests, 50);
  EXPECT_EQ(tp.outlier_detection->consecutive_gateway_errors, 3u);
}

TEST(SeedManifestsTest, FaultInjection) {
  ConfigSet delay = load("seed004-09a-virtualservice-reviews-fault-injection.yaml");
  ASSERT_EQ(delay.virtual_services.size(), 1u) << errorsOf(delay);
  const HTTPRoute& d = delay.virtual_services[0].spec.http[0];
  ASSERT_TRUE(d.fault && d.fault->delay);
  EXPECT_FALSE(d.fault->abort);
  EXPECT_EQ(d.fault->delay->fixed_delay, seconds(5));
  EXPECT_EQ(d.fault->delay->percentage, 10.0);

  ConfigSet abort = load("seed004-09b-virtualservice-payments-chaos.yaml");
  ASSERT_EQ(abort.virtual_services.size(), 1u) << errorsOf(abort);
  const HTTPRoute& a = abort.virtual_services[0].spec.http[0];
  ASSERT_TRUE(a.fault && a.fault->abort);
  EXPECT_EQ(a.fault->abort->http_status, 503);
  EXPECT_EQ(a.fault->abort->percentage, 5.0);
  EXPECT_EQ(a.route[0].destination.host, "payments");
}

TEST(SeedManifestsTest, RetryOnAndSubMillisecondDurations) {
  ConfigSet set = load("seed003-01-virtualservice-checkout.yaml");
  ASSERT_EQ(set.virtual_services.size(), 1u) << errorsOf(set);
  const HTTPRoute& route = set.virtual_services[0].spec.http[0];
  EXPECT_EQ(route.timeout, seconds(2));
  EXPECT_EQ(route.retries->attempts, 2);
  EXPECT_EQ(route.retries->per_try_timeout, milliseconds(500));
  EXPECT_EQ(route.retries->retry_on,
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
}

TEST(SeedManifestsTest, IngressGatewayAndBoundVirtualService) {
  ConfigSet gw = load("seed004-03-gateway-production-gateway.yaml");
  ASSERT_EQ(gw.gateways.size(), 1u) << errorsOf(gw);
  const Gateway& g = gw.gateways[0].spec;
  EXPECT_EQ(gw.gateways[0].metadata.namespace_name, "istio-system");
  EXPECT_EQ(g.selector, (std::map<std::string, std::string>{{"istio", "ingressgateway"}}));
  ASSERT_EQ(g.servers.size(), 2u);
  EXPECT_EQ(g.servers[0].port->number, 443u);
  EXPECT_EQ(g.servers[0].port->name, "https");
  EXPECT_EQ(g.servers[0].port->protocol, "HTTPS");
  EXPECT_EQ(g.servers[0].tls->mode, ServerTLSMode::kSimple);
  EXPECT_EQ(g.servers[0].tls->credential_name, "production-tls-cert");
  EXPECT_EQ(g.servers[0].hosts, (std::vector<std::string>{"api.example.com", "app.example.com"}));
  EXPECT_EQ(g.servers[1].port->number, 80u);
  EXPECT_TRUE(g.servers[1].tls->https_redirect);
  EXPECT_EQ(g.servers[1].tls->mode, ServerTLSMode::kPassthrough);  // Istio's default

  ConfigSet vs = load("seed004-04-virtualservice-api-ingress.yaml");
  ASSERT_EQ(vs.virtual_services.size(), 1u) << errorsOf(vs);
  const VirtualService& v = vs.virtual_services[0].spec;
  EXPECT_EQ(v.gateways, std::vector<std::string>{"istio-system/production-gateway"});
  ASSERT_EQ(v.http.size(), 2u);
  EXPECT_EQ(v.http[1].match[0].uri->kind, StringMatch::Kind::kPrefix);
  EXPECT_EQ(v.http[1].match[0].uri->value, "/v2/");
  EXPECT_EQ(v.http[1].route[0].destination.port->number, 8080u);
}

TEST(SeedManifestsTest, AuthorizationPolicyWithCondition) {
  ConfigSet set = load("seed004-07-authorizationpolicy-api-server-authz.yaml");
  ASSERT_EQ(set.authorization_policies.size(), 1u) << errorsOf(set);
  const AuthorizationPolicy& ap = set.authorization_policies[0].spec;
  EXPECT_EQ(ap.action, AuthorizationAction::kAllow);
  EXPECT_EQ(ap.selector->match_labels.at("app"), "api-server");
  ASSERT_EQ(ap.rules.size(), 1u);
  const Rule& rule = ap.rules[0];
  EXPECT_EQ(rule.from[0].source->principals,
            std::vector<std::string>{"cluster.local/ns/production/sa/frontend"});
  EXPECT_EQ(rule.to[0].operation->methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(rule.to[0].operation->paths, std::vector<std::string>{"/api/*"});
  ASSERT_EQ(rule.when.size(), 1u);
  EXPECT_EQ(rule.when[0].key, "request.headers[x-request-id]");
  EXPECT_TRUE(rule.when[0].values.empty());
  EXPECT_EQ(rule.when[0].not_values, std::vector<std::string>{""});
}

TEST(SeedManifestsTest, DenyAllPolicyHasAnEmptySpec) {
  ConfigSet set = load("seed004-15b-authorizationpolicy-deny-all.yaml");
  ASSERT_EQ(set.authorization_policies.size(), 1u) << errorsOf(set);
  const AuthorizationPolicy& ap = set.authorization_policies[0].spec;
  EXPECT_FALSE(ap.selector);
  EXPECT_TRUE(ap.rules.empty());
  EXPECT_EQ(ap.action, AuthorizationAction::kAllow);
}

TEST(SeedManifestsTest, PeerAuthenticationModes) {
  ConfigSet strict = load("seed001-03-peerauthentication-default.yaml");
  ASSERT_EQ(strict.peer_authentications.size(), 1u) << errorsOf(strict);
  EXPECT_EQ(strict.peer_authentications[0].metadata.namespace_name, "prod");
  EXPECT_EQ(strict.peer_authentications[0].spec.mtls->mode, MutualTLSMode::kStrict);
  ConfigSet permissive = load("seed004-06b-peerauthentication-permissive-mtls.yaml");
  ASSERT_EQ(permissive.peer_authentications.size(), 1u) << errorsOf(permissive);
  EXPECT_EQ(permissive.peer_authentications[0].spec.mtls->mode, MutualTLSMode::kPermissive);
}

TEST(SeedManifestsTest, ServiceEntrySidecarAndRequestAuthentication) {
  ConfigSet se = load("seed003-03-serviceentry-payment-provider.yaml");
  ASSERT_EQ(se.service_entries.size(), 1u) << errorsOf(se);
  const ServiceEntry& s = se.service_entries[0].spec;
  EXPECT_EQ(s.hosts, std::vector<std::string>{"api.payment-provider.example"});
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].number, 443u);
  EXPECT_EQ(s.ports[0].name, "tls");
  EXPECT_EQ(s.ports[0].protocol, "TLS");
  EXPECT_EQ(s.resolution, ServiceEntryResolution::kDns);
  EXPECT_EQ(s.location, ServiceEntryLocation::kMeshExternal);

  ConfigSet sc = load("seed003-04-sidecar-payments-default.yaml");
  ASSERT_EQ(sc.sidecars.size(), 1u) << errorsOf(sc);
  ASSERT_EQ(sc.sidecars[0].spec.egress.size(), 1u);
  EXPECT_EQ(sc.sidecars[0].spec.egress[0].hosts,
            (std::vector<std::string>{"./*", "shared-observability/*", "istio-system/*"}));

  ConfigSet ra = load("seed003-06-requestauthentication-checkout-jwt.yaml");
  ASSERT_EQ(ra.request_authentications.size(), 1u) << errorsOf(ra);
  const RequestAuthentication& r = ra.request_authentications[0].spec;
  EXPECT_EQ(r.selector->match_labels.at("app"), "checkout");
  ASSERT_EQ(r.jwt_rules.size(), 1u);
  EXPECT_EQ(r.jwt_rules[0].issuer, "https://issuer.example");
  EXPECT_EQ(r.jwt_rules[0].jwks_uri, "https://issuer.example/.well-known/jwks.json");
  EXPECT_FALSE(r.jwt_rules[0].forward_original_token);
}

TEST(SeedManifestsTest, TelemetryTracingMetricsAndAccessLogs) {
  ConfigSet set = load("seed004-11-telemetry-mesh-observability.yaml");
  ASSERT_EQ(set.telemetries.size(), 1u) << errorsOf(set);
  EXPECT_EQ(set.telemetries[0].api_version, "telemetry.istio.io/v1alpha1");
  const Telemetry& t = set.telemetries[0].spec;
  ASSERT_EQ(t.access_logging.size(), 1u);
  EXPECT_EQ(t.access_logging[0].providers[0].name, "envoy");
  EXPECT_EQ(t.access_logging[0].filter->expression, "response.code >= 400");
  ASSERT_EQ(t.tracing.size(), 1u);
  EXPECT_EQ(t.tracing[0].random_sampling_percentage, 10.0);
  EXPECT_EQ(t.tracing[0].providers[0].name, "zipkin");
  EXPECT_EQ(t.tracing[0].custom_tags.at("environment").literal->value, "production");
  EXPECT_EQ(t.tracing[0].custom_tags.at("cluster").literal->value, "us-east-1");
  ASSERT_EQ(t.metrics.size(), 1u);
  EXPECT_EQ(t.metrics[0].providers[0].name, "prometheus");
  const MetricsOverrides& o = t.metrics[0].overrides[0];
  EXPECT_EQ(o.match->metric, IstioMetric::kRequestCount);
  EXPECT_EQ(o.match->mode, WorkloadMode::kClientAndServer);
  EXPECT_EQ(o.tag_overrides.at("request_host").operation, TagOperation::kUpsert);
  EXPECT_EQ(o.tag_overrides.at("request_host").value, "request.host");
}

TEST(SeedManifestsTest, NamespaceLabels) {
  ConfigSet set = load("seed002-01-namespace-production.yaml");
  ASSERT_EQ(set.namespaces.size(), 1u) << errorsOf(set);
  EXPECT_EQ(set.namespaces[0].metadata.name, "production");
  EXPECT_EQ(set.namespaces[0].metadata.namespace_name, "");
  EXPECT_EQ(set.namespaces[0].metadata.labels.at("istio-injection"), "enabled");
}

}  // namespace
}  // namespace sheave::control
