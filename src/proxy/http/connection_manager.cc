#include "proxy/http/connection_manager.h"

#include <charconv>

#include "common/logging.h"
#include "common/uuid.h"
#include "proxy/accesslog/downstream_connection_info.h"
#include "proxy/http/date_provider.h"
#include "proxy/http/headers.h"
#include "proxy/http/http1/encoder.h"

namespace sheave::http {

// One request/response exchange and its filter chain.
class ConnectionManager::ActiveStream : public StreamDecoderFilterCallbacks,
                                        public FilterChainBuilder,
                                        public network::DeferredDeletable {
 public:
  ActiveStream(ConnectionManager& parent, uint64_t id)
      : parent_(parent), id_(id), start_(parent.loop_.now()) {
    info_.start_time = parent.loop_.systemNow();
    info_.start_time_monotonic = start_;
    setDownstreamConnectionInfo(*parent.connection_, info_);
    for (const auto& factory : parent.config_->filter_factories) factory(*this);
    for (auto& f : filters_) f->setDecoderFilterCallbacks(*this);
    const auto& config = *parent.config_;
    if (config.stream_idle_timeout.count() > 0) {
      idle_timer_ = parent.loop_.createTimer([this] { onStreamIdleTimeout(); });
      idle_timer_->enable(config.stream_idle_timeout);
    }
    if (config.request_timeout.count() > 0) {
      request_timer_ = parent.loop_.createTimer([this] { onRequestTimeout(); });
      request_timer_->enable(config.request_timeout);
    }
  }

  ~ActiveStream() override = default;

  // FilterChainBuilder
  void addDecoderFilter(StreamDecoderFilterPtr filter) override {
    filters_.push_back(std::move(filter));
  }

  void decodeHeaders(HeaderMap&& headers, bool end_stream) {
    request_headers_ = std::move(headers);
    info_.request_headers = &request_headers_;
    request_complete_ = end_stream;
    headers_end_stream_ = end_stream;
    touch();
    if (end_stream && request_timer_) request_timer_->disable();
    HostPortPolicy port_policy;
    port_policy.strip_any_host_port = parent_.config_->strip_any_host_port;
    route_ = parent_.config_->route_table->route(request_headers_, parent_.host_.random().next(),
                                                 port_policy);
    if (const std::string* id = request_headers_.get("x-request-id")) info_.request_id = *id;
    if (route_.route != nullptr) {
      info_.route_name = route_.route->name;
    } else {
      parent_.config_->stats->no_route.inc();
    }
    runDecodeHeadersFrom(0);
  }

  void decodeData(network::Buffer& data, bool end_stream) {
    if (destroyed_) return;
    request_complete_ = end_stream;
    if (end_stream && request_timer_) request_timer_->disable();
    touch();
    runDecodeData(0, data, end_stream);
  }

  void decodeTrailers(HeaderMap&& trailers) {
    if (destroyed_) return;
    request_complete_ = true;
    if (request_timer_) request_timer_->disable();
    request_trailers_ = std::move(trailers);
    info_.request_trailers = &request_trailers_;
    touch();
    runDecodeTrailers(0);
  }

  // StreamDecoderFilterCallbacks
  network::EventLoop& eventLoop() override { return parent_.loop_; }
  RandomGenerator& random() override { return parent_.host_.random(); }
  const network::Connection& connection() const override { return *parent_.connection_; }
  StreamInfo& streamInfo() override { return info_; }
  uint64_t streamId() const override { return id_; }
  const RouteMatchResult& route() override { return route_; }

  void continueDecoding() override {
    if (destroyed_) return;
    if (headers_stopped_at_ >= 0) {
      // Later filters now see the headers, then whatever body and trailers
      // arrived meanwhile (which already passed the filters up to here).
      const size_t next = static_cast<size_t>(headers_stopped_at_) + 1;
      headers_stopped_at_ = -1;
      runDecodeHeadersFrom(next);
      if (destroyed_) return;
      releaseBuffered(next);
      return;
    }
    if (data_stopped_at_ >= 0) {
      const size_t next = static_cast<size_t>(data_stopped_at_) + 1;
      data_stopped_at_ = -1;
      releaseBuffered(next);
    }
  }

  void encode1xxHeaders(HeaderMap&& headers) override {
    if (destroyed_ || response_started_) return;
    std::string out;
    headers.remove("content-length");
    http1::encodeResponseHeaders(headers, request_version_minor_, false, out);
    parent_.writeRaw(out);
  }

  void encodeHeaders(HeaderMap&& headers, bool end_stream) override {
    if (destroyed_) return;
    response_started_ = true;
    touch();
    response_headers_ = std::move(headers);
    info_.response_headers = &response_headers_;
    int status = 0;
    std::string_view s = response_headers_.status();
    std::from_chars(s.data(), s.data() + s.size(), status);
    info_.response_code = static_cast<uint32_t>(status);
    prepareResponseHeaders(status, end_stream);
    std::string out;
    http1::encodeResponseHeaders(response_headers_, request_version_minor_, chunked_response_, out);
    parent_.writeRaw(out);
    if (end_stream || no_response_body_) {
      onResponseComplete();
    }
  }

  void encodeData(network::Buffer& data, bool end_stream) override {
    if (destroyed_) return;
    touch();
    if (no_response_body_) {
      data.drain(data.length());
    } else if (data.length() > 0) {
      info_.bytes_sent += data.length();
      if (chunked_response_) {
        char line[32];
        auto [end, ec] = std::to_chars(line, line + sizeof(line) - 2, data.length(), 16);
        *end++ = '\r';
        *end++ = '\n';
        network::Buffer framed;
        framed.add(line, static_cast<size_t>(end - line));
        framed.move(data);
        framed.add("\r\n", 2);
        parent_.connection_->write(framed, false);
      } else {
        parent_.connection_->write(data, false);
      }
    }
    if (end_stream) {
      if (chunked_response_ && !no_response_body_) parent_.writeRaw("0\r\n\r\n");
      onResponseComplete();
    }
  }

  void encodeTrailers(HeaderMap&& trailers) override {
    if (destroyed_) return;
    if (chunked_response_ && !no_response_body_) {
      std::string out;
      http1::encodeLastChunk(&trailers, out);
      parent_.writeRaw(out);
    }
    onResponseComplete();
  }

  void sendLocalReply(int status, std::string_view body, std::string_view details) override {
    if (destroyed_) return;
    info_.response_code_details = std::string(details);
    if (response_started_) {
      // Too late for a clean answer: the client sees the connection end.
      resetStream();
      return;
    }
    HeaderMap headers;
    headers.add(":status", std::to_string(status));
    if (!body.empty()) {
      headers.add("content-length", std::to_string(body.size()));
      headers.add("content-type", "text/plain");
    } else if (status != 204 && status != 304) {
      headers.add("content-length", "0");
    }
    const bool head = request_headers_.method() == "HEAD";
    if (body.empty() || head) {
      encodeHeaders(std::move(headers), true);
      return;
    }
    encodeHeaders(std::move(headers), false);
    network::Buffer b;
    b.add(body);
    encodeData(b, true);
  }

  void resetStream() override {
    if (destroyed_) return;
    parent_.close_after_response_ = true;
    finish();
    parent_.closeConnection(network::ConnectionCloseType::kNoFlush);
  }

  bool responseStarted() const override { return response_started_; }

  void onDecoderFilterAboveWriteBufferHighWatermark() override {
    ++read_disables_;
    parent_.connection_->readDisable(true);
  }
  void onDecoderFilterBelowWriteBufferLowWatermark() override {
    if (read_disables_ == 0) return;
    --read_disables_;
    parent_.connection_->readDisable(false);
  }
  void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) override {
    parent_.watermark_callbacks_.push_back(&cb);
    if (parent_.above_high_watermark_) cb.onAboveWriteBufferHighWatermark();
  }
  void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) override {
    std::erase(parent_.watermark_callbacks_, &cb);
  }
  const network::Buffer* decodingBuffer() const override {
    return buffered_body_.length() > 0 ? &buffered_body_ : nullptr;
  }
  uint32_t bufferLimit() const override {
    return buffer_limit_override_ ? buffer_limit_override_ : parent_.config_->buffer_limit_bytes;
  }
  void setDecoderBufferLimit(uint32_t limit) override { buffer_limit_override_ = limit; }

  // The connection went away under the stream (client disconnect).
  void onDownstreamDisconnect() {
    if (destroyed_) return;
    if (!response_complete_) {
      info_.setResponseFlag(ResponseFlag::kDownstreamConnectionTermination);
      if (info_.response_code_details.empty()) {
        info_.response_code_details = "downstream_remote_disconnect";
      }
      parent_.config_->stats->downstream_rq_rx_reset.inc();
    }
    finish();
  }

  bool requestComplete() const { return request_complete_; }
  bool finished() const { return destroyed_; }
  int requestVersionMinor() const { return request_version_minor_; }
  void setRequestInfo(const http1::MessageInfo& info) {
    request_version_minor_ = info.version_minor;
    request_keep_alive_ = info.keep_alive;
    info_.protocol = info.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  }
  bool keepAlive() const { return request_keep_alive_; }
  void addBytesReceived(size_t n) { info_.bytes_received += n; }

 private:
  void touch() {
    if (idle_timer_) idle_timer_->enable(parent_.config_->stream_idle_timeout);
  }

  // Envoy's iteration rules: a filter that stops the headers still gets
  // the body (later filters wait, and the body is kept for them); a filter
  // that stops with kStopIterationAndBuffer has the body kept until it
  // continues; kStopIterationNoBuffer means the filter took the data.
  void runDecodeHeadersFrom(size_t from) {
    for (size_t i = from; i < filters_.size() && !destroyed_; ++i) {
      FilterHeadersStatus status =
          filters_[i]->decodeHeaders(request_headers_, headers_end_stream_);
      if (destroyed_ || response_complete_) return;
      if (status == FilterHeadersStatus::kStopIteration) {
        headers_stopped_at_ = static_cast<int>(i);
        return;
      }
    }
  }

  void runDecodeData(size_t from, network::Buffer& data, bool end_stream) {
    for (size_t i = from; i < filters_.size() && !destroyed_; ++i) {
      if ((headers_stopped_at_ >= 0 && static_cast<int>(i) > headers_stopped_at_) ||
          (data_stopped_at_ >= 0 && static_cast<int>(i) > data_stopped_at_)) {
        keep(data, end_stream);
        return;
      }
      FilterDataStatus status = filters_[i]->decodeData(data, end_stream);
      if (destroyed_ || response_complete_) return;
      if (status == FilterDataStatus::kStopIterationNoBuffer) return;
      if (status == FilterDataStatus::kStopIterationAndBuffer) {
        data_stopped_at_ = static_cast<int>(i);
        keep(data, end_stream);
        return;
      }
      if (headers_stopped_at_ == static_cast<int>(i)) {
        // Continuing from data while holding the headers releases both
        // (Envoy's rule): the headers go on first, then the body in order.
        if (data_stopped_at_ == static_cast<int>(i)) data_stopped_at_ = -1;
        buffered_body_.move(data);
        buffered_end_stream_ = buffered_end_stream_ || end_stream;
        headers_stopped_at_ = -1;
        runDecodeHeadersFrom(i + 1);
        if (destroyed_) return;
        releaseBuffered(i + 1);
        return;
      }
      if (data_stopped_at_ == static_cast<int>(i)) {
        // The buffering filter lets go: everything kept goes on, in order.
        data_stopped_at_ = -1;
        buffered_body_.move(data);
        data.move(buffered_body_);
      }
    }
  }

  void runDecodeTrailers(size_t from) {
    for (size_t i = from; i < filters_.size() && !destroyed_; ++i) {
      const int stop = std::max(headers_stopped_at_, data_stopped_at_);
      if (stop >= 0 && static_cast<int>(i) > stop) {
        trailers_pending_ = true;
        return;
      }
      if (filters_[i]->decodeTrailers(request_trailers_) == FilterTrailersStatus::kStopIteration) {
        return;
      }
    }
  }

  void keep(network::Buffer& data, bool end_stream) {
    buffered_body_.move(data);
    buffered_end_stream_ = buffered_end_stream_ || end_stream;
    checkBufferLimit();
  }

  // Sends the kept body (and trailers) on from filter `from`.
  void releaseBuffered(size_t from) {
    if (buffered_body_.length() > 0 || buffered_end_stream_) {
      network::Buffer data;
      data.move(buffered_body_);
      const bool end = buffered_end_stream_;
      buffered_end_stream_ = false;
      runDecodeData(from, data, end);
      if (destroyed_) return;
    }
    if (trailers_pending_ && headers_stopped_at_ < 0 && data_stopped_at_ < 0) {
      trailers_pending_ = false;
      runDecodeTrailers(from);
    }
  }

  void checkBufferLimit() {
    if (buffered_body_.length() <= bufferLimit() || response_started_) return;
    // Envoy answers a request body that overflows a buffering filter with 413.
    parent_.config_->stats->downstream_rq_too_large.inc();
    sendLocalReply(413, "Payload Too Large", "request_payload_too_large");
  }

  // Envoy's response-side header rules for an HTTP/1.1 client.
  void prepareResponseHeaders(int status, bool end_stream) {
    const auto& config = *parent_.config_;
    removeHopByHopHeaders(response_headers_);
    response_headers_.set("date", DateProvider::current(parent_.loop_));
    switch (config.server_header_transformation) {
      case ConnectionManagerConfig::ServerHeaderTransformation::kOverwrite:
        response_headers_.set("server", config.server_name);
        break;
      case ConnectionManagerConfig::ServerHeaderTransformation::kAppendIfAbsent:
        if (!response_headers_.has("server")) response_headers_.add("server", config.server_name);
        break;
      case ConnectionManagerConfig::ServerHeaderTransformation::kPassThrough:
        break;
    }
    if (!config.via.empty()) appendHeaderValue(response_headers_, "via", config.via);
    if (config.always_set_request_id_in_response) {
      if (const std::string* id = request_headers_.get("x-request-id")) {
        response_headers_.set("x-request-id", *id);
      }
    }
    const bool head = request_headers_.method() == "HEAD";
    const bool bodiless_status = (status >= 100 && status < 200) || status == 204 || status == 304;
    no_response_body_ = head || bodiless_status;
    chunked_response_ = false;
    if (bodiless_status) {
      if (status == 204) response_headers_.remove("content-length");
    } else if (!response_headers_.has("content-length") && !head) {
      if (end_stream) {
        response_headers_.set("content-length", "0");
      } else if (request_version_minor_ >= 1) {
        chunked_response_ = true;
      } else {
        // An HTTP/1.0 client learns the end of the body from the close.
        parent_.close_after_response_ = true;
      }
    }
    // Without the rest of the request body the next request's start is
    // unknown, so an early response ends the connection.
    if (!request_keep_alive_ || !request_complete_ || parent_.host_.draining()) {
      parent_.close_after_response_ = true;
    }
    if (parent_.close_after_response_) {
      response_headers_.set("connection", "close");
    } else if (request_version_minor_ == 0) {
      response_headers_.set("connection", "keep-alive");
    }
  }

  void onResponseComplete() {
    if (response_complete_) return;
    response_complete_ = true;
    if (!request_complete_) {
      // HTTP/1.1 cannot find the next request's start while this one's
      // body is unread: answer, then close (as Envoy does).
      parent_.config_->stats->downstream_rq_response_before_rq_complete.inc();
      parent_.close_after_response_ = true;
    }
    finish();
  }

  // Ends the stream exactly once: filters, stats, access log.
  void finish() {
    if (destroyed_) return;
    destroyed_ = true;
    if (idle_timer_) idle_timer_->disable();
    if (request_timer_) request_timer_->disable();
    for (auto& f : filters_) f->onDestroy();
    // Undo the stream's flow-control pauses: the connection outlives it.
    for (; read_disables_ > 0; --read_disables_) parent_.connection_->readDisable(false);
    auto& stats = *parent_.config_->stats;
    auto now = parent_.loop_.now();
    info_.last_downstream_tx_byte_sent = now - start_;
    info_.request_complete = now - start_;  // the total, %DURATION%
    stats.downstream_rq_active.dec();
    if (info_.response_code) {
      stats.downstream_rq_completed.inc();
      switch (*info_.response_code / 100) {
        case 1:
          stats.downstream_rq_1xx.inc();
          break;
        case 2:
          stats.downstream_rq_2xx.inc();
          break;
        case 3:
          stats.downstream_rq_3xx.inc();
          break;
        case 4:
          stats.downstream_rq_4xx.inc();
          break;
        case 5:
          stats.downstream_rq_5xx.inc();
          break;
        default:
          break;
      }
    }
    stats.downstream_rq_time.record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count()));
    for (const auto& log : parent_.config_->access_logs) log->log(info_);
    parent_.onStreamDone(*this);
  }

  void onStreamIdleTimeout() {
    parent_.config_->stats->downstream_rq_idle_timeout.inc();
    if (response_started_) {
      info_.response_code_details = "stream_idle_timeout";
      resetStream();
      return;
    }
    info_.setResponseFlag(ResponseFlag::kStreamIdleTimeout);
    parent_.close_after_response_ = true;
    sendLocalReply(408, "stream timeout", "stream_idle_timeout");
  }

  void onRequestTimeout() {
    parent_.config_->stats->downstream_rq_timeout.inc();
    if (response_started_) return;
    parent_.close_after_response_ = true;
    sendLocalReply(408, "request timeout", "request_overall_timeout");
  }

  ConnectionManager& parent_;
  const uint64_t id_;
  const std::chrono::steady_clock::time_point start_;
  StreamInfo info_;
  std::vector<StreamDecoderFilterPtr> filters_;
  HeaderMap request_headers_;
  HeaderMap request_trailers_;
  HeaderMap response_headers_;
  RouteMatchResult route_{};
  network::Buffer buffered_body_;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> request_timer_;
  uint32_t buffer_limit_override_ = 0;
  int read_disables_ = 0;        // downstream readDisable(true) calls not undone yet
  int headers_stopped_at_ = -1;  // filter that stopped the headers
  int data_stopped_at_ = -1;     // filter buffering the body
  bool headers_end_stream_ = false;
  bool buffered_end_stream_ = false;
  bool trailers_pending_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool chunked_response_ = false;
  bool no_response_body_ = false;
  bool destroyed_ = false;
  bool request_keep_alive_ = true;
  int request_version_minor_ = 1;
};

