#include "proxy/filters/peer_metadata/peer_metadata_filter.h"

#include <gtest/gtest.h>

#include "../fake_filter_callbacks.h"
#include "proxy/filters/peer_metadata/workload_metadata.h"

namespace sheave::peer_metadata {
namespace {

using testing::FakeFilterCallbacks;

envoy::config::core::v3::Node node(std::string workload, std::string ns, std::string app,
                                   std::string version) {
  envoy::config::core::v3::Node n;
  n.set_id("sidecar~10.0.0.1~" + workload + "-abc." + ns + "~" + ns + ".svc.cluster.local");
  auto& f = *n.mutable_metadata()->mutable_fields();
  f["NAME"].set_string_value(workload + "-abc");
  f["NAMESPACE"].set_string_value(ns);
  f["WORKLOAD_NAME"].set_string_value(workload);
  f["CLUSTER_ID"].set_string_value("Kubernetes");
  f["MESH_ID"].set_string_value("cluster.local");
  auto& labels = *f["LABELS"].mutable_struct_value()->mutable_fields();
  labels["app"].set_string_value(app);
  labels["version"].set_string_value(version);
  labels["service.istio.io/canonical-name"].set_string_value(app);
  labels["service.istio.io/canonical-revision"].set_string_value(version);
  return n;
}

io::istio::http::peer_metadata::Config inboundConfig() {
  io::istio::http::peer_metadata::Config c;
  c.add_downstream_discovery()->mutable_istio_headers();
  c.add_downstream_propagation()->mutable_istio_headers();
  return c;
}

io::istio::http::peer_metadata::Config outboundConfig() {
  io::istio::http::peer_metadata::Config c;
  c.add_upstream_discovery()->mutable_istio_headers();
  c.add_upstream_propagation()->mutable_istio_headers();
  return c;
}

TEST(Base64, RoundTripsEveryLength) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x10 binary"}) {
    auto d = base64Decode(base64Encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64Encode("ab"), "YWI=");
  EXPECT_EQ(*base64Decode("YWI"), "ab");  // missing padding accepted
  EXPECT_FALSE(base64Decode("Y!WI").has_value());
}

TEST(WorkloadMetadata, HeaderValueCarriesIstioKeys) {
  const auto n = node("reviews-v2", "bookinfo", "reviews", "v2");
  const std::string value = encodePeerMetadataHeader(workloadFromStruct(n.metadata()));
  auto bytes = base64Decode(value);
  ASSERT_TRUE(bytes);
  google::protobuf::Struct s;
  ASSERT_TRUE(s.ParseFromString(*bytes));
  EXPECT_EQ(s.fields().at("NAME").string_value(), "reviews-v2-abc");
  EXPECT_EQ(s.fields().at("NAMESPACE").string_value(), "bookinfo");
  EXPECT_EQ(s.fields().at("WORKLOAD_NAME").string_value(), "reviews-v2");
  EXPECT_EQ(s.fields().at("CLUSTER_ID").string_value(), "Kubernetes");
  const auto& labels = s.fields().at("LABELS").struct_value().fields();
  EXPECT_EQ(labels.at("app").string_value(), "reviews");
  EXPECT_EQ(labels.at("service.istio.io/canonical-revision").string_value(), "v2");
  // Deterministic: the same bytes every time.
  EXPECT_EQ(value, encodePeerMetadataHeader(workloadFromStruct(n.metadata())));

  auto peer = decodePeerMetadataHeader(value);
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(peer->workload_name, "reviews-v2");
  EXPECT_EQ(peer->app_version, "v2");
  EXPECT_EQ(decodePeerMetadataHeader("not base64!"), nullptr);
  EXPECT_EQ(decodePeerMetadataHeader("AAAA"), nullptr);  // not a Struct
}

class PeerMetadataFilterTest : public ::testing::Test {
 protected:
  std::unique_ptr<PeerMetadataFilter> make(const io::istio::http::peer_metadata::Config& c,
                                           const envoy::config::core::v3::Node& n) {
    auto config = PeerMetadataConfig::create(c, n);
    EXPECT_TRUE(config.ok());
    auto f = std::make_unique<PeerMetadataFilter>(*config);
    f->setDecoderFilterCallbacks(callbacks_);
    return f;
  }
  static HeaderMap request() {
    HeaderMap h;
    h.add(":method", "GET");
    h.add(":path", "/");
    h.add(":authority", "reviews");
    return h;
  }
  network::EventLoop loop_;
  FakeFilterCallbacks callbacks_{loop_};
};

TEST_F(PeerMetadataFilterTest, InboundDiscoversStripsAndAnswersOnlyMeshPeers) {
  const auto client = node("productpage-v1", "bookinfo", "productpage", "v1");
  const std::string client_value = encodePeerMetadataHeader(workloadFromStruct(client.metadata()));
  auto filter = make(inboundConfig(), node("reviews-v2", "bookinfo", "reviews", "v2"));
  HeaderMap req = request();
  req.add("x-envoy-peer-metadata", client_value);
  req.add("x-envoy-peer-metadata-id", client.id());
  EXPECT_EQ(filter->decodeHeaders(req, true), http::FilterHeadersStatus::kContinue);
  // The application never sees them.
  EXPECT_FALSE(req.has("x-envoy-peer-metadata"));
  EXPECT_FALSE(req.has("x-envoy-peer-metadata-id"));
  ASSERT_NE(callbacks_.info.downstream_peer, nullptr);
  EXPECT_EQ(callbacks_.info.downstream_peer->workload_name, "productpage-v1");
  EXPECT_EQ(callbacks_.info.downstream_peer->namespace_name, "bookinfo");

  HeaderMap resp;
  resp.add(":status", "200");
  resp.add("x-envoy-peer-metadata", "spoofed-by-the-app");
  filter->encodeHeaders(resp, true);
  // Ours replaces whatever the application set.
  auto mine = decodePeerMetadataHeader(*resp.get("x-envoy-peer-metadata"));
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->workload_name, "reviews-v2");
  EXPECT_EQ(resp.count("x-envoy-peer-metadata"), 1u);
  EXPECT_TRUE(resp.has("x-envoy-peer-metadata-id"));
}

