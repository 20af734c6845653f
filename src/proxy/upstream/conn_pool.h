#pragma once

#include <list>
#include <memory>
#include <string_view>

#include "match/header_map.h"
#include "proxy/network/buffer.h"
#include "proxy/network/event_loop.h"
#include "proxy/upstream/cluster_info.h"
#include "proxy/upstream/host.h"

namespace sheave::upstream {

// Why an upstream stream ended without a complete response. Drives retries
// (retry_on reset / connect-failure) and the response flags UF, UC, UO.
enum class StreamResetReason {
  kConnectionFailure,      // connect failed or timed out (UF)
  kConnectionTermination,  // the connection closed under the stream (UC)
  kOverflow,               // a circuit breaker refused it (UO)
  kProtocolError,          // the upstream sent bytes that are not HTTP (UPE)
  kLocalReset,             // we gave up on it (timeouts)
};
std::string_view resetReasonName(StreamResetReason reason);

// The router's side of an upstream stream: response events in order.
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  virtual void decode1xxHeaders(HeaderMap&& headers) = 0;
  virtual void decodeHeaders(HeaderMap&& headers, bool end_stream) = 0;
  virtual void decodeData(network::Buffer& data, bool end_stream) = 0;
  virtual void decodeTrailers(HeaderMap&& trailers) = 0;
  virtual void onResetStream(StreamResetReason reason, std::string_view details) = 0;
  // The upstream connection's write buffer is full / drained again.
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

// The request side of an upstream stream, handed out by onPoolReady.
class RequestEncoder {
 public:
  virtual ~RequestEncoder() = default;
  virtual void encodeHeaders(const HeaderMap& headers, bool end_stream) = 0;
  virtual void encodeData(network::Buffer& data, bool end_stream) = 0;
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  // Abandons the stream; the connection cannot be reused and is closed.
  virtual void resetStream() = 0;
  // Stops/starts reading the response (downstream flow control).
  virtual void readDisable(bool disable) = 0;
  // True when the connection already carried earlier requests.
  virtual bool reusedConnection() const = 0;
  virtual std::string localAddress() const = 0;
};

enum class PoolFailureReason { kOverflow, kConnectionFailure, kTimeout };

class PoolCallbacks {
 public:
  virtual ~PoolCallbacks() = default;
  virtual void onPoolReady(RequestEncoder& encoder, const HostSharedPtr& host) = 0;
  virtual void onPoolFailure(PoolFailureReason reason, std::string_view details,
                             const HostSharedPtr& host) = 0;
};

class Cancellable {
 public:
  virtual ~Cancellable() = default;
  virtual void cancel() = 0;
};

// HTTP/1.1 connections to one host, owned by one worker. Each connection
// carries one request at a time; idle connections stay read-enabled so a
// peer that closes them is noticed at once, not when they are reused.
// Circuit breakers (max_connections, max_pending_requests, max_requests) are
// checked against the cluster-wide counters shared by all workers.
class Http1ConnPool {
 public:
  Http1ConnPool(network::EventLoop& loop, HostSharedPtr host,
                std::shared_ptr<const ClusterInfo> cluster);
  ~Http1ConnPool();

  // Starts a stream. Either calls back synchronously (onPoolReady with an
  // idle connection, or onPoolFailure on overflow) and returns nullptr, or
  // queues the request and returns a handle to cancel it.
  Cancellable* newStream(ResponseDecoder& decoder, PoolCallbacks& callbacks);

  // Closes idle connections and lets busy ones finish (host removed, drain).
  void drainConnections();
  bool idle() const;
  const HostSharedPtr& host() const { return host_; }

 private:
  class ActiveClient;
  struct PendingStream;
  friend class ActiveClient;

  void createClient();
  void attach(ActiveClient& client, ResponseDecoder& decoder, PoolCallbacks& callbacks);
  void onClientReady(ActiveClient& client);
  void onClientClosed(ActiveClient& client, bool connect_failed, std::string_view reason);
  void cancelPending(PendingStream& pending);
  void attachPendingOrIdle(ActiveClient& client);

  network::EventLoop& loop_;
  HostSharedPtr host_;
  std::shared_ptr<const ClusterInfo> cluster_;
  std::list<std::unique_ptr<ActiveClient>> connecting_;
  std::list<std::unique_ptr<ActiveClient>> ready_;
  std::list<std::unique_ptr<ActiveClient>> busy_;
  std::list<std::unique_ptr<PendingStream>> pending_;
  bool draining_ = false;
};

}  // namespace sheave::upstream
