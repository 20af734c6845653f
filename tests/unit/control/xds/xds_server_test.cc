#include "control/xds/xds_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "control/xds/type_urls.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace sheave::control::xds {
namespace {

using namespace std::chrono_literals;
using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

const std::string kCds(kClusterType);
const std::string kEds(kEndpointType);
const std::string kLds(kListenerType);
const std::string kRds(kRouteType);
const std::string kSds(kSecretType);

struct FakeProxy : ProxyHandle {
  std::string id;
};

// In-memory resources: type -> name -> payload. The Any's bytes are
// "name=payload", enough for the server, which only hashes them.
class FakeProvider : public ResourceProvider {
 public:
  void set(const std::string& type, const std::string& name, const std::string& payload) {
    std::lock_guard<std::mutex> lock(mu_);
    resources_[type][name] = payload;
  }
  void erase(const std::string& type, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    resources_[type].erase(name);
  }
  // Only these proxies are affected by full pushes (empty: all).
  void affectOnly(std::set<std::string> ids) {
    std::lock_guard<std::mutex> lock(mu_);
    affected_ = std::move(ids);
  }
  void failGenerateFor(std::string id) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_generate_ = std::move(id);
  }
  int beginPushes() const { return begin_pushes_.load(); }
  PushRequest lastPush() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_push_;
  }

  Result<std::shared_ptr<ProxyHandle>> connect(const envoy::config::core::v3::Node& node,
                                               const PeerCredentials&) override {
    if (node.id().rfind("bad", 0) == 0) {
      return invalidArgument("unknown proxy '" + node.id() + "'");
    }
    auto p = std::make_shared<FakeProxy>();
    p->id = node.id();
    return std::shared_ptr<ProxyHandle>(p);
  }

  Result<std::vector<NamedResource>> generate(ProxyHandle& proxy, std::string_view type_url,
                                              const std::vector<std::string>& names,
                                              const PushRequest&) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& p = static_cast<FakeProxy&>(proxy);
    if (p.id == fail_generate_) {
      return internalError("generator exploded");
    }
    std::vector<NamedResource> out;
    auto& byName = resources_[std::string(type_url)];
    auto add = [&](const std::string& name, const std::string& payload) {
      NamedResource r;
      r.name = name;
      r.resource.set_type_url(std::string(type_url));
      r.resource.set_value(name + "=" + payload);
      out.push_back(std::move(r));
    };
    if (names.empty()) {
      for (const auto& [name, payload] : byName) {
        add(name, payload);
      }
    } else {
      for (const auto& name : names) {
        if (auto it = byName.find(name); it != byName.end()) {
          add(name, it->second);
        }
      }
    }
    return out;
  }

  bool affects(ProxyHandle& proxy, std::string_view type_url, const PushRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!request.full) {
      return type_url == kEndpointType;
    }
    return affected_.empty() || affected_.count(static_cast<FakeProxy&>(proxy).id) != 0;
  }

  void beginPush(const PushRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_push_ = request;
    begin_pushes_++;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, std::string>> resources_;
  std::set<std::string> affected_;
  std::string fail_generate_;
  std::atomic<int> begin_pushes_{0};
  PushRequest last_push_;
};

// A real gRPC client stream with a reader thread, so a test can wait for a
// response with a bound, or check that none comes.
template <typename Req, typename Resp>
class TestStream {
 public:
  using Opener = std::function<std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>>(
      AggregatedDiscoveryService::Stub&, grpc::ClientContext*)>;

  TestStream(std::shared_ptr<grpc::Channel> channel, const Opener& open)
      : stub_(AggregatedDiscoveryService::NewStub(channel)) {
    ctx_.set_deadline(std::chrono::system_clock::now() + 20s);
    stream_ = open(*stub_, &ctx_);
    reader_ = std::thread([this] {
      Resp r;
      while (stream_->Read(&r)) {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(r);
        cv_.notify_all();
      }
      std::lock_guard<std::mutex> lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }

  ~TestStream() {
    ctx_.TryCancel();
    reader_.join();
  }

  bool send(const Req& req) { return stream_->Write(req); }

  std::optional<Resp> next(std::chrono::milliseconds timeout = 3s) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || ended_; });
    if (queue_.empty()) {
      return std::nullopt;
    }
    Resp r = std::move(queue_.front());
    queue_.pop_front();
    return r;
  }

  // The status the server closed the stream with.
  grpc::Status finish() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, 5s, [&] { return ended_; });
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Resp> queue_;
  bool ended_ = false;
};

