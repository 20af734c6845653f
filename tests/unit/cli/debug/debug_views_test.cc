// The tables of `sheave proxy-status` and `sheave proxy-config`, from admin
// API documents shaped as Envoy's (and sheave-proxy's) /config_dump,
// /clusters?format=json and sheave-control's /debug/syncz.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/debug/proxy_config.h"
#include "cli/debug/proxy_status.h"
#include "cli/debug/table.h"

namespace sheave::cli {
namespace {

using nlohmann::json;

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string testCertificate() {
  std::ifstream in(std::string(SHEAVE_DEBUG_TESTDATA) + "/workload-cert.pem");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string configDump() {
  json dump = json::parse(R"({"configs": [
    {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
     "static_clusters": [{"cluster": {"name": "xds-grpc"}}],
     "dynamic_active_clusters": [
       {"version_info": "7",
        "cluster": {"name": "outbound|9080|v1|reviews.default.svc.cluster.local", "type": "EDS",
                    "metadata": {"filter_metadata": {"istio": {"config":
                      "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews"}}}}},
       {"version_info": "7", "cluster": {"name": "PassthroughCluster", "type": "ORIGINAL_DST"}}]},
    {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
     "dynamic_listeners": [
       {"name": "0.0.0.0_9080", "active_state": {"version_info": "7", "listener": {
         "name": "0.0.0.0_9080",
         "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9080}},
         "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
           "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "rds": {"route_config_name": "9080"}}}]}]}}},
       {"name": "virtualOutbound", "active_state": {"version_info": "7", "listener": {
         "name": "virtualOutbound",
         "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15001}},
         "filter_chains": [{"filter_chain_match": {"destination_port": 15001},
           "filters": [{"name": "envoy.filters.network.tcp_proxy",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                              "cluster": "PassthroughCluster"}}]}]}}}]},
    {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
     "dynamic_route_configs": [{"version_info": "7", "route_config": {"name": "9080",
       "virtual_hosts": [{"name": "reviews.default.svc.cluster.local:9080",
         "domains": ["reviews.default.svc.cluster.local", "reviews", "reviews:9080"],
         "routes": [{"match": {"prefix": "/"},
           "metadata": {"filter_metadata": {"istio": {"config":
             "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"}}}}]}]}}]},
    {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
     "dynamic_active_secrets": [
       {"name": "default", "secret": {"name": "default", "tls_certificate": {
         "certificate_chain": {"inline_bytes": ""},
         "private_key": {"inline_string": "[redacted]"}}}},
       {"name": "ROOTCA", "secret": {"name": "ROOTCA", "validation_context": {
         "trusted_ca": {"inline_string": ""}}}}]}]})");
  auto& secrets = dump["configs"][3]["dynamic_active_secrets"];
  secrets[0]["secret"]["tls_certificate"]["certificate_chain"]["inline_bytes"] =
      base64(testCertificate());
  secrets[1]["secret"]["validation_context"]["trusted_ca"]["inline_string"] = testCertificate();
  return dump.dump();
}

TEST(TableTest, AlignsColumnsAndTrimsTrailingSpace) {
  Table t({"A", "LONG HEADER", "C"});
  t.add({"xxxxx", "y", ""});
  EXPECT_EQ(t.render(), "A       LONG HEADER   C\nxxxxx   y\n");
}

TEST(ProxyConfigTest, ClustersShowFqdnPortSubsetDirectionTypeAndDestinationRule) {
  auto table = clustersTable(configDump(), {});
  ASSERT_TRUE(table.ok()) << table.error().message();
  EXPECT_NE(table->find("reviews.default.svc.cluster.local   9080   v1       outbound    EDS"),
            std::string::npos)
      << *table;
  EXPECT_NE(table->find("reviews.default"), std::string::npos);
  EXPECT_NE(table->find("xds-grpc"), std::string::npos);
  EXPECT_NE(table->find("STATIC"), std::string::npos) << "proto3 JSON omits the default type";
  ProxyConfigFilter only_outbound;
  only_outbound.direction = "outbound";
  auto filtered = clustersTable(configDump(), only_outbound);
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(filtered->find("xds-grpc"), std::string::npos) << *filtered;
  EXPECT_EQ(filtered->find("PassthroughCluster"), std::string::npos) << *filtered;
}

TEST(ProxyConfigTest, ListenersShowMatchAndDestination) {
  auto table = listenersTable(configDump(), {});
  ASSERT_TRUE(table.ok()) << table.error().message();
  EXPECT_NE(table->find("Route: 9080"), std::string::npos) << *table;
  EXPECT_NE(table->find("port 15001"), std::string::npos) << *table;
  EXPECT_NE(table->find("Cluster: PassthroughCluster"), std::string::npos) << *table;
  ProxyConfigFilter port;
  port.port = 9080;
  auto filtered = listenersTable(configDump(), port);
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(filtered->find("virtualOutbound"), std::string::npos) << *filtered;
}

TEST(ProxyConfigTest, RoutesNameTheirVirtualService) {
  auto table = routesTable(configDump(), {});
  ASSERT_TRUE(table.ok()) << table.error().message();
  EXPECT_THAT(*table, testing::ContainsRegex(
                          "reviews.default.svc.cluster.local \\+2 more +/\\* +reviews.default"));
}

TEST(ProxyConfigTest, SecretsShowIdentitySerialAndExpiry) {
  auto now = std::chrono::system_clock::now();
  auto table = secretsTable(configDump(), now);
  ASSERT_TRUE(table.ok()) << table.error().message();
  EXPECT_NE(table->find("default         Cert Chain   ACTIVE   true         1234abcd"),
            std::string::npos)
      << *table;
  EXPECT_NE(table->find("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"),
            std::string::npos);
  EXPECT_NE(table->find("ROOTCA"), std::string::npos);
  // A century later the same certificate has expired.
  auto later = secretsTable(configDump(), now + std::chrono::hours(24 * 365 * 101));
  ASSERT_TRUE(later.ok());
  EXPECT_NE(later->find("false"), std::string::npos) << *later;
  EXPECT_NE(later->find("expired"), std::string::npos) << *later;
}

TEST(ProxyConfigTest, EndpointsShowHealthAndOutlierState) {
  json clusters = {
      {"cluster_statuses",
       {{{"name", "outbound|9080|v1|reviews.default.svc.cluster.local"},
         {"host_statuses",
          {{{"address", {{"socket_address", {{"address", "198.18.0.12"}, {"port_value", 9080}}}}},
            {"health_status", {{"eds_health_status", "HEALTHY"}}}},
           {{"address", {{"socket_address", {{"address", "198.18.0.13"}, {"port_value", 9080}}}}},
            {"health_status",
             {{"eds_health_status", "HEALTHY"}, {"failed_outlier_check", true}}}}}}}}}};
  auto table = endpointsTable(clusters.dump(), {});
  ASSERT_TRUE(table.ok()) << table.error().message();
  EXPECT_NE(table->find("198.18.0.12:9080   HEALTHY   OK"), std::string::npos) << *table;
  EXPECT_NE(table->find("198.18.0.13:9080   HEALTHY   FAILED"), std::string::npos) << *table;
}

TEST(ProxyConfigTest, NotAnAdminDocumentIsAnError) {
  EXPECT_FALSE(clustersTable("<html>", {}).ok());
  EXPECT_FALSE(endpointsTable("{\"x\":1}", {}).ok());
  EXPECT_FALSE(secretsTable("[]", std::chrono::system_clock::now()).ok());
}

TEST(ProxyStatusTest, StatesFromSentAckedAndNacked) {
  json syncz = json::array(
      {{{"proxy", "sidecar~198.18.0.10~productpage-v1-0.default~default.svc.cluster.local"},
        {"types",
         {{{"type_url", "type.googleapis.com/envoy.config.cluster.v3.Cluster"},
           {"sent_version", "3"},
           {"acked_version", "3"},
           {"nacked", false}},
          {{"type_url", "type.googleapis.com/envoy.config.listener.v3.Listener"},
           {"sent_version", "4"},
           {"acked_version", "3"},
           {"nacked", true},
           {"last_nack", "listener 0.0.0.0_9080: bad filter"}},
          {{"type_url", "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"},
           {"sent_version", "4"},
           {"acked_version", "3"},
           {"nacked", false}}}}},
       {{"proxy", "router~198.18.0.1~istio-ingressgateway.istio-system~istio-system.svc"}}});
  auto proxies = parseSyncz(syncz.dump());
  ASSERT_TRUE(proxies.ok()) << proxies.error().message();
  ASSERT_EQ(proxies->size(), 2u);
  EXPECT_EQ((*proxies)[0].name, "istio-ingressgateway.istio-system");
  const auto& p = (*proxies)[1];
  EXPECT_EQ(p.name, "productpage-v1-0.default");
  EXPECT_EQ(p.cds, "SYNCED");
  EXPECT_EQ(p.lds, "NACKED");
  EXPECT_EQ(p.rds, "STALE");
  EXPECT_EQ(p.eds, "NOT SENT");
  const std::string out = formatProxyStatus(*proxies, "sheave-control@127.0.0.1:15014");
  EXPECT_THAT(out,
              testing::ContainsRegex("productpage-v1-0.default +SYNCED +NACKED +NOT SENT +STALE"));
  EXPECT_NE(out.find("LDS: listener 0.0.0.0_9080: bad filter"), std::string::npos) << out;
  EXPECT_FALSE(parseSyncz("{}").ok());
}

TEST(ProxyStatusTest, DiffNamesMissingExtraAndOutdatedResources) {
  json want = json::parse(configDump());
  json have = json::parse(configDump());
  auto same = diffConfigDumps(want.dump(), have.dump());
  ASSERT_TRUE(same.ok()) << same.error().message();
  EXPECT_EQ(*same, (std::vector<std::string>{"Clusters Match", "Listeners Match", "Routes Match"}));
  // A version alone is no difference (a restarted control plane counts again)...
  have["configs"][0]["dynamic_active_clusters"][1]["version_info"] = "2";
  // ...but the proxy runs an older reviews cluster and lacks the virtualOutbound listener.
  have["configs"][0]["dynamic_active_clusters"][0]["cluster"]["type"] = "STRICT_DNS";
  have["configs"][1]["dynamic_listeners"].erase(1);
  auto diff = diffConfigDumps(want.dump(), have.dump());
  ASSERT_TRUE(diff.ok());
  EXPECT_NE((*diff)[0].find("Clusters Don't Match"), std::string::npos) << (*diff)[0];
  EXPECT_NE((*diff)[0].find("outbound|9080|v1|reviews.default.svc.cluster.local differs"),
            std::string::npos)
      << (*diff)[0];
  EXPECT_EQ((*diff)[0].find("PassthroughCluster"), std::string::npos) << (*diff)[0];
  EXPECT_NE((*diff)[1].find("virtualOutbound missing in the proxy"), std::string::npos)
      << (*diff)[1];
  EXPECT_EQ((*diff)[2], "Routes Match");
}

}  // namespace
}  // namespace sheave::cli
