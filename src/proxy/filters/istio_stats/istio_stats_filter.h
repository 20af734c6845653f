#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "envoy/config/core/v3/base.pb.h"
#include "istio/proxy/stats/config.pb.h"
#include "proxy/accesslog/stream_info.h"
#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"
#include "proxy/stats/labeled_family.h"
#include "proxy/stats/scope.h"

namespace sheave::istio_stats {

inline constexpr std::string_view kFilterName = "istio.stats";
inline constexpr std::string_view kFilterTypeName = "stats.PluginConfig";

// Who reports: the client sidecar (outbound listeners, and gateways, which
// Istio also treats as clients) reports "source"; the server sidecar
// (inbound listeners) "destination"; a shared server gateway "waypoint".
enum class Reporter { kClientSidecar, kServerSidecar, kServerGateway };

// Istio's standard labels, in the order Istio emits them.
inline constexpr size_t kHttpLabelCount = 25;
inline constexpr size_t kTcpLabelCount = 23;  // no response_code, grpc_response_status
const std::array<std::string_view, kHttpLabelCount>& httpLabelNames();
const std::array<std::string_view, kTcpLabelCount>& tcpLabelNames();

// The ten families, created once per store and shared by every listener's
// istio.stats (stats::LabeledFamily keeps them for the process's life).
struct IstioMetrics {
  std::shared_ptr<stats::LabeledFamily> requests_total;
  std::shared_ptr<stats::LabeledFamily> request_duration_milliseconds;
  std::shared_ptr<stats::LabeledFamily> request_bytes;
  std::shared_ptr<stats::LabeledFamily> response_bytes;
  std::shared_ptr<stats::LabeledFamily> request_messages_total;
  std::shared_ptr<stats::LabeledFamily> response_messages_total;
  std::shared_ptr<stats::LabeledFamily> tcp_sent_bytes_total;
  std::shared_ptr<stats::LabeledFamily> tcp_received_bytes_total;
  std::shared_ptr<stats::LabeledFamily> tcp_connections_opened_total;
  std::shared_ptr<stats::LabeledFamily> tcp_connections_closed_total;

  static Result<IstioMetrics> create(stats::Scope& scope,
                                     size_t max_series = stats::LabeledFamily::kDefaultMaxSeries);
};

// This proxy's own workload, from the bootstrap's node.metadata, as label values.
struct LocalWorkload {
  std::string workload_name;
  std::string namespace_name;
  std::string canonical_name;
  std::string canonical_revision;
  std::string app_name;
  std::string app_version;
  std::string cluster_id;

  static LocalWorkload fromNode(const envoy::config::core::v3::Node& node);
};

// stats.PluginConfig, parsed once.
struct IstioStatsConfig {
  Reporter reporter = Reporter::kClientSidecar;
  bool disable_host_header_fallback = false;
  LocalWorkload local;
  IstioMetrics metrics;
  // metrics[].drop: per family, by Istio's short name ("requests_total"), or all.
  bool drop_requests_total = false;
  bool drop_request_duration = false;
  bool drop_request_bytes = false;
  bool drop_response_bytes = false;
  bool drop_request_messages = false;
  bool drop_response_messages = false;
  bool drop_tcp = false;

  // `stat_prefix` is the connection manager's: without an explicit reporter,
  // a listener whose prefix starts with "inbound" (Istio's and Sheave's
  // inbound listeners: "inbound_0.0.0.0_9080", and the inbound passthrough
  // chains named after InboundPassthroughCluster*) reports as the server.
  static Result<std::shared_ptr<const IstioStatsConfig>> create(
      const ::stats::PluginConfig& proto, const envoy::config::core::v3::Node& node,
      stats::Scope& scope, std::string_view stat_prefix);
};

// The label values of one finished HTTP stream or TCP connection. Views into
// the config, the StreamInfo and `scratch`; valid while those are.
struct LabelValues {
  std::array<std::string_view, kHttpLabelCount> http{};
  std::string scratch_flags;  // response_flags when any is set
  std::string scratch_host;   // destination_service from the Host header
};

// Fills Istio's labels for a stream (protocol "http" or "grpc") as Istio's
// stats filter does (peer from the metadata exchange, principals from the
// TLS certificates, destination service from the upstream cluster name).
void fillHttpLabels(const IstioStatsConfig& config, const StreamInfo& info, bool grpc,
                    LabelValues& out);

// Counts gRPC's length-prefixed messages (1 flag byte, 4 length bytes, body)
// in a byte stream however it is cut, without copying the bodies.
class GrpcMessageCounter {
 public:
  void add(const network::Buffer& data);
  uint64_t messages() const { return messages_; }

 private:
  uint64_t messages_ = 0;
  uint64_t frame_remaining_ = 0;  // bytes still to skip of the current message
  uint8_t prefix_have_ = 0;       // bytes of the 5-byte prefix read so far
  std::array<uint8_t, 5> prefix_{};
};

// istio.stats for HTTP: records istio_requests_total, the duration and size
// histograms and, for gRPC, istio_request_messages_total and
// istio_response_messages_total once per stream, when it ends.
class IstioStatsFilter : public http::StreamFilter {
 public:
  explicit IstioStatsFilter(std::shared_ptr<const IstioStatsConfig> config)
      : config_(std::move(config)) {}

  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(network::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(HeaderMap&) override {
    return http::FilterTrailersStatus::kContinue;
  }
  http::FilterHeadersStatus encodeHeaders(HeaderMap&, bool) override {
    return http::FilterHeadersStatus::kContinue;
  }
  void encodeData(const network::Buffer& data, bool end_stream) override;
  void onDestroy() override;

 private:
  std::shared_ptr<const IstioStatsConfig> config_;
  http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  bool grpc_ = false;
  bool reported_ = false;
  GrpcMessageCounter request_messages_;
  GrpcMessageCounter response_messages_;
};

// The TCP half of istio.stats (Istio's network filter): opened/closed
// connections and bytes each way, labelled like HTTP with request_protocol
// "tcp". Called by the TCP proxy when a session's peer is known and when it
// ends.
class TcpStatsReporter {
 public:
  explicit TcpStatsReporter(std::shared_ptr<const IstioStatsConfig> config)
      : config_(std::move(config)) {}
  void onConnectionOpen(const StreamInfo& info);
  void onConnectionClose(const StreamInfo& info);

 private:
  void fill(const StreamInfo& info, LabelValues& out) const;
  std::shared_ptr<const IstioStatsConfig> config_;
  bool opened_ = false;
};

void registerIstioStatsFilter(http::FilterRegistry& registry);

}  // namespace sheave::istio_stats
