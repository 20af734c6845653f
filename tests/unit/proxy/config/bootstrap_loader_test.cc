#include "proxy/config/bootstrap_loader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/config/proto_json.h"

namespace sheave::config {
namespace {

using envoy::config::bootstrap::v3::Bootstrap;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

class BootstrapLoaderTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::string path = ::testing::TempDir() + "sheave_bootstrap_" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::string errorFor(const std::string& name, const std::string& text) {
    std::string path = write(name, text);
    auto r = loadBootstrapFile(path);
    if (r.ok()) {
      return "OK";
    }
    std::string msg = r.error().message();
    // Errors start with the file's path; the tests compare what follows.
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    return msg.substr(path.size() + 2);
  }
};

constexpr const char* kGoodYaml = R"(
node: {id: sidecar~10.0.0.1~app.default~default.svc.cluster.local, cluster: app}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: local}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: local
    type: STATIC
    connect_timeout: 0.25s
    load_assignment:
      cluster_name: local
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9000}}}}]}]
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}
)";

TEST_F(BootstrapLoaderTest, LoadsGoodYaml) {
  auto r = loadBootstrapFile(write("good.yaml", kGoodYaml));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->node().cluster(), "app");
  ASSERT_EQ(r->static_resources().listeners_size(), 1);
  ASSERT_EQ(r->static_resources().clusters_size(), 1);
  EXPECT_EQ(r->static_resources().clusters(0).connect_timeout().nanos(), 250000000);

  auto hcm = unpackTypedConfig<HttpConnectionManager>(
      r->static_resources().listeners(0).filter_chains(0).filters(0).typed_config(), "hcm");
  ASSERT_TRUE(hcm.ok()) << hcm.error().message();
  EXPECT_EQ(hcm->stat_prefix(), "ingress_http");
  EXPECT_EQ(hcm->route_config().virtual_hosts(0).routes(0).route().cluster(), "local");
}

TEST_F(BootstrapLoaderTest, YmlAndUnknownExtensionsAreYaml) {
  EXPECT_EQ(errorFor("good.yml", kGoodYaml), "OK");
  EXPECT_EQ(errorFor("good.conf", kGoodYaml), "OK");
  EXPECT_EQ(errorFor("good", kGoodYaml), "OK");
}

TEST_F(BootstrapLoaderTest, JsonByExtension) {
  EXPECT_EQ(errorFor("good.json", R"({"node": {"id": "n"}, "staticResources": {"clusters": [
      {"name": "c", "connectTimeout": "1s", "type": "STRICT_DNS"}]}})"),
            "OK");
  // YAML in a .json file is not valid JSON.
  std::string err = errorFor("bad.json", "node: {id: n}\n");
  EXPECT_EQ(err.rfind("invalid JSON: ", 0), 0u) << err;
}

