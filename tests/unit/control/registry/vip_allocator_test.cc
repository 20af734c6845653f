#include "control/registry/vip_allocator.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sheave::control {
namespace {

Ipv4Range range(std::string_view cidr) {
  Result<Ipv4Range> r = Ipv4Range::parse(cidr);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return *r;
}

TEST(Ipv4RangeTest, Parse) {
  const Ipv4Range r = range("240.240.0.0/16");
  EXPECT_EQ(r.prefixLength(), 16);
  EXPECT_EQ(r.size(), 65536u);
  EXPECT_EQ(r.toString(), "240.240.0.0/16");
  EXPECT_TRUE(r.contains(*parseIpv4("240.240.255.254")));
  EXPECT_FALSE(r.contains(*parseIpv4("240.241.0.1")));

  for (const char* bad : {"240.240.0.0", "240.240.0.0/33", "240.240.0.0/x", "nope/16",
                          "2001:db8::/64", "240.240.0.1/16"}) {
    EXPECT_FALSE(Ipv4Range::parse(bad).ok()) << bad;
  }
  EXPECT_NE(Ipv4Range::parse("240.240.0.1/16").error().message().find("240.240.0.0/16"),
            std::string::npos);
}

TEST(VipAllocatorTest, CapacitySkipsZeroAndBroadcastOctets) {
  EXPECT_EQ(VipAllocator(range("240.240.0.0/16")).capacity(), 256u * 254u);
  EXPECT_EQ(VipAllocator(range("10.0.0.0/24")).capacity(), 254u);
  EXPECT_EQ(VipAllocator(range("10.0.0.0/29")).capacity(), 7u);    // .1 - .7
  EXPECT_EQ(VipAllocator(range("10.0.0.248/29")).capacity(), 7u);  // .248 - .254
  EXPECT_EQ(VipAllocator(range("10.0.0.0/32")).capacity(), 0u);
}

TEST(VipAllocatorTest, DeterministicAndInRange) {
  const Ipv4Range r = range("240.240.0.0/16");
  VipAllocator a(r);
  VipAllocator b(r);
  std::set<std::string> seen;
  for (int i = 0; i < 500; ++i) {
    const std::string host = "svc" + std::to_string(i) + ".default.svc.cluster.local";
    const std::optional<std::string> vip = a.allocate(host);
    ASSERT_TRUE(vip);
    EXPECT_EQ(b.allocate(host), vip);
    const uint32_t ip = *parseIpv4(*vip);
    EXPECT_TRUE(r.contains(ip)) << *vip;
    EXPECT_NE(ip & 0xff, 0u);
    EXPECT_NE(ip & 0xff, 255u);
    EXPECT_TRUE(seen.insert(*vip).second) << "duplicate " << *vip;
  }
}

TEST(VipAllocatorTest, CollisionsProbeToTheNextFreeAddress) {
  // In a /29 (7 slots) the same hostname twice must collide.
  VipAllocator allocator(range("10.0.0.0/29"));
  const std::optional<std::string> first = allocator.allocate("a.example");
  const std::optional<std::string> second = allocator.allocate("a.example");
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
  const uint32_t slot = VipAllocator::hash("a.example") % 7;
  EXPECT_EQ(*first, "10.0.0." + std::to_string(slot + 1));
  EXPECT_EQ(*second, "10.0.0." + std::to_string((slot + 1) % 7 + 1));
}

TEST(VipAllocatorTest, ReservedAddressesAreNeverHandedOut) {
  VipAllocator allocator(range("10.0.0.0/29"));
  const uint32_t slot = VipAllocator::hash("a.example") % 7;
  const std::string preferred = "10.0.0." + std::to_string(slot + 1);
  allocator.reserve(preferred);
  allocator.reserve("192.168.0.1");  // outside: ignored
  allocator.reserve("2001:db8::1");  // IPv6: ignored
  const std::optional<std::string> vip = allocator.allocate("a.example");
  ASSERT_TRUE(vip);
  EXPECT_NE(*vip, preferred);
}

TEST(VipAllocatorTest, Exhaustion) {
  VipAllocator allocator(range("10.0.0.0/29"));
  allocator.reserve("10.0.0.1");
  std::set<std::string> seen{"10.0.0.1"};
  for (int i = 0; i < 6; ++i) {
    const std::optional<std::string> vip = allocator.allocate("host" + std::to_string(i));
    ASSERT_TRUE(vip);
    EXPECT_TRUE(seen.insert(*vip).second);
  }
  EXPECT_FALSE(allocator.allocate("one-too-many"));
  EXPECT_FALSE(VipAllocator(range("10.0.0.0/32")).allocate("x"));
}

}  // namespace
}  // namespace sheave::control