using SotwClient = TestStream<DiscoveryRequest, DiscoveryResponse>;
using DeltaClient = TestStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

DiscoveryRequest sotwRequest(const std::string& type, std::vector<std::string> names = {},
                             const std::string& node = "") {
  DiscoveryRequest r;
  r.set_type_url(type);
  for (auto& n : names) {
    r.add_resource_names(n);
  }
  if (!node.empty()) {
    r.mutable_node()->set_id(node);
  }
  return r;
}

DiscoveryRequest ack(const DiscoveryResponse& resp, std::vector<std::string> names = {}) {
  DiscoveryRequest r = sotwRequest(resp.type_url(), std::move(names));
  r.set_version_info(resp.version_info());
  r.set_response_nonce(resp.nonce());
  return r;
}

std::set<std::string> namesOf(const DiscoveryResponse& resp) {
  std::set<std::string> out;
  for (const auto& any : resp.resources()) {
    out.insert(any.value().substr(0, any.value().find('=')));
  }
  return out;
}

std::set<std::string> namesOf(const DeltaDiscoveryResponse& resp) {
  std::set<std::string> out;
  for (const auto& r : resp.resources()) {
    out.insert(r.name());
  }
  return out;
}

std::set<std::string> removedOf(const DeltaDiscoveryResponse& resp) {
  return {resp.removed_resources().begin(), resp.removed_resources().end()};
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 3s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

PushRequest configChange(std::string reason = "test") {
  PushRequest r;
  r.full = true;
  r.reason = std::move(reason);
  return r;
}

class XdsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    provider_.set(kCds, "c1", "v1");
    provider_.set(kCds, "c2", "v1");
    provider_.set(kEds, "c1", "v1");
    provider_.set(kEds, "c2", "v1");
    provider_.set(kLds, "l1", "v1");
    provider_.set(kRds, "r1", "v1");
    provider_.set(kRds, "r2", "v1");
    provider_.set(kSds, "s1", "v1");
  }

  void startServer(XdsOptions options = fastOptions()) {
    server_ = std::make_unique<XdsServer>(provider_, options);
    ASSERT_TRUE(server_->start("127.0.0.1:0").ok());
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  static XdsOptions fastOptions() {
    XdsOptions o;
    o.debounce_after = 10ms;
    o.debounce_max = 100ms;
    return o;
  }

  std::unique_ptr<SotwClient> sotw(std::shared_ptr<grpc::Channel> channel = nullptr) {
    return std::make_unique<SotwClient>(
        channel ? channel : channel_,
        [](AggregatedDiscoveryService::Stub& stub, grpc::ClientContext* ctx) {
          return stub.StreamAggregatedResources(ctx);
        });
  }
  std::unique_ptr<DeltaClient> delta() {
    return std::make_unique<DeltaClient>(
        channel_, [](AggregatedDiscoveryService::Stub& stub, grpc::ClientContext* ctx) {
          return stub.DeltaAggregatedResources(ctx);
        });
  }

  std::optional<TypeStatus> typeStatus(const std::string& proxy, const std::string& type) {
    for (const auto& c : server_->connections()) {
      if (c.proxy_id != proxy) {
        continue;
      }
      for (const auto& t : c.types) {
        if (t.type_url == type) {
          return t;
        }
      }
    }
    return std::nullopt;
  }

  FakeProvider provider_;
  std::unique_ptr<XdsServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(XdsServerTest, SotwInitialFetchOfEachType) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {}, "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local")));
  auto cds = c->next();
  ASSERT_TRUE(cds);
  EXPECT_EQ(cds->type_url(), kCds);
  EXPECT_EQ(cds->version_info(), "1");
  EXPECT_FALSE(cds->nonce().empty());
  EXPECT_EQ(namesOf(*cds), (std::set<std::string>{"c1", "c2"}));

  ASSERT_TRUE(c->send(sotwRequest(kEds, {"c1"})));
  auto eds = c->next();
  ASSERT_TRUE(eds);
  EXPECT_EQ(eds->type_url(), kEds);
  EXPECT_EQ(namesOf(*eds), (std::set<std::string>{"c1"}));
  EXPECT_NE(eds->nonce(), cds->nonce());

  ASSERT_TRUE(c->send(sotwRequest(kLds)));
  auto lds = c->next();
  ASSERT_TRUE(lds);
  EXPECT_EQ(namesOf(*lds), (std::set<std::string>{"l1"}));

  ASSERT_TRUE(c->send(sotwRequest(kRds, {"r2", "missing"})));
  auto rds = c->next();
  ASSERT_TRUE(rds);
  EXPECT_EQ(namesOf(*rds), (std::set<std::string>{"r2"}));

  ASSERT_TRUE(c->send(sotwRequest(kSds, {"s1"})));
  auto sds = c->next();
  ASSERT_TRUE(sds);
  EXPECT_EQ(namesOf(*sds), (std::set<std::string>{"s1"}));

  auto st = server_->stats();
  EXPECT_EQ(st.connected_proxies, 1u);
  EXPECT_EQ(st.pushes["cds"], 1u);
  EXPECT_EQ(st.pushes["sds"], 1u);
}

