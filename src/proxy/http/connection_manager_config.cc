#include "proxy/http/connection_manager_config.h"

#include <google/protobuf/util/time_util.h>

#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "match/string_matcher.h"
#include "proxy/config/http2_options.h"
#include "proxy/http/filter_registry.h"

namespace sheave::http {
namespace {

using HcmProto =
    envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(google::protobuf::util::TimeUtil::DurationToMilliseconds(d));
}

// Every cluster a route names must exist (Envoy's validate_clusters for
// static route configurations).
Status validateClusters(const RouteTable& table,
                        const std::function<bool(const std::string&)>& exists) {
  for (size_t v = 0; v < table.virtualHosts().size(); ++v) {
    const auto& vh = *table.virtualHosts()[v];
    for (size_t r = 0; r < vh.routes.size(); ++r) {
      const auto& route = vh.routes[r];
      std::vector<std::string_view> names;
      if (route.action == RouteEntry::ActionKind::kCluster) names.push_back(route.cluster);
      for (const auto& wc : route.weighted_clusters) {
        if (!wc.name.empty()) names.push_back(wc.name);
      }
      for (auto name : names) {
        if (!exists(std::string(name))) {
          return invalidArgument("route_config.virtual_hosts[" + std::to_string(v) + "].routes[" +
                                 std::to_string(r) + "]: unknown cluster '" + std::string(name) +
                                 "'");
        }
      }
    }
  }
  return okStatus();
}

}  // namespace

bool ConnectionManagerConfig::upgradeAllowed(
    std::string_view type, const std::vector<std::pair<std::string, bool>>* route_upgrades) const {
  if (route_upgrades != nullptr) {
    for (const auto& [name, enabled] : *route_upgrades) {
      if (name == type) return enabled;
    }
  }
  for (const auto& u : upgrade_configs) {
    if (u.type == type) return u.enabled;
  }
  return false;
}

ConnectionManagerStats::ConnectionManagerStats(stats::Scope& s)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_http1_total(s.counter("downstream_cx_http1_total")),
      downstream_cx_http2_total(s.counter("downstream_cx_http2_total")),
      downstream_cx_active(s.gauge("downstream_cx_active")),
      downstream_cx_http1_active(s.gauge("downstream_cx_http1_active")),
      downstream_cx_http2_active(s.gauge("downstream_cx_http2_active")),
      downstream_cx_destroy(s.counter("downstream_cx_destroy")),
      downstream_cx_destroy_remote(s.counter("downstream_cx_destroy_remote")),
      downstream_cx_destroy_local(s.counter("downstream_cx_destroy_local")),
      downstream_cx_protocol_error(s.counter("downstream_cx_protocol_error")),
      downstream_cx_idle_timeout(s.counter("downstream_cx_idle_timeout")),
      downstream_cx_drain_close(s.counter("downstream_cx_drain_close")),
      downstream_cx_rx_bytes_total(s.counter("downstream_cx_rx_bytes_total")),
      downstream_cx_tx_bytes_total(s.counter("downstream_cx_tx_bytes_total")),
      downstream_rq_total(s.counter("downstream_rq_total")),
      downstream_rq_http1_total(s.counter("downstream_rq_http1_total")),
      downstream_rq_http2_total(s.counter("downstream_rq_http2_total")),
      downstream_rq_active(s.gauge("downstream_rq_active")),
      downstream_rq_completed(s.counter("downstream_rq_completed")),
      downstream_rq_1xx(s.counter("downstream_rq_1xx")),
      downstream_rq_2xx(s.counter("downstream_rq_2xx")),
      downstream_rq_3xx(s.counter("downstream_rq_3xx")),
      downstream_rq_4xx(s.counter("downstream_rq_4xx")),
      downstream_rq_5xx(s.counter("downstream_rq_5xx")),
      downstream_rq_timeout(s.counter("downstream_rq_timeout")),
      downstream_rq_idle_timeout(s.counter("downstream_rq_idle_timeout")),
      downstream_rq_header_timeout(s.counter("downstream_rq_header_timeout")),
      downstream_rq_too_large(s.counter("downstream_rq_too_large")),
      downstream_rq_rx_reset(s.counter("downstream_rq_rx_reset")),
      downstream_rq_response_before_rq_complete(
          s.counter("downstream_rq_response_before_rq_complete")),
      downstream_rq_ws_on_non_ws_route(s.counter("downstream_rq_ws_on_non_ws_route")),
      downstream_cx_upgrades_total(s.counter("downstream_cx_upgrades_total")),
      downstream_cx_upgrades_active(s.gauge("downstream_cx_upgrades_active")),
      no_route(s.counter("no_route")),
      downstream_rq_time(s.histogram("downstream_rq_time", stats::Histogram::Unit::kMilliseconds)),
      downstream_cx_length_ms(
          s.histogram("downstream_cx_length_ms", stats::Histogram::Unit::kMilliseconds)) {}

