#pragma once

#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/random.h"
#include "proxy/http/connection_manager_config.h"
#include "proxy/http/filter.h"
#include "proxy/http/http1/parser.h"
#include "proxy/http/http2/connection.h"
#include "proxy/network/connection.h"

namespace sheave::http {

// Things a connection manager needs from the worker that owns it.
class ConnectionManagerHost {
 public:
  virtual ~ConnectionManagerHost() = default;
  virtual RandomGenerator& random() = 0;
  // True once the listener drains: finish the current request, then close.
  virtual bool draining() const = 0;
  // Called once when the downstream connection is gone; the host then
  // deferred-deletes the manager.
  virtual void onConnectionManagerClosed(class ConnectionManager& manager) = 0;
};

// Envoy's HTTP connection manager: it owns one downstream connection, picks the codec
// (HTTP/1.1, or HTTP/2 by ALPN "h2" or the connection preface), runs each request through the
// HTTP filter chain (ending in the router), hands the response to the stream's ResponseEncoder,
// enforces the connection and stream timeouts and writes the access log when a stream ends.
// HTTP/1.1 carries one request at a time; pipelined requests wait in the input buffer until the
// current response is done. HTTP/2 multiplexes streams, each with its own filter chain.
class ConnectionManager : public network::ConnectionCallbacks,
                          public http1::ParserCallbacks,
                          public http2::ServerConnectionCallbacks,
                          public network::DeferredDeletable {
 public:
  ConnectionManager(std::shared_ptr<const ConnectionManagerConfig> config,
                    std::unique_ptr<network::Connection> connection, network::EventLoop& loop,
                    ConnectionManagerHost& host);
  ~ConnectionManager() override;

  network::Connection& connection() { return *connection_; }
  // The listener is draining: HTTP/1.1 closes after the in-flight request; HTTP/2 sends a
  // shutdown notice, then GOAWAY after drain_timeout, and closes when its streams are done.
  void startDrain();

  // network::ConnectionCallbacks
  void onData(network::Buffer& data, bool end_stream) override;
  void onEvent(network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // http1::ParserCallbacks
  void onHeaders(HeaderMap&& headers, const http1::MessageInfo& info) override;
  void onBody(std::string_view data) override;
  void onMessageComplete(HeaderMap&& trailers) override;

  // http2::ServerConnectionCallbacks
  http2::StreamCallbacks* onNewStream(int32_t stream_id) override;

 private:
  class ActiveStream;
  class Http1Encoder;
  class Http2Stream;
  friend class ActiveStream;
  enum class Codec : uint8_t { kUndecided, kHttp1, kHttp2 };

  bool chooseCodec();
  void startHttp1();
  void startHttp2();
  void dispatch();
  void dispatchHttp2();
  // Moves the HTTP/2 codec's output to the connection, as far as its write buffer allows.
  void flushHttp2();
  void writeRaw(std::string_view bytes);
  void mutateRequestHeaders(HeaderMap& headers, bool secure_scheme_from_client);
  void onCodecError(const http1::ParseError& error);
  void onStreamDone(ActiveStream& stream);
  void closeConnection(network::ConnectionCloseType type);
  void armIdleTimer();
  void onIdleTimeout();
  void onRequestHeadersTimeout();
  void onDrainTimeout();

  std::shared_ptr<const ConnectionManagerConfig> config_;
  std::unique_ptr<network::Connection> connection_;
  network::EventLoop& loop_;
  ConnectionManagerHost& host_;
  http1::Parser parser_;
  network::Buffer input_;
  // HTTP/1.1: the one stream in flight, and its encoder (one per connection, reused).
  std::unique_ptr<ActiveStream> stream_;
  std::unique_ptr<Http1Encoder> http1_encoder_;
  // HTTP/2: the codec and the streams in flight.
  std::unique_ptr<http2::ServerConnection> http2_;
  std::list<std::unique_ptr<ActiveStream>> streams_;
  http2::CodecStats http2_stats_;
  http2::CodecStats http2_stats_published_;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> request_headers_timer_;
  std::unique_ptr<network::Timer> drain_timer_;
  std::chrono::steady_clock::time_point connection_start_;
  uint64_t next_stream_id_ = 1;
  Codec codec_ = Codec::kUndecided;
  bool dispatching_ = false;
  bool redispatch_ = false;
  bool close_after_response_ = false;
  bool closed_ = false;
  bool above_high_watermark_ = false;
  bool read_disabled_for_pipelining_ = false;
  bool draining_ = false;
  bool goaway_sent_ = false;         // the final GOAWAY of a drain (not the shutdown notice)
  bool connection_checked_ = false;  // config_->connection_checks have run
};

}  // namespace sheave::http
