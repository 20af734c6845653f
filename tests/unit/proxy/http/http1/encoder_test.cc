#include "proxy/http/http1/encoder.h"

#include <gtest/gtest.h>

#include <string>

#include "proxy/http/http1/parser.h"

namespace sheave::http1 {
namespace {

HeaderMap makeMap(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  HeaderMap map;
  for (const auto& [name, value] : fields) map.add(name, value);
  return map;
}

TEST(Http1EncoderTest, RequestHeaders) {
  std::string out;
  encodeRequestHeaders(makeMap({{":method", "GET"},
                                {":path", "/a?b"},
                                {":authority", "example.com"},
                                {":scheme", "http"},
                                {"user-agent", "t"}}),
                       false, out);
  EXPECT_EQ(out, "GET /a?b HTTP/1.1\r\nhost: example.com\r\nuser-agent: t\r\n\r\n");
}

TEST(Http1EncoderTest, RequestKeepsExplicitHostField) {
  std::string out;
  encodeRequestHeaders(
      makeMap({{":method", "GET"}, {":path", "/"}, {":authority", "a"}, {"host", "b"}}), false,
      out);
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nhost: b\r\n\r\n");
}

TEST(Http1EncoderTest, ConnectUsesAuthorityAsTarget) {
  std::string out;
  encodeRequestHeaders(makeMap({{":method", "CONNECT"}, {":authority", "h:443"}}), false, out);
  EXPECT_EQ(out, "CONNECT h:443 HTTP/1.1\r\nhost: h:443\r\n\r\n");
}

TEST(Http1EncoderTest, ChunkedReplacesOtherFraming) {
  std::string out;
  encodeRequestHeaders(makeMap({{":method", "POST"},
                                {":path", "/"},
                                {":authority", "h"},
                                {"content-length", "10"},
                                {"transfer-encoding", "gzip"},
                                {"x", "y"}}),
                       true, out);
  EXPECT_EQ(out, "POST / HTTP/1.1\r\nhost: h\r\nx: y\r\ntransfer-encoding: chunked\r\n\r\n");
}

TEST(Http1EncoderTest, ContentLengthWrittenAsGivenAndTransferEncodingDropped) {
  std::string out;
  encodeResponseHeaders(
      makeMap({{":status", "200"}, {"transfer-encoding", "chunked"}, {"content-length", "3"}}), 1,
      false, out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n");
}

TEST(Http1EncoderTest, ResponseStatusLines) {
  std::string out;
  encodeResponseHeaders(makeMap({{":status", "404"}, {"server", "sheave"}}), 1, false, out);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nserver: sheave\r\n\r\n");
  out.clear();
  encodeResponseHeaders(makeMap({{":status", "503"}}), 0, false, out);
  EXPECT_EQ(out, "HTTP/1.0 503 Service Unavailable\r\n\r\n");
  out.clear();
  encodeResponseHeaders(makeMap({{":status", "299"}}), 1, true, out);
  EXPECT_EQ(out, "HTTP/1.1 299 \r\ntransfer-encoding: chunked\r\n\r\n");
}

TEST(Http1EncoderTest, ReasonPhrases) {
  EXPECT_EQ(reasonPhrase(100), "Continue");
  EXPECT_EQ(reasonPhrase(200), "OK");
  EXPECT_EQ(reasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reasonPhrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reasonPhrase(799), "");
}

TEST(Http1EncoderTest, Chunks) {
  std::string out;
  encodeChunk("", out);
  EXPECT_EQ(out, "");
  encodeChunk("hello", out);
  EXPECT_EQ(out, "5\r\nhello\r\n");
  out.clear();
  encodeChunk(std::string(0x1a2b, 'x'), out);
  EXPECT_EQ(out.substr(0, 6), "1a2b\r\n");
  EXPECT_EQ(out.size(), 6u + 0x1a2b + 2u);
}

TEST(Http1EncoderTest, LastChunk) {
  std::string out;
  encodeLastChunk(nullptr, out);
  EXPECT_EQ(out, "0\r\n\r\n");
  out.clear();
  HeaderMap trailers = makeMap({{"grpc-status", "0"}, {"grpc-message", "ok"}});
  encodeLastChunk(&trailers, out);
  EXPECT_EQ(out, "0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n");
}

// What the encoder writes, the parser reads back unchanged.
class Collect : public ParserCallbacks {
 public:
  void onHeaders(HeaderMap&& h, const MessageInfo& i) override {
    headers = std::move(h);
    info = i;
  }
  void onBody(std::string_view d) override { body.append(d); }
  void onMessageComplete(HeaderMap&& t) override {
    trailers = std::move(t);
    complete = true;
  }
  HeaderMap headers;
  HeaderMap trailers;
  MessageInfo info;
  std::string body;
  bool complete = false;
};

TEST(Http1EncoderTest, RoundTripThroughParser) {
  std::string wire;
  encodeRequestHeaders(
      makeMap(
          {{":method", "POST"}, {":path", "/rpc"}, {":authority", "svc:80"}, {"te", "trailers"}}),
      true, wire);
  encodeChunk("abc", wire);
  encodeChunk(std::string(300, 'd'), wire);
  HeaderMap trailers = makeMap({{"x-checksum", "1"}});
  encodeLastChunk(&trailers, wire);

  Collect c;
  Parser parser(Mode::kRequest, Limits{}, c);
  ParseResult r = parser.parse(wire);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.consumed, wire.size());
  ASSERT_TRUE(c.complete);
  EXPECT_EQ(c.headers.method(), "POST");
  EXPECT_EQ(c.headers.path(), "/rpc");
  EXPECT_EQ(c.headers.authority(), "svc:80");
  EXPECT_TRUE(c.info.chunked);
  EXPECT_EQ(c.body, "abc" + std::string(300, 'd'));
  ASSERT_NE(c.trailers.get("x-checksum"), nullptr);
  EXPECT_EQ(*c.trailers.get("x-checksum"), "1");

  std::string response;
  encodeResponseHeaders(makeMap({{":status", "201"}, {"content-length", "2"}}), 1, false, response);
  response += "ok";
  Collect rc;
  Parser rparser(Mode::kResponse, Limits{}, rc);
  ASSERT_TRUE(rparser.parse(response).ok());
  EXPECT_EQ(rc.info.status, 201);
  EXPECT_EQ(rc.body, "ok");
}

}  // namespace
}  // namespace sheave::http1