ConnectionManager::ConnectionManager(std::shared_ptr<const ConnectionManagerConfig> config,
                                     std::unique_ptr<network::Connection> connection,
                                     network::EventLoop& loop, ConnectionManagerHost& host)
    : config_(std::move(config)),
      connection_(std::move(connection)),
      loop_(loop),
      host_(host),
      parser_(http1::Mode::kRequest, config_->limits, *this),
      connection_start_(loop.now()) {
  connection_->setCallbacks(*this);
  auto& stats = *config_->stats;
  stats.downstream_cx_total.inc();
  stats.downstream_cx_http1_total.inc();
  stats.downstream_cx_active.inc();
  stats.downstream_cx_http1_active.inc();
  if (config_->idle_timeout.count() > 0) {
    idle_timer_ = loop_.createTimer([this] { onIdleTimeout(); });
    idle_timer_->enable(config_->idle_timeout);
  }
  if (config_->request_headers_timeout.count() > 0) {
    request_headers_timer_ = loop_.createTimer([this] { onRequestHeadersTimeout(); });
  }
}

ConnectionManager::~ConnectionManager() = default;

void ConnectionManager::writeRaw(std::string_view bytes) {
  network::Buffer b;
  b.add(bytes);
  connection_->write(b, false);
}

void ConnectionManager::onData(network::Buffer& data, bool /*end_stream*/) {
  config_->stats->downstream_cx_rx_bytes_total.inc(data.length());
  if (stream_ == nullptr && input_.length() == 0 && data.length() > 0) {
    // The first byte of a new request starts the header timer.
    if (request_headers_timer_) request_headers_timer_->enable(config_->request_headers_timeout);
    if (idle_timer_) idle_timer_->disable();
  }
  input_.move(data);
  dispatch();
}

