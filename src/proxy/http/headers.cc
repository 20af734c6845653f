#include "proxy/http/headers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

namespace sheave::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

void removeHopByHopHeaders(HeaderMap& headers) {
  if (const std::string* connection = headers.get("connection")) {
    std::vector<std::string> listed;
    std::string_view rest = *connection;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string token(trim(rest.substr(0, comma)));
      asciiLowerInPlace(token);
      // Never let a client make the proxy drop fields it relies on.
      if (!token.empty() && token[0] != ':' && token != "host") listed.push_back(std::move(token));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    for (const auto& name : listed) headers.remove(name);
    headers.remove("connection");
  }
  headers.remove("keep-alive");
  headers.remove("proxy-connection");
  headers.remove("transfer-encoding");
  headers.remove("upgrade");
  if (const std::string* te = headers.get("te")) {
    if (!equalsIgnoreCase(trim(*te), "trailers")) headers.remove("te");
  }
}

void appendHeaderValue(HeaderMap& headers, std::string_view name, std::string_view value) {
  if (const std::string* existing = headers.get(name)) {
    std::string joined = *existing;
    joined += ",";
    joined += value;
    headers.set(name, joined);
  } else {
    headers.add(name, value);
  }
}

bool isInternalAddress(const Address& address) {
  const sockaddr* sa = address.sockAddr();
  if (sa->sa_family == AF_INET) {
    uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    return (ip >> 24) == 10 || (ip >> 20) == ((172u << 4) | 1u) ||
           (ip >> 16) == ((192u << 8) | 168u) || (ip >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* a = &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a)) return true;
    return (a->s6_addr[0] & 0xfe) == 0xfc;  // fc00::/7 unique local
  }
  return false;
}

void removeEnvoyInternalHeaders(HeaderMap& headers) {
  static constexpr std::string_view kNames[] = {
      "x-envoy-internal",
      "x-envoy-retry-on",
      "x-envoy-retry-grpc-on",
      "x-envoy-max-retries",
      "x-envoy-upstream-rq-timeout-ms",
      "x-envoy-upstream-rq-per-try-timeout-ms",
      "x-envoy-upstream-alt-stat-name",
      "x-envoy-upstream-rq-timeout-alt-response",
      "x-envoy-expected-rq-timeout-ms",
      "x-envoy-ip-tags",
      "x-envoy-hedge-on-per-try-timeout",
      "x-envoy-retriable-status-codes",
      "x-envoy-retriable-header-names",
  };
  for (auto name : kNames) headers.remove(name);
}

}  // namespace sheave::http
