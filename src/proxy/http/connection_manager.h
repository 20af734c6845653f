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

// Envoy's HTTP connection manager for HTTP/1.1 downstream connections: it
// owns the connection, drives the codec, runs each request through the
// HTTP filter chain (ending in the router), frames the response, enforces
// the connection and stream timeouts and writes the access log when a
// stream ends. HTTP/1.1 carries one request at a time; pipelined requests
// wait in the input buffer until the current response is done.
class ConnectionManager : public network::ConnectionCallbacks,
                          public http1::ParserCallbacks,
                          public network::DeferredDeletable {
 public:
  ConnectionManager(std::shared_ptr<const ConnectionManagerConfig> config,
                    std::unique_ptr<network::Connection> connection, network::EventLoop& loop,
                    ConnectionManagerHost& host);
  ~ConnectionManager() override;

  network::Connection& connection() { return *connection_; }
  // The listener is draining: close after the in-flight request.
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

 private:
  class ActiveStream;
  friend class ActiveStream;

  void dispatch();
  void writeRaw(std::string_view bytes);
  void mutateRequestHeaders(HeaderMap& headers, const http1::MessageInfo& info);
  void onCodecError(const http1::ParseError& error);
  void onStreamDone(ActiveStream& stream);
  void closeConnection(network::ConnectionCloseType type);
  void armIdleTimer();
  void onIdleTimeout();
  void onRequestHeadersTimeout();

  std::shared_ptr<const ConnectionManagerConfig> config_;
  std::unique_ptr<network::Connection> connection_;
  network::EventLoop& loop_;
  ConnectionManagerHost& host_;
  http1::Parser parser_;
  network::Buffer input_;
  std::unique_ptr<ActiveStream> stream_;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> request_headers_timer_;
  std::vector<DownstreamWatermarkCallbacks*> watermark_callbacks_;
  std::chrono::steady_clock::time_point connection_start_;
  uint64_t next_stream_id_ = 1;
  bool dispatching_ = false;
  bool redispatch_ = false;
  bool close_after_response_ = false;
  bool closed_ = false;
  bool above_high_watermark_ = false;
  bool read_disabled_for_pipelining_ = false;
};

}  // namespace sheave::http
