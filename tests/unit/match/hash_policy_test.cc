#include "match/hash_policy.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <xxhash.h>

namespace sheave {
namespace {

HashPolicy policy(const std::string& text) {
  envoy::config::route::v3::RouteAction action;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &action)) << text;
  auto p = HashPolicy::create(action.hash_policy(), "hash_policy");
  EXPECT_TRUE(p.ok()) << p.error().message();
  return std::move(p).value();
}

uint64_t xx(std::string_view s) { return XXH64(s.data(), s.size(), 0); }

HeaderMap request(std::string path = "/") {
  HeaderMap h;
  h.set(":method", "GET");
  h.set(":path", path);
  h.set(":authority", "reviews");
  return h;
}

TEST(HashPolicyTest, HeaderValueIsHashed) {
  HashPolicy p = policy(R"(hash_policy { header { header_name: "X-User" } })");
  HeaderMap h = request();
  EXPECT_EQ(p.generateHash(h, nullptr, nullptr), std::nullopt) << "no header, no hash";
  h.set("x-user", "jason");
  EXPECT_EQ(p.generateHash(h, nullptr, nullptr), xx("jason"));
}

TEST(HashPolicyTest, HeaderRegexRewrite) {
  HashPolicy p = policy(R"(hash_policy { header { header_name: "x-session"
      regex_rewrite { pattern { regex: "-.*" } substitution: "" } } })");
  HeaderMap h = request();
  h.set("x-session", "abc-123");
  EXPECT_EQ(p.generateHash(h, nullptr, nullptr), xx("abc"));
}

TEST(HashPolicyTest, SourceIpAndQueryParameter) {
  HashPolicy ip = policy(R"(hash_policy { connection_properties { source_ip: true } })");
  const Address remote = Address::parse("198.18.0.7", 40000).value();
  EXPECT_EQ(ip.generateHash(request(), &remote, nullptr), xx("198.18.0.7"));

  HashPolicy q = policy(R"(hash_policy { query_parameter { name: "user" } })");
  EXPECT_EQ(q.generateHash(request("/p?a=1&user=kim"), nullptr, nullptr), xx("kim"));
  EXPECT_EQ(q.generateHash(request("/p?a=1"), nullptr, nullptr), std::nullopt);
}

TEST(HashPolicyTest, PoliciesCombineAndTerminalStops) {
  HashPolicy both = policy(R"(hash_policy { header { header_name: "a" } }
                              hash_policy { header { header_name: "b" } })");
  HeaderMap h = request();
  h.set("a", "1");
  h.set("b", "2");
  const uint64_t first = xx("1");
  EXPECT_EQ(both.generateHash(h, nullptr, nullptr), ((first << 1) | (first >> 63)) ^ xx("2"));

  HashPolicy terminal = policy(R"(hash_policy { header { header_name: "a" } terminal: true }
                                  hash_policy { header { header_name: "b" } })");
  EXPECT_EQ(terminal.generateHash(h, nullptr, nullptr), xx("1"));
  h.remove("a");
  EXPECT_EQ(terminal.generateHash(h, nullptr, nullptr), xx("2")) << "terminal without a value";
}

TEST(HashPolicyTest, CookieIsReadOrGenerated) {
  HashPolicy p = policy(R"(hash_policy { cookie { name: "session" ttl { seconds: 60 } path: "/"
                                                  attributes { name: "SameSite" value: "Lax" } } })");
  HeaderMap h = request();
  h.add("cookie", "a=b; session=\"s1\"");
  int generated = 0;
  auto add = [&](const HashPolicyEntry& c) {
    ++generated;
    EXPECT_EQ(makeSetCookieValue(c, "v"),
              "session=\"v\"; Max-Age=60; Path=/; SameSite=Lax; HttpOnly");
    return std::string("v");
  };
  EXPECT_EQ(p.generateHash(h, nullptr, add), xx("s1"));
  EXPECT_EQ(generated, 0);
  EXPECT_EQ(p.generateHash(request(), nullptr, add), xx("v"));
  EXPECT_EQ(generated, 1);

  HashPolicy no_ttl = policy(R"(hash_policy { cookie { name: "session" } })");
  EXPECT_EQ(no_ttl.generateHash(request(), nullptr, add), std::nullopt)
      << "without a ttl no cookie is generated";
  EXPECT_EQ(generated, 1);
}

TEST(HashPolicyTest, CookieParsing) {
  HeaderMap h;
  h.add("cookie", "x=1;y=2");
  h.add("cookie", " z = \"3\" ");
  EXPECT_EQ(cookieValue(h, "y"), "2");
  EXPECT_EQ(cookieValue(h, "z"), "3");
  EXPECT_EQ(cookieValue(h, "w"), std::nullopt);
}

TEST(HashPolicyTest, BadConfigIsAnError) {
  envoy::config::route::v3::RouteAction action;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"(hash_policy { cookie { name: "bad name" } })", &action));
  auto p = HashPolicy::create(action.hash_policy(), "route.hash_policy");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("route.hash_policy[0].cookie.name"), std::string::npos)
      << p.error().message();
  action.Clear();
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"(hash_policy { filter_state { key: "k" } })", &action));
  EXPECT_FALSE(HashPolicy::create(action.hash_policy(), "hash_policy").ok());
}

}  // namespace
}  // namespace sheave
