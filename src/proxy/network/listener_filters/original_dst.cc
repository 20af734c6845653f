#include "proxy/network/listener_filters/original_dst.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace sheave {

namespace {

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>; those headers clash
// with glibc's <netinet/in.h>, and the values are fixed kernel ABI.
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;

bool isV4Mapped(const sockaddr_in6& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  return std::memcmp(&a.sin6_addr, kPrefix, sizeof(kPrefix)) == 0;
}

Error lookupError(int err) {
  switch (err) {
    case ENOENT:
      return notFound(
          "the connection was not redirected: connection tracking has no original "
          "destination for it");
    case ENOPROTOOPT:
      return Error(ErrorCode::kUnavailable,
                   "no original destination: netfilter connection tracking (nf_conntrack) is "
                   "not available for this socket's family");
    default:
      return ioError(std::string("getsockopt(SO_ORIGINAL_DST) failed: ") + std::strerror(err));
  }
}

}  // namespace

Result<Address> originalDestination(int fd) {
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    const int err = errno;
    return invalidArgument(std::string("original destination: not a socket: ") +
                           std::strerror(err));
  }

  bool ask_v4 = local.ss_family == AF_INET;
  if (local.ss_family == AF_INET6) {
    ask_v4 = isV4Mapped(*reinterpret_cast<const sockaddr_in6*>(&local));
  } else if (local.ss_family != AF_INET) {
    return invalidArgument("original destination: the socket is not an IPv4 or IPv6 socket");
  }

  sockaddr_storage original{};
  socklen_t len = 0;
  int rc = 0;
  if (ask_v4) {
    len = sizeof(sockaddr_in);
    rc = ::getsockopt(fd, SOL_IP, kSoOriginalDst, &original, &len);
  } else {
    len = sizeof(sockaddr_in6);
    rc = ::getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &original, &len);
  }
  if (rc != 0) return lookupError(errno);

  Address address = Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&original), len);
  if (address.empty()) {
    return internalError("original destination: the kernel returned an unexpected address family");
  }
  return address;
}

}  // namespace sheave
