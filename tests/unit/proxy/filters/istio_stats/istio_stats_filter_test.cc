#include "proxy/filters/istio_stats/istio_stats_filter.h"

#include <gtest/gtest.h>

#include "../fake_filter_callbacks.h"
#include "proxy/stats/stats_formatter.h"
#include "proxy/stats/store.h"

namespace sheave::istio_stats {
namespace {

using testing::FakeFilterCallbacks;

envoy::config::core::v3::Node node(std::string workload, std::string ns, std::string app,
                                   std::string version) {
  envoy::config::core::v3::Node n;
  auto& f = *n.mutable_metadata()->mutable_fields();
  f["NAMESPACE"].set_string_value(ns);
  f["WORKLOAD_NAME"].set_string_value(workload);
  f["CLUSTER_ID"].set_string_value("Kubernetes");
  auto& labels = *f["LABELS"].mutable_struct_value()->mutable_fields();
  labels["app"].set_string_value(app);
  labels["version"].set_string_value(version);
  labels["service.istio.io/canonical-name"].set_string_value(app);
  labels["service.istio.io/canonical-revision"].set_string_value(version);
  return n;
}

std::string prometheus(const stats::Store& store) {
  stats::StatsParams params;
  params.format = stats::StatsParams::Format::kPrometheus;
  auto f = stats::StatsFormatter::create(params);
  return f->prometheus(store);
}

class IstioStatsTest : public ::testing::Test {
 protected:
  std::shared_ptr<const IstioStatsConfig> config(std::string_view stat_prefix,
                                                 ::stats::PluginConfig proto = {}) {
    auto c = IstioStatsConfig::create(proto, node("reviews-v2", "bookinfo", "reviews", "v2"),
                                      *store_, stat_prefix);
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message());
    return c.ok() ? *c : nullptr;
  }
  // Runs one request through a filter and ends the stream.
  void run(const std::shared_ptr<const IstioStatsConfig>& c, const std::string& content_type = "",
           std::string grpc_body = "", const std::vector<std::string>& response_chunks = {}) {
    IstioStatsFilter filter(c);
    filter.setDecoderFilterCallbacks(callbacks_);
    HeaderMap req;
    req.add(":method", "POST");
    req.add(":path", "/x");
    req.add(":authority", "attacker-chosen.example:8080");
    if (!content_type.empty()) req.add("content-type", content_type);
    callbacks_.info.request_headers = &req;
    filter.decodeHeaders(req, grpc_body.empty());
    if (!grpc_body.empty()) {
      network::Buffer b;
      b.add(grpc_body);
      filter.decodeData(b, true);
    }
    for (size_t i = 0; i < response_chunks.size(); ++i) {
      network::Buffer b;
      b.add(response_chunks[i]);
      filter.encodeData(b, i + 1 == response_chunks.size());
    }
    filter.onDestroy();
    filter.onDestroy();  // once only
    callbacks_.info.request_headers = nullptr;
  }

