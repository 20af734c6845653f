#include "control/registry/hostname.h"

#include <gtest/gtest.h>

namespace sheave::control {
namespace {

using Strings = std::vector<std::string>;

TEST(HostnameTest, ServiceHostname) {
  EXPECT_EQ(serviceHostname("reviews", "default"), "reviews.default.svc.cluster.local");
  EXPECT_EQ(serviceHostname("reviews", "shop", "corp.internal"), "reviews.shop.svc.corp.internal");
}

TEST(HostnameTest, ResolveFollowsIstioShortNameRule) {
  EXPECT_EQ(resolveHostname("reviews", "default"), "reviews.default.svc.cluster.local");
  EXPECT_EQ(resolveHostname("reviews", "bookinfo", "example.org"),
            "reviews.bookinfo.svc.example.org");
  // Anything with a dot is taken as fully qualified.
  EXPECT_EQ(resolveHostname("reviews.default", "shop"), "reviews.default");
  EXPECT_EQ(resolveHostname("reviews.default.svc.cluster.local", "shop"),
            "reviews.default.svc.cluster.local");
  EXPECT_EQ(resolveHostname("api.example.com", "shop"), "api.example.com");
  EXPECT_EQ(resolveHostname("*", "shop"), "*");
  EXPECT_EQ(resolveHostname("*.example.com", "shop"), "*.example.com");
  EXPECT_EQ(resolveHostname("10.1.2.3", "shop"), "10.1.2.3");
  EXPECT_EQ(resolveHostname("::1", "shop"), "::1");
  EXPECT_EQ(resolveHostname("reviews", ""), "reviews");
}

TEST(HostnameTest, CandidatesFollowTheDnsSearchPath) {
  EXPECT_EQ(hostnameCandidates("reviews", "default"), Strings{"reviews.default.svc.cluster.local"});
  EXPECT_EQ(hostnameCandidates("reviews.default", "shop"),
            (Strings{"reviews.default", "reviews.default.svc.cluster.local",
                     "reviews.default.cluster.local"}));
  EXPECT_EQ(hostnameCandidates("reviews.default.svc", "shop"),
            (Strings{"reviews.default.svc", "reviews.default.svc.svc.cluster.local",
                     "reviews.default.svc.cluster.local"}));
  EXPECT_EQ(hostnameCandidates("reviews.default.svc.cluster.local", "shop"),
            Strings{"reviews.default.svc.cluster.local"});
  EXPECT_EQ(hostnameCandidates("*.example.com", "shop"), Strings{"*.example.com"});
  EXPECT_EQ(hostnameCandidates("10.0.0.1", "shop"), Strings{"10.0.0.1"});
}

TEST(HostnameTest, Classifiers) {
  EXPECT_TRUE(isWildcardHostname("*"));
  EXPECT_TRUE(isWildcardHostname("*.example.com"));
  EXPECT_FALSE(isWildcardHostname("example.com"));
  EXPECT_TRUE(isIpAddress("240.240.0.1"));
  EXPECT_TRUE(isIpAddress("2001:db8::1"));
  EXPECT_FALSE(isIpAddress("10.0.0.0/8"));
  EXPECT_FALSE(isIpAddress("example.com"));
  EXPECT_FALSE(isIpAddress(""));
}

}  // namespace
}  // namespace sheave::control
