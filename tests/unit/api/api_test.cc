// The generated Envoy API: wire numbers and JSON names match Envoy's, and
// every generated type is linked in (Any payloads resolve by type URL even
// for types this file never names).
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <string>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageToJsonString;

std::string hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

TEST(ApiWire, DiscoveryRequestTypeUrlIsField4) {
  envoy::service::discovery::v3::DiscoveryRequest req;
  req.set_type_url("x");
  // tag (4 << 3 | 2) = 0x22, length 1, 'x'
  EXPECT_EQ(hex(req.SerializeAsString()), "220178");
}

TEST(ApiWire, ClusterLbPolicyIsField6) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_lb_policy(envoy::config::cluster::v3::Cluster::LEAST_REQUEST);
  // tag (6 << 3 | 0) = 0x30, varint 1
  EXPECT_EQ(hex(cluster.SerializeAsString()), "3001");
}

TEST(ApiWire, SelectedFieldNumbersMatchEnvoy) {
  struct Expect {
    const char* message;
    const char* field;
    int number;
  };
  const Expect expectations[] = {
      {"envoy.config.cluster.v3.Cluster", "connect_timeout", 4},
      {"envoy.config.cluster.v3.Cluster", "load_assignment", 33},
      {"envoy.config.cluster.v3.Cluster", "typed_extension_protocol_options", 36},
      {"envoy.config.route.v3.RouteAction", "timeout", 8},
      {"envoy.config.route.v3.RouteAction", "regex_rewrite", 32},
      {"envoy.config.route.v3.RouteMatch", "path_separated_prefix", 14},
      {"envoy.config.route.v3.HeaderMatcher", "string_match", 13},
      {"envoy.config.listener.v3.Listener", "default_filter_chain", 25},
      {"envoy.config.listener.v3.FilterChainMatch", "server_names", 11},
      {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "initial_resource_versions", 5},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
       "stream_idle_timeout", 24},
      {"envoy.extensions.transport_sockets.tls.v3.CommonTlsContext", "combined_validation_context",
       8},
      {"google.rpc.Status", "details", 3},
  };
  for (const auto& e : expectations) {
    const auto* d = DescriptorPool::generated_pool()->FindMessageTypeByName(e.message);
    ASSERT_NE(d, nullptr) << e.message;
    const auto* f = d->FindFieldByName(e.field);
    ASSERT_NE(f, nullptr) << e.message << "." << e.field;
    EXPECT_EQ(f->number(), e.number) << e.message << "." << e.field;
  }
}

TEST(ApiJson, RouteConfigurationRoundTrips) {
  const std::string json = R"({
    "name": "local_route",
    "virtualHosts": [{
      "name": "backend",
      "domains": ["*"],
      "routes": [{
        "match": {"prefix": "/api", "headers": [{"name": "x-env", "stringMatch": {"exact": "prod"}}]},
        "route": {"cluster": "api", "timeout": "30s",
                  "retryPolicy": {"retryOn": "5xx", "numRetries": 3, "perTryTimeout": "10s"}}
      }]
    }]
  })";
  envoy::config::route::v3::RouteConfiguration rc;
  ASSERT_TRUE(JsonStringToMessage(json, &rc).ok());
  const auto& route = rc.virtual_hosts(0).routes(0);
  EXPECT_EQ(route.match().prefix(), "/api");
  EXPECT_EQ(route.match().headers(0).string_match().exact(), "prod");
  EXPECT_EQ(route.route().cluster(), "api");
  EXPECT_EQ(route.route().timeout().seconds(), 30);
  EXPECT_EQ(route.route().retry_policy().num_retries().value(), 3u);

  std::string out;
  ASSERT_TRUE(MessageToJsonString(rc, &out).ok());
  envoy::config::route::v3::RouteConfiguration again;
  ASSERT_TRUE(JsonStringToMessage(out, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), rc.SerializeAsString());
  // JSON names are Envoy's lowerCamelCase names.
  EXPECT_NE(out.find("\"perTryTimeout\":\"10s\""), std::string::npos) << out;
}

TEST(ApiJson, ProtoFieldNamesAreAcceptedToo) {
  envoy::config::cluster::v3::Cluster cluster;
  ASSERT_TRUE(JsonStringToMessage(
                  R"({"name": "c", "lb_policy": "MAGLEV", "connect_timeout": "0.25s",
                      "circuit_breakers": {"thresholds": [{"max_connections": 10}]}})",
                  &cluster)
                  .ok());
  EXPECT_EQ(cluster.lb_policy(), envoy::config::cluster::v3::Cluster::MAGLEV);
  EXPECT_EQ(cluster.connect_timeout().nanos(), 250000000);
  EXPECT_EQ(cluster.circuit_breakers().thresholds(0).max_connections().value(), 10u);
}

TEST(ApiJson, AnyResolvesTypesThisTestNeverNames) {
  // Neither tcp_proxy.pb.h nor stream.pb.h is included here: the types are
  // only found if the whole generated library was linked.
  for (const char* name : {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                           "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                           "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                           "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                           "envoy.config.bootstrap.v3.Bootstrap"}) {
    EXPECT_NE(DescriptorPool::generated_pool()->FindMessageTypeByName(name), nullptr) << name;
  }
  envoy::config::listener::v3::Listener listener;
  auto status = JsonStringToMessage(R"({
    "name": "tcp",
    "filterChains": [{"filters": [{
      "name": "envoy.filters.network.tcp_proxy",
      "typedConfig": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "statPrefix": "tcp", "cluster": "backend", "idleTimeout": "60s"
      }
    }]}]
  })",
                                    &listener);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto& any = listener.filter_chains(0).filters(0).typed_config();
  EXPECT_EQ(any.type_url(),
            "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy");

  // Decode it reflectively, again without the generated header.
  const auto* d = DescriptorPool::generated_pool()->FindMessageTypeByName(
      "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy");
  ASSERT_NE(d, nullptr);
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> tcp(factory.GetPrototype(d)->New());
  ASSERT_TRUE(any.UnpackTo(tcp.get()));
  EXPECT_EQ(tcp->GetReflection()->GetString(*tcp, d->FindFieldByName("cluster")), "backend");
}

TEST(ApiGrpc, AdsServiceHasEnvoysMethodNames) {
  const auto* service = DescriptorPool::generated_pool()->FindServiceByName(
      "envoy.service.discovery.v3.AggregatedDiscoveryService");
  ASSERT_NE(service, nullptr);
  ASSERT_NE(service->FindMethodByName("StreamAggregatedResources"), nullptr);
  ASSERT_NE(service->FindMethodByName("DeltaAggregatedResources"), nullptr);
  EXPECT_TRUE(service->FindMethodByName("StreamAggregatedResources")->client_streaming());
}

}  // namespace
