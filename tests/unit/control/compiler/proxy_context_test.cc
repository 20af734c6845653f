#include "control/compiler/proxy_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "compiler_fixture.h"
#include "google/protobuf/struct.pb.h"

namespace sheave::control {
namespace {

using testing::bookinfo;
using testing::buildMesh;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::sidecarNode;

TEST(ProxyContextTest, ParsesIstioNodeId) {
  envoy::config::core::v3::Node node = sidecarNode("198.18.0.5", "productpage-v1-123", "bookinfo");
  Result<ProxyContext> proxy = ProxyContext::fromNode(node, "cluster.local");
  ASSERT_TRUE(proxy.ok()) << proxy.error().message();
  EXPECT_EQ(proxy->type, ProxyContext::Type::kSidecar);
  EXPECT_EQ(proxy->id, node.id());
  EXPECT_THAT(proxy->ips, ElementsAre("198.18.0.5"));
  EXPECT_EQ(proxy->ip(), "198.18.0.5");
  EXPECT_EQ(proxy->pod_name, "productpage-v1-123");
  EXPECT_EQ(proxy->namespace_name, "bookinfo");
  EXPECT_EQ(proxy->dns_domain, "bookinfo.svc.cluster.local");
  EXPECT_EQ(proxy->service_account, "default");
  EXPECT_EQ(proxy->identity, "spiffe://cluster.local/ns/bookinfo/sa/default");
  EXPECT_THAT(proxy->labels, IsEmpty());
  EXPECT_THAT(proxy->service_instances, IsEmpty());
}

TEST(ProxyContextTest, RouterType) {
  envoy::config::core::v3::Node node;
  node.set_id("router~10.1.2.3~ingressgateway-abc.istio-system~istio-system.svc.cluster.local");
  Result<ProxyContext> proxy = ProxyContext::fromNode(node, "cluster.local");
  ASSERT_TRUE(proxy.ok());
  EXPECT_EQ(proxy->type, ProxyContext::Type::kRouter);
  EXPECT_EQ(proxy->namespace_name, "istio-system");
}

TEST(ProxyContextTest, MetadataWinsOverId) {
  envoy::config::core::v3::Node node = sidecarNode("10.0.0.1", "pod", "default");
  auto& fields = *node.mutable_metadata()->mutable_fields();
  fields["NAMESPACE"].set_string_value("shop");
  fields["SERVICE_ACCOUNT"].set_string_value("cart");
  fields["WORKLOAD_NAME"].set_string_value("cart-v1");
  fields["INSTANCE_IPS"].set_string_value("10.0.0.2, fd00::2");
  auto& labels = *fields["LABELS"].mutable_struct_value()->mutable_fields();
  labels["app"].set_string_value("cart");
  labels["version"].set_string_value("v1");
  Result<ProxyContext> proxy = ProxyContext::fromNode(node, "example.org");
  ASSERT_TRUE(proxy.ok()) << proxy.error().message();
  EXPECT_EQ(proxy->namespace_name, "shop");
  EXPECT_EQ(proxy->service_account, "cart");
  EXPECT_EQ(proxy->workload_name, "cart-v1");
  EXPECT_THAT(proxy->ips, ElementsAre("10.0.0.2", "fd00::2"));
  EXPECT_EQ(proxy->labels.at("app"), "cart");
  EXPECT_EQ(proxy->labels.at("version"), "v1");
  EXPECT_EQ(proxy->identity, "spiffe://example.org/ns/shop/sa/cart");
}

TEST(ProxyContextTest, MalformedIdsAreErrors) {
  struct Case {
    const char* id;
    const char* complaint;
  };
  const Case cases[] = {
      {"", "4"},
      {"sidecar~10.0.0.1~pod.default", "4"},
      {"sidecar~10.0.0.1~pod.default~default.svc.cluster.local~extra", "4"},
      {"gateway~10.0.0.1~pod.default~default.svc.cluster.local", "unknown proxy type"},
      {"sidecar~not-an-ip~pod.default~default.svc.cluster.local", "not an IP"},
      {"sidecar~10.0.0.1~~default.svc.cluster.local", "empty workload"},
      {"sidecar~10.0.0.1~pod~", "no namespace"},
  };
  for (const Case& c : cases) {
    envoy::config::core::v3::Node node;
    node.set_id(c.id);
    Result<ProxyContext> proxy = ProxyContext::fromNode(node, "cluster.local");
    ASSERT_FALSE(proxy.ok()) << c.id;
    EXPECT_THAT(proxy.error().message(), HasSubstr(c.complaint)) << c.id;
  }
  envoy::config::core::v3::Node node = sidecarNode("10.0.0.1", "pod", "default");
  (*node.mutable_metadata()->mutable_fields())["INSTANCE_IPS"].set_string_value("10.0.0.1,bogus");
  Result<ProxyContext> proxy = ProxyContext::fromNode(node, "cluster.local");
  ASSERT_FALSE(proxy.ok());
  EXPECT_THAT(proxy.error().message(), HasSubstr("INSTANCE_IPS"));
}

TEST(ProxyContextTest, AttachesRegisteredWorkload) {
  const std::string yaml =
      bookinfo() + testing::kubernetesService(
                       "reviews-admin", "default",
                       "    - name: grpc-admin\n      port: 7070\n      targetPort: 17070\n");
  testing::Mesh mesh = buildMesh(yaml);
  // reviews-admin selects app=reviews-admin, so reviews-v2 serves only reviews.
  ProxyContext proxy = testing::proxyAt(mesh, "10.0.0.22", "reviews-v2-xyz");
  EXPECT_EQ(proxy.workload_name, "reviews-v2");
  EXPECT_EQ(proxy.service_account, "bookinfo-reviews");
  EXPECT_EQ(proxy.identity, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
  EXPECT_EQ(proxy.labels.at("version"), "v2");
  ASSERT_EQ(proxy.service_instances.size(), 1u);
  const ProxyContext::ServiceInstance& instance = proxy.service_instances[0];
  EXPECT_EQ(instance.service->hostname, "reviews.default.svc.cluster.local");
  EXPECT_EQ(instance.service_port, 9080u);
  EXPECT_EQ(instance.port_name, "http");
  EXPECT_EQ(instance.protocol, Protocol::kHttp);
  EXPECT_EQ(instance.target_port, 9080u);
}

TEST(ProxyContextTest, ServiceInstancesCarryTargetPortAndProtocol) {
  const std::string yaml =
      testing::kubernetesService("api", "shop",
                                 "    - name: http-web\n      port: 80\n      targetPort: 8080\n"
                                 "    - name: grpc\n      port: 9090\n") +
      testing::workloadEntry("api-1", "shop", "10.2.0.1", "{app: api}", "api",
                             "  ports:\n    grpc: 19090\n");
  testing::Mesh mesh = buildMesh(yaml);
  ProxyContext proxy = testing::proxyAt(mesh, "10.2.0.1", "api-1", "shop");
  ASSERT_EQ(proxy.service_instances.size(), 2u);
  EXPECT_EQ(proxy.service_instances[0].service_port, 80u);
  EXPECT_EQ(proxy.service_instances[0].target_port, 8080u);
  EXPECT_EQ(proxy.service_instances[0].protocol, Protocol::kHttp);
  EXPECT_EQ(proxy.service_instances[1].service_port, 9090u);
  EXPECT_EQ(proxy.service_instances[1].target_port, 19090u);
  EXPECT_EQ(proxy.service_instances[1].protocol, Protocol::kGrpc);
}

TEST(ProxyContextTest, UnknownWorkloadKeepsWhatItSent) {
  testing::Mesh mesh = buildMesh(bookinfo());
  envoy::config::core::v3::Node node = sidecarNode("10.9.9.9", "stranger", "default");
  auto& fields = *node.mutable_metadata()->mutable_fields();
  (*fields["LABELS"].mutable_struct_value()->mutable_fields())["app"].set_string_value("x");
  Result<ProxyContext> proxy = ProxyContext::fromNode(node, "cluster.local");
  ASSERT_TRUE(proxy.ok());
  proxy->attachWorkload(*mesh.registry, "cluster.local");
  EXPECT_EQ(proxy->labels.at("app"), "x");
  EXPECT_TRUE(proxy->workload_name.empty());
  EXPECT_THAT(proxy->service_instances, IsEmpty());

  // The right IP in another namespace is not the workload either.
  ProxyContext elsewhere = testing::proxyAt(mesh, "10.0.0.22", "reviews-v2", "other");
  EXPECT_TRUE(elsewhere.workload_name.empty());
  EXPECT_THAT(elsewhere.service_instances, IsEmpty());
}

}  // namespace
}  // namespace sheave::control
