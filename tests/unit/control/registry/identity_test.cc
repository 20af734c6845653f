#include "control/registry/identity.h"

#include <gtest/gtest.h>

namespace sheave::control {
namespace {

TEST(IdentityTest, SpiffeIds) {
  EXPECT_EQ(spiffeIdentity("default", "bookinfo-reviews"),
            "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
  EXPECT_EQ(spiffeIdentity("shop", ""), "spiffe://cluster.local/ns/shop/sa/default");
  EXPECT_EQ(spiffeIdentity("shop", "cart", "corp.example"),
            "spiffe://corp.example/ns/shop/sa/cart");
}

}  // namespace
}  // namespace sheave::control
