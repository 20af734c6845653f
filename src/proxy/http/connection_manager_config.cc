#include "proxy/http/connection_manager_config.h"

#include <google/protobuf/util/time_util.h>

#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
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

ConnectionManagerStats::ConnectionManagerStats(stats::Scope& s)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_http1_total(s.counter("downstream_cx_http1_total")),
      downstream_cx_active(s.gauge("downstream_cx_active")),
      downstream_cx_http1_active(s.gauge("downstream_cx_http1_active")),
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
      no_route(s.counter("no_route")),
      downstream_rq_time(s.histogram("downstream_rq_time", stats::Histogram::Unit::kMilliseconds)),
      downstream_cx_length_ms(
          s.histogram("downstream_cx_length_ms", stats::Histogram::Unit::kMilliseconds)) {}

Result<std::shared_ptr<const ConnectionManagerConfig>> ConnectionManagerConfig::create(
    const HcmProto& proto, Context& context) {
  auto config = std::make_shared<ConnectionManagerConfig>();
  if (proto.stat_prefix().empty()) return invalidArgument("stat_prefix: must not be empty");
  config->stat_prefix = proto.stat_prefix();
  if (proto.codec_type() == HcmProto::HTTP2 || proto.codec_type() == HcmProto::HTTP3) {
    return invalidArgument("codec_type: " + HcmProto::CodecType_Name(proto.codec_type()) +
                           " is not supported yet (AUTO and HTTP1 are; AUTO serves HTTP/1.1)");
  }
  if (proto.has_rds()) {
    return invalidArgument(
        "rds: routes from RDS need a management server, not supported yet; "
        "use route_config");
  }
  if (!proto.has_route_config()) return invalidArgument("route_config: is required");
  auto table = RouteTable::create(proto.route_config());
  if (!table.ok()) return std::move(table).error().at("route_config");
  SHEAVE_RETURN_IF_ERROR(validateClusters(**table, context.cluster_exists));
  config->route_table = std::move(table).value();

  auto scope = context.stats_root.createScope("http." + config->stat_prefix);
  config->stats = std::make_unique<ConnectionManagerStats>(*scope);
  config->scope = scope;

  FilterFactoryContext filter_context{*scope, config->stat_prefix};
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
  }
  const auto& common = proto.common_http_protocol_options();
  if (common.has_max_headers_count()) {
    config->limits.max_headers_count = common.max_headers_count().value();
  }
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
  config->strip_any_host_port = proto.strip_any_host_port();
  config->via = proto.via();
  return std::shared_ptr<const ConnectionManagerConfig>(std::move(config));
}

}  // namespace sheave::http
