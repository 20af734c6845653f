#include "proxy/http/http2/connection.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sheave::http2 {
namespace {

// Records one stream's events; acknowledges data at once unless told not to.
struct Recorder : StreamCallbacks {
  void onHeaders(HeaderMap&& h, bool end_stream) override {
    headers = std::move(h);
    if (end_stream) end = true;
  }
  void onInformationalHeaders(HeaderMap&& h) override { informational.push_back(std::move(h)); }
  void onData(std::string_view data, bool end_stream) override {
    EXPECT_FALSE(end) << "data after end of stream";
    body.append(data);
    ++data_calls;
    if (end_stream) end = true;
    if (auto_consume && !data.empty()) conn->consumeData(id, data.size());
  }
  void onTrailers(HeaderMap&& t) override {
    trailers = std::move(t);
    end = true;
  }
  void onReset(ErrorCode code, ResetSource source) override {
    EXPECT_FALSE(reset.has_value()) << "reset twice";
    reset = std::make_pair(code, source);
  }
  void onAboveWriteBufferHighWatermark() override { ++above; }
  void onBelowWriteBufferLowWatermark() override { ++below; }

  Connection* conn = nullptr;
  int32_t id = 0;
  bool auto_consume = true;
  std::optional<HeaderMap> headers;
  std::vector<HeaderMap> informational;
  std::string body;
  size_t data_calls = 0;
  bool end = false;
  std::optional<HeaderMap> trailers;
  std::optional<std::pair<ErrorCode, ResetSource>> reset;
  int above = 0;
  int below = 0;
};

struct ServerHandler : ServerConnectionCallbacks {
  StreamCallbacks* onNewStream(int32_t stream_id) override {
    order.push_back(stream_id);
    if (refuse) return nullptr;
    auto r = std::make_unique<Recorder>();
    r->conn = conn;
    r->id = stream_id;
    r->auto_consume = auto_consume;
    Recorder* raw = r.get();
    streams[stream_id] = std::move(r);
    return raw;
  }
  void onGoAway(int32_t last, ErrorCode code) override { goaway = std::make_pair(last, code); }

  Connection* conn = nullptr;
  bool refuse = false;
  bool auto_consume = true;
  std::vector<int32_t> order;
  std::map<int32_t, std::unique_ptr<Recorder>> streams;
  std::optional<std::pair<int32_t, ErrorCode>> goaway;
};

struct ClientHandler : ConnectionCallbacks {
  void onGoAway(int32_t last, ErrorCode code) override { goaway = std::make_pair(last, code); }
  void onSettings() override { ++settings; }
  std::optional<std::pair<int32_t, ErrorCode>> goaway;
  int settings = 0;
};

HeaderMap requestHeaders(std::string_view method = "GET", std::string_view path = "/") {
  HeaderMap h;
  h.add(":method", method);
  h.add(":scheme", "http");
  h.add(":authority", "example.com");
  h.add(":path", path);
  h.add("user-agent", "sheave-test");
  return h;
}

HeaderMap responseHeaders(std::string_view status = "200") {
  HeaderMap h;
  h.add(":status", status);
  h.add("content-type", "text/plain");
  return h;
}

// A client and a server wired to each other in memory.
struct Pair {
  explicit Pair(ProtocolOptions client_options = {}, ProtocolOptions server_options = {})
      : client(client_options, client_handler), server(server_options, server_handler) {
    server_handler.conn = &server;
    pump();
  }

  // Copies output from one side to the other, `step` bytes per dispatch; true if bytes moved.
  bool transfer(Connection& from, Connection& to, bool drain = true) {
    std::string bytes(from.pendingOutput());
    if (bytes.empty()) return false;
    if (drain) from.drainOutput(bytes.size());
    if (to.error()) return true;
    for (size_t off = 0; off < bytes.size(); off += step) {
      if (!to.dispatch(std::string_view(bytes).substr(off, step)).ok()) break;
    }
    return true;
  }
  void pump() {
    for (int i = 0; i < 100000; ++i) {
      const bool a = transfer(client, server);
      const bool b = transfer(server, client);
      if (!a && !b) return;
    }
    ADD_FAILURE() << "connections never went quiet";
  }
  Recorder& serverStream(int32_t id) {
    auto it = server_handler.streams.find(id);
    EXPECT_NE(it, server_handler.streams.end()) << "no server stream " << id;
    return *it->second;
  }
  int32_t request(Recorder& r, const HeaderMap& h, bool end_stream) {
    Result<int32_t> id = client.submitRequest(h, end_stream, r);
    EXPECT_TRUE(id.ok()) << (id.ok() ? "" : id.error().message());
    r.conn = &client;
    r.id = id.ok() ? *id : 0;
    return r.id;
  }

