#include "proxy/upstream/cluster_manager.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "proxy/config/proto_json.h"
#include "proxy/stats/store.h"

namespace sheave::upstream {
namespace {

using ClusterProto = envoy::config::cluster::v3::Cluster;
using Assignment = envoy::config::endpoint::v3::ClusterLoadAssignment;

template <typename T>
T fromYaml(const std::string& yaml) {
  T out;
  auto status = config::yamlToMessage(yaml, out);
  EXPECT_TRUE(status.ok()) << status.error().message();
  return out;
}

ClusterProto staticCluster(const std::string& name, uint16_t port) {
  return fromYaml<ClusterProto>("name: " + name +
                                "\ntype: STATIC\nload_assignment:\n  cluster_name: " + name +
                                "\n  endpoints:\n  - lb_endpoints:\n    - endpoint:\n"
                                "        address:\n          socket_address: {address: 127.0.0.1, "
                                "port_value: " +
                                std::to_string(port) + "}\n");
}

ClusterProto edsCluster(const std::string& name) {
  return fromYaml<ClusterProto>("name: " + name +
                                "\ntype: EDS\neds_cluster_config:\n  eds_config:\n    ads: {}\n");
}

Assignment assignment(const std::string& name, std::vector<uint16_t> ports) {
  Assignment cla;
  cla.set_cluster_name(name);
  auto* locality = cla.add_endpoints();
  for (auto port : ports) {
    auto* sa = locality->add_lb_endpoints()
                   ->mutable_endpoint()
                   ->mutable_address()
                   ->mutable_socket_address();
    sa->set_address("127.0.0.1");
    sa->set_port_value(port);
  }
  return cla;
}

class ClusterManagerTest : public ::testing::Test {
 protected:
  ClusterManagerTest() : store_(stats::Store::create().value()), manager_(loop_, *store_) {}

  void initialize() {
    bool ready = false;
    manager_.initialize([&] { ready = true; });
    ASSERT_TRUE(ready);
    manager_.registerWorker(worker_);
    drainPosted();
  }
  // Runs what was posted to the (single-threaded) loop.
  void drainPosted() {
    loop_.exit();
    loop_.run();
  }
  std::vector<uint16_t> workerPorts(const std::string& name) {
    drainPosted();
    std::vector<uint16_t> ports;
    const auto& cluster = worker_.get(name);
    if (!cluster) return ports;
    for (size_t i = 0; i < 8; ++i) {
      auto host = cluster->chooseHost(nullptr);
      if (host) ports.push_back(host->address().port());
    }
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
    return ports;
  }

