#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/http/filter.h"
#include "proxy/upstream/cluster_manager.h"
#include "proxy/upstream/conn_pool.h"

namespace sheave::router {

// envoy.extensions.filters.http.router.v3.Router, parsed once.
struct RouterConfig {
  bool suppress_envoy_headers = false;
};

// The terminal HTTP filter: picks the cluster and a host, sends the request
// upstream through the worker's connection pool, streams the response back,
// and applies the route's timeout and retry policy (Envoy's router filter).
class Router : public http::StreamDecoderFilter, public http::DownstreamWatermarkCallbacks {
 public:
  Router(std::shared_ptr<const RouterConfig> config, upstream::ThreadLocalClusterManager& clusters);
  ~Router() override;

  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(network::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(HeaderMap& trailers) override;
  void onDestroy() override;

  // http::DownstreamWatermarkCallbacks: the client reads slowly, so stop
  // reading the upstream response until it catches up.
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

 private:
  class UpstreamRequest;
  friend class UpstreamRequest;

  void startAttempt();
  void onGlobalTimeout();
  void onPerTryTimeout(UpstreamRequest& request);
  void onUpstreamReset(UpstreamRequest& request, upstream::StreamResetReason reason,
                       std::string_view details);
  void onPoolFailure(UpstreamRequest& request, upstream::PoolFailureReason reason,
                     std::string_view details);
  void onUpstreamHeaders(UpstreamRequest& request, HeaderMap&& headers, bool end_stream);
  void onUpstreamData(network::Buffer& data, bool end_stream);
  void onUpstreamTrailers(HeaderMap&& trailers);
  void onUpstreamComplete();

  // Retry decisions, Envoy's rules.
  bool retryOnStatus(uint32_t status) const;
  bool retryOnReset(upstream::StreamResetReason reason) const;
  // retry_on cancelled / deadline-exceeded / internal / resource-exhausted /
  // unavailable against the grpc-status of a gRPC response's headers.
  bool retryOnGrpcStatus(const HeaderMap& response_headers) const;
  // Schedules another attempt if the policy and the retry circuit breaker
  // allow it; false when retries are exhausted (the caller answers).
  bool scheduleRetry();
  void releaseRetry();
  void pickShadows(const HeaderMap& headers);
  void sendShadows();
  std::string addDownstreamSetCookie(const HashPolicyEntry& cookie);
  void doRetry();
  void cleanupAttempt();
  void sendNoHealthyUpstream();
  void replyAfterReset(upstream::StreamResetReason reason, std::string_view details);
  std::chrono::milliseconds backoff();

  std::shared_ptr<const RouterConfig> config_;
  upstream::ThreadLocalClusterManager& clusters_;
  http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;

  HeaderMap* request_headers_ = nullptr;
  const RouteEntry* route_ = nullptr;
  std::shared_ptr<upstream::ThreadLocalCluster> cluster_;
  const RetryPolicy* retry_policy_ = nullptr;
  std::unique_ptr<UpstreamRequest> upstream_;
  network::Buffer retry_body_;  // the request body kept for retries
  std::optional<HeaderMap> request_trailers_;
  std::vector<const upstream::Host*> attempted_hosts_;
  // The route's hash_policy applied to this request (on the first attempt).
  std::optional<uint64_t> hash_key_;
  // Set-Cookie values of hash-policy cookies generated for this request.
  std::vector<std::string> downstream_set_cookies_;
  // request_mirror_policies that fire for this request, sent once it is complete.
  struct Shadow {
    const MirrorPolicy* policy;
    std::shared_ptr<upstream::ThreadLocalCluster> cluster;
  };
  std::vector<Shadow> shadows_;
  network::Buffer shadow_body_;
  std::unique_ptr<network::Timer> global_timer_;
  std::unique_ptr<network::Timer> retry_timer_;
  std::chrono::milliseconds timeout_{0};
  std::chrono::milliseconds per_try_timeout_{0};
  std::chrono::steady_clock::time_point start_;
  uint32_t retries_left_ = 0;
  uint32_t attempt_count_ = 0;
  bool request_complete_ = false;
  bool grpc_request_ = false;  // content-type application/grpc*
  bool upgrade_ = false;       // WebSocket or another upgrade, or CONNECT: a tunnel
  bool buffer_body_for_retry_ = false;
  bool response_started_ = false;
  bool downstream_above_watermark_ = false;
  bool used_transparent_retry_ = false;
  bool retry_limit_exceeded_ = false;
  bool holds_retry_ = false;  // a unit of the cluster's retries resource
  bool destroyed_ = false;
};

}  // namespace sheave::router