  ClientHandler client_handler;
  ServerHandler server_handler;
  ClientConnection client;
  ServerConnection server;
  size_t step = std::string::npos;
};

// --- raw frames, for what a well-behaved client cannot produce ---

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  const size_t n = payload.size();
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>(stream >> 24));
  f.push_back(static_cast<char>(stream >> 16));
  f.push_back(static_cast<char>(stream >> 8));
  f.push_back(static_cast<char>(stream));
  f.append(payload);
  return f;
}

std::string clientPreface() {
  return std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + frame(NGHTTP2_SETTINGS, 0, 0, "");
}

struct GoAwayFrame {
  uint32_t last_stream_id;
  uint32_t code;
};

uint32_t be32(std::string_view s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[at + 3])};
}

// The last GOAWAY among whole frames in `out` (skips a client preface if present).
std::optional<GoAwayFrame> lastGoAway(std::string_view out) {
  std::optional<GoAwayFrame> found;
  size_t pos = 0;
  while (pos + 9 <= out.size()) {
    const size_t len = (size_t{static_cast<uint8_t>(out[pos])} << 16) |
                       (size_t{static_cast<uint8_t>(out[pos + 1])} << 8) |
                       size_t{static_cast<uint8_t>(out[pos + 2])};
    const uint8_t type = static_cast<uint8_t>(out[pos + 3]);
    if (pos + 9 + len > out.size()) break;
    if (type == NGHTTP2_GOAWAY && len >= 8) {
      found = GoAwayFrame{be32(out, pos + 9) & 0x7fffffffu, be32(out, pos + 13)};
    }
    pos += 9 + len;
  }
  return found;
}

// An nghttp2 client that sends whatever fields it is given, valid or not.
class RawClient {
 public:
  RawClient() {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(
        cbs, [](nghttp2_session*, const uint8_t* data, size_t len, int, void* ud) -> ssize_t {
          static_cast<std::string*>(ud)->append(reinterpret_cast<const char*>(data), len);
          return static_cast<ssize_t>(len);
        });
    nghttp2_session_client_new(&session_, cbs, &out_);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~RawClient() { nghttp2_session_del(session_); }

  int32_t request(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [name, value] : fields) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), nullptr, nullptr);
  }
  std::string take() {
    nghttp2_session_send(session_);
    return std::move(out_);
  }

 private:
  nghttp2_session* session_ = nullptr;
  std::string out_;
};

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields validRequest() {
  return {{":method", "GET"}, {":scheme", "https"}, {":authority", "a.example"}, {":path", "/"}};
}

// --- tests ---

TEST(Http2ConnectionTest, SettingsExchangedOnConnect) {
  Pair p;
  EXPECT_GE(p.client_handler.settings, 1);
  EXPECT_EQ(p.client.remoteMaxConcurrentStreams(), 1024u);
  EXPECT_FALSE(p.client.shouldClose());
  EXPECT_FALSE(p.server.shouldClose());
}

TEST(Http2ConnectionTest, GetRequestAndResponseWithBody) {
  Pair p;
  Recorder client_stream;
  const int32_t id = p.request(client_stream, requestHeaders(), true);
  EXPECT_EQ(id, 1);
  p.pump();

  Recorder& s = p.serverStream(id);
  ASSERT_TRUE(s.headers);
  EXPECT_TRUE(s.end);
  EXPECT_EQ(s.headers->method(), "GET");
  EXPECT_EQ(s.headers->scheme(), "http");
  EXPECT_EQ(s.headers->authority(), "example.com");
  EXPECT_EQ(s.headers->path(), "/");
  EXPECT_EQ(*s.headers->get("user-agent"), "sheave-test");
  EXPECT_EQ(s.headers->entries()[0].name, ":method");

  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders(), false).ok());
  ASSERT_TRUE(p.server.submitData(id, std::string("hello "), false).ok());
  ASSERT_TRUE(p.server.submitData(id, std::string_view("world"), true).ok());
  p.pump();

  ASSERT_TRUE(client_stream.headers);
  EXPECT_EQ(client_stream.headers->status(), "200");
  EXPECT_EQ(*client_stream.headers->get("content-type"), "text/plain");
  EXPECT_EQ(client_stream.body, "hello world");
  EXPECT_TRUE(client_stream.end);
  EXPECT_FALSE(client_stream.reset);
  EXPECT_EQ(p.client.activeStreams(), 0u);
  EXPECT_EQ(p.server.activeStreams(), 0u);
}

TEST(Http2ConnectionTest, PostBodyInPiecesAndHeaderOnlyResponse) {
  Pair p;
  Recorder c;
  const int32_t id = p.request(c, requestHeaders("POST", "/upload"), false);
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    std::string piece(1000 + i, static_cast<char>('a' + i));
    expected += piece;
    ASSERT_TRUE(p.client.submitData(id, std::move(piece), i == 19).ok());
  }
  p.pump();
  Recorder& s = p.serverStream(id);
  EXPECT_EQ(s.body, expected);
  EXPECT_TRUE(s.end);
  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders("204"), true).ok());
  p.pump();
  ASSERT_TRUE(c.headers);
  EXPECT_EQ(c.headers->status(), "204");
  EXPECT_TRUE(c.end);
  EXPECT_TRUE(c.body.empty());
}

