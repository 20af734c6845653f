#include "proxy/config/yaml_json.h"

#include <gtest/gtest.h>

#include <string>

namespace sheave::config {
namespace {

std::string json(std::string_view yaml) {
  auto r = yamlToJson(yaml);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : "";
}

TEST(YamlToJson, PlainScalarsGetTypes) {
  EXPECT_EQ(json("a: true\nb: False\nc: null\nd: ~\ne:\nf: 42\ng: -7\nh: 1.5\ni: 2e3\n"),
            R"({"a":true,"b":false,"c":null,"d":null,"e":null,"f":42,"g":-7,"h":1.5,"i":2000})");
}

TEST(YamlToJson, QuotedScalarsStayStrings) {
  EXPECT_EQ(json("a: \"true\"\nb: '42'\nc: \"null\"\nd: \"\"\n"),
            R"({"a":"true","b":"42","c":"null","d":""})");
}

TEST(YamlToJson, OtherPlainScalarsAreStrings) {
  EXPECT_EQ(json("timeout: 30s\nhost: 0.0.0.0\nversion: 1.2.3\nyes: yes\n"),
            R"({"timeout":"30s","host":"0.0.0.0","version":"1.2.3","yes":"yes"})");
}

TEST(YamlToJson, IntegersKeepAllDigitsAndNormalise) {
  EXPECT_EQ(json("[18446744073709551615, 0x1f, 0o17, +5, 007, -0]"),
            "[18446744073709551615,31,15,5,7,0]");
}

TEST(YamlToJson, FloatsBecomeValidJson) { EXPECT_EQ(json("[.5, 1., -2.50]"), "[0.5,1,-2.5]"); }

TEST(YamlToJson, InfinityAndNanStayStrings) {
  EXPECT_EQ(json("[.inf, .nan]"), R"([".inf",".nan"])");
}

TEST(YamlToJson, StringsAreEscaped) {
  EXPECT_EQ(json("a: \"q\\\"b\\\\s\\tt\\nn\\u0001\"\nb: héllo\n"),
            "{\"a\":\"q\\\"b\\\\s\\tt\\nn\\u0001\",\"b\":\"héllo\"}");
}

TEST(YamlToJson, BlockScalarsAreStrings) {
  EXPECT_EQ(json("a: |\n  12\nb: >\n  true\n"), R"({"a":"12\n","b":"true\n"})");
}

TEST(YamlToJson, FlowAndBlockCollections) {
  EXPECT_EQ(json("domains: [\"*\"]\nroutes:\n- match: {prefix: /}\n  route: {cluster: a}\n"),
            R"({"domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"a"}}]})");
}

TEST(YamlToJson, AliasesAndMergeKeys) {
  EXPECT_EQ(json("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n"),
            R"({"base":{"x":1,"y":2},"use":{"x":1,"y":2},"merged":{"y":3,"x":1}})");
  EXPECT_EQ(json("a: &a {p: 1}\nb: &b {q: 2}\nc: {<<: [*a, *b]}\n"),
            R"({"a":{"p":1},"b":{"q":2},"c":{"p":1,"q":2}})");
}

TEST(YamlToJson, EmptyDocumentIsNull) {
  EXPECT_EQ(json(""), "null");
  EXPECT_EQ(json("# just a comment\n"), "null");
}

TEST(YamlToJson, OneDocumentAmongSeparatorsIsFine) {
  EXPECT_EQ(json("---\na: 1\n...\n"), R"({"a":1})");
}

TEST(YamlToJson, SeveralDocumentsAreAnError) {
  auto r = yamlToJson("a: 1\n---\nb: 2\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("line 3"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("several YAML documents"), std::string::npos);
}

TEST(YamlToJson, SyntaxErrorsCarryLineAndColumn) {
  auto r = yamlToJson("a:\n  b: 1\n c: [1, 2\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("line "), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("column "), std::string::npos) << r.error().message();
}

TEST(YamlToJson, DuplicateKeysAreAnError) {
  auto r = yamlToJson("a: 1\nb: 2\na: 3\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "line 3, column 1: duplicate key 'a'");
}

TEST(YamlToJson, NonScalarKeysAreAnError) {
  auto r = yamlToJson("? [a, b]\n: 1\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("map keys must be scalars"), std::string::npos);
}

TEST(YamlToJson, AliasExplosionIsBounded) {
  std::string yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c) {
    yaml += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) {
      yaml += std::string(i ? ", " : "") + "*" + prev;
    }
    yaml += "]\n";
    prev = c;
  }
  auto r = yamlToJson(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("16 MiB"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace sheave::config
