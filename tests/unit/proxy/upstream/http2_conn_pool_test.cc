#include "proxy/upstream/http2_conn_pool.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/http/http2/connection.h"
#include "proxy/network/buffer.h"
#include "proxy/network/connection.h"
#include "proxy/network/tcp_listener.h"
#include "proxy/stats/store.h"

namespace sheave::upstream {
namespace {

using std::chrono::milliseconds;

// A small HTTP/2 server on loopback whose answers depend on the request path:
//   /ok       200, body "hello", trailers grpc-status: 0 (after the request ends)
//   /refuse   RST_STREAM REFUSED_STREAM
//   /reset    RST_STREAM INTERNAL_ERROR
//   /goaway   GOAWAY (graceful), then 200 on this stream
//   /hold     nothing until release() is called
class TestServer {
 public:
  explicit TestServer(network::EventLoop& loop, uint32_t max_concurrent_streams = 1024)
      : loop_(loop) {
    options_.max_concurrent_streams = max_concurrent_streams;
    auto listener = network::TcpListener::create(
        loop, Address::parse("127.0.0.1", 0).value(), false,
        [this](int fd, const Address& local, const Address& remote) { accept(fd, local, remote); });
    EXPECT_TRUE(listener.ok());
    listener_ = std::move(listener).value();
  }

  Address address() const { return listener_->boundAddress(); }
  size_t connections() const { return sessions_.size(); }
  size_t requests() const { return requests_; }
  const HeaderMap& lastHeaders() const { return last_headers_; }
  void release() {
    for (auto& [s, id] : held_) respond(*s, id);
    held_.clear();
  }

 private:
  struct Session;
  struct Stream : http2::StreamCallbacks {
    Stream(TestServer& server, Session& session, int32_t id)
        : server(server), session(session), id(id) {}
    void onHeaders(HeaderMap&& headers, bool end_stream) override {
      ++server.requests_;
      server.last_headers_ = headers;
      path = std::string(headers.path());
      if (path == "/refuse") {
        session.codec->resetStream(id, http2::ErrorCode::kRefusedStream);
      } else if (path == "/reset") {
        session.codec->resetStream(id, http2::ErrorCode::kInternalError);
      } else if (path == "/goaway") {
        session.codec->goAway();
        server.respond(session, id);
      } else if (path == "/hold") {
        server.held_.push_back({&session, id});
      } else if (end_stream) {
        server.respond(session, id);
      }
      session.flush();
    }
    void onData(std::string_view data, bool end_stream) override {
      session.codec->consumeData(id, data.size());
      body += data;
      if (end_stream && path == "/ok") server.respond(session, id);
      session.flush();
    }
    void onTrailers(HeaderMap&&) override {
      if (path == "/ok") server.respond(session, id);
      session.flush();
    }
    void onReset(http2::ErrorCode, http2::ResetSource) override {}

    TestServer& server;
    Session& session;
    int32_t id;
    std::string path;
    std::string body;
  };

  struct Session : network::ConnectionCallbacks, http2::ServerConnectionCallbacks {
    Session(TestServer& server, std::unique_ptr<network::Connection> c)
        : server(server), connection(std::move(c)) {
      codec = std::make_unique<http2::ServerConnection>(server.options_, *this);
      connection->setCallbacks(*this);
    }
    void flush() {
      for (;;) {
        auto out = codec->pendingOutput();
        if (out.empty()) break;
        network::Buffer b;
        b.add(out);
        codec->drainOutput(out.size());
        connection->write(b, false);
      }
    }
    void onData(network::Buffer& data, bool) override {
      while (!data.empty()) {
        auto slice = data.frontSlice();
        auto n = slice.size();
        if (!codec->dispatch(slice).ok()) {
          data.drain(data.length());
          break;
        }
        data.drain(n);
      }
      flush();
    }
    void onEvent(network::ConnectionEvent) override {}
    http2::StreamCallbacks* onNewStream(int32_t id) override {
      streams.push_back(std::make_unique<Stream>(server, *this, id));
      return streams.back().get();
    }

    TestServer& server;
    std::unique_ptr<network::Connection> connection;
    std::unique_ptr<http2::ServerConnection> codec;
    std::vector<std::unique_ptr<Stream>> streams;
  };

  void accept(int fd, const Address& local, const Address& remote) {
    sessions_.push_back(std::make_unique<Session>(
        *this, network::Connection::createServer(loop_, fd, local, remote)));
    sessions_.back()->flush();
  }

  void respond(Session& s, int32_t id) {
    HeaderMap headers;
    headers.add(":status", "200");
    headers.add("content-type", "text/plain");
    (void)s.codec->submitHeaders(id, headers, false);
    (void)s.codec->submitData(id, std::string_view("hello"), false);
    HeaderMap trailers;
    trailers.add("grpc-status", "0");
    (void)s.codec->submitTrailers(id, trailers);
    s.flush();
  }