TEST(Http2ConnectionTest, GrpcStyleTrailersBothWays) {
  Pair p;
  Recorder c;
  HeaderMap req = requestHeaders("POST", "/pkg.Service/Method");
  req.add("content-type", "application/grpc");
  req.add("te", "trailers");
  const int32_t id = p.request(c, req, false);
  ASSERT_TRUE(p.client
                  .submitData(id,
                              std::string("\0\0\0\0\x03"
                                          "abc",
                                          8),
                              false)
                  .ok());
  HeaderMap req_trailers;
  req_trailers.add("x-client-trailer", "1");
  ASSERT_TRUE(p.client.submitTrailers(id, req_trailers).ok());
  p.pump();

  Recorder& s = p.serverStream(id);
  ASSERT_TRUE(s.headers);
  EXPECT_EQ(*s.headers->get("te"), "trailers");
  EXPECT_EQ(s.body.size(), 8u);
  ASSERT_TRUE(s.trailers);
  EXPECT_EQ(*s.trailers->get("x-client-trailer"), "1");
  EXPECT_TRUE(s.end);

  HeaderMap resp = responseHeaders();
  resp.set("content-type", "application/grpc");
  ASSERT_TRUE(p.server.submitHeaders(id, resp, false).ok());
  ASSERT_TRUE(p.server
                  .submitData(id,
                              std::string("\0\0\0\0\x02"
                                          "ok",
                                          7),
                              false)
                  .ok());
  HeaderMap trailers;
  trailers.add("grpc-status", "0");
  trailers.add("grpc-message", "");
  ASSERT_TRUE(p.server.submitTrailers(id, trailers).ok());
  p.pump();

  EXPECT_EQ(c.body.size(), 7u);
  ASSERT_TRUE(c.trailers);
  EXPECT_EQ(*c.trailers->get("grpc-status"), "0");
  EXPECT_TRUE(c.end);
  EXPECT_EQ(p.client.stats().trailers, 1u);
  EXPECT_EQ(p.server.stats().trailers, 1u);
}

TEST(Http2ConnectionTest, TrailersRightAfterHeaders) {
  Pair p;
  Recorder c;
  const int32_t id = p.request(c, requestHeaders(), true);
  p.pump();
  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders(), false).ok());
  HeaderMap trailers;
  trailers.add("grpc-status", "14");
  ASSERT_TRUE(p.server.submitTrailers(id, trailers).ok());
  p.pump();
  ASSERT_TRUE(c.trailers);
  EXPECT_EQ(*c.trailers->get("grpc-status"), "14");
  EXPECT_TRUE(c.body.empty());
}

TEST(Http2ConnectionTest, HundredConcurrentStreams) {
  Pair p;
  std::vector<std::unique_ptr<Recorder>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<Recorder>());
    p.request(*clients.back(), requestHeaders("POST", "/s/" + std::to_string(i)), false);
    ASSERT_TRUE(p.client.submitData(clients.back()->id, "body-" + std::to_string(i), true).ok());
  }
  p.pump();
  ASSERT_EQ(p.server_handler.streams.size(), 100u);
  // Answer in reverse order, interleaved: streams are independent.
  for (int i = 99; i >= 0; --i) {
    const int32_t id = clients[i]->id;
    Recorder& s = p.serverStream(id);
    EXPECT_EQ(s.body, "body-" + std::to_string(i));
    EXPECT_EQ(s.headers->path(), "/s/" + std::to_string(i));
    ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders(), false).ok());
    ASSERT_TRUE(p.server.submitData(id, "reply-" + std::to_string(i), true).ok());
  }
  p.pump();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(clients[i]->body, "reply-" + std::to_string(i));
    EXPECT_TRUE(clients[i]->end);
  }
  EXPECT_EQ(p.client.activeStreams(), 0u);
  EXPECT_EQ(p.server.activeStreams(), 0u);
}

