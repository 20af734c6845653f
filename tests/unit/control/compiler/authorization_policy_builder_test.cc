#include "control/compiler/authorization_policy_builder.h"

#include <gmock/gmock.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>

#include "control/model/config_set.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb.h"

namespace sheave::control {
namespace {

namespace rbac = envoy::config::rbac::v3;
using HttpRbac = envoy::extensions::filters::http::rbac::v3::RBAC;
using NetworkRbac = envoy::extensions::filters::network::rbac::v3::RBAC;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string ap(const std::string& name, const std::string& ns, const std::string& spec,
               const std::string& annotations = "") {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\n" + annotations + "spec:\n" + spec + "---\n";
}

class AuthorizationPolicyBuilderTest : public ::testing::Test {
 protected:
  AuthorizationFilters build(const std::string& yaml) {
    config_ = parseDocuments(yaml, "test.yaml");
    EXPECT_THAT(config_.errors, IsEmpty())
        << (config_.errors.empty() ? "" : config_.errors[0].toString());
    AuthorizationInputs in;
    in.root_namespace = "sheave-system";
    in.workload_namespace = "default";
    in.labels = {{"app", "reviews"}};
    in.jwt_issuers = {"https://issuer.example"};
    errors_.clear();
    return buildAuthorizationFilters(config_.authorization_policies, in, &errors_);
  }
  static HttpRbac httpOf(const AuthorizationFilters& f, size_t i) {
    HttpRbac out;
    EXPECT_EQ(f.http.at(i).name(), "envoy.filters.http.rbac");
    EXPECT_TRUE(f.http.at(i).typed_config().UnpackTo(&out));
    return out;
  }
  static NetworkRbac tcpOf(const AuthorizationFilters& f, size_t i) {
    NetworkRbac out;
    EXPECT_EQ(f.network.at(i).name(), "envoy.filters.network.rbac");
    EXPECT_TRUE(f.network.at(i).typed_config().UnpackTo(&out));
    return out;
  }
  static void expectPolicy(const rbac::RBAC& rules, const std::string& name,
                           const std::string& text) {
    auto it = rules.policies().find(name);
    ASSERT_NE(it, rules.policies().end()) << name;
    rbac::Policy expected;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &expected));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(it->second, expected))
        << it->second.DebugString();
  }

  ConfigSet config_;
  std::vector<ResourceError> errors_;
};

TEST_F(AuthorizationPolicyBuilderTest, NoPolicyNoFilter) {
  auto f = build(ap("other", "default",
                    "  selector:\n    matchLabels:\n      app: ratings\n  action: DENY\n"
                    "  rules: [{}]\n") +
                 ap("elsewhere", "prod", "  rules: [{}]\n"));
  EXPECT_THAT(f.http, IsEmpty());
  EXPECT_THAT(f.network, IsEmpty());
}

TEST_F(AuthorizationPolicyBuilderTest, EmptyAllowDeniesAllAndEmptyRuleAllowsAll) {
  auto deny_all = build(ap("deny-all", "default", "  {}\n"));
  ASSERT_EQ(deny_all.http.size(), 1u);
  auto http = httpOf(deny_all, 0);
  EXPECT_EQ(http.rules().action(), rbac::RBAC::ALLOW);
  EXPECT_TRUE(http.rules().policies().empty());

  auto allow_all = build(ap("allow-all", "sheave-system", "  rules:\n  - {}\n"));
  expectPolicy(httpOf(allow_all, 0).rules(), "ns[sheave-system]-policy[allow-all]-rule[0]",
               "permissions { any: true } principals { any: true }");
}

TEST_F(AuthorizationPolicyBuilderTest, OrderDryRunAndCustom) {
  auto f =
      build(ap("allow", "default", "  rules: [{}]\n") +
            ap("deny", "default", "  action: DENY\n  rules: [{}]\n") +
            ap("audit", "default", "  action: AUDIT\n  rules: [{}]\n") +
            ap("ext", "default", "  action: CUSTOM\n  provider:\n    name: x\n  rules: [{}]\n") +
            ap("dry", "default", "  action: DENY\n  rules: [{}]\n",
               "  annotations:\n    istio.io/dry-run: \"true\"\n"));
  ASSERT_EQ(f.http.size(), 3u);
  EXPECT_EQ(httpOf(f, 0).rules().action(), rbac::RBAC::LOG);
  auto deny = httpOf(f, 1);
  EXPECT_EQ(deny.rules().action(), rbac::RBAC::DENY);
  EXPECT_EQ(deny.rules().policies().count("ns[default]-policy[deny]-rule[0]"), 1u);
  EXPECT_EQ(deny.rules().policies().count("ns[default]-policy[dry]-rule[0]"), 0u);
  EXPECT_EQ(deny.shadow_rules().policies().count("ns[default]-policy[dry]-rule[0]"), 1u);
  EXPECT_EQ(deny.shadow_rules_stat_prefix(), "istio_dry_run_deny_");
  EXPECT_EQ(httpOf(f, 2).rules().action(), rbac::RBAC::ALLOW);
  ASSERT_EQ(f.network.size(), 3u);
  EXPECT_EQ(tcpOf(f, 1).rules().action(), rbac::RBAC::DENY);
}

