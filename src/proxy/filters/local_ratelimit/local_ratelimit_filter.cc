#include "proxy/filters/local_ratelimit/local_ratelimit_filter.h"

#include <algorithm>

#include "proxy/config/proto_json.h"
#include "proxy/network/connection.h"

namespace sheave::local_ratelimit {

namespace {

using LocalRateLimitProto = envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
constexpr std::string_view kTypeName =
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

Result<std::shared_ptr<TokenBucket>> buildBucket(const envoy::type::v3::TokenBucket& proto,
                                                 const std::string& where) {
  if (proto.max_tokens() == 0) {
    return invalidArgument("must be greater than zero").at(where + ".max_tokens");
  }
  const uint32_t per_fill = proto.has_tokens_per_fill() ? proto.tokens_per_fill().value() : 1;
  if (per_fill == 0) {
    return invalidArgument("must be greater than zero").at(where + ".tokens_per_fill");
  }
  const auto& d = proto.fill_interval();
  const auto interval = std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
  if (!proto.has_fill_interval() || d.seconds() < 0 || d.nanos() < 0 ||
      interval < std::chrono::milliseconds(50)) {
    return invalidArgument("is required and must be at least 50ms").at(where + ".fill_interval");
  }
  return std::make_shared<TokenBucket>(proto.max_tokens(), per_fill, interval);
}

Result<Fraction> runtimeFraction(const envoy::config::core::v3::RuntimeFractionalPercent& f,
                                 const std::string& where) {
  return parseFractionalPercent(f.default_value(), where + ".default_value");
}

}  // namespace

TokenBucket::TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill,
                         std::chrono::milliseconds interval, Clock::time_point now)
    : max_tokens_(max_tokens),
      tokens_per_fill_(tokens_per_fill),
      interval_(interval),
      tokens_(max_tokens),
      last_fill_(now) {}

void TokenBucket::refill(Clock::time_point now) {
  if (now < last_fill_ + interval_) return;
  const auto fills = static_cast<uint64_t>((now - last_fill_) / interval_);
  const uint64_t added = fills * tokens_per_fill_;
  tokens_ = static_cast<uint32_t>(std::min<uint64_t>(max_tokens_, tokens_ + added));
  last_fill_ += interval_ * fills;
}

bool TokenBucket::consume(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  refill(now);
  if (tokens_ == 0) return false;
  --tokens_;
  return true;
}

uint32_t TokenBucket::remaining(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  refill(now);
  return tokens_;
}

std::chrono::milliseconds TokenBucket::untilNextFill(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  refill(now);
  return std::chrono::duration_cast<std::chrono::milliseconds>(last_fill_ + interval_ - now);
}

LocalRateLimitStats::LocalRateLimitStats(stats::Scope& root, const std::string& stat_prefix)
    : enabled(root.counter(stat_prefix + ".http_local_rate_limit.enabled")),
      enforced(root.counter(stat_prefix + ".http_local_rate_limit.enforced")),
      rate_limited(root.counter(stat_prefix + ".http_local_rate_limit.rate_limited")),
      ok(root.counter(stat_prefix + ".http_local_rate_limit.ok")) {}

LocalRateLimitStats& LocalRateLimitSettings::stats(stats::Scope& root) const {
  std::call_once(stats_once_,
                 [&] { stats_ = std::make_unique<LocalRateLimitStats>(root, stat_prefix); });
  return *stats_;
}

