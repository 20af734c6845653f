#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "match/path_normalizer.h"
#include "match/route_table.h"
#include "proxy/accesslog/access_log.h"
#include "proxy/http/filter.h"
#include "proxy/http/forwarded_client_cert.h"
#include "proxy/http/http1/parser.h"
#include "proxy/http/http2/codec_stats.h"
#include "proxy/http/http2/protocol_options.h"
#include "proxy/http/route_config_provider.h"
#include "proxy/stats/histogram.h"
#include "proxy/stats/scope.h"

namespace envoy::extensions::filters::network::http_connection_manager::v3 {
class HttpConnectionManager;
}

namespace sheave::http {

class FilterRegistry;

// Counters and histograms of one HTTP connection manager
// ("http.<stat_prefix>."), resolved once at load time.
struct ConnectionManagerStats {
  explicit ConnectionManagerStats(stats::Scope& scope);

  stats::Counter& downstream_cx_total;
  stats::Counter& downstream_cx_http1_total;
  stats::Counter& downstream_cx_http2_total;
  stats::Gauge& downstream_cx_active;
  stats::Gauge& downstream_cx_http1_active;
  stats::Gauge& downstream_cx_http2_active;
  stats::Counter& downstream_cx_destroy;
  stats::Counter& downstream_cx_destroy_remote;
  stats::Counter& downstream_cx_destroy_local;
  stats::Counter& downstream_cx_protocol_error;
  stats::Counter& downstream_cx_idle_timeout;
  stats::Counter& downstream_cx_drain_close;
  stats::Counter& downstream_cx_rx_bytes_total;
  stats::Counter& downstream_cx_tx_bytes_total;
  stats::Counter& downstream_rq_total;
  stats::Counter& downstream_rq_http1_total;
  stats::Counter& downstream_rq_http2_total;
  stats::Gauge& downstream_rq_active;
  stats::Counter& downstream_rq_completed;
  stats::Counter& downstream_rq_1xx;
  stats::Counter& downstream_rq_2xx;
  stats::Counter& downstream_rq_3xx;
  stats::Counter& downstream_rq_4xx;
  stats::Counter& downstream_rq_5xx;
  stats::Counter& downstream_rq_timeout;
  stats::Counter& downstream_rq_idle_timeout;
  stats::Counter& downstream_rq_header_timeout;
  stats::Counter& downstream_rq_too_large;
  stats::Counter& downstream_rq_rx_reset;
  stats::Counter& downstream_rq_response_before_rq_complete;
  stats::Counter& downstream_rq_ws_on_non_ws_route;
  stats::Counter& downstream_cx_upgrades_total;
  stats::Gauge& downstream_cx_upgrades_active;
  stats::Counter& no_route;
  stats::Histogram& downstream_rq_time;
  stats::Histogram& downstream_cx_length_ms;
};

// Envoy's `http2.*` codec counters of downstream connections. Each connection's codec counts
// into its own plain http2::CodecStats; the connection manager adds what changed after each
// read, so the codec stays free of the stats layer.
struct Http2CodecCounters {
  explicit Http2CodecCounters(stats::Scope& scope);
  // Adds `now - before` for every counter, then before = now.
  void publish(const http2::CodecStats& now, http2::CodecStats& before) const;

