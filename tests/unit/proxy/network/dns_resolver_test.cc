#include "proxy/network/dns_resolver.h"

#include <gtest/gtest.h>

#include <thread>

#include "loop_test_util.h"

namespace sheave::network {
namespace {

using std::chrono::milliseconds;
using testing::runUntil;

TEST(DnsResolverTest, ResolvesLocalhost) {
  EventLoop loop;
  DnsResolver resolver;
  bool done = false;
  bool on_loop_thread = false;
  std::vector<Address> got;
  auto q = resolver.resolve(loop, "localhost", DnsLookupFamily::kV4Only,
                            [&](Result<std::vector<Address>> r) {
                              done = true;
                              on_loop_thread = loop.isThreadSafe();
                              ASSERT_TRUE(r.ok()) << r.error().message();
                              got = *r;
                            });
  ASSERT_TRUE(runUntil(loop, [&] { return done; }));
  EXPECT_TRUE(on_loop_thread);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].ip(), "127.0.0.1");
  EXPECT_EQ(got[0].port(), 0);
}

TEST(DnsResolverTest, BadNameIsAnError) {
  EventLoop loop;
  DnsResolver resolver;
  bool done = false;
  // An empty label is refused by the resolver library itself: no query leaves the machine.
  auto q = resolver.resolve(loop, "bad..name", DnsLookupFamily::kAuto,
                            [&](Result<std::vector<Address>> r) {
                              done = true;
                              ASSERT_FALSE(r.ok());
                              EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
                              EXPECT_NE(r.error().message().find("bad..name"), std::string::npos);
                            });
  ASSERT_TRUE(runUntil(loop, [&] { return done; }));
}

TEST(DnsResolverTest, IpLiteralsResolveWithoutALookup) {
  EventLoop loop;
  DnsResolver resolver;
  int done = 0;
  std::vector<Address> v4;
  std::vector<Address> v6;
  auto q1 = resolver.resolve(loop, "10.1.2.3", DnsLookupFamily::kAuto,
                             [&](Result<std::vector<Address>> r) {
                               ++done;
                               ASSERT_TRUE(r.ok());
                               v4 = *r;
                             });
  auto q2 =
      resolver.resolve(loop, "[::1]", DnsLookupFamily::kAll, [&](Result<std::vector<Address>> r) {
        ++done;
        ASSERT_TRUE(r.ok());
        v6 = *r;
      });
  bool wrong_family_failed = false;
  auto q3 = resolver.resolve(loop, "10.1.2.3", DnsLookupFamily::kV6Only,
                             [&](Result<std::vector<Address>> r) {
                               ++done;
                               wrong_family_failed = !r.ok();
                             });
  ASSERT_TRUE(runUntil(loop, [&] { return done == 3; }));
  ASSERT_EQ(v4.size(), 1u);
  EXPECT_EQ(v4[0].ip(), "10.1.2.3");
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0].ip(), "::1");
  EXPECT_TRUE(wrong_family_failed);
}

TEST(DnsResolverTest, CancelledQueryNeverCallsBack) {
  EventLoop loop;
  DnsResolver resolver(1);
  bool called = false;
  auto q = resolver.resolve(loop, "localhost", DnsLookupFamily::kAuto,
                            [&](Result<std::vector<Address>>) { called = true; });
  q.reset();  // the requester goes away
  auto literal = resolver.resolve(loop, "127.0.0.1", DnsLookupFamily::kAuto,
                                  [&](Result<std::vector<Address>>) { called = true; });
  literal->cancel();
  // A later query on the same single thread proves the first one has been processed.
  bool later = false;
  auto q2 = resolver.resolve(loop, "localhost", DnsLookupFamily::kAuto,
                             [&](Result<std::vector<Address>>) { later = true; });
  ASSERT_TRUE(runUntil(loop, [&] { return later; }));
  runUntil(
      loop, [] { return false; }, milliseconds(20));
  EXPECT_FALSE(called);
}

TEST(DnsResolverTest, ResolveFromAnotherThreadPostsToTheRequestingLoop) {
  EventLoop loop;
  DnsResolver resolver;
  std::atomic<bool> done{false};
  std::atomic<bool> on_loop_thread{false};
  std::unique_ptr<ActiveDnsQuery> q;
  std::thread runner([&] {
    loop.post([&] {
      q = resolver.resolve(loop, "localhost", DnsLookupFamily::kAll,
                           [&](Result<std::vector<Address>> r) {
                             on_loop_thread = loop.isThreadSafe();
                             done = r.ok();
                           });
    });
    runUntil(loop, [&] { return done.load(); });
    q.reset();
  });
  runner.join();
  EXPECT_TRUE(done.load());
  EXPECT_TRUE(on_loop_thread.load());
}

TEST(DnsResolverTest, SelectFamily) {
  std::vector<Address> all = {*Address::parse("::1", 0), *Address::parse("127.0.0.1", 0),
                              *Address::parse("::1", 0), *Address::parse("10.0.0.1", 0)};
  auto ips = [](const std::vector<Address>& v) {
    std::vector<std::string> out;
    for (auto& a : v) out.push_back(a.ip());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ips(DnsResolver::selectFamily(all, DnsLookupFamily::kV4Only)),
            (V{"127.0.0.1", "10.0.0.1"}));
  EXPECT_EQ(ips(DnsResolver::selectFamily(all, DnsLookupFamily::kV6Only)), (V{"::1"}));
  EXPECT_EQ(ips(DnsResolver::selectFamily(all, DnsLookupFamily::kAuto)), (V{"::1"}));
  EXPECT_EQ(ips(DnsResolver::selectFamily(all, DnsLookupFamily::kV4Preferred)),
            (V{"127.0.0.1", "10.0.0.1"}));
  EXPECT_EQ(ips(DnsResolver::selectFamily(all, DnsLookupFamily::kAll)),
            (V{"127.0.0.1", "10.0.0.1", "::1"}));
  std::vector<Address> only_v4 = {*Address::parse("127.0.0.1", 0)};
  EXPECT_EQ(ips(DnsResolver::selectFamily(only_v4, DnsLookupFamily::kAuto)), (V{"127.0.0.1"}));
}

}  // namespace
}  // namespace sheave::network
