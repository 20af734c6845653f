#include "proxy/filters/local_ratelimit/local_ratelimit_filter.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include "match/rate_limit_policy.h"

namespace sheave::local_ratelimit {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucketTest, StartsFullAndFillsPerInterval) {
  const auto t0 = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket bucket(3, 2, 100ms, t0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.consume(t0));
  EXPECT_FALSE(bucket.consume(t0));
  EXPECT_EQ(bucket.untilNextFill(t0 + 40ms), 60ms);
  EXPECT_FALSE(bucket.consume(t0 + 99ms));
  EXPECT_EQ(bucket.remaining(t0 + 100ms), 2u) << "one fill adds tokens_per_fill";
  EXPECT_EQ(bucket.remaining(t0 + 1s), 3u) << "never above max_tokens";
  // Fills keep their phase: the next one is due at t0 + 1.1s.
  EXPECT_EQ(bucket.untilNextFill(t0 + 1s + 30ms), 70ms);
}

RateLimitPolicy policy(const std::string& text) {
  envoy::config::route::v3::RateLimit proto;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &proto)) << text;
  auto p = RateLimitPolicy::create(proto, "rate_limits[0]");
  EXPECT_TRUE(p.ok()) << p.error().message();
  return std::move(p).value();
}

TEST(RateLimitPolicyTest, ActionsComposeOneDescriptor) {
  RateLimitPolicy p = policy(R"(
    actions { generic_key { descriptor_value: "api" } }
    actions { request_headers { header_name: "X-User" descriptor_key: "user" } }
    actions { remote_address {} }
    actions { destination_cluster {} })");
  HeaderMap h;
  h.set("x-user", "alice");
  const Address remote = Address::parse("198.18.0.9", 5555).value();
  auto d = p.descriptor(h, &remote, "reviews");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d, (RateLimitDescriptor{{"generic_key", "api"},
                                     {"user", "alice"},
                                     {"remote_address", "198.18.0.9"},
                                     {"destination_cluster", "reviews"}}));
  h.remove("x-user");
  EXPECT_FALSE(p.descriptor(h, &remote, "reviews").has_value())
      << "a missing header: no descriptor";
}

TEST(RateLimitPolicyTest, SkipIfAbsentAndHeaderValueMatch) {
  RateLimitPolicy skip = policy(R"(
    actions { request_headers { header_name: "x-user" descriptor_key: "user" skip_if_absent: true } }
    actions { generic_key { descriptor_value: "v" descriptor_key: "k" } })");
  EXPECT_EQ(*skip.descriptor(HeaderMap(), nullptr, ""), (RateLimitDescriptor{{"k", "v"}}));

  RateLimitPolicy match = policy(R"(
    actions { header_value_match { descriptor_value: "post" expect_match { value: false }
                                   headers { name: ":method" string_match { exact: "GET" } } } })");
  HeaderMap get;
  get.set(":method", "GET");
  HeaderMap post;
  post.set(":method", "POST");
  EXPECT_FALSE(match.descriptor(get, nullptr, "").has_value());
  EXPECT_EQ(*match.descriptor(post, nullptr, ""), (RateLimitDescriptor{{"header_match", "post"}}));
}

TEST(RateLimitPolicyTest, BadConfigNamesTheField) {
  envoy::config::route::v3::RateLimit proto;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"(actions { generic_key { descriptor_value: "" } })", &proto));
  auto p = RateLimitPolicy::create(proto, "rate_limits[0]");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("rate_limits[0].actions[0].generic_key.descriptor_value"),
            std::string::npos)
      << p.error().message();
}

}  // namespace
}  // namespace sheave::local_ratelimit
