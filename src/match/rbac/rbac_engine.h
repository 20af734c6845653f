#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "envoy/config/core/v3/address.pb.h"
#include "envoy/config/rbac/v3/rbac.pb.h"
#include "envoy/type/matcher/v3/metadata.pb.h"
#include "match/header_map.h"

namespace sheave::rbac {

// Dynamic metadata as StreamInfo keeps it: writing filter's name -> JSON object.
using DynamicMetadata = std::map<std::string, std::shared_ptr<const nlohmann::json>, std::less<>>;

// An IP address reduced to what CIDR matching needs. IPv4-mapped IPv6
// addresses stay IPv6 (Envoy does not match them against IPv4 ranges).
struct IpAddress {
  int family = AF_UNSPEC;  // AF_INET, AF_INET6, or AF_UNSPEC (none)
  std::array<uint8_t, 16> bytes{};
  uint16_t port = 0;

  // "10.0.0.1", "::1"; nullopt when not an IP literal.
  static std::optional<IpAddress> parse(std::string_view ip);
  // "10.0.0.1:80", "[::1]:80"; nullopt when malformed.
  static std::optional<IpAddress> parseIpPort(std::string_view ip_port);
};

// envoy.config.core.v3.CidrRange; prefix_len defaults to the full width and
// host bits of address_prefix are ignored.
class CidrRange {
 public:
  static Result<CidrRange> create(const envoy::config::core::v3::CidrRange& proto);
  bool contains(const IpAddress& ip) const;

 private:
  int family_ = AF_UNSPEC;
  std::array<uint8_t, 16> bytes_{};
  uint32_t prefix_len_ = 0;
};

// envoy.type.matcher.v3.MetadataMatcher over dynamic metadata held as JSON.
class MetadataMatcher {
 public:
  static Result<MetadataMatcher> create(const envoy::type::matcher::v3::MetadataMatcher& proto);
  bool match(const DynamicMetadata* metadata) const;

  class ValueMatcher;

 private:
  std::string filter_;
  std::vector<std::string> path_;
  std::shared_ptr<const ValueMatcher> value_;
  bool invert_ = false;
};

// What a request (or a TCP connection) offers the matchers. A plain view: it
// owns nothing and must not outlive what it points into.
struct RbacRequest {
  const HeaderMap* headers = nullptr;  // null for TCP
  std::string_view path;               // :path as forwarded; url_path ignores its query
  IpAddress remote_ip;                 // after XFF / proxy protocol
  IpAddress direct_remote_ip;          // the socket's peer
  IpAddress destination_ip;            // with the destination port
  std::string_view requested_server_name;
  bool secure = false;  // the downstream connection runs TLS
  std::span<const std::string> peer_uri_sans;
  std::span<const std::string> peer_dns_sans;
  std::string_view peer_subject;
  const DynamicMetadata* dynamic_metadata = nullptr;
};

struct RbacResult {
  bool allowed = false;
  // The first policy (in name order) that matched; empty when none did.
  std::string matched_policy_name;
};

class Node;

// envoy.config.rbac.v3.RBAC compiled once into an immutable matcher tree;
// evaluation allocates nothing but the result's name and is thread-safe.
// ALLOW: allowed iff some policy matches (no policies: nothing is allowed).
// DENY: denied iff some policy matches. LOG: always allowed; the name tells
// whether a policy asked for logging.
class RbacEngine {
 public:
  enum class Action { kAllow, kDeny, kLog };

  static Result<std::shared_ptr<const RbacEngine>> create(
      const envoy::config::rbac::v3::RBAC& proto);
  ~RbacEngine();

  RbacResult evaluate(const RbacRequest& request) const;
  Action action() const { return action_; }
  // Whether some policy matches (independent of the action).
  const std::string* matchingPolicy(const RbacRequest& request) const;

 private:
  struct Policy;
  RbacEngine() = default;

  Action action_ = Action::kAllow;
  std::vector<Policy> policies_;  // in name order, as Envoy iterates its map
};

}  // namespace sheave::rbac
