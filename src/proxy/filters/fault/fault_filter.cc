#include "proxy/filters/fault/fault_filter.h"

#include <algorithm>
#include <charconv>

#include "match/fractional_percent.h"
#include "proxy/config/proto_json.h"

namespace sheave::fault {

namespace {

using HTTPFault = envoy::extensions::filters::http::fault::v3::HTTPFault;
constexpr std::string_view kTypeName = "envoy.extensions.filters.http.fault.v3.HTTPFault";
constexpr std::string_view kAbortDetails = "fault_filter_abort";
constexpr std::string_view kAbortBody = "fault filter abort";

template <typename T>
std::optional<T> parseUnsigned(const std::string* value) {
  if (value == nullptr) return std::nullopt;
  T out = 0;
  const char* end = value->data() + value->size();
  auto [p, ec] = std::from_chars(value->data(), end, out);
  if (ec != std::errc() || p != end || value->empty()) return std::nullopt;
  return out;
}

Result<FaultPercentage> parsePercentage(const envoy::type::v3::FractionalPercent& p,
                                        std::string_view where) {
  SHEAVE_ASSIGN_OR_RETURN(Fraction f, parseFractionalPercent(p, where));
  FaultPercentage out;
  out.numerator = static_cast<uint32_t>(f.numerator);
  out.denominator = static_cast<uint32_t>(f.denominator);
  return out;
}

}  // namespace

FaultPercentage FaultPercentage::withHeader(const HeaderMap& headers,
                                            std::string_view header) const {
  auto value = parseUnsigned<uint32_t>(headers.get(header));
  if (!value) return *this;
  FaultPercentage out = *this;
  out.numerator = std::min(*value, numerator);
  return out;
}

Result<std::shared_ptr<const FaultSettings>> FaultSettings::create(const HTTPFault& proto) {
  auto s = std::make_shared<FaultSettings>();
  if (proto.has_delay()) {
    const auto& d = proto.delay();
    Delay delay;
    switch (d.fault_delay_secifier_case()) {
      case envoy::extensions::filters::common::fault::v3::FaultDelay::kFixedDelay: {
        const auto& fd = d.fixed_delay();
        if (fd.seconds() < 0 || fd.nanos() < 0 || (fd.seconds() == 0 && fd.nanos() == 0)) {
          return invalidArgument("must be greater than zero").at("delay.fixed_delay");
        }
        delay.fixed = std::chrono::milliseconds(fd.seconds() * 1000 + fd.nanos() / 1000000);
        break;
      }
      case envoy::extensions::filters::common::fault::v3::FaultDelay::kHeaderDelay:
        break;
      default:
        return invalidArgument("one of fixed_delay or header_delay is required").at("delay");
    }
    SHEAVE_ASSIGN_OR_RETURN(delay.percentage, parsePercentage(d.percentage(), "delay.percentage"));
    s->delay = delay;
  }
  if (proto.has_abort()) {
    const auto& a = proto.abort();
    Abort abort;
    switch (a.error_type_case()) {
      case envoy::extensions::filters::http::fault::v3::FaultAbort::kHttpStatus:
        if (a.http_status() < 200 || a.http_status() >= 600) {
          return invalidArgument("must be in [200, 600), got " + std::to_string(a.http_status()))
              .at("abort.http_status");
        }
        abort.http_status = a.http_status();
        break;
      case envoy::extensions::filters::http::fault::v3::FaultAbort::kGrpcStatus:
        abort.grpc_status = a.grpc_status();
        break;
      case envoy::extensions::filters::http::fault::v3::FaultAbort::kHeaderAbort:
        break;
      default:
        return invalidArgument("one of http_status, grpc_status or header_abort is required")
            .at("abort");
    }
    SHEAVE_ASSIGN_OR_RETURN(abort.percentage, parsePercentage(a.percentage(), "abort.percentage"));
    s->abort = abort;
  }
  if (proto.has_response_rate_limit()) {
    return invalidArgument("is not supported").at("response_rate_limit");
  }
  s->upstream_cluster = proto.upstream_cluster();
  for (int i = 0; i < proto.headers_size(); ++i) {
    auto m = HeaderMatcher::create(proto.headers(i));
    if (!m.ok()) return std::move(m).error().at("headers[" + std::to_string(i) + "]");
    s->headers.push_back(std::move(m).value());
  }
  s->downstream_nodes.assign(proto.downstream_nodes().begin(), proto.downstream_nodes().end());
  if (proto.has_max_active_faults()) s->max_active_faults = proto.max_active_faults().value();
  return std::shared_ptr<const FaultSettings>(std::move(s));
}

FaultStats::FaultStats(stats::Scope& scope)
    : delays_injected(scope.counter("fault.delays_injected")),
      aborts_injected(scope.counter("fault.aborts_injected")),
      faults_overflow(scope.counter("fault.faults_overflow")),
      active_faults(scope.gauge("fault.active_faults")) {}

FaultFilter::~FaultFilter() { deactivateFault(); }

http::FilterHeadersStatus FaultFilter::decodeHeaders(HeaderMap& headers, bool) {
  settings_ = config_->settings.get();
  // A route's (else its virtual host's) settings replace the listener's.
  if (const PerFilterConfig* per_route = callbacks_->route().perFilterConfig(kFaultFilterName)) {
    if (per_route->disabled) return http::FilterHeadersStatus::kContinue;
    if (const auto* s = dynamic_cast<const FaultSettings*>(per_route->parsed.get())) settings_ = s;
  }
  if (!appliesTo(headers)) return http::FilterHeadersStatus::kContinue;

  if (auto delay = delayFor(headers); delay && tryActivateFault()) {
    headers_ = &headers;
    delay_timer_ = callbacks_->eventLoop().createTimer([this] { onDelayDone(); });
    delay_timer_->enable(*delay);
    config_->stats.delays_injected.inc();
    callbacks_->streamInfo().setResponseFlag(ResponseFlag::kDelayInjected);
    return http::FilterHeadersStatus::kStopIteration;
  }
  if (maybeAbort(headers)) return http::FilterHeadersStatus::kStopIteration;
  return http::FilterHeadersStatus::kContinue;
}

http::FilterDataStatus FaultFilter::decodeData(network::Buffer&, bool) {
  // While the request waits out its delay its body is held back with it
  // (within the stream's buffer limit).
  if (delay_timer_ && delay_timer_->enabled()) {
    return http::FilterDataStatus::kStopIterationAndBuffer;
  }
  return http::FilterDataStatus::kContinue;
}

http::FilterTrailersStatus FaultFilter::decodeTrailers(HeaderMap&) {
  // Continuing lets the connection manager hold the trailers for the filters
  // after this one until the delay ends.
  return http::FilterTrailersStatus::kContinue;
}

void FaultFilter::onDestroy() {
  if (delay_timer_) delay_timer_->disable();
  deactivateFault();
}

bool FaultFilter::appliesTo(const HeaderMap& headers) const {
  const FaultSettings& s = *settings_;
  if (!s.delay && !s.abort) return false;
  if (!s.upstream_cluster.empty() && callbacks_->route().cluster(headers) != s.upstream_cluster) {
    return false;
  }
  if (!s.downstream_nodes.empty()) {
    const std::string* node = headers.get(kDownstreamNodeHeader);
    if (node == nullptr || std::find(s.downstream_nodes.begin(), s.downstream_nodes.end(), *node) ==
                               s.downstream_nodes.end()) {
      return false;
    }
  }
  return matchAllHeaders(headers, s.headers);
}

std::optional<std::chrono::milliseconds> FaultFilter::delayFor(const HeaderMap& headers) const {
  const auto& delay = settings_->delay;
  if (!delay) return std::nullopt;
  const FaultPercentage pct = delay->fixed
                                  ? delay->percentage
                                  : delay->percentage.withHeader(headers, kDelayPercentageHeader);
  if (!pct.enabled(callbacks_->random().next())) return std::nullopt;
  std::chrono::milliseconds duration{0};
  if (delay->fixed) {
    duration = *delay->fixed;
  } else if (auto ms = parseUnsigned<uint32_t>(headers.get(kDelayRequestHeader))) {
    duration = std::chrono::milliseconds(*ms);
  }
  if (duration.count() <= 0) return std::nullopt;
  return duration;
}

std::optional<std::pair<uint32_t, std::optional<uint32_t>>> FaultFilter::abortFor(
    const HeaderMap& headers) const {
  const auto& abort = settings_->abort;
  if (!abort) return std::nullopt;
  const bool from_header = abort->fromHeader();
  const FaultPercentage pct = from_header
                                  ? abort->percentage.withHeader(headers, kAbortPercentageHeader)
                                  : abort->percentage;
  if (!pct.enabled(callbacks_->random().next())) return std::nullopt;
  if (!from_header) {
    if (abort->http_status) return std::make_pair(*abort->http_status, std::optional<uint32_t>());
    return std::make_pair(200u, abort->grpc_status);
  }
  // Envoy's order: a valid HTTP status header wins over the gRPC one.
  if (auto status = parseUnsigned<uint32_t>(headers.get(kAbortRequestHeader));
      status && *status >= 200 && *status < 600) {
    return std::make_pair(*status, std::optional<uint32_t>());
  }
  if (auto grpc = parseUnsigned<uint32_t>(headers.get(kAbortGrpcRequestHeader))) {
    return std::make_pair(200u, std::optional<uint32_t>(*grpc));
  }
  return std::nullopt;
}

bool FaultFilter::tryActivateFault() {
  if (fault_active_) return true;  // a delayed request that then aborts counts once
  const auto& max = settings_->max_active_faults;
  if (max && config_->stats.active_faults.value() >= *max) {
    config_->stats.faults_overflow.inc();
    return false;
  }
  config_->stats.active_faults.inc();
  fault_active_ = true;
  return true;
}

void FaultFilter::deactivateFault() {
  if (!fault_active_) return;
  fault_active_ = false;
  config_->stats.active_faults.dec();
}

bool FaultFilter::maybeAbort(const HeaderMap& headers) {
  auto status = abortFor(headers);
  if (!status || !tryActivateFault()) return false;
  abortWith(status->first, status->second);
  return true;
}

void FaultFilter::abortWith(uint32_t http_status, std::optional<uint32_t> grpc_status) {
  config_->stats.aborts_injected.inc();
  callbacks_->streamInfo().setResponseFlag(ResponseFlag::kFaultInjected);
  if (!grpc_status) {
    callbacks_->sendLocalReply(static_cast<int>(http_status), kAbortBody, kAbortDetails);
    return;
  }
  // A gRPC abort is a trailers-only gRPC response: HTTP 200 carrying the
  // status in headers, which gRPC clients read as the call's outcome.
  callbacks_->streamInfo().response_code_details = std::string(kAbortDetails);
  HeaderMap response;
  response.add(":status", "200");
  response.add("content-type", "application/grpc");
  response.add("grpc-status", std::to_string(*grpc_status));
  response.add("grpc-message", std::string(kAbortBody));
  callbacks_->encodeHeaders(std::move(response), true);
}

void FaultFilter::onDelayDone() {
  // The timer has fired; it stays owned here (not reset inside its callback).
  if (maybeAbort(*headers_)) return;
  callbacks_->continueDecoding();
}

void registerFaultFilter(http::FilterRegistry& registry) {
  PerFilterConfigParsers::add(
      std::string(kTypeName),
      [](const google::protobuf::Any& any)
          -> Result<std::shared_ptr<const RouteSpecificFilterConfig>> {
        SHEAVE_ASSIGN_OR_RETURN(auto proto,
                                config::unpackTypedConfig<HTTPFault>(any, "typed_config"));
        SHEAVE_ASSIGN_OR_RETURN(auto settings, FaultSettings::create(proto));
        return std::shared_ptr<const RouteSpecificFilterConfig>(std::move(settings));
      });
  registry.add(std::string(kTypeName),
               [](const google::protobuf::Any& any,
                  http::FilterFactoryContext& context) -> Result<http::FilterFactoryCb> {
                 SHEAVE_ASSIGN_OR_RETURN(auto proto,
                                         config::unpackTypedConfig<HTTPFault>(any, "typed_config"));
                 SHEAVE_ASSIGN_OR_RETURN(auto settings, FaultSettings::create(proto));
                 auto config =
                     std::make_shared<const FaultFilterConfig>(std::move(settings), context.scope);
                 return http::FilterFactoryCb([config](http::FilterChainBuilder& builder) {
                   builder.addDecoderFilter(std::make_unique<FaultFilter>(config));
                 });
               });
}

}  // namespace sheave::fault
