#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "match/header_map.h"
#include "proxy/network/buffer.h"
#include "proxy/upstream/cluster_manager.h"

namespace sheave::router {

// A mirrored ("shadow") request: a copy of a request sent to another cluster
// and forgotten. It is owned by that cluster (ThreadLocalCluster::adoptDetached),
// not by the stream that made it, so it neither delays nor fails the primary
// request and may outlive it; its response is read and dropped, and it is
// counted in the mirror cluster's stats like any request. Bounded by
// `timeout` (the route's, else 15 s).
class ShadowRequest : public upstream::PoolCallbacks,
                      public upstream::ResponseDecoder,
                      public network::DeferredDeletable {
 public:
  static void send(upstream::ThreadLocalCluster& cluster, HeaderMap headers, network::Buffer& body,
                   std::optional<HeaderMap> trailers, std::chrono::milliseconds timeout);
  ~ShadowRequest() override;

  // upstream::PoolCallbacks
  void onPoolReady(upstream::RequestEncoder& encoder, const upstream::HostSharedPtr& host) override;
  void onPoolFailure(upstream::PoolFailureReason reason, std::string_view details,
                     const upstream::HostSharedPtr& host) override;
  // upstream::ResponseDecoder
  void decode1xxHeaders(HeaderMap&&) override {}
  void decodeHeaders(HeaderMap&& headers, bool end_stream) override;
  void decodeData(network::Buffer& data, bool end_stream) override;
  void decodeTrailers(HeaderMap&&) override { finish(true); }
  void onResetStream(upstream::StreamResetReason reason, std::string_view details) override;
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

 private:
  ShadowRequest(upstream::ThreadLocalCluster& cluster, HeaderMap headers,
                std::optional<HeaderMap> trailers);
  void start(std::chrono::milliseconds timeout);
  // Releases what the request holds and hands it back to its cluster for deletion.
  void finish(bool success);

  upstream::ThreadLocalCluster* cluster_;  // owns this request
  upstream::ThreadLocalCluster::DetachedRequests::iterator self_;
  HeaderMap headers_;
  network::Buffer body_;
  std::optional<HeaderMap> trailers_;
  upstream::HostSharedPtr host_;
  upstream::Cancellable* handle_ = nullptr;
  upstream::RequestEncoder* encoder_ = nullptr;
  std::unique_ptr<network::Timer> timer_;
  std::chrono::steady_clock::time_point start_;
  bool holds_request_ = false;
  bool finished_ = false;
};

}  // namespace sheave::router