Http2CodecCounters::Http2CodecCounters(stats::Scope& s)
    : header_overflow(s.counter("header_overflow")),
      headers_cb_no_stream(s.counter("headers_cb_no_stream")),
      inbound_empty_frames_flood(s.counter("inbound_empty_frames_flood")),
      inbound_priority_frames_flood(s.counter("inbound_priority_frames_flood")),
      inbound_window_update_frames_flood(s.counter("inbound_window_update_frames_flood")),
      outbound_control_flood(s.counter("outbound_control_flood")),
      outbound_flood(s.counter("outbound_flood")),
      rx_messaging_error(s.counter("rx_messaging_error")),
      rx_reset(s.counter("rx_reset")),
      tx_reset(s.counter("tx_reset")),
      stream_refused_errors(s.counter("stream_refused_errors")),
      trailers(s.counter("trailers")),
      goaway_sent(s.counter("goaway_sent")) {}

void Http2CodecCounters::publish(const http2::CodecStats& now, http2::CodecStats& before) const {
  auto add = [](stats::Counter& counter, uint64_t value, uint64_t& seen) {
    if (value != seen) {
      counter.inc(value - seen);
      seen = value;
    }
  };
  add(header_overflow, now.header_overflow, before.header_overflow);
  add(headers_cb_no_stream, now.headers_cb_no_stream, before.headers_cb_no_stream);
  add(inbound_empty_frames_flood, now.inbound_empty_frames_flood,
      before.inbound_empty_frames_flood);
  add(inbound_priority_frames_flood, now.inbound_priority_frames_flood,
      before.inbound_priority_frames_flood);
  add(inbound_window_update_frames_flood, now.inbound_window_update_frames_flood,
      before.inbound_window_update_frames_flood);
  add(outbound_control_flood, now.outbound_control_flood, before.outbound_control_flood);
  add(outbound_flood, now.outbound_flood, before.outbound_flood);
  add(rx_messaging_error, now.rx_messaging_error, before.rx_messaging_error);
  add(rx_reset, now.rx_reset, before.rx_reset);
  add(tx_reset, now.tx_reset, before.tx_reset);
  add(stream_refused_errors, now.stream_refused_errors, before.stream_refused_errors);
  add(trailers, now.trailers, before.trailers);
  add(goaway_sent, now.goaway_sent, before.goaway_sent);
}

