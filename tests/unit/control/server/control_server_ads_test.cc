// The pieces of sheave-control wired as main() wires them: a real ADS stream
// against XdsServer + MeshProvider, seen through the monitoring endpoints.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "control/model/config_set.h"
#include "control/registry/local_registry.h"
#include "control/server/mesh_provider.h"
#include "control/server/monitoring_endpoints.h"
#include "control/xds/type_urls.h"
#include "control/xds/xds_server.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace sheave::control {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using namespace std::chrono_literals;

const char* kId = "sidecar~10.0.0.10~productpage-v1.default~default.svc.cluster.local";

std::string mesh(bool with_details) {
  std::string yaml;
  for (std::string name : {"productpage", "reviews", "details"}) {
    if (name == "details" && !with_details) continue;
    yaml += "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
            ", namespace: default}\nspec:\n  selector: {app: " + name +
            "}\n  ports: [{name: http, port: 9080}]\n---\n";
  }
  yaml +=
      "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: productpage-v1, "
      "namespace: default}\nspec: {address: 10.0.0.10, labels: {app: productpage}, "
      "serviceAccount: pp}\n";
  return yaml;
}

void install(MeshProvider& provider, const std::string& yaml, uint64_t version) {
  auto config = std::make_shared<const ConfigSet>(parseDocuments(yaml, "mesh.yaml"));
  auto snapshot = buildRegistrySnapshot(*config, RegistryOptions{}, version);
  ASSERT_TRUE(snapshot.ok());
  provider.update(config, std::make_shared<const RegistrySnapshot>(std::move(snapshot).value()));
}

bool hasCluster(const DiscoveryResponse& response, const std::string& name) {
  for (const auto& any : response.resources()) {
    envoy::config::cluster::v3::Cluster cluster;
    if (any.UnpackTo(&cluster) && cluster.name() == name) return true;
  }
  return false;
}

TEST(ControlServerAdsTest, StreamGetsClustersAndIsVisibleInDebugEndpoints) {
  MeshProvider provider{MeshConfig{}};
  install(provider, mesh(false), 1);
  xds::XdsOptions options;
  options.debounce_after = 10ms;
  options.debounce_max = 50ms;
  xds::XdsServer server(provider, options);
  ASSERT_TRUE(server.start("127.0.0.1:0").ok());
  MonitoringEndpoints endpoints(provider, &server);

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = AggregatedDiscoveryService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto stream = stub->StreamAggregatedResources(&ctx);

  DiscoveryRequest request;
  request.mutable_node()->set_id(kId);
  request.set_type_url(std::string(xds::kClusterType));
  ASSERT_TRUE(stream->Write(request));
  DiscoveryResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.type_url(), xds::kClusterType);
  EXPECT_TRUE(hasCluster(response, "outbound|9080||reviews.default.svc.cluster.local"));
  EXPECT_TRUE(hasCluster(response, "inbound|9080||"));
  EXPECT_FALSE(hasCluster(response, "outbound|9080||details.default.svc.cluster.local"));

  // ACK, then a configuration change reaches the stream as a new CDS response.
  DiscoveryRequest ack;
  ack.set_type_url(std::string(xds::kClusterType));
  ack.set_version_info(response.version_info());
  ack.set_response_nonce(response.nonce());
  ASSERT_TRUE(stream->Write(ack));
  install(provider, mesh(true), 2);
  xds::PushRequest push;
  push.reason = "test";
  server.push(push);
  DiscoveryResponse pushed;
  ASSERT_TRUE(stream->Read(&pushed));
  EXPECT_TRUE(hasCluster(pushed, "outbound|9080||details.default.svc.cluster.local"));
  EXPECT_NE(pushed.version_info(), response.version_info());

  // NACK it: syncz shows the message.
  DiscoveryRequest nack;
  nack.set_type_url(std::string(xds::kClusterType));
  nack.set_version_info(response.version_info());
  nack.set_response_nonce(pushed.nonce());
  nack.mutable_error_detail()->set_message("cluster rejected for the test");
  ASSERT_TRUE(stream->Write(nack));

  std::string syncz;
  for (int i = 0; i < 100; ++i) {
    syncz = endpoints.syncz().body;
    if (syncz.find("cluster rejected for the test") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(syncz.find(std::string("\"proxy\":\"") + kId + "\""), std::string::npos) << syncz;
  EXPECT_NE(syncz.find("\"cluster_sent\":\"" + pushed.version_info() + "\""), std::string::npos)
      << syncz;
  EXPECT_NE(syncz.find("cluster rejected for the test"), std::string::npos) << syncz;

  std::string metrics = endpoints.metrics().body;
  EXPECT_NE(metrics.find("pilot_xds{version=\"sheave-0.1.0\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("pilot_total_xds_rejects{type=\"cds\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("pilot_xds_pushes{type=\"cds\"} 2\n"), std::string::npos) << metrics;

  // config_dump of the connected proxy carries the version it was sent.
  HttpRequest dump;
  dump.method = "GET";
  dump.path = "/debug/config_dump";
  dump.query["proxyID"] = kId;
  HttpResponse r = endpoints.configDump(dump);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"version_info\":\"" + pushed.version_info() + "\""), std::string::npos);
  EXPECT_NE(r.body.find("outbound|9080||details.default.svc.cluster.local"), std::string::npos);

  // A malformed node id closes the stream with the parser's message.
  grpc::ClientContext bad_ctx;
  bad_ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto bad = stub->StreamAggregatedResources(&bad_ctx);
  DiscoveryRequest bad_request;
  bad_request.mutable_node()->set_id("sidecar~nope");
  bad_request.set_type_url(std::string(xds::kClusterType));
  bad->Write(bad_request);
  DiscoveryResponse ignored;
  EXPECT_FALSE(bad->Read(&ignored));
  grpc::Status status = bad->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(status.error_message().empty());

  ctx.TryCancel();
  server.stop();
}

}  // namespace
}  // namespace sheave::control
