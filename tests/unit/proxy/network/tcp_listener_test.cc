#include "proxy/network/tcp_listener.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "loop_test_util.h"
#include "proxy/network/connection.h"

namespace sheave::network {
namespace {

using std::chrono::milliseconds;
using testing::runUntil;

// A blocking loopback connect from the test thread (the peer side is not under test).
int blockingConnect(const Address& to) {
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, to.sockAddr(), to.len()) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(TcpListenerTest, PortZeroPicksAPortAndAcceptsWithNoDelay) {
  EventLoop loop;
  std::vector<int> accepted;
  Address seen_local;
  Address seen_remote;
  auto listener = TcpListener::create(loop, *Address::parse("127.0.0.1", 0), false,
                                      [&](int fd, const Address& local, const Address& remote) {
                                        accepted.push_back(fd);
                                        seen_local = local;
                                        seen_remote = remote;
                                      });
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  const Address bound = (*listener)->boundAddress();
  EXPECT_EQ(bound.ip(), "127.0.0.1");
  EXPECT_NE(bound.port(), 0);

  int client = blockingConnect(bound);
  ASSERT_GE(client, 0);
  ASSERT_TRUE(runUntil(loop, [&] { return accepted.size() == 1; }));
  EXPECT_EQ(seen_local, bound);
  EXPECT_EQ(seen_remote, Address::localOf(client));
  int nodelay = 0;
  socklen_t len = sizeof(nodelay);
  ASSERT_EQ(::getsockopt(accepted[0], IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_NE(nodelay, 0);
  ::close(accepted[0]);
  ::close(client);
}

TEST(TcpListenerTest, WildcardBindReportsTheRealLocalAddress) {
  EventLoop loop;
  Address seen_local;
  int accepted = -1;
  auto listener = TcpListener::create(loop, *Address::parse("0.0.0.0", 0), false,
                                      [&](int fd, const Address& local, const Address&) {
                                        accepted = fd;
                                        seen_local = local;
                                      });
  ASSERT_TRUE(listener.ok());
  int client = blockingConnect(
      (*listener)->boundAddress().isAnyAddress()
          ? Address::parse("127.0.0.1", 0)->withPort((*listener)->boundAddress().port())
          : (*listener)->boundAddress());
  ASSERT_GE(client, 0);
  ASSERT_TRUE(runUntil(loop, [&] { return accepted >= 0; }));
  EXPECT_EQ(seen_local.ip(), "127.0.0.1");
  ::close(accepted);
  ::close(client);
}

TEST(TcpListenerTest, BindingATakenPortFails) {
  EventLoop loop;
  auto first = TcpListener::create(loop, *Address::parse("127.0.0.1", 0), false,
                                   [](int fd, auto&, auto&) { ::close(fd); });
  ASSERT_TRUE(first.ok());
  auto second = TcpListener::create(loop, (*first)->boundAddress(), false,
                                    [](int fd, auto&, auto&) { ::close(fd); });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message().find((*first)->boundAddress().asString()), std::string::npos);
}

TEST(TcpListenerTest, TwoLoopsShareAPortWithReusePort) {
  EventLoop loop_a;
  EventLoop loop_b;
  std::atomic<int> accepted_a{0};
  std::atomic<int> accepted_b{0};
  auto on_accept = [](std::atomic<int>& counter) {
    return [&counter](int fd, const Address&, const Address&) {
      ::close(fd);
      ++counter;
    };
  };
  // The first worker binds port 0, the second binds the port the first one got.
  auto a =
      TcpListener::create(loop_a, *Address::parse("127.0.0.1", 0), true, on_accept(accepted_a));
  ASSERT_TRUE(a.ok());
  auto b = TcpListener::create(loop_b, (*a)->boundAddress(), true, on_accept(accepted_b));
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ((*a)->boundAddress(), (*b)->boundAddress());

  constexpr int kConnections = 64;
  std::atomic<bool> done{false};
  std::thread thread_b([&] { runUntil(loop_b, [&] { return done.load(); }); });
  std::thread client([&] {
    for (int i = 0; i < kConnections; ++i) {
      // Distinct source ports hash to both sockets.
      int fd = blockingConnect((*a)->boundAddress());
      if (fd >= 0) ::close(fd);
    }
  });
  bool all = runUntil(loop_a, [&] { return accepted_a + accepted_b == kConnections; });
  client.join();
  done = true;
  thread_b.join();
  EXPECT_TRUE(all);
  EXPECT_EQ(accepted_a + accepted_b, kConnections);
  // The kernel spreads by hash: with 64 connections both must have had some.
  EXPECT_GT(accepted_a.load(), 0);
  EXPECT_GT(accepted_b.load(), 0);
}

TEST(TcpListenerTest, DisableStopsAcceptingAndEnableResumes) {
  EventLoop loop;
  int accepted = 0;
  auto listener =
      TcpListener::create(loop, *Address::parse("127.0.0.1", 0), false, [&](int fd, auto&, auto&) {
        ::close(fd);
        ++accepted;
      });
  ASSERT_TRUE(listener.ok());
  (*listener)->disable();
  EXPECT_FALSE((*listener)->enabled());
  int client = blockingConnect((*listener)->boundAddress());  // lands in the backlog
  ASSERT_GE(client, 0);
  runUntil(
      loop, [] { return false; }, milliseconds(30));
  EXPECT_EQ(accepted, 0);
  (*listener)->enable();
  ASSERT_TRUE(runUntil(loop, [&] { return accepted == 1; }));
  ::close(client);
}

TEST(TcpListenerTest, RejectsAnEmptyAddress) {
  EventLoop loop;
  auto r = TcpListener::create(loop, Address(), false, [](int, auto&, auto&) {});
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace sheave::network
