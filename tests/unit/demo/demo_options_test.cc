#include "demo/demo_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace sheave::demo {
namespace {

using ::testing::HasSubstr;

struct Env {
  std::map<std::string, std::string> vars;
  EnvLookup lookup() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

Result<DemoOptions> parse(std::vector<const char*> args, const Env& env = {}) {
  args.insert(args.begin(), "sheave-demo-app");
  return parseDemoOptions(static_cast<int>(args.size()), args.data(), env.lookup());
}

TEST(DemoOptionsTest, FlagsAndDefaults) {
  auto o =
      parse({"--name", "reviews", "--version", "v2", "--listen", "127.0.0.1:9081", "--upstream",
             "http://ratings:9080/ratings/0", "--latency", "250ms", "--fail-fraction", "0.5"});
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->name, "reviews");
  EXPECT_EQ(o->version, "v2");
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 9081);
  EXPECT_EQ(o->fault.latency, std::chrono::milliseconds(250));
  EXPECT_EQ(o->fault.fail_fraction, 0.5);
  EXPECT_EQ(o->fault.fail_status, 503);
  ASSERT_EQ(o->upstreams.size(), 1u);
  EXPECT_EQ(o->upstreams[0].host_header, "ratings:9080");
  EXPECT_EQ(o->upstreams[0].path, "/ratings/0");
  EXPECT_EQ(o->upstreams[0].connect_host, "ratings");
  EXPECT_EQ(o->upstreams[0].connect_port, 9080);
}

TEST(DemoOptionsTest, EnvironmentFillsWhatFlagsLeaveOut) {
  Env env{{{"DEMO_NAME", "details"}, {"DEMO_VERSION", "v9"}, {"DEMO_FAIL_STATUS", "500"}}};
  auto o = parse({"--version", "v1"}, env);
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->name, "details");
  EXPECT_EQ(o->version, "v1");  // the flag wins
  EXPECT_EQ(o->fault.fail_status, 500);
}

TEST(DemoOptionsTest, RepeatableFlagsTakeAListFromTheEnvironment) {
  Env env{{{"DEMO_UPSTREAM", "http://details:9080/details,http://reviews:9080/reviews"},
           {"DEMO_FORWARD_HEADER", "x-a x-b"},
           {"DEMO_UPSTREAM_TIMEOUT", "250ms"}}};
  auto o = parse({"--name", "productpage", "--listen", "[::1]:9080"}, env);
  ASSERT_TRUE(o.ok()) << o.error().message();
  ASSERT_EQ(o->upstreams.size(), 2u);
  EXPECT_EQ(o->upstreams[1].path, "/reviews");
  EXPECT_EQ(o->forward_headers, (std::vector<std::string>{"x-a", "x-b"}));
  EXPECT_EQ(o->upstream_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(o->host, "::1");
}

TEST(DemoOptionsTest, KubernetesServiceVariablesSayWhereToConnect) {
  Env env{{{"REVIEWS_SERVICE_HOST", "127.0.0.5"}, {"REVIEWS_SERVICE_PORT", "15001"}}};
  auto u = parseUpstream("http://reviews:9080/x", env.lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->connect_host, "127.0.0.5");
  EXPECT_EQ(u->connect_port, 15001);
  EXPECT_EQ(u->host_header, "reviews:9080");
  auto dashed = parseUpstream("http://my-svc.default.svc/",
                              Env{{{"MY_SVC_SERVICE_HOST", "10.1.1.1"}}}.lookup());
  ASSERT_TRUE(dashed.ok());
  EXPECT_EQ(dashed->connect_host, "10.1.1.1");
  EXPECT_EQ(dashed->connect_port, 80);
}

TEST(DemoOptionsTest, BadInputIsOneSentence) {
  EXPECT_THAT(parse({}).error().message(), HasSubstr("--name is required"));
  EXPECT_THAT(parse({"--name", "a", "--fail-fraction", "1.5"}).error().message(),
              HasSubstr("[0, 1]"));
  EXPECT_THAT(parse({"--name", "a", "--latency", "soon"}).error().message(),
              HasSubstr("not a duration"));
  EXPECT_THAT(parse({"--name", "a", "--upstream", "https://x/"}).error().message(),
              HasSubstr("only http://"));
  EXPECT_THAT(parse({"--name", "a", "--upstream", "http://x:99999/"}).error().message(),
              HasSubstr("bad port"));
  EXPECT_THAT(parse({"--name", "a", "--listen", "9080"}).error().message(), HasSubstr("host:port"));
  EXPECT_FALSE(parse({"--name", "a", "--bogus"}).ok());
}

}  // namespace
}  // namespace sheave::demo