Result<std::shared_ptr<const LocalRateLimitSettings>> LocalRateLimitSettings::create(
    const LocalRateLimitProto& proto) {
  auto s = std::make_shared<LocalRateLimitSettings>();
  s->stat_prefix = proto.stat_prefix();
  if (s->stat_prefix.empty()) return invalidArgument("stat_prefix: is required");
  if (proto.has_status() && proto.status().code() >= 400) {
    s->status = static_cast<uint32_t>(proto.status().code());
  }
  if (proto.has_token_bucket()) {
    SHEAVE_ASSIGN_OR_RETURN(s->bucket, buildBucket(proto.token_bucket(), "token_bucket"));
  }
  if (proto.has_filter_enabled()) {
    SHEAVE_ASSIGN_OR_RETURN(s->filter_enabled,
                            runtimeFraction(proto.filter_enabled(), "filter_enabled"));
  }
  if (proto.has_filter_enforced()) {
    SHEAVE_ASSIGN_OR_RETURN(s->filter_enforced,
                            runtimeFraction(proto.filter_enforced(), "filter_enforced"));
  }
  SHEAVE_ASSIGN_OR_RETURN(
      s->request_headers_to_add_when_not_enforced,
      HeaderMutations::create(proto.request_headers_to_add_when_not_enforced(), {},
                              "request_headers_to_add_when_not_enforced", ""));
  if (proto.local_rate_limit_per_downstream_connection()) {
    return invalidArgument("local_rate_limit_per_downstream_connection: is not supported");
  }
  SHEAVE_ASSIGN_OR_RETURN(
      s->response_headers_to_add,
      HeaderMutations::create(proto.response_headers_to_add(), {}, "response_headers_to_add", ""));
  for (int i = 0; i < proto.descriptors_size(); ++i) {
    const auto& d = proto.descriptors(i);
    const std::string where = "descriptors[" + std::to_string(i) + "]";
    if (d.entries_size() == 0) {
      return invalidArgument("at least one entry is required").at(where + ".entries");
    }
    if (!d.has_token_bucket()) return invalidArgument("is required").at(where + ".token_bucket");
    Descriptor descriptor;
    for (const auto& e : d.entries()) descriptor.entries.emplace_back(e.key(), e.value());
    SHEAVE_ASSIGN_OR_RETURN(descriptor.bucket,
                            buildBucket(d.token_bucket(), where + ".token_bucket"));
    s->descriptors.push_back(std::move(descriptor));
  }
  if (proto.stage() > 10) return invalidArgument("stage: must be 0-10");
  s->stage = proto.stage();
  s->x_ratelimit_headers = proto.enable_x_ratelimit_headers() ==
                           envoy::extensions::common::ratelimit::v3::DRAFT_VERSION_03;
  switch (proto.vh_rate_limits()) {
    case envoy::extensions::common::ratelimit::v3::INCLUDE:
      s->vh_rate_limits = VhRateLimits::kInclude;
      break;
    case envoy::extensions::common::ratelimit::v3::IGNORE:
      s->vh_rate_limits = VhRateLimits::kIgnore;
      break;
    default:
      s->vh_rate_limits = VhRateLimits::kOverride;
      break;
  }
  if (proto.has_always_consume_default_token_bucket()) {
    s->always_consume_default_token_bucket = proto.always_consume_default_token_bucket().value();
  }
  s->rate_limited_as_resource_exhausted = proto.rate_limited_as_resource_exhausted();
  return std::shared_ptr<const LocalRateLimitSettings>(std::move(s));
}

