#include "control/server/mesh_provider.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "control/registry/local_registry.h"
#include "control/xds/type_urls.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"

namespace sheave::control {
namespace {

std::string service(const std::string& name) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\n  namespace: default\nspec:\n  selector:\n    app: " + name +
         "\n  ports:\n  - name: http\n    port: 9080\n---\n";
}

std::string workload(const std::string& name, const std::string& app, const std::string& version,
                     const std::string& ip) {
  return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: " + name +
         "\n  namespace: default\nspec:\n  address: " + ip + "\n  labels:\n    app: " + app +
         "\n    version: " + version + "\n  serviceAccount: bookinfo-" + app + "\n---\n";
}

const char* kReviewsRules = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v2}
      weight: 20
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
---
)";

std::string bookinfo() {
  return service("productpage") + service("reviews") + service("ratings") +
         workload("productpage-v1", "productpage", "v1", "10.0.0.10") +
         workload("reviews-v1", "reviews", "v1", "10.0.0.21") +
         workload("reviews-v2", "reviews", "v2", "10.0.0.22") +
         workload("ratings-v1", "ratings", "v1", "10.0.0.30") + kReviewsRules;
}

const char* kProductpageId = "sidecar~10.0.0.10~productpage-v1.default~default.svc.cluster.local";

struct Loaded {
  std::shared_ptr<const ConfigSet> config;
  std::shared_ptr<const RegistrySnapshot> registry;
};

Loaded load(const std::string& yaml) {
  auto config = std::make_shared<const ConfigSet>(parseDocuments(yaml, "mesh.yaml"));
  auto snapshot = buildRegistrySnapshot(*config, RegistryOptions{}, 1);
  EXPECT_TRUE(snapshot.ok());
  return {config, std::make_shared<const RegistrySnapshot>(std::move(snapshot).value())};
}

envoy::config::core::v3::Node node(const std::string& id) {
  envoy::config::core::v3::Node n;
  n.set_id(id);
  return n;
}

std::vector<std::string> names(const std::vector<xds::NamedResource>& resources) {
  std::vector<std::string> out;
  for (const auto& r : resources) out.push_back(r.name);
  return out;
}

xds::PeerCredentials peer(const std::string& address, const std::string& token = "") {
  xds::PeerCredentials p;
  p.address = address;
  p.bearer_token = token;
  return p;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class MeshProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Loaded l = load(bookinfo());
    ASSERT_TRUE(l.config->errors.empty()) << l.config->errors.front().toString();
    provider_.update(l.config, l.registry);
    provider_.beginPush(xds::PushRequest{});
    auto handle = provider_.connect(node(kProductpageId), peer("127.0.0.1:1234"));
    ASSERT_TRUE(handle.ok()) << handle.error().message();
    handle_ = *handle;
  }

  std::vector<xds::NamedResource> gen(std::string_view type, std::vector<std::string> n = {}) {
    auto r = provider_.generate(*handle_, type, n, xds::PushRequest{});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<xds::NamedResource>{};
  }

  MeshProvider provider_{MeshConfig{}};
  std::shared_ptr<xds::ProxyHandle> handle_;
};

TEST_F(MeshProviderTest, ClustersWithIstioNames) {
  auto clusters = gen(xds::kClusterType);
  auto n = names(clusters);
  EXPECT_TRUE(contains(n, "outbound|9080||reviews.default.svc.cluster.local"));
  EXPECT_TRUE(contains(n, "outbound|9080|v1|reviews.default.svc.cluster.local"));
  EXPECT_TRUE(contains(n, "outbound|9080|v2|reviews.default.svc.cluster.local"));
  EXPECT_TRUE(contains(n, "outbound|9080||ratings.default.svc.cluster.local"));
  EXPECT_TRUE(contains(n, "inbound|9080||"));  // productpage's own port
  EXPECT_TRUE(contains(n, "PassthroughCluster"));
  EXPECT_TRUE(contains(n, "BlackHoleCluster"));
  for (const auto& c : clusters) {
    EXPECT_EQ(c.resource.type_url(), "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    envoy::config::cluster::v3::Cluster cluster;
    ASSERT_TRUE(c.resource.UnpackTo(&cluster));
    EXPECT_EQ(cluster.name(), c.name);
  }
  // Named CDS requests get only those.
  auto one = gen(xds::kClusterType, {"BlackHoleCluster", "nope"});
  EXPECT_EQ(names(one), std::vector<std::string>{"BlackHoleCluster"});
}

TEST_F(MeshProviderTest, EndpointsPerSubset) {
  auto all = gen(xds::kEndpointType);
  EXPECT_TRUE(contains(names(all), "outbound|9080|v1|reviews.default.svc.cluster.local"));
  auto v2 = gen(xds::kEndpointType, {"outbound|9080|v2|reviews.default.svc.cluster.local"});
  ASSERT_EQ(v2.size(), 1u);
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  ASSERT_TRUE(v2[0].resource.UnpackTo(&cla));
  ASSERT_EQ(cla.endpoints_size(), 1);
  ASSERT_EQ(cla.endpoints(0).lb_endpoints_size(), 1);
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().address(),
            "10.0.0.22");
}