TEST(Http2ConnectionTest, SlowConsumerHoldsTheWindowClosed) {
  ProtocolOptions opts;
  opts.initial_stream_window_size = 65535;
  opts.initial_connection_window_size = 65535;
  opts.stream_buffer_limit = 256 * 1024;
  Pair p(opts, opts);
  p.server_handler.auto_consume = false;

  Recorder c;
  const int32_t id = p.request(c, requestHeaders("POST", "/big"), false);
  const std::string payload(1024 * 1024, 'x');
  ASSERT_TRUE(p.client.submitData(id, std::string_view(payload), true).ok());
  EXPECT_EQ(c.above, 1);  // 1 MiB queued over a 256 KiB limit
  p.pump();

  Recorder& s = p.serverStream(id);
  // Only one window's worth arrived; the rest waits in the client's stream queue, not in the
  // server and not in the output.
  EXPECT_EQ(s.body.size(), 65535u);
  EXPECT_EQ(p.client.pendingSendBytes(id), payload.size() - 65535);
  EXPECT_TRUE(p.client.pendingOutput().empty());
  for (int i = 0; i < 3; ++i) p.pump();
  EXPECT_EQ(s.body.size(), 65535u);

  // The consumer catches up slowly; the window opens by what it acknowledges.
  size_t acknowledged = 0;
  for (int rounds = 0; rounds < 1000 && !s.end; ++rounds) {
    const size_t n = s.body.size() - acknowledged;
    p.server.consumeData(id, n);
    acknowledged += n;
    p.pump();
    ASSERT_LE(s.body.size() - acknowledged, 65535u) << "round " << rounds;
    if (s.body.size() == acknowledged) break;
  }
  EXPECT_TRUE(s.end);
  EXPECT_EQ(s.body.size(), payload.size());
  EXPECT_TRUE(s.body == payload);
  EXPECT_EQ(c.below, 1);
  EXPECT_EQ(p.client.pendingSendBytes(id), 0u);
}

TEST(Http2ConnectionTest, ReadDisableHoldsDataAndEndOfStream) {
  Pair p;
  Recorder c;
  const int32_t id = p.request(c, requestHeaders("POST"), false);
  p.pump();
  Recorder& s = p.serverStream(id);
  p.server.readDisable(id, true);
  p.server.readDisable(id, true);
  ASSERT_TRUE(p.client.submitData(id, std::string("abc"), false).ok());
  HeaderMap trailers;
  trailers.add("x-t", "v");
  ASSERT_TRUE(p.client.submitTrailers(id, trailers).ok());
  p.pump();
  EXPECT_TRUE(s.body.empty());
  EXPECT_FALSE(s.trailers);
  p.server.readDisable(id, false);
  EXPECT_TRUE(s.body.empty());  // still disabled once
  p.server.readDisable(id, false);
  EXPECT_EQ(s.body, "abc");
  ASSERT_TRUE(s.trailers);
  EXPECT_TRUE(s.end);
}

TEST(Http2ConnectionTest, ClientResetReachesServer) {
  Pair p;
  Recorder c;
  const int32_t id = p.request(c, requestHeaders("POST"), false);
  ASSERT_TRUE(p.client.submitData(id, std::string("partial"), false).ok());
  p.pump();
  p.client.resetStream(id, ErrorCode::kCancel);
  p.pump();
  Recorder& s = p.serverStream(id);
  ASSERT_TRUE(s.reset);
  EXPECT_EQ(s.reset->first, ErrorCode::kCancel);
  EXPECT_EQ(s.reset->second, ResetSource::kRemote);
  EXPECT_FALSE(c.reset);  // no callback for one's own reset
  EXPECT_EQ(p.server.stats().rx_reset, 1u);
  EXPECT_EQ(p.client.stats().tx_reset, 1u);
  EXPECT_EQ(p.server.activeStreams(), 0u);
  EXPECT_FALSE(p.server.submitHeaders(id, responseHeaders(), true).ok());
}

TEST(Http2ConnectionTest, ServerResetAndRefusedStream) {
  Pair p;
  Recorder c1;
  const int32_t id1 = p.request(c1, requestHeaders(), true);
  p.pump();
  p.server.resetStream(id1, ErrorCode::kInternalError);
  p.pump();
  ASSERT_TRUE(c1.reset);
  EXPECT_EQ(c1.reset->first, ErrorCode::kInternalError);
  EXPECT_EQ(c1.reset->second, ResetSource::kRemote);

  p.server_handler.refuse = true;
  Recorder c2;
  p.request(c2, requestHeaders(), true);
  p.pump();
  ASSERT_TRUE(c2.reset);
  EXPECT_EQ(c2.reset->first, ErrorCode::kRefusedStream);
  EXPECT_EQ(p.client.stats().stream_refused_errors, 1u);
}

TEST(Http2ConnectionTest, InformationalResponse) {
  Pair p;
  Recorder c;
  HeaderMap req = requestHeaders("POST");
  req.add("expect", "100-continue");
  const int32_t id = p.request(c, req, false);
  p.pump();
  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders("100"), false).ok());
  p.pump();
  ASSERT_EQ(c.informational.size(), 1u);
  EXPECT_EQ(c.informational[0].status(), "100");
  EXPECT_FALSE(c.headers);
  ASSERT_TRUE(p.client.submitData(id, std::string("body"), true).ok());
  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders("201"), true).ok());
  p.pump();
  ASSERT_TRUE(c.headers);
  EXPECT_EQ(c.headers->status(), "201");
  EXPECT_FALSE(p.server.submitHeaders(id, responseHeaders("101"), false).ok());
}

