#include "proxy/network/listener_filters/original_dst.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <optional>

namespace sheave {
namespace {

// A connected loopback TCP pair; `accepted` is what a listener would inspect.
struct LoopbackPair {
  int listener = -1;
  int client = -1;
  int accepted = -1;

  ~LoopbackPair() {
    for (int fd : {listener, client, accepted}) {
      if (fd >= 0) ::close(fd);
    }
  }

  // Returns false when the family is not available here (e.g. no IPv6 loopback).
  bool open(const char* ip) {
    auto any = Address::parse(ip, 0);
    if (!any.ok()) return false;
    listener = ::socket(any->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || ::bind(listener, any->sockAddr(), any->len()) != 0 ||
        ::listen(listener, 1) != 0) {
      return false;
    }
    const Address bound = Address::localOf(listener);
    client = ::socket(any->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0 || ::connect(client, bound.sockAddr(), bound.len()) != 0) return false;
    accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    return accepted >= 0;
  }
};

// Without iptables rules the kernel either has no conntrack for the socket (an error saying
// why) or tracks it un-NATed (its own local address). Both are clean; nothing else is.
void expectNotRedirected(int fd) {
  Result<Address> original = originalDestination(fd);
  if (original.ok()) {
    EXPECT_EQ(*original, Address::localOf(fd));
  } else {
    EXPECT_TRUE(original.error().code() == ErrorCode::kNotFound ||
                original.error().code() == ErrorCode::kUnavailable)
        << original.error().message();
    EXPECT_FALSE(original.error().message().empty());
  }
}

TEST(OriginalDstTest, NotRedirectedIPv4) {
  LoopbackPair pair;
  ASSERT_TRUE(pair.open("127.0.0.1"));
  expectNotRedirected(pair.accepted);
}

TEST(OriginalDstTest, NotRedirectedIPv6) {
  LoopbackPair pair;
  if (!pair.open("::1")) GTEST_SKIP() << "no IPv6 loopback here";
  expectNotRedirected(pair.accepted);
}

TEST(OriginalDstTest, NotASocket) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  Result<Address> r = originalDestination(pipe_fds[0]);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("not a socket"), std::string::npos) << r.error().message();
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);

  EXPECT_FALSE(originalDestination(-1).ok());
}

TEST(OriginalDstTest, UnixSocketIsNotAnIpSocket) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Result<Address> r = originalDestination(fds[0]);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace sheave