  network::EventLoop loop_;
  std::unique_ptr<stats::Store> store_;
  RandomGenerator random_{1};
  ClusterManager manager_;
  ThreadLocalClusterManager worker_{loop_, random_};
};

TEST_F(ClusterManagerTest, CdsAddsUpdatesAndRemovesClusters) {
  initialize();
  auto added = manager_.addOrUpdateCluster(staticCluster("a", 1001), "v1");
  ASSERT_TRUE(added.ok()) << added.error().message();
  EXPECT_TRUE(*added);
  EXPECT_EQ(workerPorts("a"), std::vector<uint16_t>{1001});

  // The same config again changes nothing.
  auto same = manager_.addOrUpdateCluster(staticCluster("a", 1001), "v2");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(*same);

  ASSERT_TRUE(manager_.addOrUpdateCluster(staticCluster("a", 1002), "v3").ok());
  EXPECT_EQ(workerPorts("a"), std::vector<uint16_t>{1002});
  EXPECT_EQ(manager_.dynamicActive().at("a").version_info, "v3");

  EXPECT_TRUE(manager_.removeCluster("a"));
  EXPECT_TRUE(workerPorts("a").empty());
  EXPECT_FALSE(manager_.has("a"));
  EXPECT_FALSE(manager_.removeCluster("a"));
}

// A cluster's stats are one block: ClusterStats' reserve() hint counts them all
// (a stat added without raising the hint costs each cluster another block).
TEST_F(ClusterManagerTest, ClusterStatsFitTheirReservation) {
  initialize();
  ASSERT_TRUE(manager_.addOrUpdateCluster(staticCluster("a", 1001), "v1").ok());
  const Cluster* cluster = manager_.get("a");
  ASSERT_NE(cluster, nullptr);
  EXPECT_EQ(cluster->info()->scope->blockCount(), 1U);
}

TEST_F(ClusterManagerTest, ARequestKeepsAReplacedClusterAlive) {
  initialize();
  ASSERT_TRUE(manager_.addOrUpdateCluster(staticCluster("a", 1001), "v1").ok());
  drainPosted();
  std::shared_ptr<ThreadLocalCluster> held = worker_.get("a");
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(manager_.addOrUpdateCluster(staticCluster("a", 1002), "v2").ok());
  drainPosted();
  EXPECT_NE(worker_.get("a"), held);
  EXPECT_EQ(worker_.drainingCount(), 1u);
  // Still usable by the request that holds it.
  EXPECT_EQ(held->chooseHost(nullptr)->address().port(), 1001);
  held.reset();
  ASSERT_TRUE(manager_.removeCluster("a"));
  drainPosted();
  // Swept on the next retirement: the first is free now, the removed one too.
  EXPECT_EQ(worker_.drainingCount(), 0u);
}

TEST_F(ClusterManagerTest, StaticClustersCannotBeReplaced) {
  ASSERT_TRUE(manager_.addCluster(staticCluster("s", 1001)).ok());
  initialize();
  auto replaced = manager_.addOrUpdateCluster(staticCluster("s", 1002), "v1");
  ASSERT_FALSE(replaced.ok());
  EXPECT_NE(replaced.error().message().find("static cluster"), std::string::npos);
  EXPECT_FALSE(manager_.removeCluster("s"));
  EXPECT_EQ(workerPorts("s"), std::vector<uint16_t>{1001});
}

TEST_F(ClusterManagerTest, EdsClusterWarmsUntilItsFirstAssignment) {
  initialize();
  ASSERT_TRUE(manager_.addOrUpdateCluster(edsCluster("e"), "v1").ok());
  EXPECT_EQ(manager_.warmingCount(), 1u);
  EXPECT_EQ(manager_.edsServiceNames(), std::vector<std::string>{"e"});
  bool warm = false;
  manager_.whenWarm([&] { warm = true; });
  EXPECT_FALSE(warm);
  EXPECT_TRUE(workerPorts("e").empty());

  ASSERT_TRUE(manager_.updateEndpoints(assignment("e", {2001, 2002})).ok());
  EXPECT_TRUE(warm);
  EXPECT_EQ(manager_.warmingCount(), 0u);
  EXPECT_EQ(workerPorts("e"), (std::vector<uint16_t>{2001, 2002}));

  // An update of the cluster starts from the endpoints it already had.
  auto changed = edsCluster("e");
  changed.mutable_connect_timeout()->set_seconds(3);
  ASSERT_TRUE(manager_.addOrUpdateCluster(changed, "v2").ok());
  EXPECT_EQ(manager_.warmingCount(), 0u);
  EXPECT_EQ(workerPorts("e"), (std::vector<uint16_t>{2001, 2002}));
}

TEST_F(ClusterManagerTest, TransportSocketMatchesPickTheSocketPerHost) {
  // Auto mTLS as Istio compiles it: hosts labelled tlsMode=istio get TLS, the rest plaintext.
  initialize();
  auto cluster = fromYaml<ClusterProto>(R"(
name: auto
type: EDS
eds_cluster_config: {eds_config: {ads: {}}}
transport_socket_matches:
- name: tlsMode-istio
  match: {tlsMode: istio}
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
      sni: auto.test
- name: tlsMode-disabled
  match: {}
  transport_socket: {name: envoy.transport_sockets.raw_buffer}
)");
  ASSERT_TRUE(manager_.addOrUpdateCluster(cluster, "v1").ok());
  auto cla = assignment("auto", {3001, 3002});
  auto* md = cla.mutable_endpoints(0)->mutable_lb_endpoints(0)->mutable_metadata();
  (*(*md->mutable_filter_metadata())["envoy.transport_socket_match"].mutable_fields())["tlsMode"]
      .set_string_value("istio");
  ASSERT_TRUE(manager_.updateEndpoints(cla).ok());
  drainPosted();
  const auto& local = worker_.get("auto");
  ASSERT_TRUE(local);
  const ClusterInfo& info = *local->info();
  ASSERT_EQ(info.transport_socket_matches.size(), 2u);
  int tls = 0, plain = 0;
  for (const auto& host : *manager_.get("auto")->hosts()) {
    const auto& factory = info.transportSocketFactoryFor(*host);
    if (host->address().port() == 3001) {
      ASSERT_NE(factory, nullptr);
      EXPECT_EQ(factory->context()->sni(), "auto.test");
      ++tls;
    } else {
      EXPECT_EQ(factory, nullptr);
      ++plain;
    }
  }
  EXPECT_EQ(tls, 1);
  EXPECT_EQ(plain, 1);

  // A host whose label changes gets the other socket on the next assignment.
  (*(*md->mutable_filter_metadata())["envoy.transport_socket_match"].mutable_fields())["tlsMode"]
      .set_string_value("disabled");
  ASSERT_TRUE(manager_.updateEndpoints(cla).ok());
  for (const auto& host : *manager_.get("auto")->hosts()) {
    EXPECT_EQ(info.transportSocketFactoryFor(*host), nullptr);
  }
}

TEST_F(ClusterManagerTest, BadAssignmentChangesNothing) {
  initialize();
  ASSERT_TRUE(manager_.addOrUpdateCluster(edsCluster("e"), "v1").ok());
  ASSERT_TRUE(manager_.updateEndpoints(assignment("e", {2001})).ok());
  auto bad = assignment("e", {2002});
  bad.mutable_endpoints(0)
      ->mutable_lb_endpoints(0)
      ->mutable_endpoint()
      ->mutable_address()
      ->mutable_socket_address()
      ->set_address("not-an-ip");
  auto status = manager_.updateEndpoints(bad);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("not-an-ip"), std::string::npos);
  EXPECT_EQ(workerPorts("e"), std::vector<uint16_t>{2001});
}

TEST_F(ClusterManagerTest, InvalidClusterIsRejectedAndTheOldOneStays) {
  initialize();
  ASSERT_TRUE(manager_.addOrUpdateCluster(staticCluster("a", 1001), "v1").ok());
  auto bad = staticCluster("a", 1002);
  bad.mutable_connect_timeout()->set_seconds(-1);
  auto result = manager_.addOrUpdateCluster(bad, "v2");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message().find("connect_timeout"), std::string::npos);
  EXPECT_EQ(workerPorts("a"), std::vector<uint16_t>{1001});
}

