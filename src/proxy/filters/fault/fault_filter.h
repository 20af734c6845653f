#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "match/header_matcher.h"
#include "match/route_table.h"
#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"
#include "proxy/stats/scope.h"

namespace sheave::fault {

inline constexpr std::string_view kFaultFilterName = "envoy.filters.http.fault";

// Envoy's request headers for header-controlled faults.
inline constexpr std::string_view kDelayRequestHeader = "x-envoy-fault-delay-request";
inline constexpr std::string_view kDelayPercentageHeader = "x-envoy-fault-delay-request-percentage";
inline constexpr std::string_view kAbortRequestHeader = "x-envoy-fault-abort-request";
inline constexpr std::string_view kAbortGrpcRequestHeader = "x-envoy-fault-abort-grpc-request";
inline constexpr std::string_view kAbortPercentageHeader = "x-envoy-fault-abort-request-percentage";
inline constexpr std::string_view kDownstreamNodeHeader = "x-envoy-downstream-service-node";

// envoy.type.v3.FractionalPercent with its denominator resolved.
struct FaultPercentage {
  uint32_t numerator = 0;
  uint32_t denominator = 100;

  // Envoy's rule: on when random % denominator < numerator.
  bool enabled(uint64_t random) const { return random % denominator < numerator; }
  // The percentage header overrides the numerator, never above the
  // configured one (so a client cannot raise a fault's rate); an absent or
  // malformed header keeps the configured value.
  FaultPercentage withHeader(const HeaderMap& headers, std::string_view header) const;
};

// One HTTPFault, parsed once: the listener's filter config and each route's
// or virtual host's typed_per_filter_config override (which replaces the
// listener's settings for that request as a whole, as in Envoy).
struct FaultSettings : RouteSpecificFilterConfig {
  struct Delay {
    std::optional<std::chrono::milliseconds> fixed;  // unset: header_delay
    FaultPercentage percentage;
  };
  struct Abort {
    // At most one is set; neither means header_abort.
    std::optional<uint32_t> http_status;
    std::optional<uint32_t> grpc_status;
    FaultPercentage percentage;
    bool fromHeader() const { return !http_status && !grpc_status; }
  };

  std::optional<Delay> delay;
  std::optional<Abort> abort;
  std::string upstream_cluster;
  std::vector<HeaderMatcher> headers;
  std::vector<std::string> downstream_nodes;
  std::optional<uint64_t> max_active_faults;  // unset: no limit

  static Result<std::shared_ptr<const FaultSettings>> create(
      const envoy::extensions::filters::http::fault::v3::HTTPFault& proto);
};

// http.<stat_prefix>.fault.*, Envoy's names.
struct FaultStats {
  explicit FaultStats(stats::Scope& scope);
  stats::Counter& delays_injected;
  stats::Counter& aborts_injected;
  stats::Counter& faults_overflow;
  stats::Gauge& active_faults;  // shared by every worker, checked against max_active_faults
};

// The listener-level filter config: its settings (possibly empty: "faults
// only where a route asks for them") and its stats.
struct FaultFilterConfig {
  std::shared_ptr<const FaultSettings> settings;
  FaultStats stats;  // in the connection manager's scope, which outlives this config

  FaultFilterConfig(std::shared_ptr<const FaultSettings> s, stats::Scope& scope)
      : settings(std::move(s)), stats(scope) {}
};

// envoy.filters.http.fault: delays a share of requests before they go
// upstream (a timer; the request continues when it fires, or is dropped if
// the client goes away first) and aborts a share with a local reply (an
// HTTP status, or a gRPC status in a trailers-only gRPC response). Delays set
// response flag DI, aborts FI.
class FaultFilter : public http::StreamDecoderFilter {
 public:
  explicit FaultFilter(std::shared_ptr<const FaultFilterConfig> config)
      : config_(std::move(config)) {}
  ~FaultFilter() override;

  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(network::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(HeaderMap& trailers) override;
  void onDestroy() override;

 private:
  bool appliesTo(const HeaderMap& headers) const;
  std::optional<std::chrono::milliseconds> delayFor(const HeaderMap& headers) const;
  // The HTTP status to answer with and, for a gRPC abort, the gRPC status.
  std::optional<std::pair<uint32_t, std::optional<uint32_t>>> abortFor(
      const HeaderMap& headers) const;
  bool tryActivateFault();
  bool maybeAbort(const HeaderMap& headers);
  void abortWith(uint32_t http_status, std::optional<uint32_t> grpc_status);
  void onDelayDone();
  void deactivateFault();

  std::shared_ptr<const FaultFilterConfig> config_;
  const FaultSettings* settings_ = nullptr;  // the listener's or the route's
  http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  HeaderMap* headers_ = nullptr;
  std::unique_ptr<network::Timer> delay_timer_;
  bool fault_active_ = false;
};

// Registers the filter (envoy.extensions.filters.http.fault.v3.HTTPFault) and
// its per-route config parser.
void registerFaultFilter(http::FilterRegistry& registry);

}  // namespace sheave::fault
