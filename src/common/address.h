#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sheave {

// An IPv4 or IPv6 socket address (ip + port). A value type: cheap to copy, no heap.
// 28 bytes (sockaddr_in6), not sockaddr_storage's 128: every upstream host holds one.
// A default-constructed Address is empty (family() == AF_UNSPEC) and prints as "".
class Address {
 public:
  Address() = default;

  // `ip` is a literal ("10.0.0.1", "::1", "fe80::1%eth0" is rejected); no name resolution.
  static Result<Address> parse(std::string_view ip, uint16_t port);
  // "1.2.3.4:80" or "[::1]:80".
  static Result<Address> parseIpPort(std::string_view ip_port);
  // Copies an address the kernel returned (accept, getsockname, getaddrinfo). Families other than
  // AF_INET/AF_INET6 give an empty Address.
  static Address fromSockaddr(const sockaddr* addr, socklen_t len);
  // The local or peer address of a socket, empty on error.
  static Address localOf(int fd);
  static Address peerOf(int fd);

  const sockaddr* sockAddr() const { return &storage_.any; }
  socklen_t len() const;
  int family() const { return storage_.any.sa_family; }
  bool empty() const { return family() == AF_UNSPEC; }
  uint16_t port() const;
  Address withPort(uint16_t port) const;
  // The address without the port and without brackets: "127.0.0.1", "::1".
  std::string ip() const;
  // As Envoy prints it: "127.0.0.1:80", "[::1]:80".
  std::string asString() const;
  // 0.0.0.0 or ::
  bool isAnyAddress() const;

  bool operator==(const Address& other) const;
  bool operator!=(const Address& other) const { return !(*this == other); }

 private:
  // The largest member first: `{}` zeroes the first member of a union, and
  // operator== reads every byte of sockaddr_in6.
  union Storage {
    sockaddr_in6 v6;
    sockaddr_in v4;
    sockaddr any;
  };
  Storage storage_{};
};

}  // namespace sheave