TEST(Http2ConnectionTest, GracefulGoAwayCarriesLastStreamId) {
  Pair p;
  Recorder c1, c3;
  p.request(c1, requestHeaders(), true);
  const int32_t id3 = p.request(c3, requestHeaders(), true);
  p.pump();
  p.server.goAway();
  p.pump();
  ASSERT_TRUE(p.client_handler.goaway);
  EXPECT_EQ(p.client_handler.goaway->first, id3);
  EXPECT_EQ(p.client_handler.goaway->second, ErrorCode::kNoError);
  EXPECT_TRUE(p.client.goAwayReceived());
  EXPECT_EQ(p.server.stats().goaway_sent, 1u);
  Recorder late;
  EXPECT_FALSE(p.client.submitRequest(requestHeaders(), true, late).ok());

  // Streams in flight still finish; then both sides are done.
  EXPECT_FALSE(p.server.shouldClose());
  ASSERT_TRUE(p.server.submitHeaders(1, responseHeaders(), true).ok());
  ASSERT_TRUE(p.server.submitHeaders(id3, responseHeaders(), true).ok());
  p.pump();
  EXPECT_TRUE(c1.end);
  EXPECT_TRUE(c3.end);
  EXPECT_TRUE(p.server.shouldClose());
  EXPECT_TRUE(p.client.shouldClose());
}

TEST(Http2ConnectionTest, GoAwayRefusesStreamsAboveLastStreamId) {
  Pair p;
  Recorder c1;
  p.request(c1, requestHeaders(), true);
  p.pump();
  p.server.goAway();  // last stream id 1, not yet delivered
  Recorder c3;
  const int32_t id3 = p.request(c3, requestHeaders(), true);
  EXPECT_EQ(id3, 3);
  p.transfer(p.client, p.server);  // stream 3 reaches a server that ignores it
  p.transfer(p.server, p.client);  // GOAWAY(1) reaches the client
  ASSERT_TRUE(c3.reset);
  EXPECT_EQ(c3.reset->first, ErrorCode::kRefusedStream);
  EXPECT_EQ(c3.reset->second, ResetSource::kGoAway);
  EXPECT_FALSE(c1.reset);
  p.pump();
  EXPECT_EQ(p.server_handler.order, std::vector<int32_t>({1}));
}

TEST(Http2ConnectionTest, ShutdownNoticeThenGoAway) {
  Pair p;
  Recorder c1;
  p.request(c1, requestHeaders(), true);
  p.pump();
  p.server.shutdownNotice();
  p.pump();
  ASSERT_TRUE(p.client_handler.goaway);
  EXPECT_EQ(p.client_handler.goaway->first, 0x7fffffff);
  p.server.goAway();
  p.pump();
  EXPECT_EQ(p.client_handler.goaway->first, 1);
}

TEST(Http2ConnectionTest, ByteAtATime) {
  Pair p;
  p.step = 1;
  Recorder c;
  HeaderMap req = requestHeaders("POST", "/slow");
  req.add("cookie", "a=1");
  req.add("cookie", "b=2");
  const int32_t id = p.request(c, req, false);
  ASSERT_TRUE(p.client.submitData(id, std::string(3000, 'q'), false).ok());
  HeaderMap trailers;
  trailers.add("x-sum", "42");
  ASSERT_TRUE(p.client.submitTrailers(id, trailers).ok());
  p.pump();
  Recorder& s = p.serverStream(id);
  EXPECT_EQ(s.body, std::string(3000, 'q'));
  EXPECT_EQ(s.headers->count("cookie"), 2u);
  ASSERT_TRUE(s.trailers);
  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders(), false).ok());
  ASSERT_TRUE(p.server.submitData(id, std::string(20000, 'r'), true).ok());
  p.pump();
  EXPECT_EQ(c.body, std::string(20000, 'r'));
  EXPECT_TRUE(c.end);
  EXPECT_FALSE(p.client.error());
  EXPECT_FALSE(p.server.error());
}

TEST(Http2ConnectionTest, BadPrefaceIsAConnectionError) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  Result<size_t> r = server.dispatch("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(server.shouldClose());
  auto goaway = lastGoAway(server.pendingOutput());
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->code, NGHTTP2_PROTOCOL_ERROR);
  EXPECT_FALSE(server.dispatch("x").ok());  // errors stick
}

// RFC 9113 8.2.2 / 8.3: each of these requests is malformed.
class MalformedRequestTest : public ::testing::TestWithParam<Fields> {};

TEST_P(MalformedRequestTest, EndsTheConnectionByDefault) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  h.conn = &server;
  RawClient raw;
  ASSERT_GT(raw.request(GetParam()), 0);
  Result<size_t> r = server.dispatch(raw.take());
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(h.order.empty());
  EXPECT_EQ(server.stats().rx_messaging_error, 1u);
  auto goaway = lastGoAway(server.pendingOutput());
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->code, NGHTTP2_PROTOCOL_ERROR);
}