  stats::Counter& header_overflow;
  stats::Counter& headers_cb_no_stream;
  stats::Counter& inbound_empty_frames_flood;
  stats::Counter& inbound_priority_frames_flood;
  stats::Counter& inbound_window_update_frames_flood;
  stats::Counter& outbound_control_flood;
  stats::Counter& outbound_flood;
  stats::Counter& rx_messaging_error;
  stats::Counter& rx_reset;
  stats::Counter& tx_reset;
  stats::Counter& stream_refused_errors;
  stats::Counter& trailers;
  stats::Counter& goaway_sent;
};

// Everything an HTTP connection manager needs, parsed and validated once
// from the HttpConnectionManager proto and shared by every connection of a
// listener on every worker. Immutable.
struct ConnectionManagerConfig {
  std::string stat_prefix;
  // route_config (fixed) or rds (replaced by RDS while connections run).
  std::shared_ptr<RouteConfigProvider> routes;
  std::vector<FilterFactoryCb> filter_factories;
  std::vector<std::shared_ptr<const accesslog::AccessLog>> access_logs;
  http1::Limits limits;
  // AUTO: HTTP/2 when TLS negotiated ALPN "h2" or the first bytes are the HTTP/2 connection
  // preface, HTTP/1.1 otherwise.
  enum class CodecType { kAuto, kHttp1, kHttp2 };
  CodecType codec_type = CodecType::kAuto;
  // http2_protocol_options plus max_request_headers_kb / max_headers_count.
  http2::ProtocolOptions http2_options;
  // The listener's per_connection_buffer_limit_bytes: the most a filter may
  // buffer of one request body before the request gets 413.
  uint32_t buffer_limit_bytes = 1024 * 1024;

  // Zero means disabled. Defaults are Envoy's.
  std::chrono::milliseconds request_headers_timeout{0};
  std::chrono::milliseconds request_timeout{0};
  std::chrono::milliseconds stream_idle_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds max_connection_duration{0};
  std::chrono::milliseconds drain_timeout{5000};
  std::chrono::milliseconds delayed_close_timeout{1000};

  std::string server_name = "envoy";
  enum class ServerHeaderTransformation { kOverwrite, kAppendIfAbsent, kPassThrough };
  ServerHeaderTransformation server_header_transformation = ServerHeaderTransformation::kOverwrite;
  bool use_remote_address = false;
  bool skip_xff_append = false;
  bool generate_request_id = true;
  bool preserve_external_request_id = false;
  bool always_set_request_id_in_response = false;
  bool proxy_100_continue = false;
  bool strip_any_host_port = false;
  // upgrade_configs: the upgrade types (lower-case; "connect" for CONNECT) this connection
  // manager proxies, and whether each is enabled unless a route says otherwise.
  struct UpgradeConfig {
    std::string type;
    bool enabled = true;
  };
  std::vector<UpgradeConfig> upgrade_configs;
  // Envoy's rule for an upgrade request on `route_upgrades` (the route's upgrade_configs, or
  // null without a route): the route's entry for the type decides when it has one, else the
  // connection manager's.
  bool upgradeAllowed(std::string_view type,
                      const std::vector<std::pair<std::string, bool>>* route_upgrades) const;
  std::string via;
  // normalize_path, merge_slashes and path_with_escaped_slashes_action, applied to :path
  // before routing and before any HTTP filter.
  PathNormalizer::Options path_normalization;
  // x-forwarded-client-cert: what the workload learns of a mTLS caller (default: removed).
  ForwardClientCertConfig forward_client_cert;
  // Network filters that run before this one in the filter chain (envoy.filters.network.rbac):
  // each is asked once, when the connection's first bytes arrive; false closes the connection.
  // Set by the listener that owns the chain.
  std::vector<std::function<bool(const network::Connection&)>> connection_checks;

  std::shared_ptr<stats::Scope> scope;
  std::unique_ptr<ConnectionManagerStats> stats;
  std::shared_ptr<stats::Scope> http2_scope;
  std::unique_ptr<Http2CodecCounters> http2_stats;

  // Everything needed to build the config that lives outside the proto.
  struct Context {
    stats::Scope& stats_root;
    const FilterRegistry& filters;
    accesslog::AccessLogManager& access_logs;
    // Checks that a cluster a route names exists (route validation).
    std::function<bool(const std::string&)> cluster_exists;
    // The provider of an RDS route configuration by name; empty when the
    // process has no management server (rds is then a config error).
    std::function<std::shared_ptr<RouteConfigProvider>(const std::string&)> rds = nullptr;
  };
  static Result<std::shared_ptr<const ConnectionManagerConfig>> create(
      const envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager&
          proto,
      Context& context);
};

}  // namespace sheave::http
