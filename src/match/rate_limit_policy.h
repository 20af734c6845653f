#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/address.h"
#include "common/result.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "match/header_map.h"
#include "match/header_matcher.h"

namespace sheave {

// A rate limit descriptor: ordered (key, value) entries.
using RateLimitDescriptor = std::vector<std::pair<std::string, std::string>>;

// One route or virtual host RateLimit: its actions produce one descriptor
// for a request, or none when an action cannot produce its entry (a missing
// header, a header_value_match that does not hold), as in Envoy.
class RateLimitPolicy {
 public:
  static Result<RateLimitPolicy> create(const envoy::config::route::v3::RateLimit& config,
                                        const std::string& where);

  // `remote` is the client's address, `cluster` the routed cluster.
  std::optional<RateLimitDescriptor> descriptor(const HeaderMap& headers, const Address* remote,
                                                std::string_view cluster) const;
  uint32_t stage() const { return stage_; }

 private:
  struct Action {
    enum class Kind {
      kDestinationCluster,
      kRequestHeaders,
      kRemoteAddress,
      kGenericKey,
      kHeaderMatch
    };
    Kind kind = Kind::kGenericKey;
    std::string key;
    std::string value;        // generic_key / header_value_match descriptor_value
    std::string header_name;  // request_headers (lower-case)
    bool skip_if_absent = false;
    bool expect_match = true;
    std::vector<HeaderMatcher> headers;
  };
  uint32_t stage_ = 0;
  std::vector<Action> actions_;
};

}  // namespace sheave
