#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/address.h"
#include "common/result.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "match/header_map.h"
#include "match/string_matcher.h"

namespace sheave {

// One RouteAction.hash_policy entry.
struct HashPolicyEntry {
  enum class Kind { kHeader, kCookie, kSourceIp, kQueryParameter };
  Kind kind = Kind::kHeader;
  // The header (lower-case), cookie or query parameter to hash.
  std::string name;
  std::optional<RegexSubstitution> regex_rewrite;  // header only
  // cookie: with a ttl, a request without the cookie gets one generated (and
  // set on the response); without a ttl such a request has no hash from it.
  std::optional<std::chrono::seconds> cookie_ttl;
  std::string cookie_path;
  std::vector<std::pair<std::string, std::string>> cookie_attributes;
  bool terminal = false;
};

// RouteAction.hash_policy compiled: the request's hash for RING_HASH and
// MAGLEV clusters (Istio's DestinationRule consistentHash). As Envoy: each
// policy that yields a value is xxHash64'd and folded in (previous hash
// rotated left by one, XOR the new), a terminal policy that produced a hash
// ends the list, and no value at all means no hash (the balancer picks at
// random).
class HashPolicy {
 public:
  using Proto =
      google::protobuf::RepeatedPtrField<envoy::config::route::v3::RouteAction::HashPolicy>;
  static Result<HashPolicy> create(const Proto& config, const std::string& where);

  // Called for a cookie policy with a ttl whose cookie the request lacks:
  // returns the generated value (the caller adds its Set-Cookie).
  using AddCookie = std::function<std::string(const HashPolicyEntry&)>;

  std::optional<uint64_t> generateHash(const HeaderMap& headers, const Address* downstream_remote,
                                       const AddCookie& add_cookie) const;
  bool empty() const { return entries_.empty(); }
  const std::vector<HashPolicyEntry>& entries() const { return entries_; }

 private:
  std::vector<HashPolicyEntry> entries_;
};

// The value of cookie `name` in the request's Cookie header(s), surrounding
// double quotes removed; nullopt when absent.
std::optional<std::string> cookieValue(const HeaderMap& headers, std::string_view name);

// A Set-Cookie value as Envoy writes it: name="value"; Max-Age=N; Path=P;
// attributes; HttpOnly.
std::string makeSetCookieValue(const HashPolicyEntry& cookie, std::string_view value);

}  // namespace sheave
