#include "cli/runtime/mesh_network.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace sheave::cli {
namespace {

using ::testing::HasSubstr;

TEST(MeshNetworkTest, VethNamesFitTheKernelsLimitAndDiffer) {
  std::set<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    std::string name = vethName("sheave-default-reviews-v1-" + std::to_string(i));
    EXPECT_LE(name.size(), 15u);
    EXPECT_EQ(name.rfind("shv", 0), 0u);
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 1000u);
  EXPECT_EQ(vethName("sheave-a"), vethName("sheave-a"));
}

TEST(MeshNetworkTest, WorkloadSpecsAreChecked) {
  NetworkPlan plan;
  EXPECT_TRUE(validateWorkloadSpec(plan, {"sheave-a", "198.18.0.10", {}}).ok());
  EXPECT_TRUE(validateWorkloadSpec(plan, {"sheave-a", "198.19.255.254", {}}).ok());
  EXPECT_THAT(validateWorkloadSpec(plan, {"other-a", "198.18.0.10", {}}).error().message(),
              HasSubstr("must start with sheave-"));
  EXPECT_THAT(validateWorkloadSpec(plan, {"sheave-a", "10.0.0.1", {}}).error().message(),
              HasSubstr("not a host address of 198.18.0.0/15"));
  EXPECT_THAT(validateWorkloadSpec(plan, {"sheave-a", "198.18.0.1", {}}).error().message(),
              HasSubstr("bridge"));
  EXPECT_THAT(validateWorkloadSpec(plan, {"sheave-a", "198.18.0.0", {}}).error().message(),
              HasSubstr("not a host address"));
  EXPECT_THAT(validateWorkloadSpec(plan, {"sheave-a", "reviews", {}}).error().message(),
              HasSubstr("not an IPv4 address"));
  EXPECT_FALSE(validateWorkloadSpec(plan, {"sheave-a/b", "198.18.0.10", {}}).ok());
  EXPECT_THAT(validateWorkloadSpec(plan, {"sheave-a b", "198.18.0.10", {}}).error().message(),
              HasSubstr("may only use letters"));
  EXPECT_FALSE(validateWorkloadSpec(plan, {"sheave-", "198.18.0.10", {}}).ok());
  EXPECT_FALSE(validateWorkloadSpec(plan, {"sheave-a", "198.19.255.255", {}}).ok());
  NetworkPlan small{.bridge = "sheavet0", .cidr = "198.19.254.0/24", .netns_prefix = "sheavet-"};
  EXPECT_TRUE(validateWorkloadSpec(small, {"sheavet-a", "198.19.254.2", {}}).ok());
  EXPECT_THAT(validateWorkloadSpec(small, {"sheavet-a", "198.19.254.1", {}}).error().message(),
              HasSubstr("bridge's own address"));
  EXPECT_FALSE(validateWorkloadSpec(small, {"sheavet-a", "198.19.255.2", {}}).ok());
  NetworkPlan broken = plan;
  broken.cidr = "198.18.0.0";
  EXPECT_THAT(validateWorkloadSpec(broken, {"sheave-a", "198.18.0.10", {}}).error().message(),
              HasSubstr("not an IPv4 CIDR"));
}

}  // namespace
}  // namespace sheave::cli