TEST_F(MeshProviderTest, ListenersAndRoutes) {
  auto listeners = names(gen(xds::kListenerType));
  EXPECT_TRUE(contains(listeners, "virtualOutbound"));
  EXPECT_TRUE(contains(listeners, "virtualInbound"));
  EXPECT_TRUE(contains(listeners, "0.0.0.0_9080"));

  auto routes = gen(xds::kRouteType, {"9080", "not-a-port", "0"});
  ASSERT_EQ(names(routes), std::vector<std::string>{"9080"});
  envoy::config::route::v3::RouteConfiguration rc;
  ASSERT_TRUE(routes[0].resource.UnpackTo(&rc));
  bool weighted = false;
  for (const auto& vh : rc.virtual_hosts()) {
    if (vh.name() != "reviews.default.svc.cluster.local:9080") continue;
    ASSERT_GT(vh.routes_size(), 0);
    const auto& wc = vh.routes(0).route().weighted_clusters();
    ASSERT_EQ(wc.clusters_size(), 2);
    EXPECT_EQ(wc.clusters(0).name(), "outbound|9080|v1|reviews.default.svc.cluster.local");
    weighted = true;
  }
  EXPECT_TRUE(weighted);
  // A wildcard RDS request: every HTTP port the proxy can see.
  EXPECT_EQ(names(gen(xds::kRouteType)), std::vector<std::string>{"9080"});
  EXPECT_TRUE(gen(xds::kSecretType).empty());
}

TEST_F(MeshProviderTest, DeterministicPacking) {
  auto a = gen(xds::kListenerType);
  auto b = gen(xds::kListenerType);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].resource.value(), b[i].resource.value()) << a[i].name;
  }
}

TEST_F(MeshProviderTest, MalformedNodeIdIsRejected) {
  auto r = provider_.connect(node("sidecar~not-an-ip"), peer("127.0.0.1:1"));
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(r.error().message().empty());
}

TEST_F(MeshProviderTest, UnknownWorkloadStillGetsOutboundConfig) {
  auto r = provider_.connect(node("sidecar~10.9.9.9~stranger.default~default.svc.cluster.local"),
                             peer("127.0.0.1:1"));
  ASSERT_TRUE(r.ok());
  auto clusters = provider_.generate(**r, xds::kClusterType, {}, xds::PushRequest{});
  ASSERT_TRUE(clusters.ok());
  auto n = names(*clusters);
  EXPECT_TRUE(contains(n, "outbound|9080||reviews.default.svc.cluster.local"));
  EXPECT_FALSE(contains(n, "inbound|9080||"));
}

TEST_F(MeshProviderTest, Affects) {
  xds::PushRequest full;
  for (auto type : xds::kPushOrder) EXPECT_TRUE(provider_.affects(*handle_, type, full));
  xds::PushRequest eds;
  eds.full = false;
  eds.services = {"reviews.default.svc.cluster.local"};
  EXPECT_TRUE(provider_.affects(*handle_, xds::kEndpointType, eds));
  EXPECT_FALSE(provider_.affects(*handle_, xds::kClusterType, eds));
  EXPECT_FALSE(provider_.affects(*handle_, xds::kListenerType, eds));
  eds.services = {"elsewhere.other.svc.cluster.local"};
  EXPECT_FALSE(provider_.affects(*handle_, xds::kEndpointType, eds));
}

TEST_F(MeshProviderTest, EndpointPushThatChangesTheProxysWorkloadAffectsEverything) {
  // productpage's own WorkloadEntry gets a new label: its inbound side and
  // label-matched routes may change, so an endpoint-only push is not enough.
  std::string yaml = bookinfo();
  std::string from =
      "name: productpage-v1\n  namespace: default\nspec:\n  address: 10.0.0.10\n  labels:\n";
  size_t at = yaml.find(from);
  ASSERT_NE(at, std::string::npos);
  yaml.insert(at + from.size(), "    track: canary\n");
  Loaded l = load(yaml);
  provider_.update(l.config, l.registry);
  xds::PushRequest eds;
  eds.full = false;
  eds.services = {"productpage.default.svc.cluster.local"};
  provider_.beginPush(eds);
  EXPECT_TRUE(provider_.affects(*handle_, xds::kClusterType, eds));
  EXPECT_TRUE(provider_.affects(*handle_, xds::kListenerType, eds));
}