  std::unique_ptr<stats::Store> store_ = std::move(stats::Store::create()).value();
  network::EventLoop loop_;
  FakeFilterCallbacks callbacks_{loop_};
};

TEST_F(IstioStatsTest, LabelNamesInIstiosOrder) {
  EXPECT_EQ(httpLabelNames().front(), "reporter");
  EXPECT_EQ(httpLabelNames()[1], "source_workload");
  EXPECT_EQ(httpLabelNames()[2], "source_canonical_service");
  EXPECT_EQ(httpLabelNames().back(), "connection_security_policy");
  EXPECT_EQ(tcpLabelNames()[20], "request_protocol");
  EXPECT_EQ(tcpLabelNames()[21], "response_flags");
}

TEST_F(IstioStatsTest, ServerSideReportsDestinationWithPeerAndMtls) {
  auto c = config("inbound_0.0.0.0_9080");
  ASSERT_EQ(c->reporter, Reporter::kServerSidecar);
  auto peer = std::make_shared<PeerWorkloadMetadata>();
  peer->workload_name = "productpage-v1";
  peer->namespace_name = "ignored-when-the-certificate-says";
  peer->app_name = "productpage";
  peer->app_version = "v1";
  peer->canonical_name = "productpage";
  peer->cluster_id = "Kubernetes";
  callbacks_.info.downstream_peer = peer;
  callbacks_.info.downstream_peer_uri_san = "spiffe://cluster.local/ns/bookinfo/sa/productpage";
  callbacks_.info.downstream_local_uri_san = "spiffe://cluster.local/ns/bookinfo/sa/reviews";
  callbacks_.info.upstream_cluster = "inbound|9080||";
  callbacks_.info.response_code = 200;
  callbacks_.info.bytes_received = 10;
  callbacks_.info.bytes_sent = 300;
  run(c);
  const std::string out = prometheus(*store_);
  const std::string expected =
      "istio_requests_total{reporter=\"destination\",source_workload=\"productpage-v1\","
      "source_canonical_service=\"productpage\",source_canonical_revision=\"latest\","
      "source_workload_namespace=\"bookinfo\","
      "source_principal=\"spiffe://cluster.local/ns/bookinfo/sa/productpage\","
      "source_app=\"productpage\",source_version=\"v1\",source_cluster=\"Kubernetes\","
      "destination_workload=\"reviews-v2\",destination_workload_namespace=\"bookinfo\","
      "destination_principal=\"spiffe://cluster.local/ns/bookinfo/sa/reviews\","
      "destination_app=\"reviews\",destination_version=\"v2\","
      "destination_service=\"attacker-chosen.example\","
      "destination_canonical_service=\"reviews\",destination_canonical_revision=\"v2\","
      "destination_service_name=\"attacker-chosen.example\","
      "destination_service_namespace=\"bookinfo\",destination_cluster=\"Kubernetes\","
      "request_protocol=\"http\",response_code=\"200\",grpc_response_status=\"\","
      "response_flags=\"-\",connection_security_policy=\"mutual_tls\"} 1\n";
  EXPECT_NE(out.find("# TYPE istio_requests_total counter\n" + expected), std::string::npos) << out;
  EXPECT_NE(out.find("# TYPE istio_request_duration_milliseconds histogram"), std::string::npos);
  EXPECT_NE(out.find("istio_response_bytes_sum{"), std::string::npos);
  EXPECT_NE(out.find("le=\"0.5\""), std::string::npos);  // Istio's (Envoy's) default buckets
  EXPECT_NE(out.find("le=\"3600000\""), std::string::npos);
}

TEST_F(IstioStatsTest, ClientSideNeverTakesTheHostHeaderWhenFallbackIsOff) {
  ::stats::PluginConfig proto;
  proto.set_disable_host_header_fallback(true);
  auto c = config("outbound_0.0.0.0_9080", proto);
  ASSERT_EQ(c->reporter, Reporter::kClientSidecar);
  callbacks_.info.upstream_cluster = "PassthroughCluster";
  callbacks_.info.response_code = 503;
  callbacks_.info.setResponseFlag(ResponseFlag::kUpstreamConnectionFailure);
  run(c);
  callbacks_.info = StreamInfo{};
  callbacks_.info.upstream_cluster = "outbound|9080|v2|reviews.bookinfo.svc.cluster.local";
  callbacks_.info.response_code = 200;
  run(c);
  const std::string out = prometheus(*store_);
  EXPECT_EQ(out.find("attacker-chosen"), std::string::npos) << out;
  EXPECT_NE(out.find("reporter=\"source\",source_workload=\"reviews-v2\""), std::string::npos);
  EXPECT_NE(out.find("destination_service=\"unknown\",destination_canonical_service=\"unknown\","
                     "destination_canonical_revision=\"latest\","
                     "destination_service_name=\"PassthroughCluster\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("response_flags=\"UF\",connection_security_policy=\"unknown\""),
            std::string::npos);
  EXPECT_NE(out.find("destination_service=\"reviews.bookinfo.svc.cluster.local\""),
            std::string::npos);
  EXPECT_NE(out.find("destination_service_name=\"reviews\""), std::string::npos);
}

TEST_F(IstioStatsTest, GrpcStatusAndRequestMessages) {
  auto c = config("inbound_0.0.0.0_50051");
  HeaderMap trailers;
  trailers.add("grpc-status", "14");
  callbacks_.info.response_trailers = &trailers;
  callbacks_.info.response_code = 200;
  // Two messages: 3 bytes and 0 bytes.
  std::string body("\0\0\0\0\3abc\0\0\0\0\0", 13);
  run(c, "application/grpc", body);
  const std::string out = prometheus(*store_);
  EXPECT_NE(out.find("request_protocol=\"grpc\",response_code=\"200\",grpc_response_status=\"14\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("istio_request_messages_total{"), std::string::npos);
  EXPECT_NE(out.find("connection_security_policy=\"none\"} 2\n"), std::string::npos) << out;
}

// istio_response_messages_total counts the response's gRPC messages however the
// body is cut (a prefix split across chunks, several messages in one).
TEST_F(IstioStatsTest, ResponseMessagesOfAStream) {
  auto c = config("inbound_0.0.0.0_50051");
  callbacks_.info.response_code = 200;
  const std::string three("\0\0\0\0\2hi\0\0\0\0\0\0\0\0\0\4abcd", 21);
  run(c, "application/grpc", std::string("\0\0\0\0\0", 5),
      {three.substr(0, 2), three.substr(2, 9), three.substr(11)});
  const std::string out = prometheus(*store_);
  const size_t at = out.find("istio_response_messages_total{");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string line = out.substr(at, out.find('\n', at) - at);
  EXPECT_TRUE(line.ends_with("} 3")) << line;
}

TEST_F(IstioStatsTest, DropOverrideAndUnsupportedOverrides) {
  ::stats::PluginConfig proto;
  auto* m = proto.add_metrics();
  m->set_name("requests_total");
  m->set_drop(true);
  auto c = config("inbound_x", proto);
  callbacks_.info.response_code = 200;
  run(c);
  const std::string out = prometheus(*store_);
  EXPECT_EQ(out.find("istio_requests_total{"), std::string::npos);
  EXPECT_NE(out.find("istio_request_bytes_count{"), std::string::npos);

  ::stats::PluginConfig bad;
  bad.add_metrics()->add_tags_to_remove("source_principal");
  auto r = IstioStatsConfig::create(bad, {}, *store_, "inbound");
  EXPECT_FALSE(r.ok());
}

TEST_F(IstioStatsTest, TcpReporterCountsOpenCloseAndBytes) {
  auto c = config("inbound_0.0.0.0_3306");
  TcpStatsReporter tcp(c);
  StreamInfo info;
  info.downstream_peer_uri_san = "spiffe://cluster.local/ns/db/sa/client";
  info.downstream_local_uri_san = "spiffe://cluster.local/ns/bookinfo/sa/reviews";
  tcp.onConnectionOpen(info);
  info.bytes_received = 100;
  info.bytes_sent = 2000;
  tcp.onConnectionClose(info);
  const std::string out = prometheus(*store_);
  EXPECT_NE(out.find("istio_tcp_connections_opened_total{reporter=\"destination\""),
            std::string::npos);
  EXPECT_NE(out.find("request_protocol=\"tcp\",response_flags=\"-\","
                     "connection_security_policy=\"mutual_tls\"} 2000"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("source_workload_namespace=\"db\""), std::string::npos);
}

TEST(LabeledFamily, CapsSeriesAndCountsDrops) {
  auto store = std::move(stats::Store::create()).value();
  stats::LabeledFamily::Options o;
  o.name = "test_total";
  o.label_names = {"a"};
  o.max_series = 2;
  auto family = *store->labeledFamily(o);
  for (std::string v : {"x", "y", "z", "x", "w"}) {
    const std::array<std::string_view, 1> values{v};
    family->inc(values);
  }
  EXPECT_EQ(family->size(), 2u);
  EXPECT_EQ(family->dropped(), 2u);
  const std::string out = prometheus(*store);
  EXPECT_NE(out.find("test_total{a=\"x\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("sheave_labeled_series_dropped_total{metric=\"test_total\"} 2"),
            std::string::npos);
  // Same name, other labels: refused.
  o.label_names = {"b"};
  EXPECT_FALSE(store->labeledFamily(o).ok());
  // Wrong arity: no series.
  const std::array<std::string_view, 2> two{"x", "y"};
  EXPECT_EQ(family->series(two), nullptr);
}

TEST(LabeledFamily, SeriesSharedAcrossThreads) {
  auto store = std::move(stats::Store::create()).value();
  stats::LabeledFamily::Options o;
  o.name = "mt_total";
  o.label_names = {"a", "b"};
  auto family = *store->labeledFamily(o);
  auto work = [&] {
    for (int i = 0; i < 10000; ++i) {
      const std::array<std::string_view, 2> values{"p", i % 2 ? "odd" : "even"};
      family->inc(values);
    }
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  EXPECT_EQ(family->size(), 2u);
  uint64_t total = 0;
  family->forEach([&](const stats::LabeledFamily::Series& s) { total += s.counter().value(); });
  EXPECT_EQ(total, 20000u);
}

}  // namespace
}  // namespace sheave::istio_stats