TEST_F(BootstrapLoaderTest, MissingFile) {
  auto r = loadBootstrapFile("/nonexistent/sheave/envoy.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message(), "/nonexistent/sheave/envoy.yaml: no such file");
}

TEST_F(BootstrapLoaderTest, EmptyFile) {
  EXPECT_EQ(errorFor("empty.yaml", "# nothing\n"), "the configuration is empty");
}

TEST_F(BootstrapLoaderTest, YamlSyntaxErrorHasLine) {
  std::string err = errorFor("syntax.yaml", "static_resources:\n  clusters:\n  - name: [a\n");
  EXPECT_EQ(err.rfind("line ", 0), 0u) << err;
  EXPECT_NE(err.find("column "), std::string::npos) << err;
}

TEST_F(BootstrapLoaderTest, UnknownField) {
  EXPECT_EQ(errorFor("unknown.yaml",
                     "static_resources:\n  clusters:\n  - name: a\n    lb_polcy: RANDOM\n"),
            "static_resources.clusters[0].lb_polcy: unknown field 'lb_polcy' in "
            "envoy.config.cluster.v3.Cluster (did you mean 'lb_policy'?)");
}

TEST_F(BootstrapLoaderTest, WrongType) {
  EXPECT_EQ(errorFor("type.yaml",
                     "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: "
                     "nine}\n"),
            "admin.address.socket_address.port_value: expected an integer (uint32), got 'nine'");
  EXPECT_EQ(errorFor("type2.yaml", "static_resources:\n  clusters:\n  - connect_timeout: 5\n"),
            "static_resources.clusters[0].connect_timeout: expected a duration string such as "
            "\"1.5s\", got a number");
}

TEST_F(BootstrapLoaderTest, UnknownTypeUrl) {
  EXPECT_EQ(errorFor("any.yaml", R"(
static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: f
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.echo.v3.Echo
)"),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.@type: unknown "
            "type URL 'type.googleapis.com/envoy.extensions.filters.network.echo.v3.Echo' (no such "
            "message type in this build)");
}

TEST(FormatForPath, FollowsEnvoy) {
  EXPECT_EQ(formatForPath("a.json"), ConfigFormat::kJson);
  EXPECT_EQ(formatForPath("a.yaml"), ConfigFormat::kYaml);
  EXPECT_EQ(formatForPath("a.yml"), ConfigFormat::kYaml);
  EXPECT_EQ(formatForPath("a.json.bak"), ConfigFormat::kYaml);
  EXPECT_EQ(formatForPath("json"), ConfigFormat::kYaml);
}

TEST(StandaloneExample, Loads) {
  const std::string path = std::string(SHEAVE_SOURCE_DIR) + "/examples/standalone/envoy.yaml";
  auto r = loadBootstrapFile(path);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Bootstrap& b = *r;

  EXPECT_EQ(b.admin().address().socket_address().address(), "127.0.0.1");
  EXPECT_EQ(b.admin().address().socket_address().port_value(), 9901u);

  ASSERT_EQ(b.static_resources().listeners_size(), 1);
  const auto& listener = b.static_resources().listeners(0);
  EXPECT_EQ(listener.name(), "listener_0");
  EXPECT_EQ(listener.address().socket_address().address(), "0.0.0.0");
  EXPECT_EQ(listener.address().socket_address().port_value(), 8080u);

  const auto& filter = listener.filter_chains(0).filters(0);
  EXPECT_EQ(filter.name(), "envoy.filters.network.http_connection_manager");
  auto hcm = unpackTypedConfig<HttpConnectionManager>(filter.typed_config(), "hcm");
  ASSERT_TRUE(hcm.ok()) << hcm.error().message();
  EXPECT_EQ(hcm->stat_prefix(), "ingress_http");
  ASSERT_EQ(hcm->access_log_size(), 1);
  EXPECT_TRUE(unpackTypedConfig<envoy::extensions::access_loggers::stream::v3::StdoutAccessLog>(
                  hcm->access_log(0).typed_config(), "access_log[0]")
                  .ok());
  ASSERT_EQ(hcm->http_filters_size(), 1);
  EXPECT_TRUE(unpackTypedConfig<envoy::extensions::filters::http::router::v3::Router>(
                  hcm->http_filters(0).typed_config(), "http_filters[0]")
                  .ok());

  const auto& vh = hcm->route_config().virtual_hosts(0);
  EXPECT_EQ(vh.domains(0), "*");
  ASSERT_EQ(vh.routes_size(), 2);
  const auto& v1 = vh.routes(0);
  EXPECT_EQ(v1.match().prefix(), "/api/v1");
  EXPECT_EQ(v1.route().cluster(), "api_service");
  EXPECT_EQ(v1.route().timeout().seconds(), 30);
  EXPECT_EQ(v1.route().retry_policy().retry_on(), "5xx,reset,connect-failure");
  EXPECT_EQ(v1.route().retry_policy().num_retries().value(), 3u);
  EXPECT_EQ(v1.route().retry_policy().per_try_timeout().seconds(), 10);
  EXPECT_EQ(vh.routes(1).match().prefix(), "/api/v2");
  EXPECT_EQ(vh.routes(1).route().cluster(), "api_v2_service");

  ASSERT_EQ(b.static_resources().clusters_size(), 2);
  const auto& api = b.static_resources().clusters(0);
  EXPECT_EQ(api.name(), "api_service");
  EXPECT_EQ(api.type(), envoy::config::cluster::v3::Cluster::STRICT_DNS);
  EXPECT_EQ(api.lb_policy(), envoy::config::cluster::v3::Cluster::ROUND_ROBIN);
  EXPECT_EQ(api.connect_timeout().seconds(), 5);
  const auto& sa = api.load_assignment().endpoints(0).lb_endpoints(0).endpoint().address();
  EXPECT_EQ(sa.socket_address().address(), "localhost");
  EXPECT_EQ(sa.socket_address().port_value(), 18081u);
  EXPECT_EQ(api.circuit_breakers().thresholds(0).max_retries().value(), 3u);
  EXPECT_EQ(api.outlier_detection().consecutive_5xx().value(), 5u);
  EXPECT_EQ(api.outlier_detection().max_ejection_percent().value(), 50u);
  const auto& v2 = b.static_resources().clusters(1);
  EXPECT_EQ(v2.lb_policy(), envoy::config::cluster::v3::Cluster::LEAST_REQUEST);
  EXPECT_EQ(v2.load_assignment()
                .endpoints(0)
                .lb_endpoints(0)
                .endpoint()
                .address()
                .socket_address()
                .port_value(),
            18082u);
}

}  // namespace
}  // namespace sheave::config
