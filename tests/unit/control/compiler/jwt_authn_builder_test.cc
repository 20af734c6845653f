#include "control/compiler/jwt_authn_builder.h"

#include <gmock/gmock.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>

#include "control/model/config_set.h"

namespace sheave::control {
namespace {

namespace jwt = envoy::extensions::filters::http::jwt_authn::v3;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string ra(const std::string& name, const std::string& ns, const std::string& spec) {
  return "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: " +
         name + "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

class JwtAuthnBuilderTest : public ::testing::Test {
 protected:
  std::optional<jwt::JwtAuthentication> build(const std::string& yaml) {
    config_ = parseDocuments(yaml, "test.yaml");
    EXPECT_THAT(config_.errors, IsEmpty())
        << (config_.errors.empty() ? "" : config_.errors[0].toString());
    inputs_.root_namespace = "sheave-system";
    inputs_.workload_namespace = "default";
    inputs_.labels = {{"app", "reviews"}};
    policies_ = requestAuthenticationsFor(config_.request_authentications, inputs_.root_namespace,
                                          inputs_.workload_namespace, inputs_.labels);
    errors_.clear();
    return buildJwtAuthentication(policies_, inputs_, &errors_);
  }

  ConfigSet config_;
  JwtAuthnInputs inputs_;
  std::vector<const Resource<RequestAuthentication>*> policies_;
  std::vector<ResourceError> errors_;
};

TEST_F(JwtAuthnBuilderTest, NothingAppliesNoFilter) {
  EXPECT_FALSE(build(ra("other", "default",
                        "  selector:\n    matchLabels:\n      app: ratings\n"
                        "  jwtRules:\n  - issuer: a\n    jwks: '{}'\n"))
                   .has_value());
  auto filter = buildJwtAuthnFilter(config_.request_authentications, inputs_, &errors_);
  EXPECT_FALSE(filter.has_value());
}

TEST_F(JwtAuthnBuilderTest, ProvidersPerIssuerAndAllowMissing) {
  inputs_.jwks_resolver = [](const std::string& uri) -> std::optional<std::string> {
    if (uri == "https://idp.example/jwks") return std::string(R"({"keys":[{"kid":"1"}]})");
    return std::nullopt;
  };
  auto config = build(
      ra("mesh", "sheave-system",
         "  jwtRules:\n  - issuer: https://idp.example\n    jwksUri: https://idp.example/jwks\n"
         "    audiences: [api]\n    forwardOriginalToken: true\n"
         "    fromHeaders:\n    - name: x-jwt\n      prefix: \"Bearer \"\n"
         "    fromParams: [token]\n    outputPayloadToHeader: x-jwt-payload\n") +
      ra("wl", "default",
         "  selector:\n    matchLabels:\n      app: reviews\n"
         "  jwtRules:\n  - issuer: https://idp.example\n    jwks: 'ignored: same issuer'\n"
         "  - issuer: other\n    jwksUri: https://unknown.example/jwks\n"));
  ASSERT_TRUE(config.has_value());
  EXPECT_THAT(jwtIssuers(policies_), ElementsAre("https://idp.example", "other"));
  jwt::JwtAuthentication expected;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"(
    providers { key: "origins-0" value {
      issuer: "https://idp.example" audiences: "api"
      local_jwks { inline_string: "{\"keys\":[{\"kid\":\"1\"}]}" }
      forward: true
      from_headers { name: "x-jwt" value_prefix: "Bearer " }
      from_params: "token"
      forward_payload_header: "x-jwt-payload"
      payload_in_metadata: "https://idp.example" } }
    providers { key: "origins-1" value {
      issuer: "other"
      local_jwks { inline_string: "{\"keys\":[]}" }
      payload_in_metadata: "other" } }
    rules {
      match { prefix: "/" }
      requires_ { requires_any {
        requirements { provider_name: "origins-0" }
        requirements { provider_name: "origins-1" }
        requirements { allow_missing {} } } } }
    bypass_cors_preflight: true
  )",
                                                            &expected));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*config, expected))
      << config->DebugString();
  // The unknown jwksUri is reported; its issuer's tokens fail meanwhile.
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_THAT(errors_[0].toString(), ::testing::HasSubstr("https://unknown.example/jwks"));
}

}  // namespace
}  // namespace sheave::control
