#include "proxy/network/connection.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop_test_util.h"
#include "proxy/network/tcp_listener.h"

namespace sheave::network {
namespace {

using std::chrono::milliseconds;
using testing::runUntil;

std::string pattern(size_t len) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

// Records what a connection reports; consumes all data unless on_data says otherwise.
struct Recorder : ConnectionCallbacks {
  std::string data;
  bool end_stream = false;
  std::vector<ConnectionEvent> events;
  int above = 0;
  int below = 0;
  int data_calls = 0;
  std::function<void(Buffer&, bool)> on_data;
  std::function<void(ConnectionEvent)> on_event;

  void onData(Buffer& buffer, bool end) override {
    ++data_calls;
    if (end) end_stream = true;
    if (on_data) {
      on_data(buffer, end);
      return;
    }
    data += buffer.toString();
    buffer.drain(buffer.length());
  }
  void onEvent(ConnectionEvent e) override {
    events.push_back(e);
    if (on_event) on_event(e);
  }
  void onAboveWriteBufferHighWatermark() override { ++above; }
  void onBelowWriteBufferLowWatermark() override { ++below; }
  bool has(ConnectionEvent e) const {
    for (auto x : events) {
      if (x == e) return true;
    }
    return false;
  }
  bool closed() const {
    return has(ConnectionEvent::kRemoteClose) || has(ConnectionEvent::kLocalClose);
  }
};

struct ServerSide {
  std::unique_ptr<Connection> conn;
  Recorder rec;
};

class ConnectionTest : public ::testing::Test {
 protected:
  // Accepted connections get a Recorder; `configure` may adjust them (echo, limits...).
  void listen(const char* ip = "127.0.0.1") {
    auto bind = Address::parse(ip, 0);
    ASSERT_TRUE(bind.ok());
    auto listener = TcpListener::create(
        loop_, *bind, false, [this](int fd, const Address& local, const Address& remote) {
          auto s = std::make_unique<ServerSide>();
          s->conn = Connection::createServer(loop_, fd, local, remote);
          s->conn->setCallbacks(s->rec);
          if (configure_) configure_(*s);
          servers_.push_back(std::move(s));
        });
    ASSERT_TRUE(listener.ok()) << listener.error().message();
    listener_ = std::move(*listener);
  }
  std::unique_ptr<Connection> connect(Recorder& rec) {
    auto c = Connection::createClient(loop_, listener_->boundAddress());
    c->setCallbacks(rec);
    return c;
  }
  static void echo(ServerSide& s) {
    s.rec.on_data = [&s](Buffer& b, bool end) {
      s.rec.data += b.toString();
      s.conn->write(b, end);
    };
  }

  EventLoop loop_;  // first: destroyed last
  std::unique_ptr<TcpListener> listener_;
  std::function<void(ServerSide&)> configure_;
  std::vector<std::unique_ptr<ServerSide>> servers_;
};

TEST_F(ConnectionTest, EchoOverLoopback) {
  configure_ = [](ServerSide& s) { echo(s); };
  listen();
  Recorder client;
  auto conn = connect(client);
  EXPECT_TRUE(conn->connecting());
  ASSERT_TRUE(runUntil(loop_, [&] { return client.has(ConnectionEvent::kConnected); }));
  EXPECT_FALSE(conn->connecting());
  EXPECT_EQ(conn->localAddress().ip(), "127.0.0.1");
  EXPECT_NE(conn->localAddress().port(), 0);
  EXPECT_EQ(conn->remoteAddress(), listener_->boundAddress());

  const std::string payload = pattern(3 * 1024 * 1024 + 17);
  Buffer out;
  out.add("hello ");
  conn->write(out, false);
  EXPECT_TRUE(out.empty());
  out.add(payload);
  conn->write(out, false);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.data.size() == payload.size() + 6; }));
  EXPECT_EQ(client.data, "hello " + payload);
  EXPECT_EQ(conn->bytesSent(), payload.size() + 6);
  EXPECT_EQ(conn->bytesReceived(), payload.size() + 6);
  ASSERT_EQ(servers_.size(), 1u);
  EXPECT_EQ(servers_[0]->conn->remoteAddress(), conn->localAddress());
  EXPECT_NE(servers_[0]->conn->id(), conn->id());

  // The server hands itself to deferredDelete from its own close callback (the lifetime rule).
  bool server_deleted = false;
  servers_[0]->rec.on_event = [&](ConnectionEvent e) {
    if (e == ConnectionEvent::kRemoteClose) {
      loop_.deferredDelete(std::move(servers_[0]->conn));
      server_deleted = true;
    }
  };
  conn->close(ConnectionCloseType::kNoFlush);
  EXPECT_EQ(conn->state(), Connection::State::kClosed);
  EXPECT_TRUE(client.events.size() == 1);  // kLocalClose comes from the loop, not from close()
  ASSERT_TRUE(runUntil(loop_, [&] { return server_deleted && client.closed(); }));
  EXPECT_EQ(client.events.back(), ConnectionEvent::kLocalClose);
  EXPECT_TRUE(conn->failureReason().empty());
}

