#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "match/header_map.h"

namespace sheave {

// Envoy's response flags, in Envoy's order: %RESPONSE_FLAGS% prints the set
// ones in this order, so the enum order is part of the output format.
enum class ResponseFlag : uint8_t {
  kFailedLocalHealthCheck,            // LH
  kNoHealthyUpstream,                 // UH
  kUpstreamRequestTimeout,            // UT
  kLocalReset,                        // LR
  kUpstreamRemoteReset,               // UR
  kUpstreamConnectionFailure,         // UF
  kUpstreamConnectionTermination,     // UC
  kUpstreamOverflow,                  // UO
  kNoRouteFound,                      // NR
  kDelayInjected,                     // DI
  kFaultInjected,                     // FI
  kRateLimited,                       // RL
  kUnauthorizedExternalService,       // UAEX
  kRateLimitServiceError,             // RLSE
  kDownstreamConnectionTermination,   // DC
  kUpstreamRetryLimitExceeded,        // URX
  kStreamIdleTimeout,                 // SI
  kInvalidEnvoyRequestHeaders,        // IH
  kDownstreamProtocolError,           // DPE
  kUpstreamMaxStreamDurationReached,  // UMSDR
  kResponseFromCacheFilter,           // RFCF
  kNoFilterConfigFound,               // NFCF
  kDurationTimeout,                   // DT
  kUpstreamProtocolError,             // UPE
  kNoClusterFound,                    // NC
  kOverloadManager,                   // OM
  kDnsResolutionFailed,               // DF
  kDropOverload,                      // DO
  kDownstreamRemoteReset,             // DR
  kUnconditionalDropOverload,         // UDO
  kCount,
};

std::string_view responseFlagShortString(ResponseFlag flag);  // "UH"
std::string_view responseFlagLongString(ResponseFlag flag);   // "NoHealthyUpstream"
// Accepts the short form, as access log response_flag_filter does.
std::optional<ResponseFlag> responseFlagFromShortString(std::string_view s);

// A set of ResponseFlag; one word, copied freely.
class ResponseFlags {
 public:
  void set(ResponseFlag f) { bits_ |= bit(f); }
  void clear(ResponseFlag f) { bits_ &= ~bit(f); }
  bool has(ResponseFlag f) const { return (bits_ & bit(f)) != 0; }
  bool any() const { return bits_ != 0; }
  bool intersects(ResponseFlags other) const { return (bits_ & other.bits_) != 0; }
  uint64_t bits() const { return bits_; }

  // Comma-separated short strings in Envoy's order ("UH,URX"), "-" if none.
  std::string toShortString() const;
  // Comma-separated long names ("NoHealthyUpstream"), "-" if none.
  std::string toLongString() const;

 private:
  static uint64_t bit(ResponseFlag f) { return uint64_t{1} << static_cast<unsigned>(f); }
  uint64_t bits_ = 0;
};

// What Istio's metadata exchange tells about the workload on the other end
// (Istio's WorkloadMetadataObject): read from the peer's x-envoy-peer-metadata
// header by istio.metadata_exchange, read by istio.stats. Empty strings are
// unknown. Immutable once published; shared by the streams of one peer.
struct PeerWorkloadMetadata {
  std::string instance_name;       // NAME (the pod)
  std::string namespace_name;      // NAMESPACE
  std::string workload_name;       // WORKLOAD_NAME
  std::string cluster_id;          // CLUSTER_ID
  std::string canonical_name;      // LABELS["service.istio.io/canonical-name"]
  std::string canonical_revision;  // LABELS["service.istio.io/canonical-revision"]
  std::string app_name;            // LABELS["app"]
  std::string app_version;         // LABELS["version"]
  std::string owner;               // OWNER
};

// What access logs, stats and telemetry read about one HTTP request or one
// TCP session. Filled in by the connection manager / tcp_proxy / router as
// the stream progresses; read once when the stream ends. Owned by the
// stream, touched by one worker only.
struct StreamInfo {
  using Duration = std::chrono::nanoseconds;

  std::chrono::system_clock::time_point start_time;
  std::chrono::steady_clock::time_point start_time_monotonic;

  // Offsets from start_time_monotonic; unset until the event happens.
  std::optional<Duration> last_downstream_rx_byte_received;
  std::optional<Duration> first_upstream_tx_byte_sent;
  std::optional<Duration> last_upstream_tx_byte_sent;
  std::optional<Duration> first_upstream_rx_byte_received;
  std::optional<Duration> last_upstream_rx_byte_received;
  std::optional<Duration> first_downstream_tx_byte_sent;
  std::optional<Duration> last_downstream_tx_byte_sent;
  // Total duration, set when the stream ends (%DURATION%).
  std::optional<Duration> request_complete;

  // "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"; empty for TCP.
  std::string protocol;
  std::optional<uint32_t> response_code;
  ResponseFlags response_flags;
  std::string response_code_details;           // "via_upstream", "route_not_found", ...
  std::string connection_termination_details;  // why the connection was closed
  uint64_t bytes_received = 0;  // body bytes (HTTP) or payload bytes (TCP) from downstream
  uint64_t bytes_sent = 0;      // to downstream

  std::string upstream_host;  // "10.0.0.7:8080"
  std::string upstream_cluster;
  std::string upstream_local_address;
  std::string upstream_transport_failure_reason;
  std::string route_name;

  std::string downstream_local_address;          // after original_dst
  std::string downstream_remote_address;         // after XFF / proxy protocol
  std::string downstream_direct_remote_address;  // the peer of the socket
  std::string requested_server_name;             // SNI
  std::string downstream_peer_uri_san;
  std::string downstream_peer_subject;
  std::string downstream_local_uri_san;
  // The upstream connection's TLS identities, when it is TLS (the router fills them).
  std::string upstream_peer_uri_san;
  std::string upstream_local_uri_san;

  // Istio's filter state "downstream_peer" / "upstream_peer": the peer
  // workloads learnt by istio.metadata_exchange; null when unknown.
  std::shared_ptr<const PeerWorkloadMetadata> downstream_peer;
  std::shared_ptr<const PeerWorkloadMetadata> upstream_peer;

  std::string request_id;  // x-request-id
  std::optional<uint64_t> connection_id;
  // Number of upstream requests made (1 + retries); unset when none was attempted.
  std::optional<uint32_t> attempt_count;
  bool health_check_request = false;  // answered by the health_check filter

  // The stream's header maps, when it has them. Not owned; valid while the
  // stream is alive (access logs run before it is destroyed).
  const HeaderMap* request_headers = nullptr;
  const HeaderMap* response_headers = nullptr;
  const HeaderMap* response_trailers = nullptr;
  const HeaderMap* request_trailers = nullptr;

  // Envoy's dynamic metadata: values one filter leaves for later ones and for the access log,
  // keyed by the writing filter's name ("envoy.filters.http.jwt_authn" -> its verified payloads,
  // read by rbac's metadata matchers). Each value is a JSON object, immutable once set; replace
  // the whole value to change it.
  std::map<std::string, std::shared_ptr<const nlohmann::json>, std::less<>> dynamic_metadata;

  void setResponseFlag(ResponseFlag f) { response_flags.set(f); }
  bool hasResponseFlag(ResponseFlag f) const { return response_flags.has(f); }
  // Marks the stream finished at `now`.
  void onRequestComplete(std::chrono::steady_clock::time_point now) {
    request_complete = now - start_time_monotonic;
  }
};

}  // namespace sheave
