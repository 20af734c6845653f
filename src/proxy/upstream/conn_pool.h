#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string_view>

#include "match/header_map.h"
#include "proxy/network/buffer.h"
#include "proxy/network/connection.h"
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
  // HTTP/2 only:
  kRemoteReset,          // the upstream sent RST_STREAM (UR)
  kRemoteRefusedStream,  // RST_STREAM REFUSED_STREAM: the upstream never processed it
  kGoAwayRefused,        // above a GOAWAY's last_stream_id: never processed, safe to retry
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
  // The upstream connection the stream is on: its addresses and, over TLS, the certificates.
  virtual const network::Connection& connection() const = 0;
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

// The protocol a pool speaks to its host.
enum class PoolProtocol { kHttp1, kHttp2 };

// The accounting every pool does when one of its upstream connections
// closes: cluster `upstream_cx_*` stats, the host's active count and the
// cluster's connection circuit breaker.
void recordConnectionClosed(const ClusterInfo& cluster, const Host& host,
                            network::ConnectionEvent event, uint64_t bytes_sent,
                            std::chrono::milliseconds length);

// One worker's connections to one host, whatever the protocol; what the
// router and ThreadLocalCluster need from a pool.
class HttpConnPool {
 public:
  virtual ~HttpConnPool() = default;
  // Starts a stream. Either calls back synchronously (onPoolReady with a
  // usable connection, or onPoolFailure on overflow) and returns nullptr, or
  // queues the request and returns a handle to cancel it.
  virtual Cancellable* newStream(ResponseDecoder& decoder, PoolCallbacks& callbacks) = 0;
  // Closes idle connections and lets busy ones finish (host removed, drain).
  virtual void drainConnections() = 0;
  // No stream, no pending request and no connection attempt: safe to destroy.
  virtual bool idle() const = 0;
  virtual PoolProtocol protocol() const = 0;
  virtual const HostSharedPtr& host() const = 0;
};

// HTTP/1.1 connections to one host, owned by one worker. Each connection
// carries one request at a time; idle connections stay read-enabled so a
// peer that closes them is noticed at once, not when they are reused.
// Circuit breakers (max_connections, max_pending_requests, max_requests) are
// checked against the cluster-wide counters shared by all workers.
class Http1ConnPool : public HttpConnPool {
 public:
  Http1ConnPool(network::EventLoop& loop, HostSharedPtr host,
                std::shared_ptr<const ClusterInfo> cluster);
  ~Http1ConnPool() override;

  Cancellable* newStream(ResponseDecoder& decoder, PoolCallbacks& callbacks) override;
  void drainConnections() override;
  bool idle() const override;
  PoolProtocol protocol() const override { return PoolProtocol::kHttp1; }
  const HostSharedPtr& host() const override { return host_; }

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
