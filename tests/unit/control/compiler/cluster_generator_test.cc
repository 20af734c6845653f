#include "control/compiler/cluster_generator.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "compiler_fixture.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"
#include "istio/proxy/tcp_metadata_exchange/config.pb.h"

namespace sheave::control {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
using envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
using testing::bookinfo;
using testing::buildMesh;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::proxyAt;

constexpr uint32_t kMax = 4294967295u;
constexpr const char* kOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

std::vector<std::string> namesOf(const std::vector<Cluster>& clusters) {
  std::vector<std::string> out;
  for (const Cluster& c : clusters) out.push_back(c.name());
  return out;
}

const Cluster& find(const std::vector<Cluster>& clusters, const std::string& name) {
  for (const Cluster& c : clusters) {
    if (c.name() == name) return c;
  }
  ADD_FAILURE() << "no cluster " << name;
  static const Cluster kNone;
  return kNone;
}

HttpProtocolOptions optionsOf(const Cluster& c) {
  HttpProtocolOptions options;
  auto it = c.typed_extension_protocol_options().find(kOptionsKey);
  if (it != c.typed_extension_protocol_options().end()) {
    EXPECT_TRUE(it->second.UnpackTo(&options));
  }
  return options;
}

UpstreamTlsContext tlsOf(const envoy::config::core::v3::TransportSocket& socket) {
  EXPECT_EQ(socket.name(), "envoy.transport_sockets.tls");
  UpstreamTlsContext context;
  EXPECT_TRUE(socket.typed_config().UnpackTo(&context));
  return context;
}

std::string destinationRule(const std::string& name, const std::string& ns,
                            const std::string& spec) {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

TEST(ClusterGeneratorTest, BookinfoWithoutRules) {
  testing::Mesh mesh = buildMesh(bookinfo());
  ProxyContext proxy = proxyAt(mesh, "10.0.0.10", "productpage-v1");
  std::vector<Cluster> clusters = generateClusters(proxy, *mesh.push);
  EXPECT_THAT(namesOf(clusters),
              ElementsAre("BlackHoleCluster", "InboundPassthroughClusterIpv4", "PassthroughCluster",
                          "inbound|9080||", "outbound|9080||details.default.svc.cluster.local",
                          "outbound|9080||productpage.default.svc.cluster.local",
                          "outbound|9080||ratings.default.svc.cluster.local",
                          "outbound|9080||reviews.default.svc.cluster.local"));

  const Cluster& reviews = find(clusters, "outbound|9080||reviews.default.svc.cluster.local");
  EXPECT_EQ(reviews.type(), Cluster::EDS);
  EXPECT_TRUE(reviews.eds_cluster_config().eds_config().has_ads());
  EXPECT_EQ(reviews.eds_cluster_config().eds_config().resource_api_version(),
            envoy::config::core::v3::V3);
  EXPECT_EQ(reviews.eds_cluster_config().service_name(), reviews.name());
  EXPECT_EQ(reviews.lb_policy(), Cluster::LEAST_REQUEST);
  EXPECT_EQ(reviews.connect_timeout().seconds(), 10);
  ASSERT_EQ(reviews.circuit_breakers().thresholds_size(), 1);
  const auto& t = reviews.circuit_breakers().thresholds(0);
  EXPECT_EQ(t.max_connections().value(), kMax);
  EXPECT_EQ(t.max_pending_requests().value(), kMax);
  EXPECT_EQ(t.max_requests().value(), kMax);
  EXPECT_EQ(t.max_retries().value(), kMax);
  // Sheave's default retry budget (Envoy's field; it replaces max_retries).
  ASSERT_TRUE(t.has_retry_budget());
  EXPECT_DOUBLE_EQ(t.retry_budget().budget_percent().value(), 20.0);
  EXPECT_EQ(t.retry_budget().min_retry_concurrency().value(), 3u);
  EXPECT_FALSE(reviews.has_outlier_detection());
  EXPECT_FALSE(reviews.has_transport_socket());
  // Istio's TCP metadata exchange as a cluster filter (telemetry is on by default).
  ASSERT_EQ(reviews.filters_size(), 1);
  EXPECT_EQ(reviews.filters(0).name(), "istio.metadata_exchange");
  envoy::tcp::metadataexchange::config::MetadataExchange mx;
  ASSERT_TRUE(reviews.filters(0).typed_config().UnpackTo(&mx));
  EXPECT_EQ(mx.protocol(), "istio-peer-exchange");

  // Auto mTLS in Istio's shape.
  ASSERT_EQ(reviews.transport_socket_matches_size(), 2);
  const auto& istio = reviews.transport_socket_matches(0);
  EXPECT_EQ(istio.name(), "tlsMode-istio");
  EXPECT_EQ(istio.match().fields().at("tlsMode").string_value(), "istio");
  UpstreamTlsContext tls = tlsOf(istio.transport_socket());
  EXPECT_EQ(tls.sni(), "outbound_.9080_._.reviews.default.svc.cluster.local");
  const auto& common = tls.common_tls_context();
  ASSERT_EQ(common.tls_certificate_sds_secret_configs_size(), 1);
  EXPECT_EQ(common.tls_certificate_sds_secret_configs(0).name(), "default");
  EXPECT_TRUE(common.tls_certificate_sds_secret_configs(0).sds_config().has_ads());
  EXPECT_EQ(common.combined_validation_context().validation_context_sds_secret_config().name(),
            "ROOTCA");
  const auto& sans = common.combined_validation_context().default_validation_context();
  ASSERT_EQ(sans.match_subject_alt_names_size(), 1);
  EXPECT_EQ(sans.match_subject_alt_names(0).exact(),
            "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
  const auto& plain = reviews.transport_socket_matches(1);
  EXPECT_EQ(plain.name(), "tlsMode-disabled");
  EXPECT_TRUE(plain.match().fields().empty());
  EXPECT_EQ(plain.transport_socket().name(), "envoy.transport_sockets.raw_buffer");

  const Cluster& inbound = find(clusters, "inbound|9080||");
  EXPECT_EQ(inbound.type(), Cluster::STATIC);
  ASSERT_EQ(inbound.load_assignment().endpoints_size(), 1);
  const auto& address =
      inbound.load_assignment().endpoints(0).lb_endpoints(0).endpoint().address().socket_address();
  EXPECT_EQ(address.address(), "127.0.0.1");
  EXPECT_EQ(address.port_value(), 9080u);

  const Cluster& passthrough = find(clusters, "PassthroughCluster");
  EXPECT_EQ(passthrough.type(), Cluster::ORIGINAL_DST);
  EXPECT_EQ(passthrough.lb_policy(), Cluster::CLUSTER_PROVIDED);
  const Cluster& inbound_passthrough = find(clusters, "InboundPassthroughClusterIpv4");
  EXPECT_EQ(inbound_passthrough.type(), Cluster::ORIGINAL_DST);
  EXPECT_EQ(inbound_passthrough.upstream_bind_config().source_address().address(), "127.0.0.6");
  const Cluster& black_hole = find(clusters, "BlackHoleCluster");
  EXPECT_EQ(black_hole.type(), Cluster::STATIC);
  EXPECT_EQ(black_hole.load_assignment().endpoints_size(), 0);

  // Deterministic: the same input gives the same output.
  std::vector<Cluster> again = generateClusters(proxy, *mesh.push);
  ASSERT_EQ(again.size(), clusters.size());
  for (size_t i = 0; i < clusters.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(clusters[i], again[i]))
        << clusters[i].name();
  }
}

const std::string kReviewsRule = R"(  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 2s
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 50
        maxRequestsPerConnection: 5
        maxRetries: 4
        idleTimeout: 30s
    outlierDetection:
      consecutive5xxErrors: 7
      consecutiveGatewayErrors: 3
      interval: 5s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
    tls:
      mode: ISTIO_MUTUAL
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
      trafficPolicy:
        loadBalancer:
          simple: RANDOM
    - name: v3
      labels: {version: v3}
      trafficPolicy:
        portLevelSettings:
          - port: {number: 9080}
            loadBalancer:
              consistentHash:
                httpHeaderName: x-user
                maglev: {tableSize: 65537}
)";

TEST(ClusterGeneratorTest, DestinationRulePolicyAndSubsets) {
  testing::Mesh mesh = buildMesh(bookinfo() + destinationRule("reviews", "default", kReviewsRule));
  std::vector<Cluster> clusters =
      generateClusters(proxyAt(mesh, "10.0.0.10", "productpage-v1"), *mesh.push);
  EXPECT_THAT(namesOf(clusters),
              ::testing::IsSupersetOf({"outbound|9080||reviews.default.svc.cluster.local",
                                       "outbound|9080|v1|reviews.default.svc.cluster.local",
                                       "outbound|9080|v2|reviews.default.svc.cluster.local",
                                       "outbound|9080|v3|reviews.default.svc.cluster.local"}));

  const Cluster& all = find(clusters, "outbound|9080||reviews.default.svc.cluster.local");
  EXPECT_EQ(all.lb_policy(), Cluster::ROUND_ROBIN);
  EXPECT_EQ(all.connect_timeout().seconds(), 2);
  const auto& t = all.circuit_breakers().thresholds(0);
  EXPECT_EQ(t.max_connections().value(), 100u);
  EXPECT_EQ(t.max_pending_requests().value(), 10u);
  EXPECT_EQ(t.max_requests().value(), 50u);
  EXPECT_EQ(t.max_retries().value(), 4u);
  EXPECT_FALSE(t.has_retry_budget()) << "an explicit maxRetries replaces the default budget";
  HttpProtocolOptions options = optionsOf(all);
  EXPECT_EQ(options.common_http_protocol_options().max_requests_per_connection().value(), 5u);
  EXPECT_EQ(options.common_http_protocol_options().idle_timeout().seconds(), 30);
  const auto& od = all.outlier_detection();
  EXPECT_EQ(od.consecutive_5xx().value(), 7u);
  EXPECT_EQ(od.enforcing_consecutive_5xx().value(), 100u);
  EXPECT_EQ(od.consecutive_gateway_failure().value(), 3u);
  EXPECT_EQ(od.enforcing_consecutive_gateway_failure().value(), 100u);
  EXPECT_EQ(od.interval().seconds(), 5);
  EXPECT_EQ(od.base_ejection_time().seconds(), 30);
  EXPECT_EQ(od.max_ejection_percent().value(), 50u);
  ASSERT_TRUE(od.has_enforcing_success_rate());  // Istio turns success-rate ejection off
  EXPECT_EQ(od.enforcing_success_rate().value(), 0u);
  EXPECT_TRUE(all.common_lb_config().has_healthy_panic_threshold());
  // Explicit ISTIO_MUTUAL: one transport socket, no auto-mTLS matches.
  EXPECT_EQ(all.transport_socket_matches_size(), 0);
  UpstreamTlsContext tls = tlsOf(all.transport_socket());
  EXPECT_EQ(tls.sni(), "outbound_.9080_._.reviews.default.svc.cluster.local");

  const Cluster& v1 = find(clusters, "outbound|9080|v1|reviews.default.svc.cluster.local");
  EXPECT_EQ(v1.lb_policy(), Cluster::ROUND_ROBIN);
  EXPECT_EQ(v1.eds_cluster_config().service_name(), v1.name());
  EXPECT_EQ(tlsOf(v1.transport_socket()).sni(),
            "outbound_.9080_.v1_.reviews.default.svc.cluster.local");

  // A subset's policy overrides field by field.
  const Cluster& v2 = find(clusters, "outbound|9080|v2|reviews.default.svc.cluster.local");
  EXPECT_EQ(v2.lb_policy(), Cluster::RANDOM);
  EXPECT_EQ(v2.circuit_breakers().thresholds(0).max_connections().value(), 100u);
  EXPECT_TRUE(v2.has_outlier_detection());

  // Port-level settings replace the policy as a whole: no pool, no TLS setting
  // (auto mTLS again), no outlier detection.
  const Cluster& v3 = find(clusters, "outbound|9080|v3|reviews.default.svc.cluster.local");
  EXPECT_EQ(v3.lb_policy(), Cluster::MAGLEV);
  EXPECT_EQ(v3.maglev_lb_config().table_size().value(), 65537u);
  EXPECT_EQ(v3.circuit_breakers().thresholds(0).max_connections().value(), kMax);
  EXPECT_FALSE(v3.has_outlier_detection());
  EXPECT_FALSE(v3.has_transport_socket());
  EXPECT_EQ(v3.transport_socket_matches_size(), 2);

  // Other services keep the defaults.
  const Cluster& ratings = find(clusters, "outbound|9080||ratings.default.svc.cluster.local");
  EXPECT_EQ(ratings.lb_policy(), Cluster::LEAST_REQUEST);
}

TEST(ClusterGeneratorTest, PortLevelSettingsAndRingHash) {
  const std::string yaml = bookinfo() + destinationRule("ratings", "default", R"(  host: ratings
  trafficPolicy:
    loadBalancer:
      simple: RANDOM
    portLevelSettings:
      - port: {number: 9080}
        loadBalancer:
          consistentHash:
            useSourceIp: true
        connectionPool:
          http:
            h2UpgradePolicy: UPGRADE
)");
  testing::Mesh mesh = buildMesh(yaml);
  std::vector<Cluster> clusters =
      generateClusters(proxyAt(mesh, "10.0.0.10", "productpage-v1"), *mesh.push);
  const Cluster& ratings = find(clusters, "outbound|9080||ratings.default.svc.cluster.local");
  EXPECT_EQ(ratings.lb_policy(), Cluster::RING_HASH);
  EXPECT_EQ(ratings.ring_hash_lb_config().minimum_ring_size().value(), 1024u);
  EXPECT_TRUE(optionsOf(ratings).explicit_http_config().has_http2_protocol_options());
  // h2 also shows in the in-mesh ALPN.
  UpstreamTlsContext tls = tlsOf(ratings.transport_socket_matches(0).transport_socket());
  EXPECT_THAT(tls.common_tls_context().alpn_protocols(),
              ElementsAre("istio-peer-exchange", "istio", "h2"));
}

TEST(ClusterGeneratorTest, UpstreamProtocolFollowsPortProtocol) {
  const std::string yaml =
      testing::kubernetesService("api", "shop",
                                 "    - name: grpc\n      port: 9090\n"
                                 "    - name: web\n      port: 8080\n"
                                 "    - name: http-legacy\n      port: 80\n") +
      testing::workloadEntry("api-1", "shop", "10.2.0.1", "{app: api}", "api") +
      destinationRule("api", "shop", R"(  host: api
  trafficPolicy:
    portLevelSettings:
      - port: {number: 80}
        connectionPool:
          http:
            useClientProtocol: true
)");
  testing::Mesh mesh = buildMesh(yaml);
  ProxyContext proxy = proxyAt(mesh, "10.2.0.1", "api-1", "shop");
  std::vector<Cluster> clusters = generateClusters(proxy, *mesh.push);
  EXPECT_TRUE(optionsOf(find(clusters, "outbound|9090||api.shop.svc.cluster.local"))
                  .explicit_http_config()
                  .has_http2_protocol_options());
  // An undeclared protocol is sniffed, so upstream follows downstream.
  EXPECT_TRUE(optionsOf(find(clusters, "outbound|8080||api.shop.svc.cluster.local"))
                  .has_use_downstream_protocol_config());
  EXPECT_TRUE(optionsOf(find(clusters, "outbound|80||api.shop.svc.cluster.local"))
                  .has_use_downstream_protocol_config());
  // Inbound clusters per workload port.
  EXPECT_TRUE(optionsOf(find(clusters, "inbound|9090||"))
                  .explicit_http_config()
                  .has_http2_protocol_options());
  EXPECT_EQ(find(clusters, "inbound|80||").typed_extension_protocol_options_size(), 0);
}

TEST(ClusterGeneratorTest, ServiceEntriesAndFileTls) {
  const std::string yaml = bookinfo() + R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rr, namespace: default}
spec:
  hosts: [rr.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS_ROUND_ROBIN
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: anything, namespace: default}
spec:
  hosts: [passthrough.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: NONE
  location: MESH_EXTERNAL
---
)" + destinationRule("external", "default", R"(  host: api.example.com
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/client.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem
      subjectAltNames: [api.example.com]
)") + destinationRule("rr", "default", R"(  host: rr.example.com
  trafficPolicy:
    tls:
      mode: SIMPLE
      sni: custom.example.com
      insecureSkipVerify: true
)");
  testing::Mesh mesh = buildMesh(yaml);
  std::vector<Cluster> clusters =
      generateClusters(proxyAt(mesh, "10.0.0.10", "productpage-v1"), *mesh.push);

