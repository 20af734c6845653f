#include "common/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sheave {

static_assert(sizeof(Address) == sizeof(sockaddr_in6), "Address must stay small: hosts hold one");

Result<Address> Address::parse(std::string_view ip, uint16_t port) {
  // inet_pton needs a NUL-terminated string; INET6_ADDRSTRLEN bounds every valid literal.
  char buf[INET6_ADDRSTRLEN + 1];
  if (ip.empty() || ip.size() >= sizeof(buf)) {
    return invalidArgument("'" + std::string(ip) + "' is not an IPv4 or IPv6 address");
  }
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';

  Address a;
  sockaddr_in& v4 = a.storage_.v4;
  if (inet_pton(AF_INET, buf, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return a;
  }
  a.storage_ = {};
  sockaddr_in6& v6 = a.storage_.v6;
  if (inet_pton(AF_INET6, buf, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    return a;
  }
  return invalidArgument("'" + std::string(ip) + "' is not an IPv4 or IPv6 address");
}

Result<Address> Address::parseIpPort(std::string_view ip_port) {
  auto bad = [&](std::string_view why) {
    return invalidArgument("'" + std::string(ip_port) + "' is not an address of the form " +
                           "1.2.3.4:80 or [::1]:80: " + std::string(why));
  };
  std::string_view ip;
  std::string_view port;
  if (!ip_port.empty() && ip_port.front() == '[') {
    auto close = ip_port.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    ip = ip_port.substr(1, close - 1);
    if (close + 1 >= ip_port.size() || ip_port[close + 1] != ':') return bad("missing port");
    port = ip_port.substr(close + 2);
    // Brackets are only for IPv6; "[1.2.3.4]:80" is refused as Envoy does.
    if (ip.find(':') == std::string_view::npos) return bad("brackets are for IPv6 only");
  } else {
    auto colon = ip_port.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    ip = ip_port.substr(0, colon);
    port = ip_port.substr(colon + 1);
    if (ip.find(':') != std::string_view::npos) return bad("an IPv6 address needs brackets");
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return bad("bad port");
  }
  auto parsed = parse(ip, static_cast<uint16_t>(value));
  if (!parsed.ok()) return bad(parsed.error().message());
  return parsed;
}

Address Address::fromSockaddr(const sockaddr* addr, socklen_t len) {
  Address a;
  if (addr == nullptr) return a;
  if (addr->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    std::memcpy(&a.storage_.v4, addr, sizeof(sockaddr_in));
  } else if (addr->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    std::memcpy(&a.storage_.v6, addr, sizeof(sockaddr_in6));
  }
  return a;
}

Address Address::localOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Address();
  return fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

Address Address::peerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Address();
  return fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

socklen_t Address::len() const {
  switch (family()) {
    case AF_INET:
      return sizeof(sockaddr_in);
    case AF_INET6:
      return sizeof(sockaddr_in6);
    default:
      return 0;
  }
}

uint16_t Address::port() const {
  switch (family()) {
    case AF_INET:
      return ntohs(storage_.v4.sin_port);
    case AF_INET6:
      return ntohs(storage_.v6.sin6_port);
    default:
      return 0;
  }
}

Address Address::withPort(uint16_t port) const {
  Address a = *this;
  if (family() == AF_INET) {
    a.storage_.v4.sin_port = htons(port);
  } else if (family() == AF_INET6) {
    a.storage_.v6.sin6_port = htons(port);
  }
  return a;
}

std::string Address::ip() const {
  char buf[INET6_ADDRSTRLEN];
  const char* out = nullptr;
  if (family() == AF_INET) {
    out = inet_ntop(AF_INET, &storage_.v4.sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    out = inet_ntop(AF_INET6, &storage_.v6.sin6_addr, buf, sizeof(buf));
  }
  return out == nullptr ? std::string() : std::string(out);
}

std::string Address::asString() const {
  if (family() == AF_INET) return ip() + ":" + std::to_string(port());
  if (family() == AF_INET6) return "[" + ip() + "]:" + std::to_string(port());
  return std::string();
}

bool Address::isAnyAddress() const {
  if (family() == AF_INET) {
    return storage_.v4.sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (family() == AF_INET6) {
    return IN6_IS_ADDR_UNSPECIFIED(&storage_.v6.sin6_addr);
  }
  return false;
}

bool Address::operator==(const Address& other) const {
  if (family() != other.family()) return false;
  if (family() == AF_INET) {
    const sockaddr_in* a = &storage_.v4;
    const sockaddr_in* b = &other.storage_.v4;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    const sockaddr_in6* a = &storage_.v6;
    const sockaddr_in6* b = &other.storage_.v6;
    return a->sin6_port == b->sin6_port && a->sin6_scope_id == b->sin6_scope_id &&
           std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(in6_addr)) == 0;
  }
  return true;  // both empty
}

}  // namespace sheave
