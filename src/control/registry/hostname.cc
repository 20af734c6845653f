#include "control/registry/hostname.h"

#include <arpa/inet.h>

#include <string>

namespace sheave::control {

std::string serviceHostname(std::string_view name, std::string_view namespace_name,
                            std::string_view domain_suffix) {
  std::string out;
  out.reserve(name.size() + namespace_name.size() + domain_suffix.size() + 6);
  out.append(name).append(".").append(namespace_name).append(".svc.").append(domain_suffix);
  return out;
}

std::string resolveHostname(std::string_view name, std::string_view namespace_name,
                            std::string_view domain_suffix) {
  if (name.empty() || isWildcardHostname(name) || isIpAddress(name) ||
      name.find('.') != std::string_view::npos || namespace_name.empty()) {
    return std::string(name);
  }
  return serviceHostname(name, namespace_name, domain_suffix);
}

std::vector<std::string> hostnameCandidates(std::string_view name, std::string_view namespace_name,
                                            std::string_view domain_suffix) {
  if (name.empty() || isWildcardHostname(name) || isIpAddress(name)) return {std::string(name)};
  if (name.find('.') == std::string_view::npos) {
    return {resolveHostname(name, namespace_name, domain_suffix)};
  }
  std::vector<std::string> out;
  out.emplace_back(name);
  const std::string with_suffix = "." + std::string(domain_suffix);
  // Already ends in the suffix: nothing further for the search path to add.
  if (name.size() > with_suffix.size() &&
      name.substr(name.size() - with_suffix.size()) == with_suffix) {
    return out;
  }
  out.push_back(std::string(name) + ".svc" + with_suffix);  // "reviews.default"
  out.push_back(std::string(name) + with_suffix);           // "reviews.default.svc"
  return out;
}

bool isWildcardHostname(std::string_view name) { return !name.empty() && name.front() == '*'; }

bool isIpAddress(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string copy(text);
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, copy.c_str(), buf) == 1 || inet_pton(AF_INET6, copy.c_str(), buf) == 1;
}

}  // namespace sheave::control