TEST_P(MalformedRequestTest, ResetsOnlyTheStreamWhenConfigured) {
  ProtocolOptions opts;
  opts.stream_error_on_invalid_http_messaging = true;
  ServerHandler h;
  ServerConnection server(opts, h);
  h.conn = &server;
  RawClient raw;
  raw.request(GetParam());
  raw.request(validRequest());
  Result<size_t> r = server.dispatch(raw.take());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(h.order, std::vector<int32_t>({3}));  // the valid one only
  EXPECT_EQ(server.stats().rx_messaging_error, 1u);
  EXPECT_NE(
      server.pendingOutput().find(frame(NGHTTP2_RST_STREAM, 0, 1, std::string("\0\0\0\1", 4))),
      std::string_view::npos);
  EXPECT_FALSE(server.shouldClose());
}

INSTANTIATE_TEST_SUITE_P(
    Rfc9113, MalformedRequestTest,
    ::testing::Values(
        Fields{{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}},  // no :path
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":foo", "x"}},
        Fields{{":method", "GET"}, {"x-a", "1"}, {":scheme", "https"}, {":path", "/"}},
        Fields{{":method", "GET"}, {":method", "POST"}, {":scheme", "https"}, {":path", "/"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":status", "200"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"connection", "close"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"keep-alive", "5"}},
        Fields{{":method", "GET"},
               {":scheme", "https"},
               {":path", "/"},
               {"transfer-encoding", "chunked"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"upgrade", "h2c"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"te", "gzip"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"X-Upper", "1"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"bad name", "1"}},
        Fields{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"x", "a\r\nb"}},
        Fields{{":method", "GET"},
               {":scheme", "https"},
               {":path", "/"},
               {":authority", "a.example"},
               {"host", "b.example"}}));

TEST(Http2ConnectionTest, HostWithoutAuthorityBecomesAuthority) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  h.conn = &server;
  RawClient raw;
  raw.request({{":method", "GET"},
               {":scheme", "http"},
               {":path", "/x"},
               {"host", "h.example"},
               {"accept", "*/*"}});
  ASSERT_TRUE(server.dispatch(raw.take()).ok());
  ASSERT_EQ(h.streams.size(), 1u);
  const HeaderMap& got = *h.streams.begin()->second->headers;
  EXPECT_EQ(got.authority(), "h.example");
  EXPECT_FALSE(got.has("host"));
  EXPECT_EQ(got.entries()[3].name, ":authority");
  EXPECT_EQ(got.entries()[4].name, "accept");
}

TEST(Http2ConnectionTest, OversizedHeaderListResetsTheStream) {
  Pair p;
  Recorder c;
  HeaderMap req = requestHeaders();
  req.add("x-big-1", std::string(31 * 1024, 'a'));
  req.add("x-big-2", std::string(31 * 1024, 'b'));
  p.request(c, req, true);
  p.pump();
  EXPECT_TRUE(p.server_handler.order.empty());
  EXPECT_EQ(p.server.stats().header_overflow, 1u);
  ASSERT_TRUE(c.reset);
  EXPECT_EQ(c.reset->second, ResetSource::kRemote);
  EXPECT_FALSE(p.server.error());

  // Too many fields: the same.
  Recorder c2;
  HeaderMap many = requestHeaders();
  for (int i = 0; i < 100; ++i) many.add("x-f" + std::to_string(i), "v");
  p.request(c2, many, true);
  p.pump();
  EXPECT_EQ(p.server.stats().header_overflow, 2u);
  ASSERT_TRUE(c2.reset);

  // The connection still works.
  Recorder c3;
  const int32_t id3 = p.request(c3, requestHeaders(), true);
  p.pump();
  ASSERT_TRUE(p.server.submitHeaders(id3, responseHeaders(), true).ok());
  p.pump();
  EXPECT_TRUE(c3.end);
}

TEST(Http2ConnectionTest, OversizedResponseHeadersResetOnTheClient) {
  Pair p;
  Recorder c;
  const int32_t id = p.request(c, requestHeaders(), true);
  p.pump();
  HeaderMap resp = responseHeaders();
  resp.add("x-big", std::string(61 * 1024, 'z'));
  ASSERT_TRUE(p.server.submitHeaders(id, resp, true).ok());
  p.pump();
  ASSERT_TRUE(c.reset);
  EXPECT_EQ(c.reset->first, ErrorCode::kInternalError);
  EXPECT_EQ(c.reset->second, ResetSource::kLocal);
  EXPECT_EQ(p.client.stats().header_overflow, 1u);
}

std::string pings(int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += frame(NGHTTP2_PING, 0, 0, std::string(8, static_cast<char>(i)));
  return out;
}

TEST(Http2ConnectionTest, PingFloodInOneReadIsAnsweredWithGoAway) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  Result<size_t> r = server.dispatch(clientPreface() + pings(1100));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(server.stats().outbound_control_flood, 1u);
  std::string_view out = server.pendingOutput();
  auto goaway = lastGoAway(out);
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->code, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_LT(out.size(), 1000u);  // the flood of acks is not written
  EXPECT_TRUE(server.shouldClose());
}

