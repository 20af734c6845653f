#include "control/compiler/endpoint_generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "compiler_fixture.h"

namespace sheave::control {
namespace {

using envoy::config::endpoint::v3::ClusterLoadAssignment;
using testing::bookinfo;
using testing::buildMesh;
using ::testing::ElementsAre;
using testing::proxyAt;

const std::string kSubsets = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
---
)";

// "address:port" of every endpoint, locality by locality.
std::vector<std::string> addressesOf(const ClusterLoadAssignment& cla) {
  std::vector<std::string> out;
  for (const auto& locality : cla.endpoints()) {
    for (const auto& lb : locality.lb_endpoints()) {
      const auto& socket = lb.endpoint().address().socket_address();
      out.push_back(socket.address() + ":" + std::to_string(socket.port_value()));
    }
  }
  return out;
}

TEST(EndpointGeneratorTest, EndpointsByLocalityWithMetadata) {
  testing::Mesh mesh = buildMesh(bookinfo() + kSubsets);
  ProxyContext proxy = proxyAt(mesh, "10.0.0.10", "productpage-v1");
  std::vector<ClusterLoadAssignment> out =
      generateEndpoints(proxy, *mesh.push, {"outbound|9080||reviews.default.svc.cluster.local"});
  ASSERT_EQ(out.size(), 1u);
  const ClusterLoadAssignment& cla = out[0];
  EXPECT_EQ(cla.cluster_name(), "outbound|9080||reviews.default.svc.cluster.local");
  ASSERT_EQ(cla.endpoints_size(), 2);
  // us-east1-b holds v1 and v3, us-east1-c holds v2 (weight 3).
  EXPECT_EQ(cla.endpoints(0).locality().region(), "us-east1");
  EXPECT_EQ(cla.endpoints(0).locality().zone(), "us-east1-b");
  EXPECT_EQ(cla.endpoints(0).load_balancing_weight().value(), 2u);
  EXPECT_EQ(cla.endpoints(1).locality().zone(), "us-east1-c");
  EXPECT_EQ(cla.endpoints(1).load_balancing_weight().value(), 3u);
  EXPECT_THAT(addressesOf(cla), ElementsAre("10.0.0.21:9080", "10.0.0.23:9080", "10.0.0.22:9080"));
  const auto& v2 = cla.endpoints(1).lb_endpoints(0);
  EXPECT_EQ(v2.load_balancing_weight().value(), 3u);
  const auto& metadata = v2.metadata().filter_metadata();
  EXPECT_EQ(metadata.at("envoy.transport_socket_match").fields().at("tlsMode").string_value(),
            "istio");
  EXPECT_EQ(metadata.at("istio").fields().at("workload").string_value(),
            "reviews-v2;default;reviews;v2;Kubernetes");
}

TEST(EndpointGeneratorTest, SubsetsFilterByLabels) {
  testing::Mesh mesh = buildMesh(bookinfo() + kSubsets);
  ProxyContext proxy = proxyAt(mesh, "10.0.0.10", "productpage-v1");
  std::vector<ClusterLoadAssignment> out =
      generateEndpoints(proxy, *mesh.push,
                        {"outbound|9080|v2|reviews.default.svc.cluster.local",
                         "outbound|9080|v1|reviews.default.svc.cluster.local",
                         "outbound|9080|v9|reviews.default.svc.cluster.local"});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_THAT(addressesOf(out[0]), ElementsAre("10.0.0.22:9080"));
  EXPECT_THAT(addressesOf(out[1]), ElementsAre("10.0.0.21:9080"));
  // An unknown subset: an empty assignment under the asked name.
  EXPECT_EQ(out[2].cluster_name(), "outbound|9080|v9|reviews.default.svc.cluster.local");
  EXPECT_EQ(out[2].endpoints_size(), 0);
}

TEST(EndpointGeneratorTest, UnknownNamesGetEmptyAssignments) {
  testing::Mesh mesh = buildMesh(bookinfo());
  ProxyContext proxy = proxyAt(mesh, "10.0.0.10", "productpage-v1");
  const std::vector<std::string> names = {
      "outbound|9080||nothing.default.svc.cluster.local",
      "outbound|1234||reviews.default.svc.cluster.local",
      "inbound|9080||",
      "garbage",
      "outbound|notaport||reviews.default.svc.cluster.local",
      "outbound|9080|reviews.default.svc.cluster.local",
  };
  std::vector<ClusterLoadAssignment> out = generateEndpoints(proxy, *mesh.push, names);
  ASSERT_EQ(out.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(out[i].cluster_name(), names[i]);
    EXPECT_EQ(out[i].endpoints_size(), 0) << names[i];
  }
}

TEST(EndpointGeneratorTest, EmptyNamesMeansEveryEdsCluster) {
  const std::string yaml = bookinfo() + kSubsets + R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
)";
  testing::Mesh mesh = buildMesh(yaml);
  ProxyContext proxy = proxyAt(mesh, "10.0.0.10", "productpage-v1");
  std::vector<std::string> names;
  for (const ClusterLoadAssignment& cla : generateEndpoints(proxy, *mesh.push, {})) {
    names.push_back(cla.cluster_name());
  }
  // DNS clusters carry their endpoints inline, not over EDS.
  // Byte order, as generateClusters() sorts: 'v' sorts before '|'.
  EXPECT_THAT(names, ElementsAre("outbound|9080|v1|reviews.default.svc.cluster.local",
                                 "outbound|9080|v2|reviews.default.svc.cluster.local",
                                 "outbound|9080||details.default.svc.cluster.local",
                                 "outbound|9080||productpage.default.svc.cluster.local",
                                 "outbound|9080||ratings.default.svc.cluster.local",
                                 "outbound|9080||reviews.default.svc.cluster.local"));
}