TEST_F(XdsServerTest, AckIsRecordedAndVersionsIncrease) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {}, "p1")));
  auto r1 = c->next();
  ASSERT_TRUE(r1);
  ASSERT_TRUE(c->send(ack(*r1)));
  ASSERT_TRUE(eventually([&] {
    auto t = typeStatus("p1", kCds);
    return t && t->acked_version == r1->version_info();
  }));

  provider_.set(kCds, "c3", "v1");
  server_->push(configChange());
  auto r2 = c->next();
  ASSERT_TRUE(r2);
  EXPECT_EQ(namesOf(*r2), (std::set<std::string>{"c1", "c2", "c3"}));
  EXPECT_GT(std::stoi(r2->version_info()), std::stoi(r1->version_info()));
  EXPECT_NE(r2->nonce(), r1->nonce());
  ASSERT_TRUE(c->send(ack(*r2)));
  // Only the push measures convergence; the answer to the first request does not.
  ASSERT_TRUE(eventually([&] { return server_->stats().convergence.count >= 1; }));
  EXPECT_EQ(server_->stats().convergence.count, 1u);
  auto t = typeStatus("p1", kCds);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->acked_version, r2->version_info());
  EXPECT_EQ(t->sent_nonce, r2->nonce());
  EXPECT_EQ(t->resource_count, 3u);
  EXPECT_FALSE(t->nacked);
}

TEST_F(XdsServerTest, NackIsKeptVisibleAndTheStreamKeepsServing) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {}, "p1")));
  auto r1 = c->next();
  ASSERT_TRUE(r1);
  DiscoveryRequest nack = sotwRequest(kCds);
  nack.set_response_nonce(r1->nonce());
  nack.mutable_error_detail()->set_code(3);
  nack.mutable_error_detail()->set_message("cluster c1: bad lb_policy");
  ASSERT_TRUE(c->send(nack));
  ASSERT_TRUE(eventually([&] { return server_->stats().nacks["cds"] == 1; }));
  auto t = typeStatus("p1", kCds);
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->nacked);
  EXPECT_EQ(t->last_nack, "cluster c1: bad lb_policy");
  EXPECT_EQ(t->acked_version, "");
  // No resend of the rejected config; the next change still goes out.
  EXPECT_FALSE(c->next(100ms));
  provider_.set(kCds, "c1", "v2");
  server_->push(configChange());
  auto r2 = c->next();
  ASSERT_TRUE(r2);
  ASSERT_TRUE(c->send(ack(*r2)));
  ASSERT_TRUE(eventually([&] {
    auto s = typeStatus("p1", kCds);
    return s && !s->nacked && s->acked_version == r2->version_info();
  }));
  EXPECT_EQ(typeStatus("p1", kCds)->last_nack, "cluster c1: bad lb_policy");
}