  network::EventLoop& loop_;
  http2::ProtocolOptions options_;
  std::unique_ptr<network::TcpListener> listener_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<std::pair<Session*, int32_t>> held_;
  HeaderMap last_headers_;
  size_t requests_ = 0;
};

// One request through the pool, recording what comes back.
struct Exchange : ResponseDecoder, PoolCallbacks {
  explicit Exchange(std::string path, bool with_body = false)
      : path(std::move(path)), with_body(with_body) {}

  void start(Http2ConnPool& pool) { handle = pool.newStream(*this, *this); }

  void onPoolReady(RequestEncoder& e, const HostSharedPtr&) override {
    handle = nullptr;
    encoder = &e;
    HeaderMap h;
    h.add(":method", "POST");
    h.add(":path", path);
    h.add(":authority", "test");
    h.add("connection", "keep-alive");  // an HTTP/1 field: must not reach the h2 peer
    h.add("te", "trailers");
    e.encodeHeaders(h, !with_body);
    if (with_body && encoder) {
      network::Buffer b;
      b.add("request body");
      e.encodeData(b, false);
      HeaderMap t;
      t.add("x-request-trailer", "1");
      e.encodeTrailers(t);
    }
  }
  void onPoolFailure(PoolFailureReason r, std::string_view, const HostSharedPtr&) override {
    handle = nullptr;
    failure = r;
    done = true;
  }
  void decode1xxHeaders(HeaderMap&&) override {}
  void decodeHeaders(HeaderMap&& h, bool end_stream) override {
    status = std::string(h.status());
    done = end_stream;
  }
  void decodeData(network::Buffer& data, bool end_stream) override {
    body += data.toString();
    data.drain(data.length());
    done = end_stream;
  }
  void decodeTrailers(HeaderMap&& t) override {
    if (const std::string* s = t.get("grpc-status")) grpc_status = *s;
    done = true;
  }
  void onResetStream(StreamResetReason r, std::string_view) override {
    reset = r;
    done = true;
  }
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

  std::string path;
  bool with_body;
  Cancellable* handle = nullptr;
  RequestEncoder* encoder = nullptr;
  std::string status, body, grpc_status;
  std::optional<PoolFailureReason> failure;
  std::optional<StreamResetReason> reset;
  bool done = false;
};

class Http2ConnPoolTest : public ::testing::Test {
 protected:
  Http2ConnPoolTest() : store_(stats::Store::create().value()) {}

  std::shared_ptr<ClusterInfo> cluster(const std::function<void(ClusterInfo&)>& tweak = {}) {
    auto info = std::make_shared<ClusterInfo>();
    info->name = "h2";
    info->protocol = UpstreamProtocolPolicy::kHttp2;
    info->connect_timeout = milliseconds(2000);
    if (tweak) tweak(*info);
    info->resources = std::make_unique<ResourceManager>(info->limits);
    info->scope = store_->createScope("cluster.h2");
    info->stats = std::make_unique<ClusterStats>(*info->scope);
    return info;
  }

  bool runUntil(const std::function<bool()>& done, milliseconds timeout = milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_ptr<network::Timer> poll;
    poll = loop_.createTimer([&] {
      if (done() || std::chrono::steady_clock::now() >= deadline) {
        loop_.exit();
      } else {
        poll->enable(milliseconds(1));
      }
    });
    poll->enable(milliseconds(0));
    loop_.run();
    return done();
  }

