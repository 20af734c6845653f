#include "proxy/accesslog/stream_info.h"

#include <array>

namespace sheave {
namespace {

struct FlagNames {
  std::string_view short_name;
  std::string_view long_name;
};

constexpr std::array<FlagNames, static_cast<size_t>(ResponseFlag::kCount)> kFlagNames = {{
    {"LH", "FailedLocalHealthCheck"},
    {"UH", "NoHealthyUpstream"},
    {"UT", "UpstreamRequestTimeout"},
    {"LR", "LocalReset"},
    {"UR", "UpstreamRemoteReset"},
    {"UF", "UpstreamConnectionFailure"},
    {"UC", "UpstreamConnectionTermination"},
    {"UO", "UpstreamOverflow"},
    {"NR", "NoRouteFound"},
    {"DI", "DelayInjected"},
    {"FI", "FaultInjected"},
    {"RL", "RateLimited"},
    {"UAEX", "UnauthorizedExternalService"},
    {"RLSE", "RateLimitServiceError"},
    {"DC", "DownstreamConnectionTermination"},
    {"URX", "UpstreamRetryLimitExceeded"},
    {"SI", "StreamIdleTimeout"},
    {"IH", "InvalidEnvoyRequestHeaders"},
    {"DPE", "DownstreamProtocolError"},
    {"UMSDR", "UpstreamMaxStreamDurationReached"},
    {"RFCF", "ResponseFromCacheFilter"},
    {"NFCF", "NoFilterConfigFound"},
    {"DT", "DurationTimeout"},
    {"UPE", "UpstreamProtocolError"},
    {"NC", "NoClusterFound"},
    {"OM", "OverloadManagerTerminated"},
    {"DF", "DnsResolutionFailed"},
    {"DO", "DropOverload"},
    {"DR", "DownstreamRemoteReset"},
    {"UDO", "UnconditionalDropOverload"},
}};

template <typename Pick>
std::string join(uint64_t bits, Pick pick) {
  if (bits == 0) return "-";
  std::string out;
  for (size_t i = 0; i < kFlagNames.size(); ++i) {
    if ((bits & (uint64_t{1} << i)) == 0) continue;
    if (!out.empty()) out.push_back(',');
    out += pick(kFlagNames[i]);
  }
  return out;
}

}  // namespace

std::string_view responseFlagShortString(ResponseFlag flag) {
  const size_t i = static_cast<size_t>(flag);
  return i < kFlagNames.size() ? kFlagNames[i].short_name : std::string_view();
}

std::string_view responseFlagLongString(ResponseFlag flag) {
  const size_t i = static_cast<size_t>(flag);
  return i < kFlagNames.size() ? kFlagNames[i].long_name : std::string_view();
}

std::optional<ResponseFlag> responseFlagFromShortString(std::string_view s) {
  for (size_t i = 0; i < kFlagNames.size(); ++i) {
    if (kFlagNames[i].short_name == s) return static_cast<ResponseFlag>(i);
  }
  return std::nullopt;
}

std::string ResponseFlags::toShortString() const {
  return join(bits_, [](const FlagNames& n) { return n.short_name; });
}

std::string ResponseFlags::toLongString() const {
  return join(bits_, [](const FlagNames& n) { return n.long_name; });
}

}  // namespace sheave
