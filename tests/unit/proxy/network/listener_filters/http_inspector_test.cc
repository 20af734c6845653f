#include "proxy/network/listener_filters/http_inspector.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sheave {
namespace {

using State = HttpInspector::State;

struct Outcome {
  State state;
  std::string protocol;
  size_t inspected;
};

Outcome inspect(const std::vector<std::string_view>& pieces) {
  HttpInspector inspector;
  State state = State::kNeedMoreData;
  for (auto piece : pieces) state = inspector.onData(piece);
  return {state, std::string(inspector.applicationProtocol()), inspector.bytesInspected()};
}

Outcome inspect(std::string_view all) { return inspect(std::vector<std::string_view>{all}); }

// The same answer whatever way the bytes are split.
void expectEverySplit(std::string_view input, State want, std::string_view protocol) {
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Outcome o = inspect({input.substr(0, cut), input.substr(cut)});
    EXPECT_EQ(o.state, want) << "cut " << cut << " of " << input;
    EXPECT_EQ(o.protocol, protocol);
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  EXPECT_EQ(inspect(bytes).state, want);
}

TEST(HttpInspectorTest, Http1Methods) {
  for (std::string method : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                             "PATCH", "PROPFIND", "M-SEARCH", "PURGE", "BREW"}) {
    const std::string target = method == "CONNECT" ? "example.com:443" : "/a/b?c=d";
    const std::string line = method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    Outcome o = inspect(line);
    EXPECT_EQ(o.state, State::kHttp1) << method;
    EXPECT_EQ(o.protocol, "http/1.1");
    // Decided at the end of the request line, headers not needed.
    EXPECT_EQ(o.inspected, method.size() + 1 + target.size() + 11);
  }
  EXPECT_EQ(inspect("OPTIONS * HTTP/1.1\r\n").protocol, "http/1.1");
  EXPECT_EQ(inspect("GET http://a.test/ HTTP/1.1\r\n").protocol, "http/1.1");
}

TEST(HttpInspectorTest, Http10AndOtherMinorVersions) {
  EXPECT_EQ(inspect("GET / HTTP/1.0\r\n").protocol, "http/1.0");
  EXPECT_EQ(inspect("GET / HTTP/1.2\r\n").protocol, "http/1.0");  // as Envoy: not 1.1 -> 1.0
}

TEST(HttpInspectorTest, EverySplitGivesTheSameAnswer) {
  expectEverySplit("GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", State::kHttp1, "http/1.1");
  expectEverySplit("POST /x HTTP/1.0\r\n", State::kHttp1, "http/1.0");
  expectEverySplit(std::string_view("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04", 28),
                   State::kHttp2, "h2c");
  expectEverySplit("\x16\x03\x01\x02\x00\x01", State::kNotHttp, "");
}

TEST(HttpInspectorTest, Http2Preface) {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Outcome o = inspect(preface);
  EXPECT_EQ(o.state, State::kHttp2);
  EXPECT_EQ(o.protocol, "h2c");
  EXPECT_EQ(o.inspected, 24u);
  for (size_t len = 0; len < preface.size(); ++len) {
    EXPECT_EQ(inspect(std::string_view(preface).substr(0, len)).state, State::kNeedMoreData) << len;
  }
  // A request line that starts like the preface but diverges.
  EXPECT_EQ(inspect("PRI * HTTP/2.0\r\n\r\nXX").state, State::kNotHttp);
  EXPECT_EQ(inspect("PRI * HTTP/1.1\r\n").state, State::kHttp1);
}

TEST(HttpInspectorTest, PartialRequestLineNeedsMoreData) {
  const std::string line = "GET /path HTTP/1.1\r\n";
  for (size_t len = 0; len < line.size(); ++len) {
    EXPECT_EQ(inspect(std::string_view(line).substr(0, len)).state, State::kNeedMoreData) << len;
  }
}

TEST(HttpInspectorTest, GarbageIsRuledOutEarly) {
  EXPECT_EQ(inspect("\x16\x03\x01").inspected, 1u);  // a TLS record: not HTTP at byte one
  struct Case {
    std::string input;
    size_t decided_at;
  };
  for (const Case& c : std::vector<Case>{
           {std::string(1, '\0'), 1},
           {" GET / HTTP/1.1\r\n", 1},
           {"GET  / HTTP/1.1\r\n", 5},  // empty target
           {"GET / HTTP/2.0\r\n", 12},  // not HTTP/1.x
           {"GET / http/1.1\r\n", 7},   // version is case-sensitive
           {"GET / HTTP/1.x\r\n", 14},
           {"GET / HTTP/1.1\n", 15},  // bare LF
           {"GET / HTTP/1.1\r\r", 16},
           {"GET / HTTP/1.11\r\n", 15},
           {"GET /a\x01 HTTP/1.1\r\n", 7},   // control byte in target
           {"G(T / HTTP/1.1\r\n", 2},        // not a token
           {"GET\r\n", 4},                   // HTTP/0.9 style
           {"SSH-2.0-OpenSSH_9.2\r\n", 20},  // a token, then CR
       }) {
    Outcome o = inspect(c.input);
    EXPECT_EQ(o.state, State::kNotHttp) << c.input;
    EXPECT_EQ(o.inspected, c.decided_at) << c.input;
    EXPECT_EQ(o.protocol, "");
  }
}

TEST(HttpInspectorTest, GivesUpAfterTheBound) {
  const std::string long_target = "GET /" + std::string(HttpInspector::kMaxInspectSize, 'a');
  HttpInspector inspector;
  EXPECT_EQ(inspector.onData(long_target), State::kNotHttp);
  EXPECT_EQ(inspector.bytesInspected(), HttpInspector::kMaxInspectSize);
  EXPECT_EQ(inspector.onData(" HTTP/1.1\r\n"), State::kNotHttp);  // final

  // Just inside the bound is still fine.
  const std::string fits =
      "GET /" + std::string(HttpInspector::kMaxInspectSize - 16, 'a') + " HTTP/1.1\r\n";
  ASSERT_LE(fits.size(), HttpInspector::kMaxInspectSize);
  EXPECT_EQ(inspect(fits).state, State::kHttp1);
}

}  // namespace
}  // namespace sheave