TEST_F(XdsServerTest, PushGoesOnlyToAffectedProxies) {
  startServer();
  auto a = sotw();
  auto b = sotw();
  ASSERT_TRUE(a->send(sotwRequest(kCds, {}, "a")));
  ASSERT_TRUE(b->send(sotwRequest(kCds, {}, "b")));
  auto ra = a->next();
  auto rb = b->next();
  ASSERT_TRUE(ra && rb);
  ASSERT_TRUE(a->send(ack(*ra)));
  ASSERT_TRUE(b->send(ack(*rb)));
  provider_.affectOnly({"a"});
  provider_.set(kCds, "c9", "v1");
  server_->push(configChange());
  auto ra2 = a->next();
  ASSERT_TRUE(ra2);
  EXPECT_EQ(namesOf(*ra2).count("c9"), 1u);
  EXPECT_FALSE(b->next(150ms));
}

TEST_F(XdsServerTest, UnchangedResourcesAreNotResent) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kLds, {}, "p1")));
  auto lds = c->next();
  ASSERT_TRUE(lds);
  ASSERT_TRUE(c->send(ack(*lds)));
  ASSERT_TRUE(c->send(sotwRequest(kRds, {"r1", "r2"})));
  auto rds = c->next();
  ASSERT_TRUE(rds);
  EXPECT_EQ(namesOf(*rds), (std::set<std::string>{"r1", "r2"}));
  ASSERT_TRUE(c->send(ack(*rds, {"r1", "r2"})));

  // Only r1 changes: RDS carries r1 alone, LDS (unchanged) nothing.
  provider_.set(kRds, "r1", "v2");
  server_->push(configChange());
  auto rds2 = c->next();
  ASSERT_TRUE(rds2);
  EXPECT_EQ(rds2->type_url(), kRds);
  EXPECT_EQ(namesOf(*rds2), (std::set<std::string>{"r1"}));
  ASSERT_TRUE(c->send(ack(*rds2, {"r1", "r2"})));

  // Nothing changed at all: nothing is sent.
  server_->push(configChange());
  EXPECT_FALSE(c->next(150ms));
  EXPECT_EQ(server_->stats().pushes["lds"], 1u);
}

TEST_F(XdsServerTest, WildcardAndNamedSubscriptions) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {"*"}, "p1")));
  auto cds = c->next();
  ASSERT_TRUE(cds);
  EXPECT_EQ(namesOf(*cds), (std::set<std::string>{"c1", "c2"}));
  ASSERT_TRUE(c->send(ack(*cds, {"*"})));

  ASSERT_TRUE(c->send(sotwRequest(kEds, {"c1"})));
  auto eds = c->next();
  ASSERT_TRUE(eds);
  EXPECT_EQ(namesOf(*eds), (std::set<std::string>{"c1"}));
  // A new name is a resubscription and gets an answer with both.
  ASSERT_TRUE(c->send(ack(*eds, {"c1", "c2"})));
  auto eds2 = c->next();
  ASSERT_TRUE(eds2);
  EXPECT_EQ(namesOf(*eds2), (std::set<std::string>{"c1", "c2"}));
  ASSERT_TRUE(c->send(ack(*eds2, {"c1", "c2"})));

  // A change to an endpoint nobody watches by name sends nothing; a new
  // cluster reaches the wildcard CDS subscription.
  provider_.set(kEds, "c7", "v1");
  provider_.set(kCds, "c7", "v1");
  server_->push(configChange());
  auto r = c->next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type_url(), kCds);
  EXPECT_EQ(namesOf(*r).count("c7"), 1u);
  EXPECT_FALSE(c->next(100ms));
  auto t = typeStatus("p1", kEds);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->wildcard);
  EXPECT_EQ(t->subscribed_names, 2u);
  EXPECT_TRUE(typeStatus("p1", kCds)->wildcard);
}

