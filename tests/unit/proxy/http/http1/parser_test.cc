#include "proxy/http/http1/parser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace sheave::http1 {
namespace {

struct Message {
  std::vector<std::pair<std::string, std::string>> headers;
  MessageInfo info;
  std::string body;
  size_t body_pieces = 0;
  std::vector<std::pair<std::string, std::string>> trailers;
  bool complete = false;
};

std::vector<std::pair<std::string, std::string>> toPairs(const HeaderMap& map) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : map) out.emplace_back(e.name, e.value);
  return out;
}

class Recorder : public ParserCallbacks {
 public:
  void onHeaders(HeaderMap&& headers, const MessageInfo& info) override {
    Message m;
    m.headers = toPairs(headers);
    m.info = info;
    messages.push_back(std::move(m));
  }
  void onBody(std::string_view data) override {
    ASSERT_FALSE(messages.empty());
    EXPECT_FALSE(data.empty());
    messages.back().body.append(data);
    ++messages.back().body_pieces;
  }
  void onMessageComplete(HeaderMap&& trailers) override {
    ASSERT_FALSE(messages.empty());
    messages.back().trailers = toPairs(trailers);
    messages.back().complete = true;
  }
  void onInformational(HeaderMap&& headers, const MessageInfo& info) override {
    informational.push_back(toPairs(headers));
    informational_info.push_back(info);
  }