  const Cluster& external = find(clusters, "outbound|443||api.example.com");
  EXPECT_EQ(external.type(), Cluster::STRICT_DNS);
  EXPECT_EQ(external.dns_lookup_family(), Cluster::V4_ONLY);
  ASSERT_EQ(external.load_assignment().endpoints_size(), 1);
  const auto& address =
      external.load_assignment().endpoints(0).lb_endpoints(0).endpoint().address();
  EXPECT_EQ(address.socket_address().address(), "api.example.com");
  EXPECT_EQ(address.socket_address().port_value(), 443u);
  UpstreamTlsContext tls = tlsOf(external.transport_socket());
  EXPECT_EQ(tls.sni(), "api.example.com");
  ASSERT_EQ(tls.common_tls_context().tls_certificates_size(), 1);
  EXPECT_EQ(tls.common_tls_context().tls_certificates(0).certificate_chain().filename(),
            "/etc/certs/client.pem");
  EXPECT_EQ(tls.common_tls_context().tls_certificates(0).private_key().filename(),
            "/etc/certs/key.pem");
  EXPECT_EQ(tls.common_tls_context().validation_context().trusted_ca().filename(),
            "/etc/certs/ca.pem");
  EXPECT_EQ(tls.common_tls_context().validation_context().match_subject_alt_names(0).exact(),
            "api.example.com");