TEST_F(AuthorizationPolicyBuilderTest, SourcesOperationsAndConditions) {
  auto f =
      build(ap("full", "default",
               "  selector:\n    matchLabels:\n      app: reviews\n"
               "  rules:\n"
               "  - from:\n"
               "    - source:\n"
               "        principals: [\"cluster.local/ns/default/sa/productpage\", \"*-admin\"]\n"
               "        namespaces: [prod]\n"
               "        ipBlocks: [\"10.0.0.0/8\"]\n"
               "        requestPrincipals: [\"https://issuer.example/alice\"]\n"
               "    to:\n"
               "    - operation:\n"
               "        methods: [GET]\n"
               "        paths: [\"/api/*\", \"/items/{*}/detail\"]\n"
               "        notPorts: [\"15000\"]\n"
               "    when:\n"
               "    - key: request.headers[x-tenant]\n"
               "      values: [acme]\n"
               "    - key: destination.port\n"
               "      values: [\"9080\"]\n"));
  expectPolicy(httpOf(f, 0).rules(), "ns[default]-policy[full]-rule[0]", R"(
    permissions { and_rules {
      rules { and_rules {
        rules { header { name: ":method" string_match { exact: "GET" } } }
        rules { or_rules {
          rules { url_path { path { prefix: "/api/" } } }
          rules { url_path { path { safe_regex { regex: "/items/[^/]+/detail" } } } } } }
        rules { not_rule { destination_port: 15000 } } } }
      rules { destination_port: 9080 } } }
    principals { and_ids {
      ids { and_ids {
        ids { or_ids {
          ids { authenticated { principal_name {
            exact: "spiffe://cluster.local/ns/default/sa/productpage" } } }
          ids { authenticated { principal_name { suffix: "-admin" } } } } }
        ids { authenticated { principal_name { safe_regex { regex: ".*/ns/prod/.*" } } } }
        ids { direct_remote_ip { address_prefix: "10.0.0.0" prefix_len { value: 8 } } }
        ids { metadata {
          filter: "envoy.filters.http.jwt_authn"
          path { key: "https://issuer.example" } path { key: "sub" }
          value { or_match {
            value_matchers { string_match { exact: "alice" } }
            value_matchers { list_match { one_of { string_match { exact: "alice" } } } } } } } } } }
      ids { header { name: "x-tenant" string_match { exact: "acme" } } } } }
  )");
  // ALLOW with HTTP-only fields: the rule is dropped for TCP (nothing allowed).
  auto tcp = tcpOf(f, 0);
  EXPECT_EQ(tcp.rules().action(), rbac::RBAC::ALLOW);
  EXPECT_TRUE(tcp.rules().policies().empty());
}

TEST_F(AuthorizationPolicyBuilderTest, DenyOnTcpIgnoresHttpOnlyFields) {
  auto f = build(
      ap("deny-admin", "default",
         "  action: DENY\n  rules:\n"
         "  - from:\n    - source:\n        namespaces: [\"*\"]\n"
         "    to:\n    - operation:\n        paths: [\"/admin*\"]\n        ports: [\"8080\"]\n"));
  expectPolicy(tcpOf(f, 0).rules(), "ns[default]-policy[deny-admin]-rule[0]", R"(
    permissions { destination_port: 8080 }
    principals { authenticated { principal_name { safe_regex { regex: ".+" } } } }
  )");
}

TEST_F(AuthorizationPolicyBuilderTest, BadValuesAreReported) {
  build(ap("bad", "default",
           "  rules:\n  - when:\n    - key: request.weird\n      values: [x]\n"
           "    to:\n    - operation:\n        ports: [\"http\"]\n"));
  EXPECT_EQ(errors_.size(), 2u);
}

TEST_F(AuthorizationPolicyBuilderTest, ClaimConditions) {
  auto f = build(ap("claims", "default",
                    "  rules:\n  - when:\n    - key: request.auth.claims[groups]\n"
                    "      values: [admin]\n    - key: request.auth.audiences\n"
                    "      notValues: [legacy]\n"));
  expectPolicy(httpOf(f, 0).rules(), "ns[default]-policy[claims]-rule[0]", R"(
    permissions { any: true }
    principals { and_ids {
      ids { metadata {
        filter: "envoy.filters.http.jwt_authn"
        path { key: "https://issuer.example" } path { key: "groups" }
        value { or_match {
          value_matchers { string_match { exact: "admin" } }
          value_matchers { list_match { one_of { string_match { exact: "admin" } } } } } } } }
      ids { not_id { metadata {
        filter: "envoy.filters.http.jwt_authn"
        path { key: "https://issuer.example" } path { key: "aud" }
        value { or_match {
          value_matchers { string_match { exact: "legacy" } }
          value_matchers { list_match { one_of { string_match { exact: "legacy" } } } } } } } } } } }
  )");
}

TEST_F(AuthorizationPolicyBuilderTest, SameInputSameBytes) {
  std::string yaml;
  for (int i = 0; i < 20; ++i) {
    yaml += ap("p" + std::to_string(i), "default", "  rules: [{}, {}]\n");
  }
  auto first = build(yaml);
  auto second = build(yaml);
  ASSERT_EQ(first.http.size(), 1u);
  EXPECT_EQ(first.http[0].typed_config().value(), second.http[0].typed_config().value());
  EXPECT_EQ(first.network[0].typed_config().value(), second.network[0].typed_config().value());
  EXPECT_EQ(httpOf(first, 0).rules().policies_size(), 40);
}

}  // namespace
}  // namespace sheave::control