TEST_F(ConnectionTest, EchoOverIpv6Loopback) {
  auto probe =
      TcpListener::create(loop_, *Address::parse("::1", 0), false, [](int, auto&, auto&) {});
  if (!probe.ok()) GTEST_SKIP() << "no IPv6 loopback: " << probe.error().message();
  probe->reset();
  configure_ = [](ServerSide& s) { echo(s); };
  listen("::1");
  Recorder client;
  auto conn = connect(client);
  Buffer out;
  out.add("six");
  conn->write(out, false);  // written once connected
  ASSERT_TRUE(runUntil(loop_, [&] { return client.data == "six"; }));
  EXPECT_EQ(conn->localAddress().family(), AF_INET6);
}

TEST_F(ConnectionTest, LeftoverDataIsOfferedAgain) {
  // The server consumes whole lines only; partial lines stay in the buffer.
  std::vector<std::string> lines;
  configure_ = [&](ServerSide& s) {
    s.rec.on_data = [&](Buffer& b, bool) {
      for (;;) {
        std::string all = b.toString();
        auto nl = all.find('\n');
        if (nl == std::string::npos) return;
        lines.push_back(all.substr(0, nl));
        b.drain(nl + 1);
      }
    };
  };
  listen();
  Recorder client;
  auto conn = connect(client);
  Buffer out;
  out.add("one\ntw");
  conn->write(out, false);
  ASSERT_TRUE(runUntil(loop_, [&] { return lines.size() == 1; }));
  runUntil(
      loop_, [] { return false; }, milliseconds(20));
  out.add("o\nthree\n");
  conn->write(out, false);
  ASSERT_TRUE(runUntil(loop_, [&] { return lines.size() == 3; }));
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST_F(ConnectionTest, HalfClose) {
  configure_ = [](ServerSide& s) {
    s.conn->enableHalfClose(true);
    s.rec.on_data = [&s](Buffer& b, bool end) {
      s.rec.data += b.toString();
      b.drain(b.length());
      if (end) {
        // The peer finished sending; we can still answer, then finish our side.
        Buffer reply;
        reply.add("got " + s.rec.data);
        s.conn->write(reply, true);
      }
    };
  };
  listen();
  Recorder client;
  auto conn = connect(client);
  conn->enableHalfClose(true);
  Buffer out;
  out.add("request");
  conn->write(out, true);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.end_stream && client.closed(); }));
  EXPECT_EQ(client.data, "got request");
  EXPECT_EQ(conn->state(), Connection::State::kClosed);
  ASSERT_TRUE(runUntil(loop_, [&] { return servers_.size() == 1 && servers_[0]->rec.closed(); }));
  EXPECT_TRUE(servers_[0]->rec.end_stream);
  EXPECT_EQ(servers_[0]->conn->state(), Connection::State::kClosed);
  // A write after end_stream is dropped.
  out.add("late");
  conn->write(out, false);
  EXPECT_TRUE(out.empty());
}

TEST_F(ConnectionTest, WithoutHalfCloseAPeerFinClosesAfterTheData) {
  listen();
  Recorder client;
  auto conn = connect(client);
  Buffer out;
  out.add("bye");
  conn->write(out, true);  // data then FIN
  ASSERT_TRUE(runUntil(loop_, [&] { return servers_.size() == 1 && servers_[0]->rec.closed(); }));
  EXPECT_EQ(servers_[0]->rec.data, "bye");
  EXPECT_FALSE(servers_[0]->rec.end_stream);
  EXPECT_EQ(servers_[0]->rec.events.back(), ConnectionEvent::kRemoteClose);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.has(ConnectionEvent::kRemoteClose); }));
}

TEST_F(ConnectionTest, CloseWithFlushDeliversAllBytes) {
  const std::string payload = pattern(8 * 1024 * 1024);
  configure_ = [&](ServerSide& s) {
    Buffer b;
    b.add(payload);
    s.conn->write(b, false);
    s.conn->close(ConnectionCloseType::kFlushWrite);
    EXPECT_EQ(s.conn->state(), Connection::State::kClosing);
  };
  listen();
  Recorder client;
  auto conn = connect(client);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.closed(); }));
  EXPECT_EQ(client.data.size(), payload.size());
  EXPECT_TRUE(client.data == payload);
  EXPECT_EQ(client.events.back(), ConnectionEvent::kRemoteClose);
  ASSERT_TRUE(runUntil(loop_, [&] { return servers_[0]->rec.closed(); }));
  EXPECT_EQ(servers_[0]->rec.events.back(), ConnectionEvent::kLocalClose);
  EXPECT_EQ(servers_[0]->conn->bytesSent(), payload.size());
}