  std::vector<Message> messages;
  std::vector<std::vector<std::pair<std::string, std::string>>> informational;
  std::vector<MessageInfo> informational_info;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Feeds the whole input, resuming after each message as a pipelining caller does.
std::optional<ParseError> feedAll(Parser& parser, std::string_view input) {
  while (true) {
    ParseResult r = parser.parse(input);
    if (!r.ok()) return r.error;
    EXPECT_LE(r.consumed, input.size());
    input.remove_prefix(r.consumed);
    if (input.empty()) return std::nullopt;
    if (!parser.paused()) {
      ADD_FAILURE() << "not paused but did not consume everything";
      return std::nullopt;
    }
    parser.resume();
  }
}

// Feeds the input in pieces of `step` bytes (1 = byte at a time).
std::optional<ParseError> feedInPieces(Parser& parser, std::string_view input, size_t step) {
  while (!input.empty()) {
    std::string_view piece = input.substr(0, step);
    while (!piece.empty()) {
      ParseResult r = parser.parse(piece);
      if (!r.ok()) return r.error;
      if (r.consumed == 0 && !parser.paused()) {
        ADD_FAILURE() << "no progress";
        return std::nullopt;
      }
      piece.remove_prefix(r.consumed);
      input.remove_prefix(r.consumed);
      if (parser.paused()) parser.resume();
    }
  }
  return std::nullopt;
}

struct Parsed {
  Recorder rec;
  std::optional<ParseError> error;
};

std::unique_ptr<Parsed> parseRequest(std::string_view input, Limits limits = {}) {
  auto p = std::make_unique<Parsed>();
  Parser parser(Mode::kRequest, limits, p->rec);
  p->error = feedAll(parser, input);
  return p;
}

void expectRejected(std::string_view input, int status, std::string_view details) {
  SCOPED_TRACE(std::string(input));
  for (size_t step : {input.size(), size_t{1}}) {
    Recorder rec;
    Parser parser(Mode::kRequest, Limits{}, rec);
    std::optional<ParseError> err = feedInPieces(parser, input, step);
    ASSERT_TRUE(err.has_value()) << "accepted with step " << step;
    EXPECT_EQ(err->http_status, status) << err->message;
    EXPECT_EQ(err->details, details) << err->message;
    EXPECT_LE(err->offset, input.size());
    // The error sticks.
    EXPECT_FALSE(parser.parse("GET / HTTP/1.1\r\n").ok());
  }
}

void expectAccepted(std::string_view input) {
  auto p = parseRequest(input);
  ASSERT_FALSE(p->error.has_value()) << input << ": " << p->error->message;
  ASSERT_EQ(p->rec.messages.size(), 1u);
  EXPECT_TRUE(p->rec.messages[0].complete);
}

// ---------------------------------------------------------------------------------------------
// Valid requests.

TEST(Http1ParserTest, SimpleGet) {
  auto p = parseRequest(
      "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n"
      "Accept:  */*  \r\n\r\n");
  ASSERT_FALSE(p->error);
  ASSERT_EQ(p->rec.messages.size(), 1u);
  const Message& m = p->rec.messages[0];
  EXPECT_EQ(m.headers, (Pairs{{":method", "GET"},
                              {":path", "/index.html?q=1"},
                              {":authority", "example.com"},
                              {"user-agent", "t"},
                              {"accept", "*/*"}}));
  EXPECT_EQ(m.info.version_minor, 1);
  EXPECT_TRUE(m.info.keep_alive);
  EXPECT_FALSE(m.info.chunked);
  EXPECT_FALSE(m.info.content_length.has_value());
  EXPECT_FALSE(m.info.has_body);
  EXPECT_FALSE(m.info.expect_continue);
  EXPECT_FALSE(m.info.upgrade);
  EXPECT_TRUE(m.complete);
  EXPECT_TRUE(m.trailers.empty());
}

TEST(Http1ParserTest, PausesAfterEachMessageAndReportsConsumed) {
  Recorder rec;
  Parser parser(Mode::kRequest, Limits{}, rec);
  const std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string input = first + "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  ParseResult r = parser.parse(input);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.consumed, first.size());
  EXPECT_TRUE(parser.paused());
  EXPECT_FALSE(parser.messageInProgress());
  // Paused: nothing is consumed until resume().
  r = parser.parse(std::string_view(input).substr(first.size()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(rec.messages.size(), 1u);
  parser.resume();
  r = parser.parse(std::string_view(input).substr(first.size()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.consumed, input.size() - first.size());
  ASSERT_EQ(rec.messages.size(), 2u);
  EXPECT_EQ(rec.messages[1].headers[1].second, "/b");
}

TEST(Http1ParserTest, PipelinedRequestsWithBodies) {
  const std::string input =
      "POST /one HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "POST /two HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  auto p = parseRequest(input);
  ASSERT_FALSE(p->error);
  ASSERT_EQ(p->rec.messages.size(), 3u);
  EXPECT_EQ(p->rec.messages[0].body, "hello");
  EXPECT_EQ(p->rec.messages[0].info.content_length, 5u);
  EXPECT_EQ(p->rec.messages[1].body, "abc");
  EXPECT_TRUE(p->rec.messages[1].info.chunked);
  EXPECT_FALSE(p->rec.messages[2].info.keep_alive);
  for (const Message& m : p->rec.messages) EXPECT_TRUE(m.complete);
}

TEST(Http1ParserTest, ByteAtATimeGivesSameEvents) {
  const std::vector<std::string> inputs = {
      "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-B:\r\n\r\n",
      "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value;q=\"quoted \\\" str\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
      "GET http://example.org:8080/p?x HTTP/1.1\r\nHost: ignored\r\n\r\n"
      "\r\nGET /second HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input);
    Recorder whole;
    Parser p1(Mode::kRequest, Limits{}, whole);
    ASSERT_FALSE(feedAll(p1, input));
    for (size_t step : {1, 2, 3, 7}) {
      Recorder pieces;
      Parser p2(Mode::kRequest, Limits{}, pieces);
      ASSERT_FALSE(feedInPieces(p2, input, step));
      ASSERT_EQ(whole.messages.size(), pieces.messages.size());
      for (size_t i = 0; i < whole.messages.size(); ++i) {
        const Message& a = whole.messages[i];
        const Message& b = pieces.messages[i];
        EXPECT_EQ(a.headers, b.headers);
        EXPECT_EQ(a.body, b.body);
        EXPECT_EQ(a.trailers, b.trailers);
        EXPECT_EQ(a.complete, b.complete);
        EXPECT_EQ(a.info.keep_alive, b.info.keep_alive);
        EXPECT_EQ(a.info.chunked, b.info.chunked);
        EXPECT_EQ(a.info.content_length, b.info.content_length);
      }
    }
  }
}

TEST(Http1ParserTest, ChunkedWithExtensionsAndTrailers) {
  auto p = parseRequest(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "4;ext\r\nWiki\r\n"
      "5 ; a=b ;c=\"d;e\"\r\npedia\r\n"
      "E\r\n in\r\n\r\nchunks.\r\n"
      "000\r\nExpires: never\r\nX-Checksum:  abc \r\n\r\n");
  ASSERT_FALSE(p->error) << p->error->message;
  ASSERT_EQ(p->rec.messages.size(), 1u);
  const Message& m = p->rec.messages[0];
  EXPECT_TRUE(m.info.chunked);
  EXPECT_TRUE(m.info.has_body);
  EXPECT_EQ(m.body, "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(m.trailers, (Pairs{{"expires", "never"}, {"x-checksum", "abc"}}));
  // Transfer-Encoding stays in the headers: removing hop-by-hop fields is the manager's job.
  EXPECT_EQ(m.headers.back(),
            (std::pair<std::string, std::string>{"transfer-encoding", "Chunked"}));
}

TEST(Http1ParserTest, LargeBodyStreamsInPieces) {
  const size_t kBody = 8 * 1024 * 1024;
  const size_t kRead = 64 * 1024;
  std::string head =
      "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n";
  Recorder rec;
  Parser parser(Mode::kRequest, Limits{}, rec);
  ASSERT_TRUE(parser.parse(head).ok());
  ASSERT_EQ(rec.messages.size(), 1u);
  std::string chunk(kRead, 'x');
  size_t sent = 0;
  while (sent < kBody) {
    ParseResult r = parser.parse(chunk);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.consumed, kRead);
    sent += kRead;
    // Each read is delivered as soon as it arrives, in place.
    EXPECT_EQ(rec.messages[0].body.size(), sent);
    EXPECT_EQ(rec.messages[0].complete, sent == kBody);
  }
  EXPECT_EQ(rec.messages[0].body_pieces, kBody / kRead);
}

TEST(Http1ParserTest, LargeChunkedBodyStreamsInPieces) {
  Recorder rec;
  Parser parser(Mode::kRequest, Limits{}, rec);
  ASSERT_TRUE(
      parser.parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n")
          .ok());
  std::string piece(4096, 'y');
  for (int i = 0; i < 256; ++i) ASSERT_EQ(parser.parse(piece).consumed, piece.size());
  EXPECT_EQ(rec.messages[0].body_pieces, 256u);
  EXPECT_FALSE(rec.messages[0].complete);
  ASSERT_TRUE(parser.parse("\r\n0\r\n\r\n").ok());
  EXPECT_TRUE(rec.messages[0].complete);
  EXPECT_EQ(rec.messages[0].body.size(), 0x100000u);
}

TEST(Http1ParserTest, KeepAliveRules) {
  auto keepAlive = [](std::string_view req) {
    auto p = parseRequest(req);
    EXPECT_FALSE(p->error);
    return !p->rec.messages.empty() && p->rec.messages[0].info.keep_alive;
  };
  EXPECT_TRUE(keepAlive("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_FALSE(keepAlive("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n"));
  EXPECT_FALSE(keepAlive("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n"));
  EXPECT_FALSE(keepAlive("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keepAlive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
}

TEST(Http1ParserTest, Http10WithoutHostHasNoAuthority) {
  auto p = parseRequest("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n");
  ASSERT_FALSE(p->error);
  EXPECT_EQ(p->rec.messages[0].headers,
            (Pairs{{":method", "GET"}, {":path", "/"}, {"accept", "*/*"}}));
  EXPECT_EQ(p->rec.messages[0].info.version_minor, 0);
}

TEST(Http1ParserTest, ExpectContinue) {
  auto p = parseRequest(
      "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx");
  ASSERT_FALSE(p->error);
  EXPECT_TRUE(p->rec.messages[0].info.expect_continue);
  // RFC 9110 10.1.1: ignored for HTTP/1.0.
  p = parseRequest("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
  ASSERT_FALSE(p->error);
  EXPECT_FALSE(p->rec.messages[0].info.expect_continue);
}

TEST(Http1ParserTest, WebSocketUpgradeStaysPaused) {
  Recorder rec;
  Parser parser(Mode::kRequest, Limits{}, rec);
  const std::string head =
      "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  ParseResult r = parser.parse(head + "\x81\x05hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.consumed, head.size());
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_TRUE(rec.messages[0].info.upgrade);
  EXPECT_TRUE(parser.paused());
}

TEST(Http1ParserTest, ConnectAuthorityForm) {
  auto p = parseRequest("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_FALSE(p->error);
  const Message& m = p->rec.messages[0];
  EXPECT_EQ(m.headers, (Pairs{{":method", "CONNECT"}, {":authority", "example.com:443"}}));
  EXPECT_TRUE(m.info.upgrade);
  EXPECT_TRUE(m.complete);
}

TEST(Http1ParserTest, AbsoluteFormTakesAuthorityFromTarget) {
  auto p = parseRequest("GET http://example.org:8080/p?x HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_FALSE(p->error);
  EXPECT_EQ(p->rec.messages[0].headers, (Pairs{{":method", "GET"},
                                               {":path", "http://example.org:8080/p?x"},
                                               {":authority", "example.org:8080"}}));
  // No Host needed: the target carries the authority.
  p = parseRequest("GET https://example.org HTTP/1.1\r\n\r\n");
  ASSERT_FALSE(p->error);
  EXPECT_EQ(p->rec.messages[0].headers[2].second, "example.org");
}

TEST(Http1ParserTest, OptionsAsterisk) {
  auto p = parseRequest("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_FALSE(p->error);
  EXPECT_EQ(p->rec.messages[0].headers[1].second, "*");
}

TEST(Http1ParserTest, IdenticalContentLengthsAccepted) {
  expectAccepted("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
  expectAccepted("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc");
  expectAccepted("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
}

TEST(Http1ParserTest, LeadingEmptyLinesIgnored) {
  expectAccepted("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(Http1ParserTest, EmptyFieldValueAndObsTextAccepted) {
  auto p =
      parseRequest("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Utf8: caf\xc3\xa9 \t x\r\n\r\n");
  ASSERT_FALSE(p->error);
  EXPECT_EQ(p->rec.messages[0].headers[3].second, "");
  EXPECT_EQ(p->rec.messages[0].headers[4].second, "caf\xc3\xa9 \t x");
}

TEST(Http1ParserTest, EofMidRequestIsAnError) {
  Recorder rec;
  Parser parser(Mode::kRequest, Limits{}, rec);
  EXPECT_FALSE(parser.onEof().has_value());  // nothing received: a clean close
  ASSERT_TRUE(parser.parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc").ok());
  EXPECT_TRUE(parser.messageInProgress());
  auto err = parser.onEof();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->http_status, 400);
}

TEST(Http1ParserTest, MessageInProgressAfterPartialStartLine) {
  Recorder rec;
  Parser parser(Mode::kRequest, Limits{}, rec);
  EXPECT_FALSE(parser.messageInProgress());
  ASSERT_TRUE(parser.parse("GE").ok());
  EXPECT_TRUE(parser.messageInProgress());
}

// ---------------------------------------------------------------------------------------------
// Rejections: one rule per test, raw bytes.

TEST(Http1ParserReject, BareLfEndingRequestLine) {
  expectRejected("GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, BareLfEndingFieldLine) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, BareLfEndingHeaderBlock) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, BareLfBeforeRequestLine) {
  expectRejected("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, BareCrInFieldValue) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400, "http1.invalid_characters");
}
TEST(Http1ParserReject, BareCrInRequestTarget) {
  expectRejected("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_url");
}
TEST(Http1ParserReject, BareCrAfterVersion) {
  expectRejected("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, BareCrAsFieldLine) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400, "http1.invalid_characters");
}
TEST(Http1ParserReject, ObsFold) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, ObsFoldWithTab) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, WhitespaceBeforeFirstField) {
  expectRejected("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, SpaceBeforeColon) {
  expectRejected("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, TabBeforeColon) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A\t: b\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, FieldNameNotAToken) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX(A): b\r\n\r\n", 400, "http1.invalid_characters");
}
TEST(Http1ParserReject, EmptyFieldName) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, FieldLineWithoutColon) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, NulInFieldValue) {
  expectRejected(std::string_view("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", 38), 400,
                 "http1.invalid_characters");
}
TEST(Http1ParserReject, CtlInFieldValue) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400,
                 "http1.invalid_characters");
}
TEST(Http1ParserReject, DelInFieldValue) {
  expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n", 400,
                 "http1.invalid_characters");
}
TEST(Http1ParserReject, DoubleSpaceAfterMethod) {
  expectRejected("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, DoubleSpaceBeforeVersion) {
  expectRejected("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, TabAsSeparator) {
  expectRejected("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, TrailingSpaceAfterVersion) {
  expectRejected("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, MissingVersion) {
  expectRejected("GET /\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, MethodNotAToken) {
  expectRejected("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, LowerCaseHttpName) {
  expectRejected("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, MalformedVersion) {
  expectRejected("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, Http2VersionIs505) {
  expectRejected("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http1.codec_error");
}
TEST(Http1ParserReject, Http12VersionIs505) {
  expectRejected("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "http1.codec_error");
}
TEST(Http1ParserReject, AsteriskFormForGet) {
  expectRejected("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_url");
}
TEST(Http1ParserReject, AuthorityFormForGet) {
  expectRejected("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_scheme");
}
TEST(Http1ParserReject, OriginFormForConnect) {
  expectRejected("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_url");
}
TEST(Http1ParserReject, ConnectWithoutPort) {
  expectRejected("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_url");
}
TEST(Http1ParserReject, ConnectWithBody) {
  expectRejected("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 2\r\n\r\nab", 400,
                 "http1.body_disallowed");
}
TEST(Http1ParserReject, AbsoluteFormWithUserinfo) {
  expectRejected("GET http://user:pw@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_url");
}
TEST(Http1ParserReject, AbsoluteFormWithoutAuthority) {
  expectRejected("GET http:/path HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_url");
}
TEST(Http1ParserReject, AbsoluteFormWithOtherScheme) {
  expectRejected("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "http1.invalid_scheme");
}
TEST(Http1ParserReject, MissingHostInHttp11) {
  expectRejected("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "missing_host_header");
}
TEST(Http1ParserReject, TwoHostFields) {
  expectRejected("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, InvalidHost) {
  expectRejected("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "http1.invalid_characters");
}
TEST(Http1ParserReject, HostWithUserinfo) {
  expectRejected("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "http1.invalid_characters");
}
TEST(Http1ParserReject, ContentLengthAndTransferEncoding) {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n",
      400, "http1.content_length_and_chunked_not_allowed");
}
TEST(Http1ParserReject, TransferEncodingAndContentLength) {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n",
      400, "http1.content_length_and_chunked_not_allowed");
}
TEST(Http1ParserReject, DifferentContentLengths) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                 400, "http1.codec_error");
}
TEST(Http1ParserReject, DifferentContentLengthsInList) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", 400,
                 "http1.codec_error");
}
TEST(Http1ParserReject, ContentLengthWithPlusSign) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400,
                 "http1.codec_error");
}
TEST(Http1ParserReject, NegativeContentLength) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400,
                 "http1.codec_error");
}
TEST(Http1ParserReject, ContentLengthNotDecimal) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400,
                 "http1.codec_error");
}
TEST(Http1ParserReject, EmptyContentLength) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400, "http1.codec_error");
}
TEST(Http1ParserReject, ContentLengthEmptyListElement) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3,,3\r\n\r\nabc", 400,
                 "http1.codec_error");
}
TEST(Http1ParserReject, ContentLengthOverflow) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                 400, "http1.codec_error");
}
TEST(Http1ParserReject, TransferEncodingGzip) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
                 "http1.invalid_transfer_encoding");
}
TEST(Http1ParserReject, TransferEncodingGzipThenChunked) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                 "http1.invalid_transfer_encoding");
}
TEST(Http1ParserReject, TransferEncodingChunkedNotLast) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501,
                 "http1.invalid_transfer_encoding");
}
TEST(Http1ParserReject, TransferEncodingChunkedTwice) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501,
                 "http1.invalid_transfer_encoding");
}
TEST(Http1ParserReject, TransferEncodingChunkedInTwoFields) {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
      "\r\n",
      501, "http1.invalid_transfer_encoding");
}
TEST(Http1ParserReject, TransferEncodingUnknown) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 501,
                 "http1.invalid_transfer_encoding");
}
TEST(Http1ParserReject, TransferEncodingEmpty) {
  expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 501,
                 "http1.invalid_transfer_encoding");
}
TEST(Http1ParserReject, TransferEncodingInHttp10) {
  expectRejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                 "http1.invalid_transfer_encoding");
}