http::FilterHeadersStatus LocalRateLimitFilter::decodeHeaders(HeaderMap& headers, bool) {
  settings_ = config_->settings.get();
  const RouteMatchResult& route = callbacks_->route();
  // A route's (else its virtual host's) config replaces the listener's.
  if (const PerFilterConfig* per_route = route.perFilterConfig(kFilterName)) {
    if (per_route->disabled) return http::FilterHeadersStatus::kContinue;
    if (const auto* s = dynamic_cast<const LocalRateLimitSettings*>(per_route->parsed.get())) {
      settings_ = s;
    }
  }
  auto& random = callbacks_->random();
  if (!settings_->filter_enabled.enabled(random.next()))
    return http::FilterHeadersStatus::kContinue;
  LocalRateLimitStats& stats = settings_->stats(config_->root);
  stats.enabled.inc();

  // The buckets of the descriptors this request produces and the config knows.
  std::vector<TokenBucket*> buckets;
  if (route.route != nullptr && !settings_->descriptors.empty()) {
    std::vector<const RateLimitPolicy*> policies;
    for (const auto& p : route.route->rate_limits) policies.push_back(&p);
    const bool use_vh =
        route.virtual_host != nullptr &&
        (settings_->vh_rate_limits == VhRateLimits::kInclude ||
         (settings_->vh_rate_limits == VhRateLimits::kOverride && policies.empty()));
    if (use_vh) {
      for (const auto& p : route.virtual_host->rate_limits) policies.push_back(&p);
    }
    const std::string& cluster = route.cluster(headers);
    for (const RateLimitPolicy* p : policies) {
      if (p->stage() != settings_->stage) continue;
      auto d = p->descriptor(headers, &callbacks_->connection().remoteAddress(), cluster);
      if (!d) continue;
      for (const auto& known : settings_->descriptors) {
        if (known.entries == *d) buckets.push_back(known.bucket.get());
      }
    }
  }
  bool allowed = true;
  for (TokenBucket* b : buckets) {
    reported_ = b;
    if (!b->consume()) {
      allowed = false;
      break;
    }
  }
  if (allowed && settings_->bucket &&
      (buckets.empty() || settings_->always_consume_default_token_bucket)) {
    if (buckets.empty()) reported_ = settings_->bucket.get();
    if (!settings_->bucket->consume()) {
      reported_ = settings_->bucket.get();
      allowed = false;
    }
  }
  if (allowed) {
    stats.ok.inc();
    return http::FilterHeadersStatus::kContinue;
  }
  stats.rate_limited.inc();
  if (!settings_->filter_enforced.enabled(random.next())) {
    // Shadow mode: the request goes on, marked for the upstream.
    settings_->request_headers_to_add_when_not_enforced.apply(headers);
    return http::FilterHeadersStatus::kContinue;
  }
  stats.enforced.inc();
  limited_ = true;
  callbacks_->streamInfo().setResponseFlag(ResponseFlag::kRateLimited);
  callbacks_->sendLocalReply(static_cast<int>(settings_->status), "local_rate_limited",
                             "local_rate_limited");
  return http::FilterHeadersStatus::kStopIteration;
}

http::FilterHeadersStatus LocalRateLimitFilter::encodeHeaders(HeaderMap& headers, bool) {
  if (settings_ == nullptr) return http::FilterHeadersStatus::kContinue;
  if (limited_) {
    settings_->response_headers_to_add.apply(headers);
    if (settings_->rate_limited_as_resource_exhausted && headers.has("grpc-status")) {
      headers.set("grpc-status", "8");  // RESOURCE_EXHAUSTED instead of UNAVAILABLE
    }
  }
  if (settings_->x_ratelimit_headers && reported_ != nullptr) {
    const auto now = TokenBucket::Clock::now();
    const auto reset_ms = reported_->untilNextFill(now).count();
    headers.set("x-ratelimit-limit", std::to_string(reported_->maxTokens()));
    headers.set("x-ratelimit-remaining", std::to_string(reported_->remaining(now)));
    headers.set("x-ratelimit-reset", std::to_string((reset_ms + 999) / 1000));
  }
  return http::FilterHeadersStatus::kContinue;
}

void registerLocalRateLimitFilter(http::FilterRegistry& registry) {
  PerFilterConfigParsers::add(
      std::string(kTypeName),
      [](const google::protobuf::Any& any)
          -> Result<std::shared_ptr<const RouteSpecificFilterConfig>> {
        SHEAVE_ASSIGN_OR_RETURN(
            auto proto, config::unpackTypedConfig<LocalRateLimitProto>(any, "typed_config"));
        SHEAVE_ASSIGN_OR_RETURN(auto settings, LocalRateLimitSettings::create(proto));
        return std::shared_ptr<const RouteSpecificFilterConfig>(std::move(settings));
      });
  registry.add(std::string(kTypeName),
               [](const google::protobuf::Any& any,
                  http::FilterFactoryContext& context) -> Result<http::FilterFactoryCb> {
                 SHEAVE_ASSIGN_OR_RETURN(auto proto, config::unpackTypedConfig<LocalRateLimitProto>(
                                                         any, "typed_config"));
                 SHEAVE_ASSIGN_OR_RETURN(auto settings, LocalRateLimitSettings::create(proto));
                 auto config = std::make_shared<const LocalRateLimitFilterConfig>(
                     LocalRateLimitFilterConfig{std::move(settings), context.root});
                 return http::FilterFactoryCb([config](http::FilterChainBuilder& builder) {
                   builder.addStreamFilter(std::make_unique<LocalRateLimitFilter>(config));
                 });
               });
}

}  // namespace sheave::local_ratelimit