void ConnectionManager::dispatch() {
  if (dispatching_) {
    redispatch_ = true;
    return;
  }
  dispatching_ = true;
  do {
    redispatch_ = false;
    while (!closed_ && input_.length() > 0 && !parser_.paused()) {
      std::string_view chunk = input_.frontSlice();
      http1::ParseResult result = parser_.parse(chunk);
      input_.drain(result.consumed);
      if (!result.ok()) {
        onCodecError(*result.error);
        dispatching_ = false;
        return;
      }
    }
    if (!closed_ && parser_.paused() && stream_ == nullptr) {
      // The previous response is complete: the next pipelined request may go.
      parser_.resume();
      if (read_disabled_for_pipelining_) {
        read_disabled_for_pipelining_ = false;
        connection_->readDisable(false);
      }
      if (input_.length() > 0) {
        redispatch_ = true;
        if (request_headers_timer_)
          request_headers_timer_->enable(config_->request_headers_timeout);
      }
    } else if (!closed_ && parser_.paused() && !read_disabled_for_pipelining_) {
      // One request at a time: stop reading until its response is sent.
      read_disabled_for_pipelining_ = true;
      connection_->readDisable(true);
    }
  } while (redispatch_ && !closed_);
  dispatching_ = false;
}

void ConnectionManager::onHeaders(HeaderMap&& headers, const http1::MessageInfo& info) {
  if (request_headers_timer_) request_headers_timer_->disable();
  if (idle_timer_) idle_timer_->disable();
  auto& stats = *config_->stats;
  stats.downstream_rq_total.inc();
  stats.downstream_rq_http1_total.inc();
  stats.downstream_rq_active.inc();
  stream_ = std::make_unique<ActiveStream>(*this, next_stream_id_++);
  stream_->setRequestInfo(info);

  if (info.expect_continue) {
    headers.remove("expect");
    if (!config_->proxy_100_continue) writeRaw("HTTP/1.1 100 Continue\r\n\r\n");
  }
  mutateRequestHeaders(headers, info);
  stream_->decodeHeaders(std::move(headers), !info.has_body);
}