TEST_F(ConnectionTest, NoFlushAndAbortReset) {
  listen();
  Recorder client;
  auto conn = connect(client);
  ASSERT_TRUE(runUntil(loop_, [&] { return servers_.size() == 1; }));
  servers_[0]->conn->close(ConnectionCloseType::kAbortReset);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.closed(); }));
  EXPECT_EQ(client.events.back(), ConnectionEvent::kRemoteClose);
  EXPECT_EQ(conn->failureReason(), "connection reset by peer");
}

TEST_F(ConnectionTest, SlowReaderMakesTheWriterSeeTheHighWatermark) {
  constexpr uint32_t kLimit = 256 * 1024;
  uint64_t sent = 0;
  bool stop_pumping = false;
  std::unique_ptr<Timer> pump;
  configure_ = [&](ServerSide& s) {
    s.conn->setBufferLimits(kLimit);
    // Writes a chunk every millisecond while below the watermark, as a proxy would.
    pump = loop_.createTimer([&] {
      if (stop_pumping) return;
      if (!s.conn->aboveHighWatermark()) {
        Buffer b;
        b.add(pattern(64 * 1024));
        sent += b.length();
        s.conn->write(b, false);
      }
      pump->enable(milliseconds(1));
    });
    pump->enable(milliseconds(0));
  };
  listen();
  Recorder client;
  auto conn = connect(client);
  int data_calls_while_disabled = 0;
  bool disabled = false;
  client.on_data = [&](Buffer& b, bool) {
    if (disabled) ++data_calls_while_disabled;
    client.data.append(b.toString());
    b.drain(b.length());
  };
  ASSERT_TRUE(runUntil(loop_, [&] { return client.has(ConnectionEvent::kConnected); }));
  conn->readDisable(true);
  conn->readDisable(true);  // nested
  disabled = true;
  EXPECT_FALSE(conn->readEnabled());
  ASSERT_TRUE(runUntil(
      loop_, [&] { return servers_.size() == 1 && servers_[0]->rec.above == 1; },
      std::chrono::seconds(20)));
  EXPECT_TRUE(servers_[0]->conn->aboveHighWatermark());
  EXPECT_GT(servers_[0]->conn->writeBufferLength(), kLimit);
  conn->readDisable(false);
  EXPECT_FALSE(conn->readEnabled());  // one disable still outstanding
  runUntil(
      loop_, [] { return false; }, milliseconds(20));
  EXPECT_EQ(data_calls_while_disabled, 0);
  disabled = false;
  conn->readDisable(false);
  EXPECT_TRUE(conn->readEnabled());
  ASSERT_TRUE(runUntil(loop_, [&] { return servers_[0]->rec.below >= 1; }));
  stop_pumping = true;
  ASSERT_TRUE(runUntil(loop_, [&] { return client.data.size() == sent; }));
  pump.reset();
}

TEST_F(ConnectionTest, FinWhileReadDisabledIsSeenOnResume) {
  configure_ = [](ServerSide& s) { s.conn->readDisable(true); };
  listen();
  Recorder client;
  auto conn = connect(client);
  Buffer out;
  out.add("last words");
  conn->write(out, true);  // data then FIN, while the server does not read
  ASSERT_TRUE(runUntil(loop_, [&] { return servers_.size() == 1; }));
  runUntil(
      loop_, [] { return false; }, milliseconds(30));
  EXPECT_TRUE(servers_[0]->rec.events.empty());
  EXPECT_EQ(servers_[0]->rec.data_calls, 0);
  servers_[0]->conn->readDisable(false);
  ASSERT_TRUE(runUntil(loop_, [&] { return servers_[0]->rec.closed(); }));
  EXPECT_EQ(servers_[0]->rec.data, "last words");
  EXPECT_EQ(servers_[0]->rec.events.back(), ConnectionEvent::kRemoteClose);
}

TEST_F(ConnectionTest, ConnectToClosedPortIsRefused) {
  listen();
  Address closed = listener_->boundAddress();
  listener_.reset();  // nothing listens there any more
  Recorder client;
  auto conn = Connection::createClient(loop_, closed);
  conn->setCallbacks(client);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.closed(); }));
  ASSERT_EQ(client.events.size(), 1u);
  EXPECT_EQ(client.events[0], ConnectionEvent::kRemoteClose);
  EXPECT_EQ(conn->failureReason(), "connection refused");
  EXPECT_EQ(conn->state(), Connection::State::kClosed);
}

