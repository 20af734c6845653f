#include "proxy/http/http2/header_translation.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sheave::http2 {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs pairs(const HeaderMap& h) {
  Pairs out;
  for (const auto& e : h) out.emplace_back(e.name, e.value);
  return out;
}

HeaderMap make(const Pairs& fields) {
  HeaderMap h;
  for (const auto& [n, v] : fields) h.add(n, v);
  return h;
}

TEST(HeaderTranslationTest, ConnectionSpecificHeaders) {
  EXPECT_TRUE(isConnectionSpecificHeader("connection", "close"));
  EXPECT_TRUE(isConnectionSpecificHeader("keep-alive", "5"));
  EXPECT_TRUE(isConnectionSpecificHeader("proxy-connection", "x"));
  EXPECT_TRUE(isConnectionSpecificHeader("transfer-encoding", "chunked"));
  EXPECT_TRUE(isConnectionSpecificHeader("upgrade", "websocket"));
  EXPECT_TRUE(isConnectionSpecificHeader("te", "gzip"));
  EXPECT_FALSE(isConnectionSpecificHeader("te", "trailers"));
  EXPECT_FALSE(isConnectionSpecificHeader("te", " Trailers "));
  EXPECT_FALSE(isConnectionSpecificHeader("content-length", "5"));
  EXPECT_FALSE(isConnectionSpecificHeader("host", "a"));
}

TEST(HeaderTranslationTest, Http2RequestToHttp1) {
  HeaderMap h = make({{":method", "GET"},
                      {":scheme", "https"},
                      {":authority", "a.example"},
                      {":path", "/p"},
                      {"cookie", "a=1"},
                      {"te", "trailers"},
                      {"cookie", "b=2"},
                      {"accept", "*/*"}});
  requestHeadersToHttp1(h);
  EXPECT_EQ(pairs(h), (Pairs{{":method", "GET"},
                             {":scheme", "https"},
                             {":authority", "a.example"},
                             {":path", "/p"},
                             {"cookie", "a=1; b=2"},
                             {"accept", "*/*"}}));
}

TEST(HeaderTranslationTest, Http2RequestWithOnlyHostToHttp1) {
  HeaderMap h = make({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h"}});
  requestHeadersToHttp1(h);
  EXPECT_EQ(pairs(h),
            (Pairs{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "h"}}));
}

TEST(HeaderTranslationTest, Http1RequestToHttp2) {
  // As the HTTP/1 parser delivers it: no :scheme, Host already folded into :authority.
  HeaderMap h = make({{":method", "POST"},
                      {":path", "/upload"},
                      {":authority", "a.example"},
                      {"connection", "keep-alive, x-hop"},
                      {"x-hop", "1"},
                      {"keep-alive", "timeout=5"},
                      {"transfer-encoding", "chunked"},
                      {"te", "trailers, deflate"},
                      {"upgrade", "h2c"},
                      {"proxy-connection", "keep-alive"},
                      {"content-type", "text/plain"}});
  requestHeadersToHttp2(h, "http");
  EXPECT_EQ(pairs(h), (Pairs{{":method", "POST"},
                             {":path", "/upload"},
                             {":authority", "a.example"},
                             {":scheme", "http"},
                             {"content-type", "text/plain"},
                             {"te", "trailers"}}));
}

TEST(HeaderTranslationTest, Http1ConnectGetsNoScheme) {
  HeaderMap h = make({{":method", "CONNECT"}, {":authority", "a:443"}});
  requestHeadersToHttp2(h, "http");
  EXPECT_FALSE(h.has(":scheme"));
  EXPECT_EQ(h.authority(), "a:443");
}

TEST(HeaderTranslationTest, Responses) {
  HeaderMap h1 = make({{":status", "200"},
                       {"connection", "close"},
                       {"transfer-encoding", "chunked"},
                       {"set-cookie", "a=1"},
                       {"set-cookie", "b=2"},
                       {"content-type", "x"}});
  responseHeadersToHttp2(h1);
  EXPECT_EQ(pairs(h1), (Pairs{{":status", "200"},
                              {"set-cookie", "a=1"},
                              {"set-cookie", "b=2"},
                              {"content-type", "x"}}));
  HeaderMap h2 = make({{":status", "404"}, {"content-length", "3"}});
  responseHeadersToHttp1(h2);
  EXPECT_EQ(pairs(h2), (Pairs{{":status", "404"}, {"content-length", "3"}}));
}

TEST(HeaderTranslationTest, Trailers) {
  HeaderMap t = make({{"grpc-status", "0"}, {":status", "200"}, {"connection", "x"}});
  trailersForForwarding(t);
  EXPECT_EQ(pairs(t), (Pairs{{"grpc-status", "0"}}));
}

}  // namespace
}  // namespace sheave::http2
