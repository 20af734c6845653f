#include "proxy/filters/rbac/rbac_filter.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../fake_filter_callbacks.h"
#include "proxy/network/connection.h"
#include "proxy/stats/store.h"

namespace sheave::rbac {
namespace {

using testing::CollectingChainBuilder;
using testing::FakeFilterCallbacks;

template <typename T>
T fromJson(const std::string& json) {
  T out;
  auto status = google::protobuf::util::JsonStringToMessage(json, &out);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return out;
}

// Only what RBAC reads: addresses, TLS state, SNI and the peer certificate.
class FakeConnection : public network::Connection {
 public:
  FakeConnection(network::EventLoop& loop, std::string remote, std::string local)
      : loop_(loop), remote_(*Address::parseIpPort(remote)), local_(*Address::parseIpPort(local)) {}

  void setCallbacks(network::ConnectionCallbacks&) override {}
  void write(network::Buffer&, bool) override {}
  void close(network::ConnectionCloseType) override {}
  void readDisable(bool) override {}
  bool readEnabled() const override { return true; }
  State state() const override { return State::kOpen; }
  bool connecting() const override { return false; }
  const Address& localAddress() const override { return local_; }
  const Address& remoteAddress() const override { return remote_; }
  uint64_t id() const override { return 7; }
  void setBufferLimits(uint32_t) override {}
  uint32_t bufferLimit() const override { return 0; }
  void enableHalfClose(bool) override {}
  std::string_view failureReason() const override { return {}; }
  std::string_view transportFailureReason() const override { return {}; }
  void setConnectTimeout(std::chrono::milliseconds) override {}
  void setFlushCloseTimeout(std::chrono::milliseconds) override {}
  uint64_t bytesReceived() const override { return 0; }
  uint64_t bytesSent() const override { return 0; }
  size_t writeBufferLength() const override { return 0; }
  bool aboveHighWatermark() const override { return false; }
  std::string_view negotiatedProtocol() const override { return {}; }
  const network::PeerCertificateInfo* peerCertificate() const override {
    return peer ? &*peer : nullptr;
  }
  bool secure() const override { return peer.has_value(); }
  std::string_view requestedServerName() const override { return sni; }
  network::EventLoop& loop() override { return loop_; }

  std::optional<network::PeerCertificateInfo> peer;
  std::string sni;

 private:
  network::EventLoop& loop_;
  Address remote_;
  Address local_;
};

class Callbacks : public FakeFilterCallbacks {
 public:
  Callbacks(network::EventLoop& loop, FakeConnection& c) : FakeFilterCallbacks(loop), conn_(c) {}
  const network::Connection& connection() const override { return conn_; }

 private:
  FakeConnection& conn_;
};

HeaderMap request(std::string path, std::string method = "GET") {
  HeaderMap h;
  h.add(":method", method);
  h.add(":path", path);
  h.add(":authority", "example.com");
  return h;
}

constexpr const char* kRoutes = R"({
  "virtualHosts": [{
    "name": "vh", "domains": ["*"],
    "routes": [
      {"match": {"prefix": "/open"}, "route": {"cluster": "c"},
       "typedPerFilterConfig": {"envoy.filters.http.rbac": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"}}},
      {"match": {"prefix": "/strict"}, "route": {"cluster": "c"},
       "typedPerFilterConfig": {"envoy.filters.http.rbac": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
         "rbac": {"rules": {"action": "ALLOW"}}}}},
      {"match": {"prefix": "/"}, "route": {"cluster": "c"}}
    ]
  }]
})";

class RbacFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registerRbacFilter(registry_);
    store_ = std::move(stats::Store::create()).value();
    scope_ = store_->createScope("http.test");
    conn_ = std::make_unique<FakeConnection>(loop_, "10.0.0.5:40000", "127.0.0.1:8080");
    auto table =
        RouteTable::create(fromJson<envoy::config::route::v3::RouteConfiguration>(kRoutes));
    ASSERT_TRUE(table.ok()) << table.error().message();
    table_ = std::move(table).value();
  }

  Result<http::FilterFactoryCb> factory(const std::string& json) {
    google::protobuf::Any any;
    any.PackFrom(fromJson<envoy::extensions::filters::http::rbac::v3::RBAC>(json));
    http::FilterFactoryContext context{*scope_, "test", *scope_};
    const auto* f = registry_.find(kHttpRbacTypeName);
    EXPECT_NE(f, nullptr);
    return (*f)(any, context);
  }

  // Runs one request through a fresh filter; returns the callbacks.
  std::unique_ptr<Callbacks> run(const std::string& json, HeaderMap headers) {
    auto cb = factory(json);
    EXPECT_TRUE(cb.ok()) << cb.error().message();
    CollectingChainBuilder builder;
    (*cb)(builder);
    auto callbacks = std::make_unique<Callbacks>(loop_, *conn_);
    callbacks->routeWith(*table_, headers);
    callbacks->info.downstream_remote_address = conn_->remoteAddress().asString();
    for (auto& [k, v] : metadata_) callbacks->info.dynamic_metadata[k] = v;
    builder.decoders[0]->setDecoderFilterCallbacks(*callbacks);
    last_status_ = builder.decoders[0]->decodeHeaders(headers, true);
    return callbacks;
  }

  uint64_t counter(const std::string& name) { return scope_->counter(name).value(); }

  http::FilterRegistry registry_;
  std::unique_ptr<stats::Store> store_;
  std::shared_ptr<stats::Scope> scope_;
  network::EventLoop loop_;
  std::unique_ptr<FakeConnection> conn_;
  std::shared_ptr<const RouteTable> table_;
  DynamicMetadata metadata_;
  http::FilterHeadersStatus last_status_ = http::FilterHeadersStatus::kContinue;
};

