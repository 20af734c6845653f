#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.h"
#include "common/result.h"
#include "match/header_map.h"
#include "proxy/grpc/message_framer.h"
#include "proxy/grpc/status.h"
#include "proxy/http/http2/protocol_options.h"
#include "proxy/network/event_loop.h"
#include "proxy/network/transport_socket.h"

namespace sheave::grpc {

// Makes the transport socket of each new connection (e.g. a TLS client socket that offers ALPN
// "h2"). Empty: plaintext h2c with prior knowledge.
using TransportSocketFactory = std::function<std::unique_ptr<network::TransportSocket>()>;

struct AsyncClientOptions {
  // :authority of every call; empty: the address ("127.0.0.1:15010").
  std::string authority;
  std::string user_agent = "sheave-proxy";
  std::chrono::milliseconds connect_timeout{5000};
  // A received message above this ends the call with RESOURCE_EXHAUSTED.
  uint32_t max_receive_message_bytes = kDefaultMaxMessageBytes;
  // Bytes one stream may hold queued beyond what the peer's HTTP/2 windows let out; a
  // sendMessage that would exceed it is refused. Streams also get the write-buffer watermark
  // callbacks (high at http2.stream_buffer_limit) to slow down before that.
  uint32_t max_send_buffer_bytes = 64 * 1024 * 1024;
  // High watermark of the connection's socket write buffer: codec output moves to the socket
  // only below it, so a peer that does not read holds the data inside the HTTP/2 windows.
  uint32_t connection_buffer_limit = 1024 * 1024;
  http2::ProtocolOptions http2;
  TransportSocketFactory transport_socket_factory;
};

// Events of one call, in order: [initial metadata] [messages...] [trailing metadata] and then
// onRemoteClose exactly once, however the call ends (status from the server, connect failure,
// GOAWAY, RST_STREAM, deadline, bad response), unless the caller ended it first with
// resetStream() or by destroying the stream. The stream (and the client) may be destroyed from
// inside any of these callbacks.
class AsyncStreamCallbacks {
 public:
  virtual ~AsyncStreamCallbacks() = default;
  // Response headers without the pseudo-headers. Not called for a Trailers-Only response.
  virtual void onReceiveInitialMetadata(HeaderMap&& metadata) = 0;
  virtual void onReceiveMessage(std::string&& message) = 0;
  // Trailers (or a Trailers-Only response's headers), grpc-status and grpc-message included.
  virtual void onReceiveTrailingMetadata(HeaderMap&& metadata) = 0;
  virtual void onRemoteClose(StatusCode code, std::string message) = 0;
  // The stream's queued output crossed the HTTP/2 stream buffer limit / fell below half of it.
  virtual void onAboveWriteBufferHighWatermark() {}
  virtual void onBelowWriteBufferLowWatermark() {}
};

class AsyncStream {
 public:
  // Destroying an open stream resets it (RST_STREAM CANCEL); no callback follows.
  virtual ~AsyncStream() = default;
  // Frames and queues one message; end_stream also half-closes. Errors (the stream is closed or
  // half-closed, or max_send_buffer_bytes would be exceeded) leave the stream as it was.
  virtual Status sendMessage(std::string_view serialized, bool end_stream) = 0;
  // Half-close: no more messages from this side; responses keep coming.
  virtual void closeStream() = 0;
  // Cancels the call (RST_STREAM CANCEL). No callback follows.
  virtual void resetStream() = 0;
  virtual bool isAboveWriteBufferHighWatermark() const = 0;
  // onRemoteClose has been called (or the stream was reset locally).
  virtual bool closed() const = 0;
};

class ActiveConnection;

// A gRPC client over sheave's own HTTP/2 codec and event loop: one HTTP/2 connection at a time
// to one address, shared by every call. The connection opens with the first call and is opened
// again by the next call after it failed or the server sent GOAWAY (streams already running on
// a draining connection finish there). Belongs to `loop`, which must outlive it.
//
// Destroying the client silences its streams: they get no further callback and their methods
// fail; the stream objects may outlive the client.
class AsyncClient {
 public:
  AsyncClient(network::EventLoop& loop, Address address, AsyncClientOptions options = {});
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  // Starts a call to `path` ("/envoy.service.discovery.v3.AggregatedDiscoveryService/
  // StreamAggregatedResources"). Never returns null: a call that cannot start reports it
  // through onRemoteClose from the loop (never from inside start()). initial_metadata: custom
  // metadata only; reserved fields (pseudo-headers, te, content-type, user-agent,
  // grpc-timeout) are set by the client and ignored there. timeout: the call ends with
  // DEADLINE_EXCEEDED when it passes, and the server learns it through grpc-timeout.
  std::unique_ptr<AsyncStream> start(std::string_view path, AsyncStreamCallbacks& callbacks,
                                     const HeaderMap& initial_metadata,
                                     std::optional<std::chrono::milliseconds> timeout);

  const Address& address() const { return address_; }
  // Calls not yet closed, over all connections.
  size_t activeStreams() const;
  // HTTP/2 connections opened so far (for tests and stats).
  uint64_t connectionsOpened() const { return connections_opened_; }

 private:
  friend class ActiveConnection;

  ActiveConnection& connectionForNewStream();
  void onConnectionClosed(ActiveConnection& connection);
  void onConnectionDraining(ActiveConnection& connection);

  network::EventLoop& loop_;
  const Address address_;
  const AsyncClientOptions options_;
  ActiveConnection* active_ = nullptr;  // the connection new calls go to, owned by connections_
  std::vector<std::unique_ptr<ActiveConnection>> connections_;
  uint64_t connections_opened_ = 0;
};

}  // namespace sheave::grpc
