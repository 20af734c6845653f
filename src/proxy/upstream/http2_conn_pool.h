#pragma once

#include <cstdint>
#include <list>
#include <memory>

#include "proxy/http/http2/codec_stats.h"
#include "proxy/network/event_loop.h"
#include "proxy/upstream/cluster_info.h"
#include "proxy/upstream/conn_pool.h"
#include "proxy/upstream/host.h"

namespace sheave::upstream {

// HTTP/2 connections to one host, owned by one worker. Requests share one
// multiplexed connection; another opens only when every open one is at its
// stream limit (the peer's SETTINGS_MAX_CONCURRENT_STREAMS, the cluster's
// http2_protocol_options.max_concurrent_streams, or what is left of
// max_requests_per_connection). h2c with prior knowledge, or TLS through the
// cluster's transport socket (ALPN h2).
//
// Circuit breakers follow Envoy's HTTP/2 rules: max_pending_requests bounds
// requests waiting for a connection to come up, max_requests (checked by the
// router per stream) bounds concurrent streams, max_connections bounds
// connections.
//
// A connection that received GOAWAY, reached max_requests_per_connection or
// belongs to a draining pool takes no new streams and closes after its last
// one; streams the GOAWAY refused end with kGoAwayRefused (never processed).
class Http2ConnPool : public HttpConnPool {
 public:
  Http2ConnPool(network::EventLoop& loop, HostSharedPtr host,
                std::shared_ptr<const ClusterInfo> cluster);
  ~Http2ConnPool() override;

  Cancellable* newStream(ResponseDecoder& decoder, PoolCallbacks& callbacks) override;
  void drainConnections() override;
  bool idle() const override;
  PoolProtocol protocol() const override { return PoolProtocol::kHttp2; }
  const HostSharedPtr& host() const override { return host_; }

  // Open connections (connecting, serving or draining), for tests and stats.
  size_t connectionCount() const { return clients_.size(); }
  const http2::CodecStats& codecStats() const { return codec_stats_; }

 private:
  class ActiveClient;
  class ActiveStream;
  struct PendingStream;
  friend class ActiveClient;
  friend class ActiveStream;

  // Streams a connection that has not seen the peer's SETTINGS yet is
  // expected to take: the cluster's own limit.
  uint32_t assumedCapacity() const;
  // Opens connections until the pending requests fit in the connecting ones
  // (within max_connections).
  void maybeCreateClients();
  // Hands pending requests to connections with room.
  void attachPending();
  ActiveClient* clientWithRoom();
  void onClientClosed(ActiveClient& client, bool connect_failed, std::string_view reason);
  void cancelPending(PendingStream& pending);
  void failPending(PoolFailureReason reason, std::string_view details, size_t keep);

  network::EventLoop& loop_;
  HostSharedPtr host_;
  std::shared_ptr<const ClusterInfo> cluster_;
  http2::CodecStats codec_stats_;
  std::list<std::unique_ptr<ActiveClient>> clients_;
  std::list<std::unique_ptr<PendingStream>> pending_;
  bool draining_ = false;
  bool destroying_ = false;
};

}  // namespace sheave::upstream