constexpr const char* kDenyAdmin = R"({
  "rules": {"action": "DENY", "policies": {"no-admin": {
    "permissions": [{"urlPath": {"path": {"prefix": "/admin"}}}],
    "principals": [{"any": true}]}}}
})";

TEST_F(RbacFilterTest, DeniesWith403AndDetails) {
  auto cb = run(kDenyAdmin, request("/admin/x"));
  EXPECT_EQ(last_status_, http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(cb->local_reply_status, 403);
  EXPECT_EQ(cb->local_reply_body, "RBAC: access denied");
  EXPECT_EQ(cb->info.response_code_details, "rbac_access_denied_matched_policy[no-admin]");
  EXPECT_EQ(counter("rbac.denied"), 1u);

  cb = run(kDenyAdmin, request("/public"));
  EXPECT_EQ(last_status_, http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(cb->local_reply_status);
  EXPECT_EQ(counter("rbac.allowed"), 1u);
  const auto& md = *cb->info.dynamic_metadata.at("envoy.filters.http.rbac");
  EXPECT_EQ(md["enforced_engine_result"], "allowed");
}

TEST_F(RbacFilterTest, AllowWithoutMatchSaysNone) {
  auto cb = run(R"({"rules": {"action": "ALLOW"}})", request("/x"));
  EXPECT_EQ(cb->local_reply_status, 403);
  EXPECT_EQ(cb->info.response_code_details, "rbac_access_denied_matched_policy[none]");
}

TEST_F(RbacFilterTest, ShadowIsCountedNotEnforced) {
  auto cb = run(R"({"shadowRules": {"action": "DENY", "policies": {"shadow-admin": {
                     "permissions": [{"urlPath": {"path": {"prefix": "/admin"}}}],
                     "principals": [{"any": true}]}}},
                   "shadowRulesStatPrefix": "dry_"})",
                request("/admin"));
  EXPECT_EQ(last_status_, http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(cb->local_reply_status);
  EXPECT_EQ(counter("rbac.dry_shadow_denied"), 1u);
  const auto& md = *cb->info.dynamic_metadata.at("envoy.filters.http.rbac");
  EXPECT_EQ(md["dry_shadow_effective_policy_id"], "shadow-admin");
  EXPECT_EQ(md["dry_shadow_engine_result"], "denied");
}

TEST_F(RbacFilterTest, PerRouteOverrides) {
  // RBACPerRoute without rbac: off for this route.
  auto cb = run(kDenyAdmin, request("/open/admin"));
  EXPECT_EQ(last_status_, http::FilterHeadersStatus::kContinue);
  // A route's rules replace the listener's: ALLOW with no policies denies.
  cb = run(R"({})", request("/strict"));
  EXPECT_EQ(cb->local_reply_status, 403);
}

TEST_F(RbacFilterTest, PrincipalsFromConnectionAndMetadata) {
  const std::string config = R"({"rules": {"action": "ALLOW", "policies": {
      "mtls": {"permissions": [{"any": true}],
               "principals": [{"authenticated": {"principalName": {"exact": "spiffe://td/ns/a/sa/b"}}}]},
      "net": {"permissions": [{"destinationPort": 8080}],
              "principals": [{"remoteIp": {"addressPrefix": "192.168.0.0", "prefixLen": 16}}]},
      "jwt": {"permissions": [{"any": true}],
              "principals": [{"metadata": {"filter": "envoy.filters.http.jwt_authn",
                 "path": [{"key": "iss"}], "value": {"stringMatch": {"exact": "me"}}}}]}}}})";
  auto cb = run(config, request("/"));
  EXPECT_EQ(cb->local_reply_status, 403);

  conn_->peer.emplace();
  conn_->peer->uri_sans = {"spiffe://td/ns/a/sa/b"};
  cb = run(config, request("/"));
  EXPECT_FALSE(cb->local_reply_status);
  conn_->peer.reset();

  metadata_["envoy.filters.http.jwt_authn"] =
      std::make_shared<const nlohmann::json>(nlohmann::json{{"iss", "me"}});
  cb = run(config, request("/"));
  EXPECT_FALSE(cb->local_reply_status);
}

TEST_F(RbacFilterTest, BadConfigIsRejected) {
  auto f = factory(R"({"rules": {"policies": {"p": {"permissions": [{"any": true}]}}}})");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message().find("principals"), std::string::npos) << f.error().message();
}

TEST(NetworkRbacTest, ChecksAndCounts) {
  auto store = std::move(stats::Store::create()).value();
  network::EventLoop loop;
  auto proto = fromJson<envoy::extensions::filters::network::rbac::v3::RBAC>(R"({
    "statPrefix": "tcp.",
    "rules": {"action": "ALLOW", "policies": {"lan": {
      "permissions": [{"any": true}],
      "principals": [{"directRemoteIp": {"addressPrefix": "10.0.0.0", "prefixLen": 8}}]}}}})");
  auto config = NetworkRbacConfig::create(proto, *store);
  ASSERT_TRUE(config.ok()) << config.error().message();
  FakeConnection inside(loop, "10.1.1.1:5", "127.0.0.1:80");
  FakeConnection outside(loop, "11.1.1.1:5", "127.0.0.1:80");
  EXPECT_TRUE((*config)->check(inside));
  EXPECT_FALSE((*config)->check(outside));
  EXPECT_EQ(store->counter("tcp.rbac.allowed").value(), 1u);
  EXPECT_EQ(store->counter("tcp.rbac.denied").value(), 1u);

  proto.clear_stat_prefix();
  EXPECT_FALSE(NetworkRbacConfig::create(proto, *store).ok());
}

}  // namespace
}  // namespace sheave::rbac
