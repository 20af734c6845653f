#include "control/compiler/peer_authentication_policy.h"

#include <gtest/gtest.h>

#include <string>

#include "control/model/config_set.h"

namespace sheave::control {
namespace {

std::string pa(const std::string& name, const std::string& ns, const std::string& spec) {
  return "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata:\n  name: " +
         name + "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

PeerAuthenticationPolicy compose(const std::string& yaml, const std::string& ns,
                                 std::map<std::string, std::string> labels = {}) {
  ConfigSet config = parseDocuments(yaml, "test.yaml");
  EXPECT_TRUE(config.errors.empty()) << (config.errors.empty() ? "" : config.errors[0].toString());
  return PeerAuthenticationPolicy::forWorkload(config.peer_authentications, "sheave-system", ns,
                                               labels);
}

TEST(PeerAuthenticationPolicyTest, NothingMeansPermissive) {
  auto policy = compose("", "default");
  EXPECT_EQ(policy.mode(), MutualTLSMode::kPermissive);
  EXPECT_EQ(policy.modeFor(9080), MutualTLSMode::kPermissive);
}

TEST(PeerAuthenticationPolicyTest, WorkloadBeatsNamespaceBeatsMesh) {
  std::string yaml = pa("mesh", "sheave-system", "  mtls:\n    mode: STRICT\n");
  EXPECT_EQ(compose(yaml, "default").mode(), MutualTLSMode::kStrict);
  yaml += pa("ns", "default", "  mtls:\n    mode: DISABLE\n");
  EXPECT_EQ(compose(yaml, "default").mode(), MutualTLSMode::kDisable);
  EXPECT_EQ(compose(yaml, "other").mode(), MutualTLSMode::kStrict);
  yaml += pa("wl", "default",
             "  selector:\n    matchLabels:\n      app: reviews\n  mtls:\n    mode: PERMISSIVE\n");
  EXPECT_EQ(compose(yaml, "default", {{"app", "reviews"}}).mode(), MutualTLSMode::kPermissive);
  EXPECT_EQ(compose(yaml, "default", {{"app", "ratings"}}).mode(), MutualTLSMode::kDisable);
}

TEST(PeerAuthenticationPolicyTest, RootNamespaceSelectorPoliciesAreNotMeshWide) {
  std::string yaml = pa("root-wl", "sheave-system",
                        "  selector:\n    matchLabels:\n      app: reviews\n"
                        "  mtls:\n    mode: STRICT\n");
  EXPECT_EQ(compose(yaml, "default", {{"app", "reviews"}}).mode(), MutualTLSMode::kPermissive);
}

TEST(PeerAuthenticationPolicyTest, UnsetInheritsAndOldestWins) {
  std::string yaml = pa("mesh", "sheave-system", "  mtls:\n    mode: STRICT\n") +
                     pa("ns-a", "default", "  mtls:\n    mode: UNSET\n") +
                     pa("ns-b", "default", "  mtls:\n    mode: DISABLE\n");
  // ns-a came first and is UNSET: the mesh's STRICT stays.
  EXPECT_EQ(compose(yaml, "default").mode(), MutualTLSMode::kStrict);
}

TEST(PeerAuthenticationPolicyTest, PortLevelMtlsFromWorkloadPolicyOnly) {
  std::string yaml =
      pa("ns", "default", "  mtls:\n    mode: STRICT\n") +
      pa("wl", "default",
         "  selector:\n    matchLabels:\n      app: reviews\n"
         "  portLevelMtls:\n    9080:\n      mode: PERMISSIVE\n    9090:\n      mode: UNSET\n");
  auto reviews = compose(yaml, "default", {{"app", "reviews"}});
  EXPECT_EQ(reviews.mode(), MutualTLSMode::kStrict);
  EXPECT_EQ(reviews.modeFor(9080), MutualTLSMode::kPermissive);
  EXPECT_EQ(reviews.modeFor(9090), MutualTLSMode::kStrict);
  EXPECT_EQ(reviews.modeFor(8080), MutualTLSMode::kStrict);
  auto other = compose(yaml, "default", {{"app", "other"}});
  EXPECT_EQ(other.modeFor(8080), MutualTLSMode::kStrict);
}

}  // namespace
}  // namespace sheave::control
