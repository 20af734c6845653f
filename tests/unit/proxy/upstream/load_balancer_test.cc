#include "proxy/upstream/load_balancer.h"

#include <gtest/gtest.h>

namespace sheave::upstream {
namespace {

TEST(OriginalDstLoadBalancerTest, HostIsTheDownstreamLocalAddress) {
  OriginalDstLoadBalancer lb;
  EXPECT_EQ(lb.chooseHost(nullptr), nullptr);
  LbContext context;
  EXPECT_EQ(lb.chooseHost(&context), nullptr);

  const Address a = Address::parse("10.0.0.7", 9080).value();
  const Address b = Address::parse("::1", 443).value();
  context.downstream_local_address = &a;
  HostSharedPtr first = lb.chooseHost(&context);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->address(), a);
  // The same destination reuses the host (and so its pooled connections).
  EXPECT_EQ(lb.chooseHost(&context), first);
  context.downstream_local_address = &b;
  EXPECT_EQ(lb.chooseHost(&context)->address(), b);
  EXPECT_EQ(lb.size(), 2u);
}

TEST(OriginalDstLoadBalancerTest, UnusedHostsAreCleanedUp) {
  OriginalDstLoadBalancer lb;
  const Address a = Address::parse("10.0.0.7", 9080).value();
  const Address b = Address::parse("10.0.0.8", 9080).value();
  LbContext ca;
  ca.downstream_local_address = &a;
  LbContext cb;
  cb.downstream_local_address = &b;
  HostSharedPtr host_a = lb.chooseHost(&ca);
  lb.chooseHost(&cb);
  lb.cleanup();  // both were used in this interval
  EXPECT_EQ(lb.size(), 2u);
  lb.chooseHost(&ca);
  lb.cleanup();  // b was not
  EXPECT_EQ(lb.size(), 1u);
  EXPECT_TRUE(lb.has(host_a.get()));
  lb.cleanup();
  EXPECT_EQ(lb.size(), 0u);
  // A connection still holding the host keeps it alive; a new pick makes a new one.
  EXPECT_NE(lb.chooseHost(&ca), host_a);
}

TEST(OriginalDstLoadBalancerTest, PortOverride) {
  OriginalDstLoadBalancer lb(15000);
  const Address a = Address::parse("10.0.0.7", 9080).value();
  LbContext context;
  context.downstream_local_address = &a;
  EXPECT_EQ(lb.chooseHost(&context)->address(), Address::parse("10.0.0.7", 15000).value());
}

TEST(OriginalDstLoadBalancerTest, CreateForClusterProvided) {
  RandomGenerator random;
  auto lb = LoadBalancer::create(LbPolicy::kClusterProvided, std::make_shared<HostVector>(), 50, 2,
                                 random);
  ASSERT_NE(dynamic_cast<OriginalDstLoadBalancer*>(lb.get()), nullptr);
}

}  // namespace
}  // namespace sheave::upstream
