#include "control/compiler/push_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "compiler_fixture.h"

namespace sheave::control {
namespace {

using testing::bookinfo;
using testing::buildMesh;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::kubernetesService;
using testing::proxyAt;

const std::string kHttp = "    - name: http\n      port: 80\n";

std::vector<std::string> hostsOf(const SidecarScope& scope) {
  std::vector<std::string> out;
  for (const Service* s : scope.services()) out.push_back(s->hostname);
  return out;
}

std::vector<std::string> vsNames(const SidecarScope& scope) {
  std::vector<std::string> out;
  for (const auto* vs : scope.virtualServices()) {
    out.push_back(vs->metadata.namespace_name + "/" + vs->metadata.name);
  }
  return out;
}

std::string virtualService(const std::string& name, const std::string& ns,
                           const std::string& spec) {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

std::string destinationRule(const std::string& name, const std::string& ns,
                            const std::string& spec) {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

std::string sidecar(const std::string& name, const std::string& ns, const std::string& spec) {
  return "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

std::string routeTo(const std::string& host) {
  return "  http:\n    - route:\n        - destination:\n            host: " + host + "\n";
}

TEST(PushContextTest, MeshDefaultSeesEverythingExported) {
  const std::string yaml = bookinfo() + kubernetesService("a", "alpha", kHttp) +
                           "apiVersion: v1\nkind: Service\nmetadata:\n  name: private\n"
                           "  namespace: alpha\n  annotations:\n"
                           "    networking.istio.io/exportTo: \".\"\n"
                           "spec:\n  selector: {app: p}\n  ports:\n" +
                           kHttp + "---\n";
  testing::Mesh mesh = buildMesh(yaml);
  auto scope = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.10", "productpage-v1"));
  EXPECT_EQ(scope->sidecar(), nullptr);
  EXPECT_THAT(
      hostsOf(*scope),
      ElementsAre("a.alpha.svc.cluster.local", "details.default.svc.cluster.local",
                  "productpage.default.svc.cluster.local", "ratings.default.svc.cluster.local",
                  "reviews.default.svc.cluster.local"));
  EXPECT_EQ(scope->outboundTrafficPolicy(), OutboundTrafficPolicyMode::kAllowAny);

  auto alpha = mesh.push->scopeFor(proxyAt(mesh, "10.5.0.1", "x", "alpha"));
  EXPECT_THAT(hostsOf(*alpha), ::testing::Contains("private.alpha.svc.cluster.local"));
}

TEST(PushContextTest, VirtualServicesBoundToMeshAndExported) {
  const std::string yaml =
      bookinfo() +
      virtualService("reviews", "default", "  hosts: [reviews]\n" + routeTo("reviews")) +
      virtualService("ingress-only", "default",
                     "  hosts: [ratings]\n  gateways: [bookinfo-gateway]\n" + routeTo("ratings")) +
      virtualService(
          "both", "default",
          "  hosts: [details]\n  gateways: [bookinfo-gateway, mesh]\n" + routeTo("details")) +
      virtualService("remote", "alpha",
                     "  hosts: [productpage.default.svc.cluster.local]\n" +
                         routeTo("productpage.default.svc.cluster.local")) +
      virtualService("alpha-private", "alpha",
                     "  hosts: [x.alpha.svc.cluster.local]\n  exportTo: [\".\"]\n" +
                         routeTo("x.alpha.svc.cluster.local"));
  testing::Mesh mesh = buildMesh(yaml);
  EXPECT_THAT(mesh.push->errors(), IsEmpty());
  auto scope = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.10", "productpage-v1"));
  // Own namespace first, then others; the gateway-only one is left out.
  EXPECT_THAT(vsNames(*scope), ElementsAre("default/reviews", "default/both", "alpha/remote"));
  auto alpha = mesh.push->scopeFor(proxyAt(mesh, "10.5.0.1", "x", "alpha"));
  EXPECT_THAT(vsNames(*alpha), ElementsAre("alpha/remote", "alpha/alpha-private", "default/reviews",
                                           "default/both"));
}

TEST(PushContextTest, ConflictingVirtualServicesFirstWins) {
  const std::string yaml =
      bookinfo() +
      virtualService("reviews-a", "default", "  hosts: [reviews]\n" + routeTo("reviews")) +
      virtualService("reviews-b", "default",
                     "  hosts: [reviews.default.svc.cluster.local]\n" + routeTo("reviews"));
  testing::Mesh mesh = buildMesh(yaml);
  ASSERT_EQ(mesh.push->errors().size(), 1u);
  const ResourceError& error = mesh.push->errors()[0];
  EXPECT_EQ(error.name, "reviews-b");
  EXPECT_EQ(error.kind, "VirtualService");
  EXPECT_GT(error.source.line, 1);
  EXPECT_THAT(error.toString(), HasSubstr("reviews-a"));
  EXPECT_THAT(error.toString(), HasSubstr("test.yaml:"));
  auto scope = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.10", "productpage-v1"));
  EXPECT_THAT(vsNames(*scope), ElementsAre("default/reviews-a"));
}

TEST(PushContextTest, DestinationRuleLookupOrder) {
  const std::string yaml =
      bookinfo() + kubernetesService("a", "alpha", kHttp) +
      // In the service's namespace (default) and in the root namespace.
      destinationRule("reviews", "default", "  host: reviews\n") +
      destinationRule("root-wild", "sheave-system", "  host: \"*.svc.cluster.local\"\n") +
      destinationRule("root-exact", "sheave-system",
                      "  host: ratings.default.svc.cluster.local\n") +
      // alpha's own view of reviews beats the service namespace's.
      destinationRule("alpha-reviews", "alpha",
                      "  host: reviews.default.svc.cluster.local\n  exportTo: [\".\"]\n") +
      // Private to default: alpha does not see it.
      destinationRule("details", "default", "  host: details\n  exportTo: [\".\"]\n");
  testing::Mesh mesh = buildMesh(yaml);
  EXPECT_THAT(mesh.push->errors(), IsEmpty());

  auto def = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.10", "productpage-v1"));
  ASSERT_NE(def->destinationRule("reviews.default.svc.cluster.local"), nullptr);
  EXPECT_EQ(def->destinationRule("reviews.default.svc.cluster.local")->metadata.name, "reviews");
  EXPECT_EQ(def->destinationRule("ratings.default.svc.cluster.local")->metadata.name, "root-exact");
  EXPECT_EQ(def->destinationRule("details.default.svc.cluster.local")->metadata.name, "details");
  EXPECT_EQ(def->destinationRule("productpage.default.svc.cluster.local")->metadata.name,
            "root-wild");
  EXPECT_EQ(def->destinationRule("nothing.example.com"), nullptr);

  auto alpha = mesh.push->scopeFor(proxyAt(mesh, "10.5.0.1", "x", "alpha"));
  EXPECT_EQ(alpha->destinationRule("reviews.default.svc.cluster.local")->metadata.name,
            "alpha-reviews");
  EXPECT_EQ(alpha->destinationRule("details.default.svc.cluster.local")->metadata.name,
            "root-wild");
}

TEST(PushContextTest, ConflictingDestinationRulesAndSelectorRules) {
  const std::string yaml =
      bookinfo() + destinationRule("reviews-1", "default", "  host: reviews\n") +
      destinationRule("reviews-2", "default", "  host: reviews.default.svc.cluster.local\n") +
      destinationRule(
          "reviews-for-productpage", "default",
          "  host: reviews\n  workloadSelector:\n    matchLabels: {app: productpage}\n") +
      destinationRule("ghost", "default", "  host: ghost.example.com\n");
  testing::Mesh mesh = buildMesh(yaml);
  ASSERT_EQ(mesh.push->errors().size(), 1u);
  EXPECT_EQ(mesh.push->errors()[0].name, "reviews-2");
  EXPECT_THAT(mesh.push->errors()[0].toString(), HasSubstr("spec.host"));

  auto productpage = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.10", "productpage-v1"));
  EXPECT_EQ(productpage->destinationRule("reviews.default.svc.cluster.local")->metadata.name,
            "reviews-for-productpage");
  auto ratings = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.30", "ratings-v1"));
  EXPECT_EQ(ratings->destinationRule("reviews.default.svc.cluster.local")->metadata.name,
            "reviews-1");
  EXPECT_NE(productpage.get(), ratings.get());
}

TEST(PushContextTest, SidecarSelectionAndEgressHosts) {
  const std::string yaml =
      bookinfo() + kubernetesService("a", "alpha", kHttp) + kubernetesService("b", "beta", kHttp) +
      "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: ext\n"
      "  namespace: beta\nspec:\n  hosts: [api.example.com, www.other.org]\n"
      "  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DNS\n"
      "  location: MESH_EXTERNAL\n---\n" +
      // Root default: only its own namespace and sheave-system.
      sidecar("default", "sheave-system",
              "  egress:\n    - hosts: [\"./*\", \"sheave-system/*\"]\n"
              "  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n") +
      // default's namespace-wide one: own namespace, beta's example.com hosts, a/alpha by name.
      sidecar("ns-default", "default",
              "  egress:\n    - hosts: [\"./*\", \"beta/*.example.com\", "
              "\"*/a.alpha.svc.cluster.local\"]\n") +
      // reviews only talks to ratings.
      sidecar("reviews", "default",
              "  workloadSelector:\n    labels: {app: reviews}\n"
              "  egress:\n    - hosts: [\"./ratings.default.svc.cluster.local\"]\n") +
      virtualService(
          "a-routes", "alpha",
          "  hosts: [a.alpha.svc.cluster.local]\n" + routeTo("a.alpha.svc.cluster.local")) +
      virtualService(
          "b-routes", "beta",
          "  hosts: [b.beta.svc.cluster.local]\n" + routeTo("b.beta.svc.cluster.local")) +
      virtualService("ratings", "default", "  hosts: [ratings]\n" + routeTo("ratings"));
  testing::Mesh mesh = buildMesh(yaml);

  auto productpage = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.10", "productpage-v1"));
  ASSERT_NE(productpage->sidecar(), nullptr);
  EXPECT_EQ(productpage->sidecar()->metadata.name, "ns-default");
  EXPECT_THAT(
      hostsOf(*productpage),
      ElementsAre("a.alpha.svc.cluster.local", "api.example.com",
                  "details.default.svc.cluster.local", "productpage.default.svc.cluster.local",
                  "ratings.default.svc.cluster.local", "reviews.default.svc.cluster.local"));
  EXPECT_THAT(vsNames(*productpage), ElementsAre("default/ratings", "alpha/a-routes"));
  EXPECT_EQ(productpage->outboundTrafficPolicy(), OutboundTrafficPolicyMode::kAllowAny);

  auto reviews = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.21", "reviews-v1"));
  EXPECT_EQ(reviews->sidecar()->metadata.name, "reviews");
  EXPECT_THAT(hostsOf(*reviews), ElementsAre("ratings.default.svc.cluster.local"));
  EXPECT_THAT(vsNames(*reviews), ElementsAre("default/ratings"));

  // beta has no Sidecar: the root namespace's applies, "." meaning beta.
  auto beta = mesh.push->scopeFor(proxyAt(mesh, "10.6.0.1", "b-1", "beta"));
  EXPECT_EQ(beta->sidecar()->metadata.name, "default");
  EXPECT_THAT(hostsOf(*beta),
              ElementsAre("api.example.com", "b.beta.svc.cluster.local", "www.other.org"));
  EXPECT_THAT(vsNames(*beta), ElementsAre("beta/b-routes"));
  EXPECT_EQ(beta->outboundTrafficPolicy(), OutboundTrafficPolicyMode::kRegistryOnly);
}

TEST(PushContextTest, MeshConfigOutboundPolicyAndCaching) {
  MeshConfig config;
  config.outbound_traffic_policy = OutboundTrafficPolicyMode::kRegistryOnly;
  testing::Mesh mesh = buildMesh(bookinfo(), config);
  auto a = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.10", "productpage-v1"));
  auto b = mesh.push->scopeFor(proxyAt(mesh, "10.0.0.30", "ratings-v1"));
  EXPECT_EQ(a->outboundTrafficPolicy(), OutboundTrafficPolicyMode::kRegistryOnly);
  // Same namespace, same Sidecar (none): one scope.
  EXPECT_EQ(a.get(), b.get());
}

}  // namespace
}  // namespace sheave::control