TEST_F(XdsServerTest, PushOrderIsClustersEndpointsListenersRoutes) {
  startServer();
  auto c = sotw();
  // Subscribe in the "wrong" order on purpose.
  ASSERT_TRUE(c->send(sotwRequest(kRds, {"r1"}, "p1")));
  auto r = c->next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(c->send(ack(*r, {"r1"})));
  ASSERT_TRUE(c->send(sotwRequest(kLds)));
  r = c->next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(c->send(ack(*r)));
  ASSERT_TRUE(c->send(sotwRequest(kEds, {"c1"})));
  r = c->next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(c->send(ack(*r, {"c1"})));
  ASSERT_TRUE(c->send(sotwRequest(kCds)));
  r = c->next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(c->send(ack(*r)));

  for (auto* type : {&kCds, &kEds, &kLds, &kRds}) {
    provider_.set(*type, *type == kCds || *type == kEds ? "c1" : *type == kLds ? "l1" : "r1", "v9");
  }
  server_->push(configChange());
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    auto resp = c->next();
    ASSERT_TRUE(resp);
    order.push_back(resp->type_url());
  }
  EXPECT_EQ(order, (std::vector<std::string>{kCds, kEds, kLds, kRds}));
}

TEST_F(XdsServerTest, StaleNonceIsIgnored) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kEds, {"c1"}, "p1")));
  auto r1 = c->next();
  ASSERT_TRUE(r1);
  // Answers a nonce that is not the latest (from the future, or old): the
  // subscription change it carries is not applied, nothing is answered.
  DiscoveryRequest stale = sotwRequest(kEds, {"c1", "c2"});
  stale.set_response_nonce("not-a-nonce-we-sent");
  ASSERT_TRUE(c->send(stale));
  EXPECT_FALSE(c->next(150ms));
  EXPECT_EQ(server_->stats().stale_requests, 1u);
  EXPECT_EQ(typeStatus("p1", kEds)->subscribed_names, 1u);
  EXPECT_EQ(typeStatus("p1", kEds)->acked_version, "");
  // The right nonce works.
  ASSERT_TRUE(c->send(ack(*r1, {"c1", "c2"})));
  auto r2 = c->next();
  ASSERT_TRUE(r2);
  EXPECT_EQ(namesOf(*r2), (std::set<std::string>{"c1", "c2"}));
}

TEST_F(XdsServerTest, FirstRequestWithoutNodeIsRejected) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds)));
  auto status = c->finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("node"), std::string::npos);

  auto bad = sotw();
  ASSERT_TRUE(bad->send(sotwRequest(kCds, {}, "bad-proxy")));
  status = bad->finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "unknown proxy 'bad-proxy'");

  // The node is only needed on the first request.
  auto good = sotw();
  ASSERT_TRUE(good->send(sotwRequest(kCds, {}, "p1")));
  ASSERT_TRUE(good->next());
  ASSERT_TRUE(good->send(sotwRequest(kEds, {"c1"})));
  ASSERT_TRUE(good->next());
  EXPECT_EQ(server_->stats().rejected_streams, 2u);
}

TEST_F(XdsServerTest, UnknownTypeIsIgnoredAndTheStreamStays) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest("type.googleapis.com/example.Nope", {}, "p1")));
  EXPECT_FALSE(c->next(100ms));
  ASSERT_TRUE(c->send(sotwRequest(kCds)));
  auto r = c->next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type_url(), kCds);
  EXPECT_EQ(server_->stats().unknown_type_requests, 1u);
}

