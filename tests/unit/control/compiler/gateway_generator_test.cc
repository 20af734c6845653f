#include "control/compiler/gateway_generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "compiler_fixture.h"
#include "control/compiler/route_generator.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace sheave::control {
namespace {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Istio's bookinfo-gateway.yaml, with the gateway workload and its Service.
std::string gatewayMesh(const std::string& servers, const std::string& extra = "") {
  return testing::bookinfo() +
         testing::kubernetesService("istio-ingressgateway", "istio-system",
                                    "    - name: http2\n      port: 80\n      targetPort: 8080\n") +
         testing::workloadEntry("istio-ingressgateway", "istio-system", "10.0.0.2",
                                "{istio: ingressgateway, app: istio-ingressgateway}",
                                "istio-ingressgateway-service-account") +
         "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n"
         "  name: bookinfo-gateway\n  namespace: default\nspec:\n"
         "  selector:\n    istio: ingressgateway\n  servers:\n" +
         servers + "---\n" +
         "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
         "  name: bookinfo\n  namespace: default\nspec:\n  hosts: [\"*\"]\n"
         "  gateways: [bookinfo-gateway]\n  http:\n"
         "  - match:\n    - uri: {exact: /productpage}\n    - uri: {prefix: /static}\n"
         "    route:\n    - destination:\n        host: productpage\n        port: {number: "
         "9080}\n" +
         "---\n" + extra;
}

const std::string kHttp8080 =
    "  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n";

ProxyContext gatewayProxy(const testing::Mesh& mesh) {
  envoy::config::core::v3::Node node;
  node.set_id("router~10.0.0.2~istio-ingressgateway.istio-system~istio-system.svc.cluster.local");
  Result<ProxyContext> proxy = ProxyContext::fromNode(node, "cluster.local");
  EXPECT_TRUE(proxy.ok());
  ProxyContext out = std::move(proxy).value();
  out.attachWorkload(*mesh.registry, "cluster.local");
  return out;
}

envoy::config::route::v3::RouteConfiguration gatewayRoutes(const testing::Mesh& mesh,
                                                           const ProxyContext& proxy, uint32_t port,
                                                           std::vector<ResourceError>* errors) {
  auto gateways = gatewaysForProxy(proxy, *mesh.config);
  OutboundRouteInputs inputs;
  inputs.proxy = &proxy;
  inputs.mesh = &mesh.push->mesh();
  inputs.registry = mesh.registry.get();
  inputs.port = port;
  inputs.virtual_services = gatewayVirtualServices(*mesh.config, gateways);
  for (const auto* g : gateways) inputs.gateway_keys.push_back(gatewayKey(*g));
  inputs.gateway_hosts = gatewayServerHosts(gateways, port);
  return buildOutboundRouteConfiguration(inputs, errors);
}

TEST(GatewayGeneratorTest, SelectsGatewaysByTheProxysLabels) {
  testing::Mesh mesh = testing::buildMesh(gatewayMesh(kHttp8080));
  ProxyContext gateway = gatewayProxy(mesh);
  EXPECT_EQ(gateway.type, ProxyContext::Type::kRouter);
  ASSERT_EQ(gatewaysForProxy(gateway, *mesh.config).size(), 1u);
  ProxyContext sidecar = testing::proxyAt(mesh, "10.0.0.10", "productpage-v1");
  EXPECT_THAT(gatewaysForProxy(sidecar, *mesh.config), IsEmpty());
}

TEST(GatewayGeneratorTest, ListenerPerServerPortReadingHttpRoutes) {
  testing::Mesh mesh =
      testing::buildMesh(gatewayMesh(
          kHttp8080 + "  - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: [\"*\"]\n"
                      "    tls: {mode: SIMPLE, credentialName: cert}\n"));
  std::vector<ResourceError> errors;
  auto listeners =
      buildGatewayListeners(gatewaysForProxy(gatewayProxy(mesh), *mesh.config), {}, &errors);
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0].name(), "0.0.0.0_8080");
  EXPECT_EQ(listeners[0].address().socket_address().address(), "0.0.0.0");
  EXPECT_EQ(listeners[0].address().socket_address().port_value(), 8080u);
  HttpConnectionManager hcm;
  ASSERT_TRUE(listeners[0].filter_chains(0).filters(0).typed_config().UnpackTo(&hcm));
  EXPECT_EQ(hcm.rds().route_config_name(), "http.8080");
  EXPECT_TRUE(hcm.use_remote_address().value());
  EXPECT_EQ(hcm.http_filters(hcm.http_filters_size() - 1).name(), "envoy.filters.http.router");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].toString(), HasSubstr("servers[1].tls"));
}

