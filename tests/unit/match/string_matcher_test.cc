#include "match/string_matcher.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

namespace sheave {
namespace {

using envoy::type::matcher::v3::StringMatcher;

sheave::StringMatcher make(const std::string& text) {
  StringMatcher proto;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &proto)) << text;
  auto m = sheave::StringMatcher::create(proto);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
  return std::move(m).value();
}

Error makeError(const std::string& text) {
  StringMatcher proto;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &proto)) << text;
  auto m = sheave::StringMatcher::create(proto);
  EXPECT_FALSE(m.ok());
  return std::move(m).error();
}

TEST(StringMatcherTest, Exact) {
  auto m = make(R"(exact: "Foo")");
  EXPECT_TRUE(m.match("Foo"));
  EXPECT_FALSE(m.match("foo"));
  EXPECT_FALSE(m.match("Foo "));
  auto ic = make(R"(exact: "Foo" ignore_case: true)");
  EXPECT_TRUE(ic.match("fOO"));
  EXPECT_FALSE(ic.match("fOOd"));
  // An empty exact pattern matches only the empty string.
  auto empty = make(R"(exact: "")");
  EXPECT_TRUE(empty.match(""));
  EXPECT_FALSE(empty.match("x"));
}

TEST(StringMatcherTest, PrefixSuffixContains) {
  auto p = make(R"(prefix: "/Api")");
  EXPECT_TRUE(p.match("/Api/v1"));
  EXPECT_FALSE(p.match("/api/v1"));
  EXPECT_TRUE(make(R"(prefix: "/Api" ignore_case: true)").match("/aPI/v1"));

  auto s = make(R"(suffix: ".JSON")");
  EXPECT_TRUE(s.match("a.JSON"));
  EXPECT_FALSE(s.match("a.json"));
  EXPECT_TRUE(make(R"(suffix: ".JSON" ignore_case: true)").match("a.json"));
  EXPECT_FALSE(make(R"(suffix: "long-suffix")").match("fix"));

  auto c = make(R"(contains: "Mid")");
  EXPECT_TRUE(c.match("aMidb"));
  EXPECT_FALSE(c.match("amidb"));
  auto ci = make(R"(contains: "Mid" ignore_case: true)");
  EXPECT_TRUE(ci.match("aMIDb"));
  EXPECT_TRUE(ci.match("mid"));
  EXPECT_FALSE(ci.match("mi"));
}

TEST(StringMatcherTest, RegexIsAFullMatchAndIgnoresIgnoreCase) {
  auto r = make(R"(safe_regex { regex: "a[0-9]+" })");
  EXPECT_TRUE(r.match("a123"));
  EXPECT_FALSE(r.match("xa123"));
  EXPECT_FALSE(r.match("a123x"));
  // ignore_case does not apply to regexes (Envoy's rule); use (?i) instead.
  auto r2 = make(R"(safe_regex { regex: "abc" } ignore_case: true)");
  EXPECT_FALSE(r2.match("ABC"));
  EXPECT_TRUE(make(R"(safe_regex { regex: "(?i)abc" })").match("ABC"));
}

TEST(StringMatcherTest, Errors) {
  Error e = makeError(R"(safe_regex { regex: "a(b" })");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(e.message().find("safe_regex.regex: invalid regex 'a(b': "), std::string::npos)
      << e.message();
  EXPECT_NE(e.message().find("missing )"), std::string::npos) << e.message();
  EXPECT_NE(makeError(R"(prefix: "")").message().find("prefix"), std::string::npos);
  EXPECT_NE(makeError("").message().find("required"), std::string::npos);
}

TEST(RegexSubstitutionTest, ReplacesAllWithGroups) {
  envoy::type::matcher::v3::RegexMatchAndSubstitute proto;
  proto.mutable_pattern()->set_regex("^/service/([^/]+)(/.*)$");
  proto.set_substitution("\\2/instance/\\1");
  auto s = RegexSubstitution::create(proto);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->replaceAll("/service/foo/v1/api"), "/v1/api/instance/foo");

  proto.mutable_pattern()->set_regex("one");
  proto.set_substitution("two");
  EXPECT_EQ(RegexSubstitution::create(proto)->replaceAll("/xxx/one/yyy/one"), "/xxx/two/yyy/two");

  proto.set_substitution("\\3");
  auto bad = RegexSubstitution::create(proto);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("substitution"), std::string::npos);
}

}  // namespace
}  // namespace sheave