TEST_F(MeshProviderTest, NewConfigAppliesFromTheNextPush) {
  std::string yaml = bookinfo() + service("details");
  Loaded l = load(yaml);
  provider_.update(l.config, l.registry);
  const std::string details = "outbound|9080||details.default.svc.cluster.local";
  EXPECT_FALSE(contains(names(gen(xds::kClusterType)), details));  // not pushed yet
  provider_.beginPush(xds::PushRequest{});
  EXPECT_TRUE(contains(names(gen(xds::kClusterType)), details));
}

TEST_F(MeshProviderTest, CompilerErrorsAreCollectedOnce) {
  std::string yaml = bookinfo() + R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
  namespace: default
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings, subset: missing}
)";
  Loaded l = load(yaml);
  provider_.update(l.config, l.registry);
  provider_.beginPush(xds::PushRequest{});
  EXPECT_TRUE(provider_.compilerErrors().empty());
  gen(xds::kRouteType, {"9080"});
  gen(xds::kRouteType, {"9080"});
  auto errors = provider_.compilerErrors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].toString().find("missing"), std::string::npos) << errors[0].toString();
  EXPECT_EQ(errors[0].source.file, "mesh.yaml");
  EXPECT_GT(errors[0].source.line, 0);
  // A new configuration starts a new list.
  Loaded clean = load(bookinfo());
  provider_.update(clean.config, clean.registry);
  EXPECT_TRUE(provider_.compilerErrors().empty());
}

TEST_F(MeshProviderTest, ResourcesForAnIdWithoutAStream) {
  auto r = provider_.resourcesFor(kProductpageId);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->attached);
  EXPECT_FALSE(r->clusters.empty());
  EXPECT_FALSE(r->listeners.empty());
  EXPECT_FALSE(r->endpoints.empty());
  ASSERT_EQ(r->routes.size(), 1u);
  EXPECT_EQ(r->routes[0].name(), "9080");
  auto stranger = provider_.resourcesFor("sidecar~10.9.9.9~x.default~default.svc.cluster.local");
  ASSERT_TRUE(stranger.ok());
  EXPECT_FALSE(stranger->attached);
  EXPECT_FALSE(provider_.resourcesFor("garbage").ok());
}

}  // namespace
}  // namespace sheave::control

namespace sheave::control {
namespace {

TEST_F(MeshProviderTest, TrustBundleIsServedAsRootca) {
  EXPECT_TRUE(gen(xds::kSecretType, {"ROOTCA"}).empty());  // no CA configured: nothing
  provider_.setTrustBundle("-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n");
  auto secrets = gen(xds::kSecretType, {"ROOTCA", "default", "kubernetes://other"});
  ASSERT_EQ(names(secrets), std::vector<std::string>{"ROOTCA"});  // never the key-bearing one
  envoy::extensions::transport_sockets::tls::v3::Secret secret;
  ASSERT_TRUE(secrets[0].resource.UnpackTo(&secret));
  EXPECT_NE(secret.validation_context().trusted_ca().inline_string().find("root"),
            std::string::npos);
}

TEST_F(MeshProviderTest, AuthenticatedStreamsGetOnlyTheirOwnWorkload) {
  // The authenticator stands for the CA's: a token maps to one identity.
  provider_.setAuthenticator([](const xds::PeerCredentials& p) -> Result<std::string> {
    if (p.bearer_token.empty()) return unauthenticated("no credential");
    return "spiffe://cluster.local/ns/default/sa/" + p.bearer_token;
  });
  auto none = provider_.connect(node(kProductpageId), peer("127.0.0.1:1"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), ErrorCode::kUnauthenticated);

  auto own = provider_.connect(node(kProductpageId), peer("127.0.0.1:1", "bookinfo-productpage"));
  ASSERT_TRUE(own.ok()) << own.error().message();

  // A proxy with the ratings identity claiming to be productpage gets nothing.
  auto claim = provider_.connect(node(kProductpageId), peer("127.0.0.1:1", "bookinfo-ratings"));
  ASSERT_FALSE(claim.ok());
  EXPECT_EQ(claim.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(claim.error().message().find("authenticated as spiffe://cluster.local/ns/default/sa/"
                                         "bookinfo-ratings"),
            std::string::npos)
      << claim.error().message();

  // Nor does one naming no registered workload.
  auto stranger =
      provider_.connect(node("sidecar~10.9.9.9~stranger.default~default.svc.cluster.local"),
                        peer("127.0.0.1:1", "bookinfo-ratings"));
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.error().code(), ErrorCode::kPermissionDenied);
}

}  // namespace
}  // namespace sheave::control