  const Cluster& rr = find(clusters, "outbound|80||rr.example.com");
  EXPECT_EQ(rr.type(), Cluster::LOGICAL_DNS);
  UpstreamTlsContext simple = tlsOf(rr.transport_socket());
  EXPECT_EQ(simple.sni(), "custom.example.com");
  EXPECT_FALSE(simple.common_tls_context().has_validation_context());
  EXPECT_EQ(simple.common_tls_context().tls_certificates_size(), 0);

  const Cluster& passthrough = find(clusters, "outbound|5432||passthrough.example.com");
  EXPECT_EQ(passthrough.type(), Cluster::ORIGINAL_DST);
  EXPECT_EQ(passthrough.lb_policy(), Cluster::CLUSTER_PROVIDED);
  // Mesh-external: no auto mTLS.
  EXPECT_EQ(passthrough.transport_socket_matches_size(), 0);
  EXPECT_FALSE(passthrough.has_transport_socket());
}

TEST(ClusterGeneratorTest, BadRulesDoNotBreakGeneration) {
  const std::string yaml =
      bookinfo() + destinationRule("ghost", "default", R"(  host: ghost.example.com
  subsets:
    - name: v1
      labels: {version: v1}
)") +
      destinationRule("reviews-1", "default",
                      "  host: reviews\n  subsets:\n    - name: a\n      labels: {version: v1}\n") +
      destinationRule("reviews-2", "default",
                      "  host: reviews\n  subsets:\n    - name: b\n      labels: {version: v2}\n");
  testing::Mesh mesh = buildMesh(yaml);
  EXPECT_EQ(mesh.push->errors().size(), 1u);
  std::vector<Cluster> clusters =
      generateClusters(proxyAt(mesh, "10.0.0.10", "productpage-v1"), *mesh.push);
  for (const Cluster& c : clusters) {
    EXPECT_EQ(c.name().find("ghost"), std::string::npos) << c.name();
    EXPECT_NE(c.name(), "outbound|9080|b|reviews.default.svc.cluster.local");
  }
  find(clusters, "outbound|9080|a|reviews.default.svc.cluster.local");
}