constexpr std::string_view kChunkedHead =
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

void expectChunkedRejected(std::string_view body) {
  expectRejected(std::string(kChunkedHead) + std::string(body), 400, "http1.codec_error");
}

TEST(Http1ParserReject, ChunkSizeWithHexPrefix) {
  expectChunkedRejected("0x5\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkSizeWithSign) { expectChunkedRejected("+5\r\nhello\r\n0\r\n\r\n"); }
TEST(Http1ParserReject, ChunkSizeNegative) { expectChunkedRejected("-5\r\nhello\r\n0\r\n\r\n"); }
TEST(Http1ParserReject, ChunkSizeEmpty) { expectChunkedRejected("\r\nhello\r\n0\r\n\r\n"); }
TEST(Http1ParserReject, ChunkSizeLeadingSpace) {
  expectChunkedRejected(" 5\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkSizeTrailingSpace) {
  expectChunkedRejected("5 \r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkSizeOverflow) {
  expectChunkedRejected("10000000000000000\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkSizeBareLf) { expectChunkedRejected("5\nhello\r\n0\r\n\r\n"); }
TEST(Http1ParserReject, ChunkSizeBareCr) { expectChunkedRejected("5\rhello\r\n0\r\n\r\n"); }
TEST(Http1ParserReject, ChunkDataTooLong) { expectChunkedRejected("5\r\nhelloX\r\n0\r\n\r\n"); }
TEST(Http1ParserReject, ChunkDataFollowedByBareLf) {
  expectChunkedRejected("5\r\nhello\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkDataFollowedByBareCr) {
  expectChunkedRejected("5\r\nhello\r0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkExtensionBareCr) {
  expectChunkedRejected("5;a\rb\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkExtensionNotAToken) {
  expectChunkedRejected("5;a(b)\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkExtensionEmptyValue) {
  expectChunkedRejected("5;a=\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkExtensionUnterminatedQuote) {
  expectChunkedRejected("5;a=\"b\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, ChunkExtensionCtlInQuotedString) {
  expectChunkedRejected("5;a=\"b\x01\"\r\nhello\r\n0\r\n\r\n");
}
TEST(Http1ParserReject, TrailerObsFold) { expectChunkedRejected("0\r\nX-A: a\r\n b\r\n\r\n"); }
TEST(Http1ParserReject, TrailerWhitespaceBeforeColon) {
  expectChunkedRejected("0\r\nX-A : a\r\n\r\n");
}
TEST(Http1ParserReject, TrailerBareLf) { expectChunkedRejected("0\r\nX-A: a\n\r\n"); }
TEST(Http1ParserReject, TrailerInvalidValue) {
  expectRejected(std::string(kChunkedHead) + "0\r\nX-A: a\x01\r\n\r\n", 400,
                 "http1.invalid_characters");
}

// ---------------------------------------------------------------------------------------------
// Limits.

TEST(Http1ParserLimits, HeaderBlockTooLargeRejectedBeforeItEnds) {
  Limits limits;
  limits.max_header_bytes = 1024;
  Recorder rec;
  Parser parser(Mode::kRequest, limits, rec);
  ASSERT_TRUE(parser.parse("GET / HTTP/1.1\r\nHost: h\r\nX-Big: ").ok());
  std::string filler(100, 'a');
  std::optional<ParseError> err;
  size_t fed = 0;
  while (fed < 10 * 1024) {
    ParseResult r = parser.parse(filler);
    fed += filler.size();
    if (!r.ok()) {
      err = r.error;
      break;
    }
  }
  ASSERT_TRUE(err.has_value());
  EXPECT_LE(fed, 1024u + filler.size());  // refused as soon as the limit was passed
  EXPECT_EQ(err->http_status, 431);
  EXPECT_EQ(err->details, "http1.headers_too_large");
  EXPECT_EQ(err->offset, 1024u);
  EXPECT_TRUE(rec.messages.empty());
}

TEST(Http1ParserLimits, HeaderBlockAtTheLimitAccepted) {
  Limits limits;
  const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  std::string req = head + std::string(200, 'v') + "\r\n\r\n";
  limits.max_header_bytes = req.size();
  auto p = parseRequest(req, limits);
  EXPECT_FALSE(p->error);
  limits.max_header_bytes = req.size() - 1;
  p = parseRequest(req, limits);
  ASSERT_TRUE(p->error);
  EXPECT_EQ(p->error->http_status, 431);
}

TEST(Http1ParserLimits, DefaultLimitIs60KiB) {
  std::string req = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(61 * 1024, 'v') + "\r\n\r\n";
  auto p = parseRequest(req);
  ASSERT_TRUE(p->error);
  EXPECT_EQ(p->error->http_status, 431);
  req = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(59 * 1024, 'v') + "\r\n\r\n";
  EXPECT_FALSE(parseRequest(req)->error);
}

TEST(Http1ParserLimits, TooManyHeaders) {
  std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 99; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_FALSE(parseRequest(req + "\r\n")->error);  // 100 fields, Host included
  auto p = parseRequest(req + "X-Last: v\r\n\r\n");
  ASSERT_TRUE(p->error);
  EXPECT_EQ(p->error->http_status, 431);
  EXPECT_EQ(p->error->details, "http1.too_many_headers");
}

TEST(Http1ParserLimits, TrailersTooLarge) {
  Limits limits;
  limits.max_header_bytes = 256;
  auto p = parseRequest(
      std::string(kChunkedHead) + "0\r\nX-T: " + std::string(300, 't') + "\r\n\r\n", limits);
  ASSERT_TRUE(p->error);
  EXPECT_EQ(p->error->details, "http1.headers_too_large");
}

TEST(Http1ParserLimits, ManyReadsOfOneHeaderBlockAreLinear) {
  // A 60 KiB header block arriving one byte per read must not be rescanned per read: with
  // a quadratic parser this is ~1.8e9 byte visits and takes seconds.
  std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
  while (req.size() < 59 * 1024) req += "X-Field: " + std::string(500, 'v') + "\r\n";
  req += "\r\n";
  Limits limits;
  limits.max_headers_count = 1000;
  Recorder rec;
  Parser parser(Mode::kRequest, limits, rec);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_FALSE(feedInPieces(parser, req, 1));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(rec.messages.size(), 1u);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

// ---------------------------------------------------------------------------------------------
// Responses.

std::unique_ptr<Parsed> parseResponse(std::string_view input, bool head = false,
                                      bool connect = false) {
  auto p = std::make_unique<Parsed>();
  Parser parser(Mode::kResponse, Limits{}, p->rec);
  parser.setNextResponseIsForHead(head);
  parser.setNextResponseIsForConnect(connect);
  p->error = feedAll(parser, input);
  return p;
}

TEST(Http1ParserResponse, ContentLength) {
  auto p = parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: s\r\n\r\nhello");
  ASSERT_FALSE(p->error);
  ASSERT_EQ(p->rec.messages.size(), 1u);
  const Message& m = p->rec.messages[0];
  EXPECT_EQ(m.headers, (Pairs{{":status", "200"}, {"content-length", "5"}, {"server", "s"}}));
  EXPECT_EQ(m.info.status, 200);
  EXPECT_EQ(m.body, "hello");
  EXPECT_TRUE(m.info.keep_alive);
  EXPECT_TRUE(m.complete);
}

TEST(Http1ParserResponse, EmptyReasonPhrase) {
  EXPECT_FALSE(parseResponse("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n")->error);
  EXPECT_FALSE(parseResponse("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")->error);
  EXPECT_FALSE(parseResponse("HTTP/1.0 200 Very Fine Indeed\r\nContent-Length: 0\r\n\r\n")->error);
}

TEST(Http1ParserResponse, HeadResponseHasNoBody) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  parser.setNextResponseIsForHead(true);
  const std::string input =
      "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ASSERT_FALSE(feedAll(parser, input));
  ASSERT_EQ(rec.messages.size(), 2u);
  EXPECT_FALSE(rec.messages[0].info.has_body);
  EXPECT_EQ(rec.messages[0].info.content_length, 1000u);
  EXPECT_TRUE(rec.messages[0].body.empty());
  // The HEAD flag applied to one response only.
  EXPECT_EQ(rec.messages[1].body, "ok");
}

TEST(Http1ParserResponse, HeadResponseWithChunkedHasNoBody) {
  auto p = parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true);
  ASSERT_FALSE(p->error);
  EXPECT_FALSE(p->rec.messages[0].info.has_body);
  EXPECT_TRUE(p->rec.messages[0].complete);
}

TEST(Http1ParserResponse, NoContentAndNotModified) {
  auto p = parseResponse(
      "HTTP/1.1 204 No Content\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
  ASSERT_FALSE(p->error);
  ASSERT_EQ(p->rec.messages.size(), 3u);
  EXPECT_FALSE(p->rec.messages[0].info.has_body);
  EXPECT_FALSE(p->rec.messages[1].info.has_body);
  EXPECT_EQ(p->rec.messages[2].body, "z");
}

TEST(Http1ParserResponse, InformationalThenFinal) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  parser.setNextResponseIsForHead(true);
  const std::string input =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
  ParseResult r = parser.parse(input);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.consumed, input.size());
  ASSERT_EQ(rec.informational.size(), 2u);
  EXPECT_EQ(rec.informational[0], (Pairs{{":status", "100"}}));
  EXPECT_EQ(rec.informational[1][1].first, "link");
  EXPECT_EQ(rec.informational_info[1].status, 103);
  ASSERT_EQ(rec.messages.size(), 1u);
  // The HEAD flag survived the interim responses.
  EXPECT_FALSE(rec.messages[0].info.has_body);
  EXPECT_TRUE(rec.messages[0].complete);
}

TEST(Http1ParserResponse, InformationalKeepsMessageInProgress) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  ASSERT_TRUE(parser.parse("HTTP/1.1 100 Continue\r\n\r\n").ok());
  EXPECT_TRUE(parser.messageInProgress());
  EXPECT_FALSE(parser.paused());
  EXPECT_TRUE(parser.onEof().has_value());
}

TEST(Http1ParserResponse, SwitchingProtocolsPausesForTheTunnel) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n";
  ParseResult r = parser.parse(head + "\x81\x02hi");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.consumed, head.size());
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_TRUE(rec.messages[0].info.upgrade);
  EXPECT_FALSE(rec.messages[0].info.has_body);
  EXPECT_TRUE(parser.paused());
}

TEST(Http1ParserResponse, ConnectSuccessIsATunnel) {
  auto p = parseResponse("HTTP/1.1 200 Connection established\r\n\r\n", false, true);
  ASSERT_FALSE(p->error);
  EXPECT_TRUE(p->rec.messages[0].info.upgrade);
  EXPECT_FALSE(p->rec.messages[0].info.has_body);
  // A refused CONNECT has an ordinary body.
  p = parseResponse("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", false, true);
  ASSERT_FALSE(p->error);
  EXPECT_FALSE(p->rec.messages[0].info.upgrade);
  EXPECT_EQ(p->rec.messages[0].body, "no");
}

TEST(Http1ParserResponse, ReadUntilClose) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  ASSERT_TRUE(parser.parse("HTTP/1.1 200 OK\r\nServer: s\r\n\r\nsome").ok());
  ASSERT_TRUE(parser.parse(" more bytes").ok());
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_TRUE(rec.messages[0].info.has_body);
  EXPECT_FALSE(rec.messages[0].info.keep_alive);
  EXPECT_FALSE(rec.messages[0].complete);
  EXPECT_FALSE(parser.onEof().has_value());
  EXPECT_TRUE(rec.messages[0].complete);
  EXPECT_EQ(rec.messages[0].body, "some more bytes");
}

TEST(Http1ParserResponse, ChunkedNotLastReadsUntilClose) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  ASSERT_TRUE(parser.parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw").ok());
  EXPECT_FALSE(rec.messages[0].info.chunked);
  EXPECT_FALSE(parser.onEof().has_value());
  EXPECT_EQ(rec.messages[0].body, "raw");
}

TEST(Http1ParserResponse, ChunkedWithTrailers) {
  auto p = parseResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\ngrpc-status: "
      "0\r\n"
      "\r\n");
  ASSERT_FALSE(p->error);
  EXPECT_TRUE(p->rec.messages[0].info.chunked);
  EXPECT_EQ(p->rec.messages[0].body, "ab");
  EXPECT_EQ(p->rec.messages[0].trailers, (Pairs{{"grpc-status", "0"}}));
}

TEST(Http1ParserResponse, TruncatedBodyIsAnErrorAtEof) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  ASSERT_TRUE(parser.parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").ok());
  auto err = parser.onEof();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->http_status, 502);
}

TEST(Http1ParserResponse, TruncatedChunkedIsAnErrorAtEof) {
  Recorder rec;
  Parser parser(Mode::kResponse, Limits{}, rec);
  ASSERT_TRUE(parser.parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab").ok());
  EXPECT_TRUE(parser.onEof().has_value());
}

TEST(Http1ParserResponse, Http10KeepAlive) {
  auto p = parseResponse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_FALSE(p->rec.messages[0].info.keep_alive);
  p = parseResponse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(p->rec.messages[0].info.keep_alive);
}

void expectResponseRejected(std::string_view input, std::string_view details) {
  SCOPED_TRACE(std::string(input));
  auto p = parseResponse(input);
  ASSERT_TRUE(p->error.has_value());
  EXPECT_EQ(p->error->http_status, 502);
  EXPECT_EQ(p->error->details, details);
}

TEST(Http1ParserResponse, Rejections) {
  expectResponseRejected("HTTP/1.1 20 OK\r\n\r\n", "http1.codec_error");
  expectResponseRejected("HTTP/1.1 2000 OK\r\n\r\n", "http1.codec_error");
  expectResponseRejected("HTTP/1.1 099 OK\r\n\r\n", "http1.codec_error");
  expectResponseRejected("HTTP/2.0 200 OK\r\n\r\n", "http1.codec_error");
  expectResponseRejected("HTTP/1.1  200 OK\r\n\r\n", "http1.codec_error");
  expectResponseRejected("HTTP/1.1 200 O\x01K\r\n\r\n", "http1.invalid_characters");
  expectResponseRejected("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "http1.codec_error");
  expectResponseRejected("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n folded\r\n\r\n",
                         "http1.codec_error");
  expectResponseRejected(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "http1.content_length_and_chunked_not_allowed");
  expectResponseRejected("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\n",
                         "http1.codec_error");
  expectResponseRejected("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
                         "http1.transfer_encoding_not_allowed");
  expectResponseRejected("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                         "http1.content_length_not_allowed");
  expectResponseRejected("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                         "http1.invalid_transfer_encoding");
}

TEST(Http1ParserResponse, NoContentWithZeroContentLengthAccepted) {
  EXPECT_FALSE(parseResponse("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")->error);
}

// ---------------------------------------------------------------------------------------------
// Random mutations: the parser must never crash, loop or report nonsense on hostile input.

TEST(Http1ParserFuzzish, SeededMutationsOfValidMessages) {
  const std::vector<std::string> seeds = {
      "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
      "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
      "GET http://a/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1\r\na\r\n0\r\n\r\n",
      "HTTP/1.0 200 OK\r\n\r\nuntil close",
  };
  static constexpr char kAlphabet[] = "\r\n :;,\t\"\\0123456789abcdefHTPGE/x=-\x00\x7f\xff";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);
  int completed = 0;
  int rejected = 0;
  std::mt19937 rng(20240601);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string input = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = input.empty() ? 0 : rng() % input.size();
      switch (rng() % 4) {
        case 0:
          if (!input.empty()) input[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          input.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          if (!input.empty()) input.erase(at, 1 + rng() % 3);
          break;
        case 3:
          input.insert(at, input.substr(at, rng() % 16));
          break;
      }
    }
    const Mode mode = input.rfind("HTTP/", 0) == 0 ? Mode::kResponse : Mode::kRequest;
    Recorder rec;
    Parser parser(mode, Limits{}, rec);
    const size_t step = 1 + rng() % 9;
    std::string_view rest = input;
    uint64_t offset = 0;
    while (!rest.empty()) {
      std::string_view piece = rest.substr(0, step);
      ParseResult r = parser.parse(piece);
      ASSERT_LE(r.consumed, piece.size());
      if (!r.ok()) {
        const ParseError& err = *r.error;
        EXPECT_TRUE(err.http_status == 400 || err.http_status == 431 || err.http_status == 501 ||
                    err.http_status == 505 || err.http_status == 502)
            << err.http_status;
        EXPECT_FALSE(err.details.empty());
        EXPECT_LE(err.offset, offset + piece.size());
        ++rejected;
        break;
      }
      offset += r.consumed;
      rest.remove_prefix(r.consumed);
      if (r.consumed < piece.size()) {
        ASSERT_TRUE(parser.paused());
        // After an upgrade the rest is not HTTP; stop like a manager would.
        if (!rec.messages.empty() && rec.messages.back().info.upgrade) break;
        parser.resume();
      } else if (parser.paused()) {
        parser.resume();
      }
    }
    (void)parser.onEof();
    if (!rec.messages.empty() && rec.messages.back().complete) ++completed;
    for (const Message& m : rec.messages) {
      if (m.info.content_length && m.complete && !m.info.chunked && m.info.has_body) {
        EXPECT_EQ(m.body.size(), *m.info.content_length);
      }
    }
  }
  // Both the accepting and the rejecting paths were exercised.
  EXPECT_GT(completed, 2000);
  EXPECT_GT(rejected, 2000);
  std::printf("mutations: %d completed a message, %d rejected\n", completed, rejected);
}

}  // namespace
}  // namespace sheave::http1