TEST(GatewayGeneratorTest, BindAddressIsHonoured) {
  testing::Mesh mesh = testing::buildMesh(
      gatewayMesh("  - port: {number: 8080, name: http, protocol: HTTP}\n    bind: 127.0.0.1\n"
                  "    hosts: [\"*\"]\n"));
  auto listeners =
      buildGatewayListeners(gatewaysForProxy(gatewayProxy(mesh), *mesh.config), {}, nullptr);
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0].address().socket_address().address(), "127.0.0.1");
}

TEST(GatewayGeneratorTest, RoutesOfVirtualServicesBoundToTheGateway) {
  // A mesh-only VirtualService for reviews must not show up at the gateway.
  testing::Mesh mesh = testing::buildMesh(
      gatewayMesh(kHttp8080,
                  "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
                  "  name: reviews\n  namespace: default\nspec:\n  hosts: [reviews]\n"
                  "  http:\n  - route:\n    - destination: {host: reviews}\n---\n"));
  std::vector<ResourceError> errors;
  auto config = gatewayRoutes(mesh, gatewayProxy(mesh), 8080, &errors);
  EXPECT_THAT(errors, IsEmpty());
  EXPECT_EQ(config.name(), "http.8080");
  ASSERT_EQ(config.virtual_hosts_size(), 1);
  const auto& vh = config.virtual_hosts(0);
  EXPECT_EQ(vh.name(), "*:8080");
  EXPECT_THAT(std::vector<std::string>(vh.domains().begin(), vh.domains().end()), ElementsAre("*"));
  ASSERT_EQ(vh.routes_size(), 2);
  EXPECT_EQ(vh.routes(0).match().path(), "/productpage");
  EXPECT_EQ(vh.routes(1).match().prefix(), "/static");
  EXPECT_EQ(vh.routes(0).route().cluster(), "outbound|9080||productpage.default.svc.cluster.local");
}

TEST(GatewayGeneratorTest, ServerHostsFilterVirtualServiceHosts) {
  testing::Mesh mesh = testing::buildMesh(gatewayMesh(
      "  - port: {number: 8080, name: http, protocol: HTTP}\n"
      "    hosts: [\"default/*.example.com\"]\n",
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
      "  name: shop\n  namespace: default\nspec:\n  hosts: [shop.example.com, other.org]\n"
      "  gateways: [default/bookinfo-gateway]\n  http:\n"
      "  - route:\n    - destination: {host: details}\n---\n"));
  auto config = gatewayRoutes(mesh, gatewayProxy(mesh), 8080, nullptr);
  ASSERT_EQ(config.virtual_hosts_size(), 1);
  EXPECT_EQ(config.virtual_hosts(0).name(), "shop.example.com:8080");
  EXPECT_THAT(std::vector<std::string>(config.virtual_hosts(0).domains().begin(),
                                       config.virtual_hosts(0).domains().end()),
              ElementsAre("shop.example.com", "shop.example.com:*"));
}

TEST(GatewayGeneratorTest, RouteNames) {
  EXPECT_EQ(gatewayRouteName(8080), "http.8080");
  EXPECT_EQ(gatewayRoutePort("http.8080"), 8080u);
  EXPECT_EQ(gatewayRoutePort("8080"), 0u);
  EXPECT_EQ(gatewayRoutePort("http.080"), 0u);
  EXPECT_EQ(gatewayRoutePort("http.99999"), 0u);
  EXPECT_EQ(gatewayRoutePort("http."), 0u);
}

}  // namespace
}  // namespace sheave::control