TEST(Http2ConnectionTest, PingFloodAcrossReadsWithoutDraining) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  ASSERT_TRUE(server.dispatch(clientPreface()).ok());
  ASSERT_TRUE(server.dispatch(pings(600)).ok());
  EXPECT_FALSE(server.dispatch(pings(600)).ok());
  EXPECT_EQ(server.stats().outbound_control_flood, 1u);
  auto goaway = lastGoAway(server.pendingOutput());
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->code, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST(Http2ConnectionTest, PingsThatAreReadAreNotAFlood) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  ASSERT_TRUE(server.dispatch(clientPreface()).ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(server.dispatch(pings(500)).ok());
    server.drainOutput(server.pendingOutput().size());
  }
  EXPECT_EQ(server.stats().outbound_control_flood, 0u);
}

TEST(Http2ConnectionTest, SettingsFloodIsAnsweredWithGoAway) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  std::string flood = clientPreface();
  for (int i = 0; i < 1100; ++i) flood += frame(NGHTTP2_SETTINGS, 0, 0, "");
  EXPECT_FALSE(server.dispatch(flood).ok());
  EXPECT_EQ(server.stats().outbound_control_flood, 1u);
  auto goaway = lastGoAway(server.pendingOutput());
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->code, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST(Http2ConnectionTest, RstStreamFloodIsCounted) {
  // Each request the server refuses costs it an RST_STREAM; a client that keeps opening
  // streams without reading makes those pile up.
  ServerHandler h;
  h.refuse = true;
  ProtocolOptions opts;
  opts.max_outbound_control_frames = 50;
  ServerConnection server(opts, h);
  h.conn = &server;
  RawClient raw;
  for (int i = 0; i < 60; ++i) raw.request(validRequest());
  EXPECT_FALSE(server.dispatch(raw.take()).ok());
  EXPECT_EQ(server.stats().outbound_control_flood, 1u);
}

TEST(Http2ConnectionTest, EmptyDataFramesFlood) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  h.conn = &server;
  ASSERT_TRUE(server.dispatch(clientPreface()).ok());
  // A POST left open (HEADERS with END_HEADERS only; literal, never-indexed fields), then
  // empty DATA frames without END_STREAM.
  std::string block;
  auto literal = [&block](std::string_view name, std::string_view value) {
    block.push_back(0x10);
    block.push_back(static_cast<char>(name.size()));
    block.append(name);
    block.push_back(static_cast<char>(value.size()));
    block.append(value);
  };
  literal(":method", "POST");
  literal(":scheme", "http");
  literal(":authority", "a");
  literal(":path", "/");
  ASSERT_TRUE(server.dispatch(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block)).ok());
  ASSERT_EQ(h.order.size(), 1u);
  EXPECT_TRUE(server.dispatch(frame(NGHTTP2_DATA, 0, 1, "")).ok());  // one is allowed
  EXPECT_FALSE(server.dispatch(frame(NGHTTP2_DATA, 0, 1, "")).ok());
  EXPECT_EQ(server.stats().inbound_empty_frames_flood, 1u);
  ASSERT_TRUE(h.streams[1]->reset);
  EXPECT_EQ(h.streams[1]->reset->second, ResetSource::kConnectionFailure);
  auto goaway = lastGoAway(server.pendingOutput());
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->last_stream_id, 1u);
  EXPECT_EQ(goaway->code, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST(Http2ConnectionTest, PriorityFlood) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  std::string bytes = clientPreface();
  // PRIORITY for idle streams: allowed, but at most 100 per opened stream (+1).
  for (uint32_t i = 0; i < 101; ++i) {
    bytes += frame(NGHTTP2_PRIORITY, 0, 2 * i + 1, std::string("\0\0\0\0\x0f", 5));
  }
  EXPECT_FALSE(server.dispatch(bytes).ok());
  EXPECT_EQ(server.stats().inbound_priority_frames_flood, 1u);
}

TEST(Http2ConnectionTest, WindowUpdateFlood) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  std::string bytes = clientPreface();
  for (int i = 0; i < 6; ++i)
    bytes += frame(NGHTTP2_WINDOW_UPDATE, 0, 0, std::string("\0\0\0\1", 4));
  EXPECT_FALSE(server.dispatch(bytes).ok());
  EXPECT_EQ(server.stats().inbound_window_update_frames_flood, 1u);
}

