#include "cli/mesh_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/bootstrap.h"
#include "control/model/config_set.h"

namespace sheave::cli {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const char* kMesh = R"(apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: sheave.io/v1alpha1
kind: LocalWorkload
metadata: {name: reviews-v1}
spec:
  replicas: 2
  serviceAccount: bookinfo-reviews
  labels: {app: reviews, version: v1}
  ports: {http: 9080}
  command: [sheave-demo-app, --name, reviews]
---
apiVersion: sheave.io/v1alpha1
kind: LocalWorkload
metadata: {name: ratings-v1, namespace: shop}
spec:
  labels: {app: ratings}
  command: [sheave-demo-app, --name, ratings]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    bind: 127.0.0.1
    hosts: ["*"]
)";

MeshPlan planOf(const std::string& yaml) {
  control::ConfigSet config = control::parseDocuments(yaml, "mesh.yaml");
  for (const auto& e : config.errors) ADD_FAILURE() << e.toString();
  auto plan = planMesh(config, PlanOptions{});
  EXPECT_TRUE(plan.ok()) << plan.error().message();
  return plan.ok() ? std::move(plan).value() : MeshPlan{};
}

TEST(MeshPlanTest, ReplicasGetNamesAddressesAndIdentities) {
  MeshPlan plan = planOf(kMesh);
  ASSERT_EQ(plan.replicas.size(), 3u);
  // Sorted by (namespace, workload, index); addresses from 198.18.0.10 on.
  EXPECT_EQ(plan.replicas[0].name, "reviews-v1-0");
  EXPECT_EQ(plan.replicas[0].netns, "sheave-default-reviews-v1-0");
  EXPECT_EQ(plan.replicas[0].address, "198.18.0.10");
  EXPECT_EQ(plan.replicas[0].identity, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
  EXPECT_EQ(plan.replicas[0].node_id,
            "sidecar~198.18.0.10~reviews-v1-0.default~default.svc.cluster.local");
  EXPECT_EQ(plan.replicas[1].name, "reviews-v1-1");
  EXPECT_EQ(plan.replicas[1].address, "198.18.0.11");
  EXPECT_EQ(plan.replicas[2].name, "ratings-v1-0");
  EXPECT_EQ(plan.replicas[2].namespace_name, "shop");
  EXPECT_EQ(plan.replicas[2].identity, "spiffe://cluster.local/ns/shop/sa/default");
}

TEST(MeshPlanTest, GeneratedWorkloadEntriesRegisterTheReplicasAndTheGateway) {
  MeshPlan plan = planOf(kMesh);
  control::ConfigSet generated = control::parseDocuments(plan.generated_yaml, "generated.yaml");
  EXPECT_TRUE(generated.errors.empty()) << plan.generated_yaml;
  ASSERT_EQ(generated.workload_entries.size(), 4u);
  const auto& first = generated.workload_entries[0];
  EXPECT_EQ(first.metadata.name, "reviews-v1-0");
  EXPECT_EQ(first.spec.address, "198.18.0.10");
  EXPECT_EQ(first.spec.labels.at("version"), "v1");
  EXPECT_EQ(first.spec.ports.at("http"), 9080u);
  EXPECT_EQ(first.spec.service_account, "bookinfo-reviews");
  ASSERT_TRUE(plan.gateway.has_value());
  EXPECT_EQ(plan.gateway->address, "198.18.0.1");
  EXPECT_THAT(plan.gateway->ports, ElementsAre(8080u));
  EXPECT_THAT(plan.gateway->binds, ElementsAre("127.0.0.1"));
  EXPECT_EQ(plan.gateway->node_id,
            "router~198.18.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local");
  ASSERT_EQ(generated.services.size(), 1u);
  EXPECT_EQ(generated.services[0].metadata.name, "istio-ingressgateway");
}

TEST(MeshPlanTest, HostsResolveServiceNamesToVipsAsKubernetesDnsWould) {
  MeshPlan plan = planOf(kMesh);
  const ReplicaPlan& reviews = plan.replicas[0];  // namespace default
  std::vector<std::string> names;
  std::string vip;
  for (const HostsEntry& h : reviews.hosts) {
    for (const auto& n : h.names) names.push_back(n);
    if (h.names.front() == "reviews") vip = h.address;
  }
  EXPECT_THAT(vip, ::testing::StartsWith("240.240."));
  EXPECT_THAT(names, Contains("reviews"));
  EXPECT_THAT(names, Contains("reviews.default.svc.cluster.local"));
  EXPECT_THAT(names, Contains("ratings.shop"));
  // Short names only for the caller's own namespace.
  EXPECT_THAT(names, ::testing::Not(Contains("ratings")));
}

TEST(MeshPlanTest, NothingToRunIsAClearError) {
  control::ConfigSet config = control::parseDocuments(
      "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports: [{port: 80}]\n",
      "a.yaml");
  auto plan = planMesh(config, PlanOptions{});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.error().message(), HasSubstr("no LocalWorkload"));
}

TEST(MeshPlanTest, ServicesSelectingNothingAreWarnedAbout) {
  MeshPlan plan = planOf(std::string(kMesh) +
                         "---\napiVersion: v1\nkind: Service\nmetadata: {name: ghost}\nspec:\n"
                         "  selector: {app: ghost}\n  ports: [{name: http, port: 80}]\n");
  EXPECT_THAT(plan.warnings,
              ElementsAre(AllOf(HasSubstr("Service default/ghost selects no workload"),
                                HasSubstr("mesh.yaml:"))));
}

TEST(MeshPlanTest, GatewaysForOtherSelectorsAreWarnedAbout) {
  MeshPlan plan =
      planOf(std::string(kMesh) +
             "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: "
             "{name: egress}\nspec:\n  selector: {istio: egressgateway}\n  servers:\n  - port: "
             "{number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n");
  EXPECT_THAT(plan.warnings, ElementsAre(HasSubstr("default/egress")));
}

TEST(MeshPlanTest, TheBookinfoExamplePlans) {
  auto config =
      control::loadDirectory(std::filesystem::path(SHEAVE_SOURCE_DIR) / "examples/bookinfo");
  ASSERT_TRUE(config.ok());
  for (const auto& e : config->errors) ADD_FAILURE() << e.toString();
  auto plan = planMesh(*config, PlanOptions{});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->replicas.size(), 6u);
  ASSERT_TRUE(plan->gateway.has_value());
  EXPECT_THAT(plan->gateway->ports, ElementsAre(8080u));
}

TEST(BootstrapTest, SidecarBootstrapReachesTheControlPlaneOverTls) {
  BootstrapSpec spec;
  spec.node_id = "sidecar~198.18.0.10~reviews-v1-0.default~default.svc.cluster.local";
  spec.namespace_name = "default";
  spec.labels = {{"app", "reviews"}};
  spec.xds_address = "198.18.0.1";
  spec.root_cert_path = "/run/sheave/workloads/x/root-cert.pem";
  std::string json = proxyBootstrapJson(spec);
  EXPECT_THAT(json, HasSubstr("\"id\": \"sidecar~198.18.0.10~reviews-v1-0"));
  EXPECT_THAT(json, HasSubstr("\"address\": \"198.18.0.1\""));
  EXPECT_THAT(json, HasSubstr("\"port_value\": 15012"));
  EXPECT_THAT(json, HasSubstr("UpstreamTlsContext"));
  EXPECT_THAT(json, HasSubstr("\"filename\": \"/run/sheave/workloads/x/root-cert.pem\""));
  EXPECT_THAT(json, HasSubstr("\"NAMESPACE\": \"default\""));
}

}  // namespace
}  // namespace sheave::cli