void ConnectionManager::mutateRequestHeaders(HeaderMap& headers, const http1::MessageInfo& info) {
  removeHopByHopHeaders(headers);
  const std::string_view scheme = connection_->secure() ? "https" : "http";
  headers.set(":scheme", scheme);
  const Address& remote = connection_->remoteAddress();
  const bool edge = config_->use_remote_address;
  if (edge) {
    if (!config_->skip_xff_append) appendHeaderValue(headers, "x-forwarded-for", remote.ip());
    // Only trust x-envoy-* headers from internal callers.
    if (isInternalAddress(remote)) {
      headers.set("x-envoy-internal", "true");
    } else {
      removeEnvoyInternalHeaders(headers);
    }
    headers.set("x-forwarded-proto", scheme);
  } else if (!headers.has("x-forwarded-proto")) {
    headers.set("x-forwarded-proto", scheme);
  }
  if (config_->generate_request_id) {
    const bool regenerate = edge && !config_->preserve_external_request_id;
    if (regenerate || !headers.has("x-request-id")) {
      headers.set("x-request-id", randomUuid(host_.random()));
    }
  }
  if (!config_->via.empty()) appendHeaderValue(headers, "via", config_->via);
}

void ConnectionManager::onBody(std::string_view data) {
  if (!stream_) return;
  // %BYTES_RECEIVED% counts body bytes, as Envoy's does.
  stream_->addBytesReceived(data.size());
  network::Buffer b;
  b.add(data);
  stream_->decodeData(b, false);
}