  network::EventLoop loop_;
  std::unique_ptr<stats::Store> store_;
};

TEST_F(Http2ConnPoolTest, MultiplexesStreamsOnOneConnectionWithTrailers) {
  TestServer server(loop_);
  auto info = cluster();
  auto host = std::make_shared<Host>(server.address(), "", 1);
  Http2ConnPool pool(loop_, host, info);
  std::vector<std::unique_ptr<Exchange>> exchanges;
  for (int i = 0; i < 20; ++i) {
    exchanges.push_back(std::make_unique<Exchange>("/ok", i % 2 == 0));
    exchanges.back()->start(pool);
  }
  ASSERT_TRUE(runUntil([&] {
    for (auto& e : exchanges)
      if (!e->done) return false;
    return true;
  }));
  for (auto& e : exchanges) {
    EXPECT_EQ(e->status, "200");
    EXPECT_EQ(e->body, "hello");
    EXPECT_EQ(e->grpc_status, "0");
  }
  EXPECT_EQ(server.connections(), 1u);
  EXPECT_EQ(info->stats->upstream_cx_http2_total.value(), 1u);
  EXPECT_FALSE(server.lastHeaders().has("connection"));
  EXPECT_EQ(server.lastHeaders().get(":scheme") ? *server.lastHeaders().get(":scheme") : "",
            "http");
  // Later requests reuse the connection.
  Exchange again("/ok");
  again.start(pool);
  ASSERT_TRUE(runUntil([&] { return again.done; }));
  EXPECT_EQ(server.connections(), 1u);
  EXPECT_TRUE(pool.idle());
}

TEST_F(Http2ConnPoolTest, RemoteResetsMapToRetryableReasons) {
  TestServer server(loop_);
  auto info = cluster();
  Http2ConnPool pool(loop_, std::make_shared<Host>(server.address(), "", 1), info);
  Exchange refused("/refuse"), reset("/reset"), ok("/ok");
  refused.start(pool);
  reset.start(pool);
  ASSERT_TRUE(runUntil([&] { return refused.done && reset.done; }));
  EXPECT_EQ(refused.reset, StreamResetReason::kRemoteRefusedStream);
  EXPECT_EQ(reset.reset, StreamResetReason::kRemoteReset);
  // A stream reset leaves the connection usable.
  ok.start(pool);
  ASSERT_TRUE(runUntil([&] { return ok.done; }));
  EXPECT_EQ(ok.status, "200");
  EXPECT_EQ(server.connections(), 1u);
}

TEST_F(Http2ConnPoolTest, GoAwayMovesNewStreamsToANewConnection) {
  TestServer server(loop_);
  auto info = cluster();
  Http2ConnPool pool(loop_, std::make_shared<Host>(server.address(), "", 1), info);
  Exchange first("/goaway");
  first.start(pool);
  ASSERT_TRUE(runUntil([&] { return first.done; }));
  EXPECT_EQ(first.status, "200");
  Exchange second("/ok");
  second.start(pool);
  ASSERT_TRUE(runUntil([&] { return second.done; }));
  EXPECT_EQ(second.status, "200");
  EXPECT_EQ(server.connections(), 2u);
}

TEST_F(Http2ConnPoolTest, ConnectFailureFailsPendingStreams) {
  // A port nobody listens on: bind a listener, note its port, close it.
  Address dead = [&] {
    TestServer gone(loop_);
    return gone.address();
  }();
  auto info = cluster();
  Http2ConnPool pool(loop_, std::make_shared<Host>(dead, "", 1), info);
  Exchange a("/ok"), b("/ok");
  a.start(pool);
  b.start(pool);
  ASSERT_TRUE(runUntil([&] { return a.done && b.done; }));
  EXPECT_EQ(a.failure, PoolFailureReason::kConnectionFailure);
  EXPECT_EQ(b.failure, PoolFailureReason::kConnectionFailure);
  EXPECT_EQ(info->stats->upstream_cx_connect_fail.value(), 1u);
  EXPECT_TRUE(pool.idle());
}

TEST_F(Http2ConnPoolTest, MaxRequestsPerConnectionOpensAnother) {
  TestServer server(loop_);
  auto info = cluster([](ClusterInfo& c) { c.max_requests_per_connection = 2; });
  Http2ConnPool pool(loop_, std::make_shared<Host>(server.address(), "", 1), info);
  for (int i = 0; i < 3; ++i) {
    Exchange e("/ok");
    e.start(pool);
    ASSERT_TRUE(runUntil([&] { return e.done; }));
    EXPECT_EQ(e.status, "200");
  }
  EXPECT_EQ(server.connections(), 2u);
  EXPECT_EQ(info->stats->upstream_cx_max_requests.value(), 1u);
}

TEST_F(Http2ConnPoolTest, PendingOverflowAndPeerConcurrencyLimit) {
  TestServer server(loop_, /*max_concurrent_streams=*/2);
  auto info = cluster([](ClusterInfo& c) { c.limits.max_pending_requests = 1; });
  Http2ConnPool pool(loop_, std::make_shared<Host>(server.address(), "", 1), info);
  Exchange a("/hold"), b("/hold");
  a.start(pool);
  b.start(pool);  // a waits for the connection; only one may
  EXPECT_EQ(b.failure, PoolFailureReason::kOverflow);
  ASSERT_TRUE(runUntil([&] { return server.requests() == 1; }));
  // The peer allows 2 streams per connection: the 3rd stream needs a 2nd connection.
  Exchange c("/hold"), d("/hold");
  c.start(pool);
  ASSERT_TRUE(runUntil([&] { return server.requests() == 2; }));
  d.start(pool);
  ASSERT_TRUE(runUntil([&] { return server.requests() == 3; }));
  EXPECT_EQ(server.connections(), 2u);
  server.release();
  ASSERT_TRUE(runUntil([&] { return a.done && c.done && d.done; }));
  EXPECT_EQ(d.status, "200");
}

TEST_F(Http2ConnPoolTest, LocalResetKeepsTheConnection) {
  TestServer server(loop_);
  auto info = cluster();
  Http2ConnPool pool(loop_, std::make_shared<Host>(server.address(), "", 1), info);
  Exchange held("/hold");
  held.start(pool);
  ASSERT_TRUE(runUntil([&] { return server.requests() == 1; }));
  ASSERT_NE(held.encoder, nullptr);
  held.encoder->resetStream();
  EXPECT_FALSE(held.reset.has_value());  // no callback for our own reset
  Exchange ok("/ok");
  ok.start(pool);
  ASSERT_TRUE(runUntil([&] { return ok.done; }));
  EXPECT_EQ(ok.status, "200");
  EXPECT_EQ(server.connections(), 1u);
  pool.drainConnections();
  ASSERT_TRUE(runUntil([&] { return pool.connectionCount() == 0; }));
}

}  // namespace
}  // namespace sheave::upstream