ClusterProto withProtocolOptions(ClusterProto c, const std::string& options_yaml) {
  auto extra = fromYaml<ClusterProto>(
      "typed_extension_protocol_options:\n"
      "  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
      "    '@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n" +
      options_yaml);
  c.MergeFrom(extra);
  return c;
}

TEST_F(ClusterManagerTest, ProtocolOptionsChooseThePool) {
  ASSERT_TRUE(manager_.addCluster(staticCluster("h1", 1001)).ok());
  auto h2 = withProtocolOptions(staticCluster("h2", 1002),
                                "    explicit_http_config:\n"
                                "      http2_protocol_options: {max_concurrent_streams: 7}\n");
  ASSERT_TRUE(manager_.addCluster(h2).ok());
  auto downstream = withProtocolOptions(staticCluster("down", 1003),
                                        "    use_downstream_protocol_config:\n"
                                        "      http2_protocol_options: {}\n");
  ASSERT_TRUE(manager_.addCluster(downstream).ok());
  auto legacy = staticCluster("legacy", 1004);
  legacy.mutable_http2_protocol_options();
  ASSERT_TRUE(manager_.addCluster(legacy).ok());
  initialize();

  auto pool = [&](const std::string& name, bool downstream_http2) {
    const auto& cluster = worker_.get(name);
    return cluster->httpPool(cluster->chooseHost(nullptr), downstream_http2).protocol();
  };
  EXPECT_EQ(pool("h1", true), PoolProtocol::kHttp1);
  EXPECT_EQ(pool("h2", false), PoolProtocol::kHttp2);
  EXPECT_EQ(worker_.get("h2")->info()->http2_options.max_concurrent_streams, 7u);
  EXPECT_EQ(pool("down", false), PoolProtocol::kHttp1);
  EXPECT_EQ(pool("down", true), PoolProtocol::kHttp2);
  EXPECT_EQ(pool("legacy", false), PoolProtocol::kHttp2);
  // Both pools of one host drain with the cluster.
  worker_.get("down")->drain();
  EXPECT_TRUE(worker_.get("down")->idle());
}

TEST_F(ClusterManagerTest, InvalidHttp2OptionsNameTheField) {
  auto bad =
      withProtocolOptions(staticCluster("bad", 1001),
                          "    explicit_http_config:\n"
                          "      http2_protocol_options: {initial_stream_window_size: 10}\n");
  Status status = manager_.addCluster(bad);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("initial_stream_window_size"), std::string::npos)
      << status.error().message();
}

}  // namespace
}  // namespace sheave::upstream