TEST_F(PeerMetadataFilterTest, InboundTellsNothingToAClientThatSentNothing) {
  auto filter = make(inboundConfig(), node("reviews-v2", "bookinfo", "reviews", "v2"));
  HeaderMap req = request();
  filter->decodeHeaders(req, true);
  EXPECT_EQ(callbacks_.info.downstream_peer, nullptr);
  HeaderMap resp;
  resp.add(":status", "200");
  filter->encodeHeaders(resp, true);
  EXPECT_FALSE(resp.has("x-envoy-peer-metadata"));
  EXPECT_FALSE(resp.has("x-envoy-peer-metadata-id"));
}

TEST_F(PeerMetadataFilterTest, OutboundDiscoversUpstreamAndStripsItFromTheApp) {
  const auto server = node("reviews-v2", "bookinfo", "reviews", "v2");
  auto filter = make(outboundConfig(), node("productpage-v1", "bookinfo", "productpage", "v1"));
  HeaderMap req = request();
  req.add("x-envoy-peer-metadata", "from-the-app");  // never forwarded as is
  filter->decodeHeaders(req, true);
  // No route (so no mesh upstream): nothing of ours goes out, and the app's is gone.
  EXPECT_FALSE(req.has("x-envoy-peer-metadata"));
  HeaderMap resp;
  resp.add(":status", "200");
  resp.add("x-envoy-peer-metadata",
           encodePeerMetadataHeader(workloadFromStruct(server.metadata())));
  resp.add("x-envoy-peer-metadata-id", server.id());
  filter->encodeHeaders(resp, true);
  EXPECT_FALSE(resp.has("x-envoy-peer-metadata"));
  EXPECT_FALSE(resp.has("x-envoy-peer-metadata-id"));
  ASSERT_NE(callbacks_.info.upstream_peer, nullptr);
  EXPECT_EQ(callbacks_.info.upstream_peer->app_name, "reviews");
}

TEST(UpstreamIsMesh, SpecialAndUnknownClustersAreNot) {
  EXPECT_FALSE(upstreamIsMesh("PassthroughCluster"));
  EXPECT_FALSE(upstreamIsMesh("BlackHoleCluster"));
  EXPECT_FALSE(upstreamIsMesh("InboundPassthroughClusterIpv4"));
  EXPECT_FALSE(upstreamIsMesh("outbound|9080||reviews.bookinfo.svc.cluster.local"));  // no worker
}

TEST(LookupPeer, CachesByValue) {
  PeerWorkloadMetadata w;
  w.workload_name = "a";
  const std::string v = encodePeerMetadataHeader(w);
  auto p1 = lookupPeer(v);
  auto p2 = lookupPeer(v);
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(p1.get(), p2.get());
  EXPECT_EQ(lookupPeer("%%%"), nullptr);
}

}  // namespace
}  // namespace sheave::peer_metadata