TEST(Http2ConnectionTest, PeerThatDoesNotReadTripsOutboundFrameLimit) {
  ProtocolOptions opts;
  opts.max_outbound_frames = 100;
  Pair p(ProtocolOptions{}, opts);
  std::vector<std::unique_ptr<Recorder>> clients;
  for (int i = 0; i < 60; ++i) {
    clients.push_back(std::make_unique<Recorder>());
    p.request(*clients.back(), requestHeaders(), true);
  }
  p.pump();
  // The client stops reading: responses pile up in the server's output.
  Status st = okStatus();
  for (auto& c : clients) {
    st = p.server.submitHeaders(c->id, responseHeaders(), false);
    if (!st.ok()) break;
    st = p.server.submitData(c->id, std::string("x"), true);
    if (!st.ok()) break;
  }
  (void)p.server.pendingOutput();
  EXPECT_TRUE(p.server.error());
  EXPECT_EQ(p.server.stats().outbound_flood, 1u);
  auto goaway = lastGoAway(p.server.pendingOutput());
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->code, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST(Http2ConnectionTest, PartialDrainKeepsFramesWholeOnFailure) {
  ServerHandler h;
  ServerConnection server(ProtocolOptions{}, h);
  ASSERT_TRUE(server.dispatch(clientPreface()).ok());
  std::string first(server.pendingOutput());
  ASSERT_GT(first.size(), 10u);
  server.drainOutput(5);  // the caller took part of the first frame
  EXPECT_FALSE(server.dispatch(pings(1100)).ok());
  std::string rest(server.pendingOutput());
  // What follows the 5 taken bytes still parses as whole frames, ending in GOAWAY.
  std::string stream = first.substr(0, 5) + rest;
  auto goaway = lastGoAway(stream);
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->code, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST(Http2ConnectionTest, CloseResetsOpenStreams) {
  Pair p;
  Recorder c;
  p.request(c, requestHeaders(), true);
  p.pump();
  p.client.close();
  ASSERT_TRUE(c.reset);
  EXPECT_EQ(c.reset->second, ResetSource::kConnectionClosed);
  EXPECT_TRUE(p.client.shouldClose());
  EXPECT_FALSE(p.client.dispatch("x").ok());
}

TEST(Http2ConnectionTest, CallbacksMayResetFromInsideDispatch) {
  struct ResetOnHeaders : Recorder {
    void onHeaders(HeaderMap&& h, bool end_stream) override {
      Recorder::onHeaders(std::move(h), end_stream);
      conn->resetStream(id, ErrorCode::kCancel);
    }
  };
  Pair p;
  ResetOnHeaders c;
  const int32_t id = p.request(c, requestHeaders(), true);
  p.pump();
  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders(), false).ok());
  ASSERT_TRUE(p.server.submitData(id, std::string(1000, 'd'), true).ok());
  p.pump();
  EXPECT_TRUE(c.headers);
  EXPECT_TRUE(c.body.empty());
  EXPECT_FALSE(c.reset);
  EXPECT_EQ(p.client.activeStreams(), 0u);
  EXPECT_FALSE(p.client.error());
}

TEST(Http2ConnectionTest, ValidateOptions) {
  EXPECT_TRUE(validateProtocolOptions(ProtocolOptions{}).ok());
  ProtocolOptions o;
  o.initial_stream_window_size = 100;
  Status st = validateProtocolOptions(o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("initial_stream_window_size"), std::string::npos);
  EXPECT_EQ(errorCodeName(ErrorCode::kEnhanceYourCalm), "ENHANCE_YOUR_CALM");
}

// The connection manager detaches a stream whose response is complete while the request body
// is still coming: nothing more reaches the old callbacks, the unread bytes (held and still to
// come) are acknowledged so they cannot pin the connection window, and the queued response
// still leaves.
TEST(Http2ConnectionTest, DetachedStreamKeepsSendingAndStopsHoldingTheWindow) {
  ProtocolOptions opts;
  opts.initial_stream_window_size = 65535;
  opts.initial_connection_window_size = 65535;
  Pair p(opts, opts);
  p.server_handler.auto_consume = false;

  Recorder c;
  const int32_t id = p.request(c, requestHeaders("POST", "/upload"), false);
  const std::string payload(200 * 1024, 'u');
  ASSERT_TRUE(p.client.submitData(id, std::string_view(payload), true).ok());
  p.pump();
  Recorder& s = p.serverStream(id);
  EXPECT_EQ(s.body.size(), 65535u);  // one window, never acknowledged

  ASSERT_TRUE(p.server.submitHeaders(id, responseHeaders("413"), false).ok());
  ASSERT_TRUE(p.server.submitData(id, std::string_view("too big"), true).ok());
  p.server.detachStream(id);
  p.pump();
  for (int i = 0; i < 10 && !c.end; ++i) p.pump();

  EXPECT_EQ(s.body.size(), 65535u);  // nothing more reached the detached callbacks
  EXPECT_FALSE(s.reset.has_value());
  ASSERT_TRUE(c.headers.has_value());
  EXPECT_EQ(c.headers->status(), "413");
  EXPECT_EQ(c.body, "too big");
  EXPECT_TRUE(c.end);
  // The client could send its whole body: the server acknowledged what nobody read.
  EXPECT_EQ(p.client.pendingSendBytes(id), 0u);
  EXPECT_EQ(p.server.activeStreams(), 0u);
}

}  // namespace
}  // namespace sheave::http2
