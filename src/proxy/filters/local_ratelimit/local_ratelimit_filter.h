#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb.h"
#include "match/fractional_percent.h"
#include "match/header_mutation.h"
#include "match/rate_limit_policy.h"
#include "match/route_table.h"
#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"
#include "proxy/stats/scope.h"

namespace sheave::local_ratelimit {

inline constexpr std::string_view kFilterName = "envoy.filters.http.local_ratelimit";

// envoy.type.v3.TokenBucket, shared by every worker: starts full, gains
// tokens_per_fill every fill_interval (lazily, on use), at most max_tokens.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill, std::chrono::milliseconds interval,
              Clock::time_point now = Clock::now());
  // Takes one token if there is one.
  bool consume(Clock::time_point now = Clock::now());
  uint32_t remaining(Clock::time_point now = Clock::now());
  // Time until the next fill (for x-ratelimit-reset).
  std::chrono::milliseconds untilNextFill(Clock::time_point now = Clock::now());
  uint32_t maxTokens() const { return max_tokens_; }

 private:
  void refill(Clock::time_point now);
  const uint32_t max_tokens_;
  const uint32_t tokens_per_fill_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  uint32_t tokens_;
  Clock::time_point last_fill_;
};

// <stat_prefix>.http_local_rate_limit.*, Envoy's names, in the root scope.
struct LocalRateLimitStats {
  LocalRateLimitStats(stats::Scope& root, const std::string& stat_prefix);
  stats::Counter& enabled;
  stats::Counter& enforced;
  stats::Counter& rate_limited;
  stats::Counter& ok;
};

enum class VhRateLimits { kOverride, kInclude, kIgnore };

// One LocalRateLimit: the listener's filter config, or a route's / virtual
// host's typed_per_filter_config (which replaces it for those requests, with
// buckets of its own).
struct LocalRateLimitSettings : RouteSpecificFilterConfig {
  std::string stat_prefix;
  uint32_t status = 429;
  std::shared_ptr<TokenBucket> bucket;  // token_bucket; null: only descriptors limit
  Fraction filter_enabled;              // default 0%: nothing is limited
  Fraction filter_enforced;             // default 0%: limited requests only counted
  HeaderMutations response_headers_to_add;
  // Added to a request over the limit that is let through (filter_enforced said no).
  HeaderMutations request_headers_to_add_when_not_enforced;
  struct Descriptor {
    RateLimitDescriptor entries;
    std::shared_ptr<TokenBucket> bucket;
  };
  std::vector<Descriptor> descriptors;
  uint32_t stage = 0;
  bool x_ratelimit_headers = false;  // DRAFT_VERSION_03
  VhRateLimits vh_rate_limits = VhRateLimits::kOverride;
  bool always_consume_default_token_bucket = true;
  bool rate_limited_as_resource_exhausted = false;

  static Result<std::shared_ptr<const LocalRateLimitSettings>> create(
      const envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit& proto);

  // The stats, made on first use from the proxy's root scope (a per-route
  // config is parsed where no scope is at hand).
  LocalRateLimitStats& stats(stats::Scope& root) const;

 private:
  mutable std::once_flag stats_once_;
  mutable std::unique_ptr<LocalRateLimitStats> stats_;
};

struct LocalRateLimitFilterConfig {
  std::shared_ptr<const LocalRateLimitSettings> settings;
  stats::Scope& root;
};

// envoy.filters.http.local_ratelimit: a request the buckets have no token
// for is answered with 429 (or `status`), body "local_rate_limited",
// response flag RL, when enforced; x-ratelimit-limit/-remaining/-reset on
// responses with enable_x_ratelimit_headers: DRAFT_VERSION_03.
class LocalRateLimitFilter : public http::PassThroughStreamFilter {
 public:
  explicit LocalRateLimitFilter(std::shared_ptr<const LocalRateLimitFilterConfig> config)
      : config_(std::move(config)) {}

  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;
  http::FilterHeadersStatus encodeHeaders(HeaderMap& headers, bool end_stream) override;

 private:
  std::shared_ptr<const LocalRateLimitFilterConfig> config_;
  const LocalRateLimitSettings* settings_ = nullptr;
  TokenBucket* reported_ = nullptr;  // the bucket the x-ratelimit headers describe
  bool limited_ = false;
};

// Registers the filter (envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit)
// and its per-route config parser.
void registerLocalRateLimitFilter(http::FilterRegistry& registry);

}  // namespace sheave::local_ratelimit