TEST_F(ConnectionTest, IdleConnectionNoticesThePeerClosing) {
  listen();
  Recorder client;
  auto conn = connect(client);
  ASSERT_TRUE(runUntil(
      loop_, [&] { return client.has(ConnectionEvent::kConnected) && servers_.size() == 1; }));
  runUntil(
      loop_, [] { return false; }, milliseconds(20));  // idle, as in a pool
  EXPECT_EQ(client.events.size(), 1u);
  servers_[0]->conn->close(ConnectionCloseType::kNoFlush);
  // No write on the client: the FIN alone must surface as kRemoteClose.
  ASSERT_TRUE(runUntil(
      loop_, [&] { return client.closed(); }, milliseconds(2000)));
  EXPECT_EQ(client.events.back(), ConnectionEvent::kRemoteClose);
}

TEST_F(ConnectionTest, ConnectTimeout) {
  // A listener that never accepts, with a tiny backlog: once its queue is full the kernel drops
  // further SYNs, so a connect stays pending until our timeout.
  auto listener = TcpListener::create(
      loop_, *Address::parse("127.0.0.1", 0), false, [](int, auto&, auto&) {}, /*backlog=*/0);
  ASSERT_TRUE(listener.ok());
  (*listener)->disable();
  std::vector<std::unique_ptr<Recorder>> recs;
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < 6; ++i) {
    recs.push_back(std::make_unique<Recorder>());
    conns.push_back(Connection::createClient(loop_, (*listener)->boundAddress()));
    conns.back()->setCallbacks(*recs.back());
    conns.back()->setConnectTimeout(milliseconds(200));
  }
  auto settled = [&] {
    for (auto& r : recs) {
      if (r->events.empty()) return false;
    }
    return true;
  };
  ASSERT_TRUE(runUntil(loop_, settled, std::chrono::seconds(5)));
  int timeouts = 0;
  for (size_t i = 0; i < conns.size(); ++i) {
    if (conns[i]->failureReason() == "connect timeout") {
      ++timeouts;
      EXPECT_EQ(recs[i]->events, std::vector<ConnectionEvent>{ConnectionEvent::kRemoteClose});
    }
  }
  EXPECT_GT(timeouts, 0);
}

TEST_F(ConnectionTest, CloseFromOnDataAndWriteAfterClose) {
  configure_ = [](ServerSide& s) {
    s.rec.on_data = [&s](Buffer& b, bool) {
      Buffer reply;
      reply.add("closing");
      s.conn->write(reply, false);
      s.conn->close(ConnectionCloseType::kFlushWrite);
      b.drain(b.length());
      // Writes while closing are dropped.
      Buffer late;
      late.add("dropped");
      s.conn->write(late, false);
    };
  };
  listen();
  Recorder client;
  auto conn = connect(client);
  Buffer out;
  out.add("hi");
  conn->write(out, false);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.closed(); }));
  EXPECT_EQ(client.data, "closing");
}

TEST_F(ConnectionTest, DestroyingAConnectionCancelsItsPendingEvents) {
  listen();
  Recorder client;
  auto conn = connect(client);
  ASSERT_TRUE(runUntil(loop_, [&] { return client.has(ConnectionEvent::kConnected); }));
  conn->close(ConnectionCloseType::kNoFlush);
  conn.reset();  // the deferred kLocalClose must not reach the recorder
  runUntil(
      loop_, [] { return false; }, milliseconds(20));
  EXPECT_EQ(client.events.size(), 1u);
}

TEST_F(ConnectionTest, ManyConnectionsGetUniqueIds) {
  configure_ = [](ServerSide& s) { echo(s); };
  listen();
  constexpr int kConns = 50;
  std::vector<std::unique_ptr<Recorder>> recs;
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < kConns; ++i) {
    recs.push_back(std::make_unique<Recorder>());
    conns.push_back(connect(*recs.back()));
    Buffer b;
    b.add("ping" + std::to_string(i));
    conns.back()->write(b, false);
  }
  ASSERT_TRUE(runUntil(loop_, [&] {
    for (int i = 0; i < kConns; ++i) {
      if (recs[i]->data != "ping" + std::to_string(i)) return false;
    }
    return true;
  }));
  for (int i = 1; i < kConns; ++i) EXPECT_GT(conns[i]->id(), conns[i - 1]->id());
}

}  // namespace
}  // namespace sheave::network
