#include "match/header_matcher.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

namespace sheave {
namespace {

HeaderMatcher make(const std::string& text) {
  envoy::config::route::v3::HeaderMatcher proto;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &proto)) << text;
  auto m = HeaderMatcher::create(proto);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
  return std::move(m).value();
}

HeaderMap headers(std::initializer_list<std::pair<std::string, std::string>> list) {
  HeaderMap h;
  for (const auto& [k, v] : list) h.add(k, v);
  return h;
}

TEST(HeaderMatcherTest, ExactAndNameCase) {
  auto m = make(R"(name: "X-Env" exact_match: "prod")");
  EXPECT_EQ(m.name(), "x-env");
  EXPECT_TRUE(m.match(headers({{"x-env", "prod"}})));
  EXPECT_FALSE(m.match(headers({{"x-env", "Prod"}})));
  EXPECT_FALSE(m.match(headers({})));
  // Envoy's legacy rule: an empty exact_match only tests presence.
  auto any = make(R"(name: "x-env" exact_match: "")");
  EXPECT_TRUE(any.match(headers({{"x-env", "whatever"}})));
  EXPECT_FALSE(any.match(headers({})));
}

TEST(HeaderMatcherTest, MultipleValuesAreJoinedWithComma) {
  auto m = make(R"(name: "x-a" exact_match: "1,2")");
  EXPECT_TRUE(m.match(headers({{"x-a", "1"}, {"x-b", "z"}, {"x-a", "2"}})));
  EXPECT_FALSE(m.match(headers({{"x-a", "1"}})));
  auto first_only = make(R"(name: "x-a" exact_match: "1")");
  EXPECT_FALSE(first_only.match(headers({{"x-a", "1"}, {"x-a", "2"}})));
}

TEST(HeaderMatcherTest, RegexPrefixSuffixContainsStringMatch) {
  auto re = make(R"(name: "x" safe_regex_match { regex: "\\d{3}" })");
  EXPECT_TRUE(re.match(headers({{"x", "123"}})));
  EXPECT_FALSE(re.match(headers({{"x", "1234"}})));
  EXPECT_TRUE(make(R"(name: "x" prefix_match: "ab")").match(headers({{"x", "abc"}})));
  EXPECT_FALSE(make(R"(name: "x" prefix_match: "ab")").match(headers({{"x", "cab"}})));
  EXPECT_TRUE(make(R"(name: "x" suffix_match: "bc")").match(headers({{"x", "abc"}})));
  EXPECT_TRUE(make(R"(name: "x" contains_match: "b")").match(headers({{"x", "abc"}})));
  EXPECT_FALSE(make(R"(name: "x" contains_match: "d")").match(headers({{"x", "abc"}})));
  auto sm = make(R"(name: "x" string_match { exact: "ABC" ignore_case: true })");
  EXPECT_TRUE(sm.match(headers({{"x", "abc"}})));
  auto method = make(R"(name: ":method" string_match { exact: "POST" })");
  EXPECT_TRUE(method.match(headers({{":method", "POST"}})));
}

