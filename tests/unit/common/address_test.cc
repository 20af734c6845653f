#include "common/address.h"

#include <gtest/gtest.h>

namespace sheave {
namespace {

TEST(AddressTest, ParseV4) {
  auto a = Address::parse("127.0.0.1", 80);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 80);
  EXPECT_EQ(a->ip(), "127.0.0.1");
  EXPECT_EQ(a->asString(), "127.0.0.1:80");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in));
  EXPECT_FALSE(a->isAnyAddress());
}

TEST(AddressTest, ParseV6) {
  auto a = Address::parse("::1", 9080);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->ip(), "::1");
  EXPECT_EQ(a->asString(), "[::1]:9080");
  auto any = Address::parse("::", 0);
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->isAnyAddress());
  EXPECT_TRUE(Address::parse("0.0.0.0", 1)->isAnyAddress());
}

TEST(AddressTest, ParseRejectsNonLiterals) {
  EXPECT_FALSE(Address::parse("localhost", 80).ok());
  EXPECT_FALSE(Address::parse("", 80).ok());
  EXPECT_FALSE(Address::parse("1.2.3", 80).ok());
  EXPECT_FALSE(Address::parse("[::1]", 80).ok());
  EXPECT_FALSE(Address::parse(std::string(100, '1'), 80).ok());
}

TEST(AddressTest, ParseIpPort) {
  auto v4 = Address::parseIpPort("10.1.2.3:15001");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->asString(), "10.1.2.3:15001");
  auto v6 = Address::parseIpPort("[2001:db8::1]:443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->ip(), "2001:db8::1");
  EXPECT_EQ(v6->port(), 443);
  EXPECT_EQ(v6->asString(), "[2001:db8::1]:443");
  EXPECT_TRUE(Address::parseIpPort("1.2.3.4:0").ok());
  EXPECT_TRUE(Address::parseIpPort("1.2.3.4:65535").ok());
}

TEST(AddressTest, ParseIpPortErrors) {
  for (const char* bad : {"1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:8x",
                          "::1:80", "[::1]", "[::1]80", "[1.2.3.4]:80", "host:80", "[::1:80", ""}) {
    auto r = Address::parseIpPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message().find(bad), std::string::npos) << r.error().message();
    }
  }
}

TEST(AddressTest, EqualityAndPorts) {
  auto a = *Address::parseIpPort("127.0.0.1:80");
  auto b = *Address::parse("127.0.0.1", 80);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, a.withPort(81));
  EXPECT_EQ(a.withPort(81).port(), 81);
  EXPECT_NE(a, *Address::parse("::ffff:127.0.0.1", 80));
  EXPECT_EQ(*Address::parse("::1", 1), *Address::parseIpPort("[::1]:1"));
  Address empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.asString(), "");
  EXPECT_EQ(empty, Address());
  EXPECT_NE(empty, a);
}

TEST(AddressTest, FromSockaddrRoundTrip) {
  auto a = *Address::parse("fe80::1", 8080);
  Address b = Address::fromSockaddr(a.sockAddr(), a.len());
  EXPECT_EQ(a, b);
  sockaddr unknown{};
  unknown.sa_family = AF_UNIX;
  EXPECT_TRUE(Address::fromSockaddr(&unknown, sizeof(unknown)).empty());
  EXPECT_TRUE(Address::fromSockaddr(nullptr, 0).empty());
}

}  // namespace
}  // namespace sheave