TEST_F(XdsServerTest, ProviderErrorClosesOnlyThatStream) {
  startServer();
  auto a = sotw();
  auto b = sotw();
  ASSERT_TRUE(a->send(sotwRequest(kCds, {}, "a")));
  ASSERT_TRUE(b->send(sotwRequest(kCds, {}, "b")));
  ASSERT_TRUE(a->next());
  ASSERT_TRUE(b->next());
  provider_.failGenerateFor("a");
  provider_.set(kCds, "c5", "v1");
  server_->push(configChange());
  auto status = a->finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(status.error_message(), "generator exploded");
  auto rb = b->next();
  ASSERT_TRUE(rb);
  EXPECT_EQ(namesOf(*rb).count("c5"), 1u);
  EXPECT_TRUE(eventually([&] { return server_->stats().connected_proxies == 1; }));
}

TEST_F(XdsServerTest, DebounceMergesABurstIntoOnePush) {
  XdsOptions o;
  o.debounce_after = 40ms;
  o.debounce_max = 2s;
  startServer(o);
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {}, "p1")));
  auto r1 = c->next();
  ASSERT_TRUE(r1);
  ASSERT_TRUE(c->send(ack(*r1)));
  for (int i = 0; i < 10; ++i) {
    provider_.set(kCds, "c" + std::to_string(10 + i), "v1");
    server_->push(configChange("edit " + std::to_string(i % 2)));
    std::this_thread::sleep_for(5ms);
  }
  auto r2 = c->next();
  ASSERT_TRUE(r2);
  EXPECT_EQ(namesOf(*r2).size(), 12u);
  EXPECT_FALSE(c->next(100ms));
  EXPECT_EQ(provider_.beginPushes(), 1);
  EXPECT_EQ(provider_.lastPush().reason, "edit 0,edit 1");
}

TEST_F(XdsServerTest, EndpointPushesBypassTheDebounce) {
  XdsOptions o;
  o.debounce_after = 2s;
  o.debounce_max = 5s;
  startServer(o);
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {}, "p1")));
  auto r = c->next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(c->send(ack(*r)));
  ASSERT_TRUE(c->send(sotwRequest(kEds, {"c1"})));
  r = c->next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(c->send(ack(*r, {"c1"})));

  provider_.set(kCds, "c3", "v1");
  server_->push(configChange());  // held for 2 s
  provider_.set(kEds, "c1", "v2");
  PushRequest eds;
  eds.full = false;
  eds.services = {"c1"};
  auto sent = std::chrono::steady_clock::now();
  server_->push(eds);
  auto e = c->next(1s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type_url(), kEds);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 500ms);
  EXPECT_FALSE(provider_.lastPush().full);
  server_.reset();  // no need to wait for the held config push
}

TEST_F(XdsServerTest, ConnectionStatusAndPerPeerLimit) {
  XdsOptions o = fastOptions();
  o.max_streams_per_peer = 2;
  startServer(o);
  auto a = sotw();
  auto b = sotw();
  ASSERT_TRUE(a->send(sotwRequest(kCds, {}, "a")));
  ASSERT_TRUE(b->send(sotwRequest(kCds, {}, "b")));
  ASSERT_TRUE(a->next());
  ASSERT_TRUE(b->next());
  auto c = sotw();
  c->send(sotwRequest(kCds, {}, "c"));
  auto status = c->finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto conns = server_->connections();
  ASSERT_EQ(conns.size(), 2u);
  for (const auto& conn : conns) {
    EXPECT_TRUE(conn.proxy_id == "a" || conn.proxy_id == "b");
    EXPECT_EQ(conn.peer.rfind("127.0.0.1:", 0), 0u) << conn.peer;
    EXPECT_FALSE(conn.delta);
    ASSERT_EQ(conn.types.size(), 1u);
    EXPECT_EQ(conn.types[0].resource_count, 2u);
  }
  // A closed stream frees its slot.
  a.reset();
  ASSERT_TRUE(eventually([&] { return server_->connections().size() == 1; }));
  auto d = sotw();
  ASSERT_TRUE(d->send(sotwRequest(kCds, {}, "d")));
  EXPECT_TRUE(d->next());
}