TEST(EndpointGeneratorTest, InvisibleServiceIsEmptyAndExternalEndpointsHaveNoTlsMode) {
  const std::string yaml = bookinfo() + R"(apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews, namespace: default}
spec:
  workloadSelector:
    labels: {app: reviews}
  egress:
    - hosts: ["./ratings.default.svc.cluster.local"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.internal]
  addresses: [192.0.2.10]
  ports: [{number: 5432, name: tcp, protocol: TCP, targetPort: 15432}]
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
    - address: 192.0.2.20
---
)";
  testing::Mesh mesh = buildMesh(yaml);
  std::vector<ClusterLoadAssignment> reviews =
      generateEndpoints(proxyAt(mesh, "10.0.0.21", "reviews-v1"), *mesh.push,
                        {"outbound|9080||details.default.svc.cluster.local",
                         "outbound|9080||ratings.default.svc.cluster.local"});
  EXPECT_EQ(reviews[0].endpoints_size(), 0);
  EXPECT_THAT(addressesOf(reviews[1]), ElementsAre("10.0.0.30:9080"));

  std::vector<ClusterLoadAssignment> db = generateEndpoints(
      proxyAt(mesh, "10.0.0.10", "productpage-v1"), *mesh.push, {"outbound|5432||db.internal"});
  ASSERT_EQ(db.size(), 1u);
  EXPECT_THAT(addressesOf(db[0]), ElementsAre("192.0.2.20:15432"));
  EXPECT_FALSE(db[0].endpoints(0).has_locality());
  EXPECT_EQ(db[0].endpoints(0).lb_endpoints(0).metadata().filter_metadata().count(
                "envoy.transport_socket_match"),
            0u);
}

TEST(EndpointGeneratorTest, ParsesOutboundClusterNames) {
  OutboundClusterKey key;
  ASSERT_TRUE(parseOutboundClusterName("outbound|9080|v1|reviews.default.svc.cluster.local", &key));
  EXPECT_EQ(key.port, 9080u);
  EXPECT_EQ(key.subset, "v1");
  EXPECT_EQ(key.hostname, "reviews.default.svc.cluster.local");
  EXPECT_FALSE(parseOutboundClusterName("outbound|0||x", &key));
  EXPECT_FALSE(parseOutboundClusterName("outbound|70000||x", &key));
  EXPECT_FALSE(parseOutboundClusterName("outbound|80||", &key));
  EXPECT_FALSE(parseOutboundClusterName("inbound|80||", &key));
}

}  // namespace
}  // namespace sheave::control