TEST(ClusterGeneratorTest, SidecarLimitsClustersAndUnknownProxyGetsOutbound) {
  const std::string yaml = bookinfo() + R"(apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews, namespace: default}
spec:
  workloadSelector:
    labels: {app: reviews}
  egress:
    - hosts: ["./ratings.default.svc.cluster.local"]
---
)";
  testing::Mesh mesh = buildMesh(yaml);
  std::vector<Cluster> reviews =
      generateClusters(proxyAt(mesh, "10.0.0.21", "reviews-v1"), *mesh.push);
  EXPECT_THAT(namesOf(reviews),
              ElementsAre("BlackHoleCluster", "InboundPassthroughClusterIpv4", "PassthroughCluster",
                          "inbound|9080||", "outbound|9080||ratings.default.svc.cluster.local"));
  EXPECT_THAT(edsClusterNames(proxyAt(mesh, "10.0.0.21", "reviews-v1"), *mesh.push),
              ElementsAre("outbound|9080||ratings.default.svc.cluster.local"));

  // No registered workload: namespace outbound config, no inbound clusters.
  std::vector<Cluster> stranger = generateClusters(proxyAt(mesh, "10.9.9.9", "x"), *mesh.push);
  EXPECT_EQ(stranger.size(), 7u);
  for (const Cluster& c : stranger) EXPECT_NE(c.name().rfind("inbound|", 0), 0u) << c.name();
}