TEST_F(XdsServerTest, TwoHundredConcurrentStreams) {
  startServer();
  constexpr int kStreams = 200;
  // Several channels, as separate proxies would have.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 4; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct channels, not one shared subchannel pool entry
    channels.push_back(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_->port()),
                                                 grpc::InsecureChannelCredentials(), args));
  }
  struct Sync {
    std::unique_ptr<AggregatedDiscoveryService::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<DiscoveryRequest, DiscoveryResponse>> stream;
  };
  std::vector<std::unique_ptr<Sync>> streams;
  for (int i = 0; i < kStreams; ++i) {
    auto s = std::make_unique<Sync>();
    s->stub = AggregatedDiscoveryService::NewStub(channels[i % channels.size()]);
    s->ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    s->stream = s->stub->StreamAggregatedResources(&s->ctx);
    ASSERT_TRUE(s->stream->Write(sotwRequest(kCds, {}, "p" + std::to_string(i))));
    streams.push_back(std::move(s));
  }
  for (auto& s : streams) {
    DiscoveryResponse r;
    ASSERT_TRUE(s->stream->Read(&r));
    EXPECT_EQ(namesOf(r).size(), 2u);
    ASSERT_TRUE(s->stream->Write(ack(r)));
  }
  EXPECT_TRUE(eventually([&] { return server_->stats().connected_proxies == kStreams; }));
  // One push reaches all of them.
  provider_.set(kCds, "c3", "v1");
  server_->push(configChange());
  for (auto& s : streams) {
    DiscoveryResponse r;
    ASSERT_TRUE(s->stream->Read(&r));
    EXPECT_EQ(namesOf(r).size(), 3u);
  }
  for (auto& s : streams) {
    s->ctx.TryCancel();
  }
  EXPECT_TRUE(eventually([&] { return server_->stats().connected_proxies == 0; }));
}

TEST_F(XdsServerTest, ANeverAckingProxyStillGetsTheNewestVersion) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {}, "p1")));
  ASSERT_TRUE(c->next());
  for (int i = 0; i < 3; ++i) {
    provider_.set(kCds, "c1", "v" + std::to_string(10 + i));
    server_->push(configChange());
    auto r = c->next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->version_info(), std::to_string(2 + i));
  }
  auto t = typeStatus("p1", kCds);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->acked_version, "");
  EXPECT_EQ(t->sent_version, "4");
}

TEST_F(XdsServerTest, DeltaSubscribeUnsubscribeAndRemoved) {
  startServer();
  auto c = delta();
  DeltaDiscoveryRequest first;
  first.mutable_node()->set_id("p1");
  first.set_type_url(kCds);  // subscribes to nothing: wildcard
  ASSERT_TRUE(c->send(first));
  auto r1 = c->next();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->type_url(), kCds);
  EXPECT_EQ(namesOf(*r1), (std::set<std::string>{"c1", "c2"}));
  EXPECT_FALSE(r1->resources(0).version().empty());
  DeltaDiscoveryRequest ackCds;
  ackCds.set_type_url(kCds);
  ackCds.set_response_nonce(r1->nonce());
  ASSERT_TRUE(c->send(ackCds));

  // Named EDS: one exists, one does not (reported as removed).
  DeltaDiscoveryRequest eds;
  eds.set_type_url(kEds);
  eds.add_resource_names_subscribe("c1");
  eds.add_resource_names_subscribe("nope");
  ASSERT_TRUE(c->send(eds));
  auto r2 = c->next();
  ASSERT_TRUE(r2);
  EXPECT_EQ(namesOf(*r2), (std::set<std::string>{"c1"}));
  EXPECT_EQ(removedOf(*r2), (std::set<std::string>{"nope"}));

  // c2 goes away and c1 changes: CDS says removed c2, updated nothing else.
  provider_.erase(kCds, "c2");
  provider_.set(kEds, "c1", "v2");
  server_->push(configChange());
  auto r3 = c->next();
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->type_url(), kCds);
  EXPECT_TRUE(namesOf(*r3).empty());
  EXPECT_EQ(removedOf(*r3), (std::set<std::string>{"c2"}));
  auto r4 = c->next();
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->type_url(), kEds);
  EXPECT_EQ(namesOf(*r4), (std::set<std::string>{"c1"}));
  EXPECT_TRUE(removedOf(*r4).empty());

  // Unsubscribed resources are no longer pushed.
  DeltaDiscoveryRequest unsub;
  unsub.set_type_url(kEds);
  unsub.set_response_nonce(r4->nonce());
  unsub.add_resource_names_unsubscribe("c1");
  unsub.add_resource_names_unsubscribe("nope");
  ASSERT_TRUE(c->send(unsub));
  ASSERT_TRUE(eventually([&] {
    auto t = typeStatus("p1", kEds);
    return t && t->subscribed_names == 0;
  }));
  provider_.set(kEds, "c1", "v3");
  server_->push(configChange());
  EXPECT_FALSE(c->next(150ms));
  auto conns = server_->connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_TRUE(conns[0].delta);
}