TEST(HeaderMatcherTest, Range) {
  auto m = make(R"(name: "x" range_match { start: -10 end: 0 })");
  EXPECT_TRUE(m.match(headers({{"x", "-1"}})));
  EXPECT_TRUE(m.match(headers({{"x", "-10"}})));
  EXPECT_FALSE(m.match(headers({{"x", "0"}})));
  EXPECT_FALSE(m.match(headers({{"x", "somestring"}})));
  EXPECT_FALSE(m.match(headers({{"x", "-9.5"}})));
  EXPECT_FALSE(m.match(headers({{"x", "-1somestring"}})));
  EXPECT_FALSE(m.match(headers({{"x", ""}})));
  EXPECT_TRUE(make(R"(name: "x" range_match { start: 1 end: 10 })").match(headers({{"x", "+5"}})));
  EXPECT_EQ(parseInt64Strict("+-5"), std::nullopt);
  EXPECT_EQ(parseInt64Strict("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(parseInt64Strict("9223372036854775808"), std::nullopt);
}

TEST(HeaderMatcherTest, PresentAndAbsent) {
  auto present = make(R"(name: "x" present_match: true)");
  auto absent = make(R"(name: "x" present_match: false)");
  auto defaulted = make(R"(name: "x")");  // no specifier: presence
  HeaderMap with = headers({{"x", ""}});
  HeaderMap without = headers({{"y", "1"}});
  EXPECT_TRUE(present.match(with));
  EXPECT_FALSE(present.match(without));
  EXPECT_FALSE(absent.match(with));
  EXPECT_TRUE(absent.match(without));
  EXPECT_TRUE(defaulted.match(with));
  EXPECT_FALSE(defaulted.match(without));
  auto inverted_present = make(R"(name: "x" present_match: true invert_match: true)");
  EXPECT_FALSE(inverted_present.match(with));
  EXPECT_TRUE(inverted_present.match(without));
}

TEST(HeaderMatcherTest, InvertAndMissingHeaders) {
  auto inv = make(R"(name: "x" safe_regex_match { regex: "\\d{3}" } invert_match: true)");
  EXPECT_TRUE(inv.match(headers({{"x", "1234"}})));
  EXPECT_FALSE(inv.match(headers({{"x", "123"}})));
  // A missing header never matches a value matcher, even inverted.
  EXPECT_FALSE(inv.match(headers({})));

  // Envoy's documented examples for treat_missing_header_as_empty.
  auto range_inv_missing_empty =
      make(R"(name: "header1" range_match { start: 0 end: 10 } invert_match: true
              treat_missing_header_as_empty: true)");
  EXPECT_TRUE(range_inv_missing_empty.match(headers({})));
  auto range_inv = make(R"(name: "header2" range_match { start: 0 end: 10 } invert_match: true)");
  EXPECT_FALSE(range_inv.match(headers({})));
  auto empty_re = make(R"(name: "header3" string_match { safe_regex { regex: "^$" } }
                          treat_missing_header_as_empty: true)");
  EXPECT_TRUE(empty_re.match(headers({})));
  auto empty_re_strict = make(R"(name: "header4" string_match { safe_regex { regex: "^$" } })");
  EXPECT_FALSE(empty_re_strict.match(headers({})));
}

TEST(HeaderMatcherTest, Errors) {
  envoy::config::route::v3::HeaderMatcher proto;
  EXPECT_FALSE(HeaderMatcher::create(proto).ok());  // no name
  proto.set_name("x");
  proto.mutable_safe_regex_match()->set_regex("(");
  auto e = HeaderMatcher::create(proto);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message().rfind("safe_regex_match.regex: invalid regex '('", 0), 0u)
      << e.error().message();
  proto.set_prefix_match("");
  EXPECT_FALSE(HeaderMatcher::create(proto).ok());
  proto.mutable_range_match()->set_start(5);
  proto.mutable_range_match()->set_end(5);
  EXPECT_FALSE(HeaderMatcher::create(proto).ok());
}

TEST(QueryParametersTest, ParseAndFirstValue) {
  auto q = QueryParameters::parse("/p?a=1&b&c=x=y&a=2#frag");
  ASSERT_EQ(q.all().size(), 4u);
  EXPECT_EQ(q.first("a"), "1");
  EXPECT_EQ(q.first("b"), "");
  EXPECT_EQ(q.first("c"), "x=y");
  EXPECT_EQ(q.first("d"), std::nullopt);
  EXPECT_TRUE(QueryParameters::parse("/p").all().empty());
  EXPECT_TRUE(QueryParameters::parse("/p?").all().empty());
}

TEST(QueryParameterMatcherTest, PresentAndStringMatchWithoutDecoding) {
  envoy::config::route::v3::QueryParameterMatcher proto;
  proto.set_name("debug");
  proto.set_present_match(true);
  auto present = QueryParameterMatcher::create(proto);
  ASSERT_TRUE(present.ok());
  EXPECT_TRUE(present->match(QueryParameters::parse("/x?debug")));
  EXPECT_TRUE(present->match(QueryParameters::parse("/x?a=1&debug=0")));
  EXPECT_FALSE(present->match(QueryParameters::parse("/x?debugger=1")));

  proto.mutable_string_match()->set_exact("a%20b");
  auto exact = QueryParameterMatcher::create(proto);
  ASSERT_TRUE(exact.ok());
  // Route matching compares the raw query text, as Envoy does.
  EXPECT_TRUE(exact->match(QueryParameters::parse("/x?debug=a%20b")));
  EXPECT_FALSE(exact->match(QueryParameters::parse("/x?debug=a b")));
  // Only the first value counts.
  EXPECT_FALSE(exact->match(QueryParameters::parse("/x?debug=no&debug=a%20b")));

  proto.mutable_string_match()->mutable_safe_regex()->set_regex("[");
  auto bad = QueryParameterMatcher::create(proto);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().rfind("string_match.safe_regex.regex: invalid regex", 0), 0u);
}

}  // namespace
}  // namespace sheave