void ConnectionManager::onMessageComplete(HeaderMap&& trailers) {
  if (!stream_) return;
  if (stream_->requestComplete()) return;  // bodiless: headers carried end_stream
  if (!trailers.empty()) {
    stream_->decodeTrailers(std::move(trailers));
  } else {
    network::Buffer empty;
    stream_->decodeData(empty, true);
  }
}

void ConnectionManager::onCodecError(const http1::ParseError& error) {
  config_->stats->downstream_cx_protocol_error.inc();
  SHEAVE_LOG_DEBUG("[C{}] http/1.1 codec error at byte {}: {} ({})", connection_->id(),
                   error.offset, error.message, error.details);
  close_after_response_ = true;
  if (!stream_) {
    // No stream yet: one exists just to answer and be logged.
    config_->stats->downstream_rq_total.inc();
    config_->stats->downstream_rq_active.inc();
    stream_ = std::make_unique<ActiveStream>(*this, next_stream_id_++);
  }
  stream_->streamInfo().setResponseFlag(ResponseFlag::kDownstreamProtocolError);
  if (stream_->responseStarted()) {
    stream_->resetStream();
    return;
  }
  stream_->sendLocalReply(error.http_status, "", error.details);
}

void ConnectionManager::onStreamDone(ActiveStream& stream) {
  // The stream's object may still be on the call stack: delete it later.
  loop_.deferredDelete(std::move(stream_));
  watermark_callbacks_.clear();
  if (closed_) return;
  if (close_after_response_) {
    closeConnection(network::ConnectionCloseType::kFlushWrite);
    return;
  }
  armIdleTimer();
  dispatch();
}