TEST_F(XdsServerTest, DeltaInitialResourceVersionsAreHonoured) {
  startServer();
  std::map<std::string, std::string> versions;
  {
    auto c = delta();
    DeltaDiscoveryRequest first;
    first.mutable_node()->set_id("p1");
    first.set_type_url(kCds);
    ASSERT_TRUE(c->send(first));
    auto r = c->next();
    ASSERT_TRUE(r);
    for (const auto& res : r->resources()) {
      versions[res.name()] = res.version();
    }
  }
  ASSERT_EQ(versions.size(), 2u);
  // Reconnect holding both: c1 unchanged, c2 changed meanwhile, c0 gone.
  provider_.set(kCds, "c2", "v2");
  auto c = delta();
  DeltaDiscoveryRequest again;
  again.mutable_node()->set_id("p1");
  again.set_type_url(kCds);
  (*again.mutable_initial_resource_versions())["c1"] = versions["c1"];
  (*again.mutable_initial_resource_versions())["c2"] = versions["c2"];
  (*again.mutable_initial_resource_versions())["c0"] = "deadbeef";
  ASSERT_TRUE(c->send(again));
  auto r = c->next();
  ASSERT_TRUE(r);
  EXPECT_EQ(namesOf(*r), (std::set<std::string>{"c2"}));
  EXPECT_EQ(removedOf(*r), (std::set<std::string>{"c0"}));
}

TEST_F(XdsServerTest, DeltaNackAndStaleNonce) {
  startServer();
  auto c = delta();
  DeltaDiscoveryRequest first;
  first.mutable_node()->set_id("p1");
  first.set_type_url(kLds);
  ASSERT_TRUE(c->send(first));
  auto r1 = c->next();
  ASSERT_TRUE(r1);
  DeltaDiscoveryRequest nack;
  nack.set_type_url(kLds);
  nack.set_response_nonce(r1->nonce());
  nack.mutable_error_detail()->set_message("listener l1: no filter chains");
  ASSERT_TRUE(c->send(nack));
  ASSERT_TRUE(eventually([&] {
    auto t = typeStatus("p1", kLds);
    return t && t->nacked && t->last_nack == "listener l1: no filter chains";
  }));
  DeltaDiscoveryRequest stale;
  stale.set_type_url(kLds);
  stale.set_response_nonce("old");
  ASSERT_TRUE(c->send(stale));
  ASSERT_TRUE(eventually([&] { return server_->stats().stale_requests == 1; }));
  EXPECT_TRUE(typeStatus("p1", kLds)->nacked);
  EXPECT_EQ(server_->stats().nacks["lds"], 1u);
}

TEST_F(XdsServerTest, DeltaFirstRequestWithoutNodeIsRejected) {
  startServer();
  auto c = delta();
  DeltaDiscoveryRequest first;
  first.set_type_url(kCds);
  ASSERT_TRUE(c->send(first));
  EXPECT_EQ(c->finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(XdsServerTest, StopClosesStreams) {
  startServer();
  auto c = sotw();
  ASSERT_TRUE(c->send(sotwRequest(kCds, {}, "p1")));
  ASSERT_TRUE(c->next());
  server_->stop();
  auto status = c->finish();
  EXPECT_FALSE(status.ok());
  server_->stop();  // idempotent
}

}  // namespace
}  // namespace sheave::control::xds