TEST(ClusterGeneratorTest, SidecarIngressClustersGoToTheDefaultEndpoint) {
  // Istio: a Sidecar's ingress listeners replace the service instances as inbound ports, and each
  // forwards to its defaultEndpoint ("0.0.0.0:PORT" means the workload's own address: loopback).
  const std::string yaml = bookinfo() + R"(apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews, namespace: default}
spec:
  workloadSelector:
    labels: {app: reviews}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  - port: {number: 9443, protocol: TCP, name: tcp}
    defaultEndpoint: 0.0.0.0:8443
  - port: {number: 9500, protocol: TCP, name: bad}
    defaultEndpoint: not-an-endpoint
---
)";
  testing::Mesh mesh = buildMesh(yaml);
  std::vector<Cluster> clusters =
      generateClusters(proxyAt(mesh, "10.0.0.21", "reviews-v1"), *mesh.push);
  auto endpointOf = [&](const std::string& name) {
    for (const Cluster& c : clusters) {
      if (c.name() != name) continue;
      const auto& sa =
          c.load_assignment().endpoints(0).lb_endpoints(0).endpoint().address().socket_address();
      return sa.address() + ":" + std::to_string(sa.port_value());
    }
    return std::string("missing");
  };
  EXPECT_EQ(endpointOf("inbound|9080||"), "127.0.0.1:8080");
  EXPECT_EQ(endpointOf("inbound|9443||"), "127.0.0.1:8443");
  EXPECT_EQ(endpointOf("inbound|9500||"), "127.0.0.1:9500");  // unusable: the port on loopback
}

TEST(ClusterGeneratorTest, EffectiveTrafficPolicyWithoutRule) {
  EffectiveTrafficPolicy policy = effectiveTrafficPolicy(nullptr, 80, nullptr);
  EXPECT_FALSE(policy.load_balancer);
  EXPECT_FALSE(policy.tls);
}

}  // namespace
}  // namespace sheave::control