void ConnectionManager::armIdleTimer() {
  if (idle_timer_ && input_.length() == 0) idle_timer_->enable(config_->idle_timeout);
}

void ConnectionManager::onIdleTimeout() {
  if (stream_) return;
  config_->stats->downstream_cx_idle_timeout.inc();
  closeConnection(network::ConnectionCloseType::kFlushWrite);
}

void ConnectionManager::onRequestHeadersTimeout() {
  config_->stats->downstream_rq_header_timeout.inc();
  close_after_response_ = true;
  if (!stream_) {
    config_->stats->downstream_rq_total.inc();
    config_->stats->downstream_rq_active.inc();
    stream_ = std::make_unique<ActiveStream>(*this, next_stream_id_++);
  }
  stream_->sendLocalReply(408, "request header timeout", "request_header_timeout");
}

void ConnectionManager::startDrain() {
  if (closed_) return;
  if (!stream_) {
    config_->stats->downstream_cx_drain_close.inc();
    closeConnection(network::ConnectionCloseType::kFlushWrite);
    return;
  }
  close_after_response_ = true;
}

void ConnectionManager::closeConnection(network::ConnectionCloseType type) {
  if (closed_) return;
  connection_->close(type);
}

void ConnectionManager::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::kConnected) return;
  if (closed_) return;
  closed_ = true;
  auto& stats = *config_->stats;
  if (stream_) stream_->onDownstreamDisconnect();
  if (idle_timer_) idle_timer_->disable();
  if (request_headers_timer_) request_headers_timer_->disable();
  stats.downstream_cx_active.dec();
  stats.downstream_cx_http1_active.dec();
  stats.downstream_cx_destroy.inc();
  if (event == network::ConnectionEvent::kRemoteClose) {
    stats.downstream_cx_destroy_remote.inc();
  } else {
    stats.downstream_cx_destroy_local.inc();
  }
  stats.downstream_cx_tx_bytes_total.inc(connection_->bytesSent());
  stats.downstream_cx_length_ms.record(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(loop_.now() - connection_start_)
          .count()));
  host_.onConnectionManagerClosed(*this);
}

void ConnectionManager::onAboveWriteBufferHighWatermark() {
  above_high_watermark_ = true;
  for (auto* cb : watermark_callbacks_) cb->onAboveWriteBufferHighWatermark();
}

void ConnectionManager::onBelowWriteBufferLowWatermark() {
  above_high_watermark_ = false;
  for (auto* cb : watermark_callbacks_) cb->onBelowWriteBufferLowWatermark();
}

}  // namespace sheave::http