Result<std::shared_ptr<const ConnectionManagerConfig>> ConnectionManagerConfig::create(
    const HcmProto& proto, Context& context) {
  auto config = std::make_shared<ConnectionManagerConfig>();
  if (proto.stat_prefix().empty()) return invalidArgument("stat_prefix: must not be empty");
  config->stat_prefix = proto.stat_prefix();
  switch (proto.codec_type()) {
    case HcmProto::AUTO:
      config->codec_type = CodecType::kAuto;
      break;
    case HcmProto::HTTP1:
      config->codec_type = CodecType::kHttp1;
      break;
    case HcmProto::HTTP2:
      config->codec_type = CodecType::kHttp2;
      break;
    default:
      return invalidArgument("codec_type: " + HcmProto::CodecType_Name(proto.codec_type()) +
                             " is not supported (AUTO, HTTP1 and HTTP2 are)");
  }
  if (proto.has_rds()) {
    const auto& rds = proto.rds();
    if (!context.rds) {
      return invalidArgument(
          "rds: routes from RDS need a management server (dynamic_resources.ads_config); "
          "use route_config");
    }
    if (rds.route_config_name().empty()) {
      return invalidArgument("rds.route_config_name: is required");
    }
    if (!rds.config_source().has_ads()) {
      return invalidArgument("rds.config_source: only `ads: {}` is supported");
    }
    config->routes = context.rds(rds.route_config_name());
  } else {
    if (!proto.has_route_config()) return invalidArgument("route_config: is required");
    auto table = RouteTable::create(proto.route_config());
    if (!table.ok()) return std::move(table).error().at("route_config");
    SHEAVE_RETURN_IF_ERROR(validateClusters(**table, context.cluster_exists));
    config->routes = std::make_shared<RouteConfigProvider>(std::move(table).value());
  }

  auto scope = context.stats_root.createScope("http." + config->stat_prefix);
  config->stats = std::make_unique<ConnectionManagerStats>(*scope);
  config->scope = scope;

  FilterFactoryContext filter_context{*scope, config->stat_prefix, context.stats_root};
  bool have_router = false;
  for (int i = 0; i < proto.http_filters_size(); ++i) {
    const auto& f = proto.http_filters(i);
    const std::string where = "http_filters[" + std::to_string(i) + "]";
    if (have_router) {
      return invalidArgument(where + ": '" + f.name() +
                             "' follows the router, which must be the last filter");
    }
    if (f.disabled()) continue;
    if (!f.has_typed_config()) return invalidArgument(where + ".typed_config: is required");
    std::string_view type = f.typed_config().type_url();
    type = type.substr(type.rfind('/') + 1);
    const FilterRegistry::Factory* factory = context.filters.find(type);
    if (factory == nullptr) {
      if (f.is_optional()) continue;
      return invalidArgument(where + ".typed_config: unsupported HTTP filter type '" +
                             std::string(type) + "'");
    }
    auto cb = (*factory)(f.typed_config(), filter_context);
    if (!cb.ok()) return std::move(cb).error().at(where + ".typed_config");
    config->filter_factories.push_back(std::move(cb).value());
    have_router = type == "envoy.extensions.filters.http.router.v3.Router";
  }
  if (!have_router) {
    return invalidArgument("http_filters: the last filter must be envoy.filters.http.router");
  }

  for (int i = 0; i < proto.access_log_size(); ++i) {
    auto log = accesslog::accessLogFromProto(proto.access_log(i), context.access_logs);
    if (!log.ok()) return std::move(log).error().at("access_log[" + std::to_string(i) + "]");
    config->access_logs.push_back(std::move(log).value());
  }

  if (proto.has_max_request_headers_kb()) {
    const uint32_t kb = proto.max_request_headers_kb().value();
    if (kb == 0 || kb > 8192) return invalidArgument("max_request_headers_kb: must be 1-8192");
    config->limits.max_header_bytes = static_cast<size_t>(kb) * 1024;
    config->http2_options.max_request_headers_kb = kb;
  }
  const auto& common = proto.common_http_protocol_options();
  if (common.has_max_headers_count()) {
    config->limits.max_headers_count = common.max_headers_count().value();
    config->http2_options.max_headers_count = common.max_headers_count().value();
  }
  SHEAVE_RETURN_IF_ERROR(
      config::parseHttp2ProtocolOptions(proto.http2_protocol_options(), config->http2_options));
  // Envoy's downstream codec stats are not under the connection manager's prefix: http2.*.
  config->http2_scope = context.stats_root.createScope("http2");
  config->http2_stats = std::make_unique<Http2CodecCounters>(*config->http2_scope);
  if (common.has_idle_timeout()) config->idle_timeout = toMs(common.idle_timeout());
  if (common.has_max_connection_duration()) {
    config->max_connection_duration = toMs(common.max_connection_duration());
  }
  if (proto.has_request_headers_timeout()) {
    config->request_headers_timeout = toMs(proto.request_headers_timeout());
  }
  if (proto.has_request_timeout()) config->request_timeout = toMs(proto.request_timeout());
  if (proto.has_stream_idle_timeout()) {
    config->stream_idle_timeout = toMs(proto.stream_idle_timeout());
  }
  if (proto.has_drain_timeout()) config->drain_timeout = toMs(proto.drain_timeout());
  if (proto.has_delayed_close_timeout()) {
    config->delayed_close_timeout = toMs(proto.delayed_close_timeout());
  }
  if (!proto.server_name().empty()) config->server_name = proto.server_name();
  switch (proto.server_header_transformation()) {
    case HcmProto::APPEND_IF_ABSENT:
      config->server_header_transformation = ServerHeaderTransformation::kAppendIfAbsent;
      break;
    case HcmProto::PASS_THROUGH:
      config->server_header_transformation = ServerHeaderTransformation::kPassThrough;
      break;
    default:
      break;
  }
  config->use_remote_address = proto.use_remote_address().value();
  config->skip_xff_append = proto.skip_xff_append();
  if (proto.has_generate_request_id()) {
    config->generate_request_id = proto.generate_request_id().value();
  }
  config->preserve_external_request_id = proto.preserve_external_request_id();
  config->always_set_request_id_in_response = proto.always_set_request_id_in_response();
  config->proxy_100_continue = proto.proxy_100_continue();
  for (int i = 0; i < proto.upgrade_configs_size(); ++i) {
    const auto& u = proto.upgrade_configs(i);
    const std::string where = "upgrade_configs[" + std::to_string(i) + "]";
    if (u.upgrade_type().empty()) {
      return invalidArgument("must not be empty").at(where + ".upgrade_type");
    }
    if (u.filters_size() > 0) {
      return invalidArgument(
                 "a separate filter chain per upgrade type is not supported (upgrades run "
                 "through http_filters)")
          .at(where + ".filters");
    }
    config->upgrade_configs.push_back(
        {asciiLower(u.upgrade_type()), u.has_enabled() ? u.enabled().value() : true});
  }
  config->strip_any_host_port = proto.strip_any_host_port();
  config->via = proto.via();
  // Envoy's defaults: no normalization, escaped slashes kept (IMPLEMENTATION_SPECIFIC_DEFAULT).
  config->path_normalization.normalize_path = proto.normalize_path().value();
  config->path_normalization.merge_slashes = proto.merge_slashes();
  using Hcm =
      envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
  switch (proto.path_with_escaped_slashes_action()) {
    case Hcm::REJECT_REQUEST:
      config->path_normalization.escaped_slashes =
          PathNormalizer::EscapedSlashesAction::kRejectRequest;
      break;
    case Hcm::UNESCAPE_AND_REDIRECT:
      config->path_normalization.escaped_slashes =
          PathNormalizer::EscapedSlashesAction::kUnescapeAndRedirect;
      break;
    case Hcm::UNESCAPE_AND_FORWARD:
      config->path_normalization.escaped_slashes =
          PathNormalizer::EscapedSlashesAction::kUnescapeAndForward;
      break;
    default:
      config->path_normalization.escaped_slashes =
          PathNormalizer::EscapedSlashesAction::kKeepUnchanged;
      break;
  }
  auto xfcc = ForwardClientCertConfig::create(proto);
  if (!xfcc.ok()) return std::move(xfcc).error();
  config->forward_client_cert = *xfcc;
  return std::shared_ptr<const ConnectionManagerConfig>(std::move(config));
}

}  // namespace sheave::http
