#include "proxy/http/connection_manager.h"

#include <array>
#include <charconv>
#include <cstring>

#include "common/logging.h"
#include "common/uuid.h"
#include "match/string_matcher.h"
#include "proxy/accesslog/downstream_connection_info.h"
#include "proxy/grpc/status.h"
#include "proxy/http/date_provider.h"
#include "proxy/http/headers.h"
#include "proxy/http/http1/encoder.h"
#include "proxy/http/http2/header_translation.h"
#include "proxy/http/response_encoder.h"

namespace sheave::http {

namespace {

// RFC 9113 3.4: what an HTTP/2 client with prior knowledge sends first.
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// RFC 9113 8.2.3: an HTTP/2 client may split Cookie into crumbs; one field goes upstream.
void joinCookieCrumbs(HeaderMap& headers) {
  if (headers.count("cookie") < 2) return;
  std::string joined;
  for (std::string_view crumb : headers.getAll("cookie")) {
    if (!joined.empty()) joined.append("; ");
    joined.append(crumb);
  }
  headers.set("cookie", joined);
}

bool isGrpcRequest(const HeaderMap& headers) {
  const std::string* type = headers.get("content-type");
  return type != nullptr && type->starts_with("application/grpc");
}

}  // namespace

// One request/response exchange and its filter chain.
class ConnectionManager::ActiveStream : public StreamDecoderFilterCallbacks,
                                        public FilterChainBuilder,
                                        public network::DeferredDeletable {
 public:
  ActiveStream(ConnectionManager& parent, uint64_t id, ResponseEncoder& encoder)
      : parent_(parent),
        id_(id),
        start_(parent.loop_.now()),
        encoder_(&encoder),
        high_watermarks_(parent.above_high_watermark_ ? 1 : 0) {
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

  ~ActiveStream() override;

  // FilterChainBuilder
  void addDecoderFilter(StreamDecoderFilterPtr filter) override {
    filters_.push_back(std::move(filter));
  }
  void addStreamFilter(StreamFilterPtr filter) override {
    encoder_filters_.push_back(filter.get());
    filters_.push_back(std::move(filter));
  }

  void decodeHeaders(HeaderMap&& headers, bool end_stream) {
    request_headers_ = std::move(headers);
    info_.request_headers = &request_headers_;
    request_complete_ = end_stream;
    headers_end_stream_ = end_stream;
    touch();
    if (end_stream && request_timer_) request_timer_->disable();
    if (!normalizePath()) return;
    applyForwardClientCert(parent_.config_->forward_client_cert, *parent_.connection_,
                           request_headers_);
    HostPortPolicy port_policy;
    port_policy.strip_any_host_port = parent_.config_->strip_any_host_port;
    // Held for the request's life: RDS may replace the table meanwhile.
    route_table_ = parent_.config_->routes->current();
    route_ = route_table_->route(request_headers_, parent_.host_.random().next(), port_policy);
    if (const std::string* id = request_headers_.get("x-request-id")) info_.request_id = *id;
    if (route_.route != nullptr) {
      info_.route_name = route_.route->name;
    } else {
      parent_.config_->stats->no_route.inc();
    }
    if (!upgrade_type_.empty() && !acceptUpgrade()) return;
    runDecodeHeadersFrom(0);
  }

  // HTTP/1.1 only: the request asks to switch protocols (Upgrade: `value`, or CONNECT when
  // `value` is empty). Set before decodeHeaders.
  void setUpgradeRequest(std::string value) {
    upgrade_value_ = std::move(value);
    upgrade_type_ = upgrade_value_.empty() ? "connect" : asciiLower(upgrade_value_);
  }
  // An accepted upgrade: the request goes on as raw bytes after its headers.
  bool upgrading() const { return upgrading_; }
  // The upstream switched protocols (101, or 2xx to CONNECT): both directions are a tunnel now.
  bool upgraded() const { return upgraded_; }

  // Envoy's upgrade_configs rule (the route's entry for the type, else the connection
  // manager's); a refused upgrade gets 403. False when the request was answered.
  bool acceptUpgrade() {
    auto& stats = *parent_.config_->stats;
    const auto* route_upgrades = route_.route ? &route_.route->upgrade_configs : nullptr;
    if (!parent_.config_->upgradeAllowed(upgrade_type_, route_upgrades)) {
      stats.downstream_rq_ws_on_non_ws_route.inc();
      sendLocalReply(403, "", "upgrade_failed");
      return false;
    }
    upgrading_ = true;
    stats.downstream_cx_upgrades_total.inc();
    stats.downstream_cx_upgrades_active.inc();
    // The hop-by-hop fields went with the others: an upgrade is the one case they go upstream.
    if (!upgrade_value_.empty()) {
      request_headers_.set("upgrade", upgrade_value_);
      request_headers_.set("connection", "upgrade");
    }
    return true;
  }

  // Applies the path policies before routing and before any filter, so they all see the same
  // :path. False when the request was answered (400, or 307 to the unescaped path).
  bool normalizePath() {
    const PathNormalizer normalizer(parent_.config_->path_normalization);
    const std::string* path = request_headers_.get(":path");
    // CONNECT has no :path, and OPTIONS may ask for "*".
    if (!normalizer.enabled() || path == nullptr || *path == "*") return true;
    PathNormalizer::Result result = normalizer.normalize(*path);
    switch (result.outcome) {
      case PathNormalizer::Outcome::kContinue:
        if (result.path != *path) request_headers_.set(":path", result.path);
        return true;
      case PathNormalizer::Outcome::kReject:
        sendLocalReply(400, "", "path_normalization_failed");
        return false;
      case PathNormalizer::Outcome::kRedirect: {
        info_.response_code_details = "path_normalization_redirect";
        HeaderMap headers;
        headers.add(":status", "307");
        headers.add("location", result.path);
        headers.add("content-length", "0");
        encodeHeaders(std::move(headers), true);
        return false;
      }
    }
    return true;
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
      // The filter that held the headers may also hold the body it saw
      // meanwhile (kStopIterationAndBuffer); continuing releases both.
      if (data_stopped_at_ == headers_stopped_at_) data_stopped_at_ = -1;
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
    encoder_->encode1xxHeaders(headers);
  }

  void encodeHeaders(HeaderMap&& headers, bool end_stream) override {
    if (destroyed_) return;
    response_started_ = true;
    touch();
    response_headers_ = std::move(headers);
    info_.response_headers = &response_headers_;
    for (auto it = encoder_filters_.rbegin(); it != encoder_filters_.rend(); ++it) {
      (*it)->encodeHeaders(response_headers_, end_stream);
    }
    int status = 0;
    std::string_view s = response_headers_.status();
    std::from_chars(s.data(), s.data() + s.size(), status);
    info_.response_code = static_cast<uint32_t>(status);
    response_status_ = status;
    prepareResponseHeaders(status);
    const bool ends = end_stream || no_response_body_;
    encoder_->encodeHeaders(response_headers_, ends);
    if (ends) onResponseComplete();
  }

  void encodeData(network::Buffer& data, bool end_stream) override {
    if (destroyed_) return;
    touch();
    if (no_response_body_) {
      data.drain(data.length());
    } else {
      info_.bytes_sent += data.length();
      for (auto it = encoder_filters_.rbegin(); it != encoder_filters_.rend(); ++it) {
        (*it)->encodeData(data, end_stream);
      }
      encoder_->encodeData(data, end_stream);
    }
    if (end_stream) onResponseComplete();
  }

  void encodeTrailers(HeaderMap&& trailers) override {
    if (destroyed_) return;
    response_trailers_ = std::move(trailers);
    info_.response_trailers = &response_trailers_;
    if (!no_response_body_) encoder_->encodeTrailers(response_trailers_);
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
    if (isGrpcRequest(request_headers_)) {
      // A gRPC client reads a status, not a page: Trailers-Only, HTTP 200.
      HeaderMap grpc;
      grpc.add(":status", "200");
      grpc.add("content-type", "application/grpc");
      grpc.add("grpc-status",
               std::to_string(static_cast<int>(grpc::httpStatusToGrpcStatus(status))));
      const std::string_view message = body.empty() ? details : body;
      if (!message.empty()) grpc.add("grpc-message", grpc::percentEncodeGrpcMessage(message));
      encodeHeaders(std::move(grpc), true);
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
    encoder_->resetStream();
    finish();
  }

  bool responseStarted() const override { return response_started_; }

  void onDecoderFilterAboveWriteBufferHighWatermark() override {
    if (destroyed_) return;
    ++read_disables_;
    encoder_->readDisable(true);
  }
  void onDecoderFilterBelowWriteBufferLowWatermark() override {
    if (destroyed_ || read_disables_ == 0) return;
    --read_disables_;
    encoder_->readDisable(false);
  }
  void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) override {
    if (watermark_count_ < watermark_inline_.size()) {
      watermark_inline_[watermark_count_++] = &cb;
    } else {
      watermark_overflow_.push_back(&cb);
    }
    if (high_watermarks_ > 0) cb.onAboveWriteBufferHighWatermark();
  }
  void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) override {
    for (size_t i = 0; i < watermark_count_; ++i) {
      if (watermark_inline_[i] != &cb) continue;
      for (size_t j = i + 1; j < watermark_count_; ++j)
        watermark_inline_[j - 1] = watermark_inline_[j];
      --watermark_count_;
      return;
    }
    std::erase(watermark_overflow_, &cb);
  }

  // The client cannot keep up with this stream's response (its HTTP/2 send buffer, or the
  // connection's write buffer, crossed the high watermark): whoever feeds it stops until
  // every source of backpressure is gone.
  void onAboveHighWatermark() {
    if (high_watermarks_++ > 0) return;
    forEachWatermarkCallback(
        [](DownstreamWatermarkCallbacks& cb) { cb.onAboveWriteBufferHighWatermark(); });
  }
  void onBelowLowWatermark() {
    if (high_watermarks_ == 0 || --high_watermarks_ > 0) return;
    forEachWatermarkCallback(
        [](DownstreamWatermarkCallbacks& cb) { cb.onBelowWriteBufferLowWatermark(); });
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

  // The codec dropped the stream: the client reset it (RST_STREAM), the connection failed or
  // closed.
  void onCodecReset(http2::ErrorCode code, http2::ResetSource source) {
    if (destroyed_) return;
    switch (source) {
      case http2::ResetSource::kRemote:
        // Envoy's DR: the client gave up on this request, the connection lives on.
        info_.setResponseFlag(ResponseFlag::kDownstreamRemoteReset);
        if (info_.response_code_details.empty()) {
          info_.response_code_details = "downstream_remote_reset";
        }
        parent_.config_->stats->downstream_rq_rx_reset.inc();
        finish();
        return;
      case http2::ResetSource::kConnectionClosed:
        onDownstreamDisconnect();
        return;
      default:
        info_.setResponseFlag(ResponseFlag::kDownstreamProtocolError);
        if (info_.response_code_details.empty()) {
          info_.response_code_details = "codec_error:" + std::string(http2::errorCodeName(code));
        }
        finish();
        return;
    }
  }

  bool requestComplete() const { return request_complete_; }
  bool finished() const { return destroyed_; }
  const HeaderMap& requestHeaders() const { return request_headers_; }
  int responseStatus() const { return response_status_; }
  void setRequestInfo(const http1::MessageInfo& info) {
    info_.protocol = info.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  }
  void setProtocol(std::string_view protocol) { info_.protocol = protocol; }
  void addBytesReceived(size_t n) { info_.bytes_received += n; }
  // HTTP/2: the stream owns its codec-side half; the list entry lets the manager unlink it.
  void adoptHttp2Stream(std::unique_ptr<Http2Stream> stream);
  Http2Stream* http2Stream() { return http2_stream_.get(); }
  std::list<std::unique_ptr<ActiveStream>>::iterator list_entry;

 private:
  template <typename F>
  void forEachWatermarkCallback(F f) {
    // Copied: a callback may remove itself.
    std::array<DownstreamWatermarkCallbacks*, 4> inline_copy = watermark_inline_;
    const size_t n = watermark_count_;
    for (size_t i = 0; i < n; ++i) f(*inline_copy[i]);
    if (!watermark_overflow_.empty()) {
      std::vector<DownstreamWatermarkCallbacks*> copy = watermark_overflow_;
      for (auto* cb : copy) f(*cb);
    }
  }

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

  // Envoy's response-side header rules that do not depend on the client's protocol; the
  // encoder adds its own (framing, connection handling).
  void prepareResponseHeaders(int status) {
    const auto& config = *parent_.config_;
    const bool switching =
        upgrading_ && (status == 101 || (upgrade_value_.empty() && status / 100 == 2));
    std::string upgrade;
    if (switching && !upgrade_value_.empty()) {
      if (const std::string* u = response_headers_.get("upgrade")) upgrade = *u;
    }
    removeHopByHopHeaders(response_headers_);
    if (switching) {
      upgraded_ = true;
      // The tunnel has no request end to wait for.
      if (request_timer_) request_timer_->disable();
      if (!upgrade_value_.empty()) {
        response_headers_.set("upgrade", upgrade.empty() ? upgrade_value_ : upgrade);
        response_headers_.set("connection", "upgrade");
      }
    }
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
    no_response_body_ = !upgraded_ && (head || bodiless_status);
  }

  void onResponseComplete() {
    if (response_complete_) return;
    response_complete_ = true;
    if (!request_complete_) {
      // HTTP/1.1 cannot find the next request's start while this one's
      // body is unread: answer, then close (as Envoy does). A tunnel ends so anyway.
      if (!upgrading_) parent_.config_->stats->downstream_rq_response_before_rq_complete.inc();
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
    for (; read_disables_ > 0; --read_disables_) encoder_->readDisable(false);
    auto& stats = *parent_.config_->stats;
    auto now = parent_.loop_.now();
    info_.last_downstream_tx_byte_sent = now - start_;
    info_.request_complete = now - start_;  // the total, %DURATION%
    stats.downstream_rq_active.dec();
    if (upgrading_) stats.downstream_cx_upgrades_active.dec();
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
  ResponseEncoder* encoder_;
  std::unique_ptr<Http2Stream> http2_stream_;
  StreamInfo info_;
  std::vector<StreamDecoderFilterPtr> filters_;
  std::vector<StreamEncoderFilter*> encoder_filters_;  // owned by filters_
  HeaderMap request_headers_;
  HeaderMap request_trailers_;
  HeaderMap response_trailers_;  // for the access log (%GRPC_STATUS%, %TRAILER()%)
  HeaderMap response_headers_;
  std::shared_ptr<const RouteTable> route_table_;
  RouteMatchResult route_{};
  network::Buffer buffered_body_;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> request_timer_;
  uint32_t buffer_limit_override_ = 0;
  int read_disables_ = 0;    // encoder readDisable(true) calls not undone yet
  int high_watermarks_ = 0;  // sources of response backpressure in effect
  int response_status_ = 0;
  // Filters watching the response's backpressure (the router): no allocation for the usual few.
  std::array<DownstreamWatermarkCallbacks*, 4> watermark_inline_{};
  size_t watermark_count_ = 0;
  std::vector<DownstreamWatermarkCallbacks*> watermark_overflow_;
  int headers_stopped_at_ = -1;  // filter that stopped the headers
  int data_stopped_at_ = -1;     // filter buffering the body
  bool headers_end_stream_ = false;
  bool buffered_end_stream_ = false;
  bool trailers_pending_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool no_response_body_ = false;
  bool destroyed_ = false;
  bool upgrading_ = false;
  bool upgraded_ = false;
  std::string upgrade_type_;   // lower-case; "connect" for CONNECT; empty: no upgrade asked
  std::string upgrade_value_;  // the request's Upgrade field as sent
};

// HTTP/1.1 framing of a response on the connection: one per connection, bound to each
// request's stream in turn.
class ConnectionManager::Http1Encoder : public ResponseEncoder {
 public:
  explicit Http1Encoder(ConnectionManager& parent) : parent_(parent) {}

  void bind(ActiveStream& stream, int version_minor, bool keep_alive) {
    stream_ = &stream;
    version_minor_ = version_minor;
    keep_alive_ = keep_alive;
    chunked_ = false;
  }

  std::string_view protocol() const override {
    return version_minor_ == 0 ? "HTTP/1.0" : "HTTP/1.1";
  }

  void encode1xxHeaders(HeaderMap& headers) override {
    std::string out;
    headers.remove("content-length");
    http1::encodeResponseHeaders(headers, version_minor_, false, out);
    parent_.writeRaw(out);
  }

  // Envoy's framing and connection rules for an HTTP/1.1 client.
  void encodeHeaders(HeaderMap& headers, bool end_stream) override {
    const int status = stream_->responseStatus();
    const bool head = stream_->requestHeaders().method() == "HEAD";
    const bool bodiless_status = (status >= 100 && status < 200) || status == 204 || status == 304;
    chunked_ = false;
    if (bodiless_status) {
      if (status == 204) headers.remove("content-length");
    } else if (!headers.has("content-length") && !head) {
      if (end_stream) {
        headers.set("content-length", "0");
      } else if (version_minor_ >= 1) {
        chunked_ = true;
      } else {
        // An HTTP/1.0 client learns the end of the body from the close.
        parent_.close_after_response_ = true;
      }
    }
    // Without the rest of the request body the next request's start is
    // unknown, so an early response ends the connection.
    if (!keep_alive_ || !stream_->requestComplete() || parent_.host_.draining()) {
      parent_.close_after_response_ = true;
    }
    if (stream_->upgraded()) {
      // The tunnel's end is the connection's: no framing, and "connection: upgrade" stays.
      chunked_ = false;
    } else if (parent_.close_after_response_) {
      headers.set("connection", "close");
    } else if (version_minor_ == 0) {
      headers.set("connection", "keep-alive");
    }
    std::string out;
    http1::encodeResponseHeaders(headers, version_minor_, chunked_, out);
    parent_.writeRaw(out);
  }

  void encodeData(network::Buffer& data, bool end_stream) override {
    if (data.length() > 0) {
      if (chunked_) {
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
    if (end_stream && chunked_) parent_.writeRaw("0\r\n\r\n");
  }

  void encodeTrailers(HeaderMap& trailers) override {
    // Without chunked framing HTTP/1.1 has nowhere to put trailers: they are dropped.
    if (!chunked_) return;
    std::string out;
    http1::encodeLastChunk(&trailers, out);
    parent_.writeRaw(out);
  }

  void resetStream() override {
    // HTTP/1.1 has no stream to reset: the connection goes.
    parent_.close_after_response_ = true;
    parent_.closeConnection(network::ConnectionCloseType::kNoFlush);
  }

  void readDisable(bool disable) override { parent_.connection_->readDisable(disable); }

 private:
  ConnectionManager& parent_;
  ActiveStream* stream_ = nullptr;
  int version_minor_ = 1;
  bool keep_alive_ = true;
  bool chunked_ = false;
};

// One HTTP/2 stream: the codec's events go to the ActiveStream, the ActiveStream's response
// goes to the codec. Owned by its ActiveStream; the codec forgets it (detachStream or
// resetStream) when the ActiveStream finishes, so it is never called after that.
class ConnectionManager::Http2Stream : public http2::StreamCallbacks, public ResponseEncoder {
 public:
  Http2Stream(ConnectionManager& parent, int32_t id) : parent_(parent), id_(id) {}

  void attach(ActiveStream& stream) { stream_ = &stream; }
  // The ActiveStream is done: the codec takes care of what is left (output still queued,
  // request bytes still arriving).
  void detach() {
    if (detached_) return;
    detached_ = true;
    parent_.http2_->detachStream(id_);
  }

  // http2::StreamCallbacks
  void onHeaders(HeaderMap&& headers, bool end_stream) override {
    joinCookieCrumbs(headers);
    // CONNECT needs an upgrade config for "CONNECT" here as over HTTP/1.1.
    if (headers.method() == "CONNECT") stream_->setUpgradeRequest("");
    parent_.mutateRequestHeaders(headers, /*keep_client_scheme=*/true);
    stream_->decodeHeaders(std::move(headers), end_stream);
  }

  void onData(std::string_view data, bool end_stream) override {
    stream_->addBytesReceived(data.size());
    network::Buffer buffer;
    buffer.add(data);
    stream_->decodeData(buffer, end_stream);
    // The filters took the bytes: let the client send more, unless the upstream pushed back,
    // in which case the window stays closed until it catches up (readDisable(false)).
    if (detached_ || data.empty()) return;
    if (read_disabled_ > 0) {
      unacknowledged_ += data.size();
    } else {
      parent_.http2_->consumeData(id_, data.size());
    }
  }

  void onTrailers(HeaderMap&& trailers) override { stream_->decodeTrailers(std::move(trailers)); }

  void onReset(http2::ErrorCode code, http2::ResetSource source) override {
    detached_ = true;  // the codec has dropped it already
    stream_->onCodecReset(code, source);
  }

  void onAboveWriteBufferHighWatermark() override { stream_->onAboveHighWatermark(); }
  void onBelowWriteBufferLowWatermark() override { stream_->onBelowLowWatermark(); }

  // ResponseEncoder
  std::string_view protocol() const override { return "HTTP/2"; }

  void encode1xxHeaders(HeaderMap& headers) override {
    if (detached_) return;
    http2::responseHeadersToHttp2(headers);
    check(parent_.http2_->submitHeaders(id_, headers, false));
  }

  void encodeHeaders(HeaderMap& headers, bool end_stream) override {
    if (detached_) return;
    http2::responseHeadersToHttp2(headers);
    check(parent_.http2_->submitHeaders(id_, headers, end_stream));
  }

  void encodeData(network::Buffer& data, bool end_stream) override {
    if (detached_) {
      data.drain(data.length());
      return;
    }
    if (data.length() == 0 && !end_stream) return;
    std::string bytes(data.length(), '\0');
    data.copyOut(0, bytes.size(), bytes.data());
    data.drain(bytes.size());
    check(parent_.http2_->submitData(id_, std::move(bytes), end_stream));
  }

  void encodeTrailers(HeaderMap& trailers) override {
    if (detached_) return;
    http2::trailersForForwarding(trailers);
    if (trailers.empty()) {
      check(parent_.http2_->submitData(id_, std::string_view(), true));
    } else {
      check(parent_.http2_->submitTrailers(id_, trailers));
    }
  }

  void resetStream() override {
    if (detached_) return;
    detached_ = true;
    // A response cut short (the upstream reset after headers, a timeout): the client must not
    // take what it got for a complete answer.
    parent_.http2_->resetStream(id_, http2::ErrorCode::kInternalError);
    parent_.flushHttp2();
  }

  void readDisable(bool disable) override {
    if (disable) {
      ++read_disabled_;
      if (!detached_) parent_.http2_->readDisable(id_, true);
      return;
    }
    if (read_disabled_ == 0) return;
    --read_disabled_;
    if (detached_) return;
    if (read_disabled_ == 0 && unacknowledged_ > 0) {
      parent_.http2_->consumeData(id_, unacknowledged_);
      unacknowledged_ = 0;
    }
    parent_.http2_->readDisable(id_, false);
    parent_.flushHttp2();
  }

 private:
  void check(const Status& status) {
    if (!status.ok()) {
      SHEAVE_LOG_DEBUG("[C{}] http/2 stream {}: {}", parent_.connection_->id(), id_,
                       status.error().message());
    }
    parent_.flushHttp2();
  }

  ConnectionManager& parent_;
  const int32_t id_;
  ActiveStream* stream_ = nullptr;
  uint32_t read_disabled_ = 0;
  size_t unacknowledged_ = 0;  // request bytes passed on while reading was disabled
  bool detached_ = false;
};

ConnectionManager::ActiveStream::~ActiveStream() = default;

void ConnectionManager::ActiveStream::adoptHttp2Stream(std::unique_ptr<Http2Stream> stream) {
  http2_stream_ = std::move(stream);
}

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
  stats.downstream_cx_active.inc();
  if (config_->idle_timeout.count() > 0) {
    idle_timer_ = loop_.createTimer([this] { onIdleTimeout(); });
    idle_timer_->enable(config_->idle_timeout);
  }
  if (config_->request_headers_timeout.count() > 0) {
    request_headers_timer_ = loop_.createTimer([this] { onRequestHeadersTimeout(); });
  }
  // A fixed codec starts at once (an HTTP/2 server speaks first: its SETTINGS); AUTO waits for
  // the TLS handshake's ALPN or the first bytes.
  if (config_->codec_type == ConnectionManagerConfig::CodecType::kHttp1) {
    startHttp1();
  } else if (config_->codec_type == ConnectionManagerConfig::CodecType::kHttp2) {
    startHttp2();
  }
}

ConnectionManager::~ConnectionManager() = default;

void ConnectionManager::startHttp1() {
  codec_ = Codec::kHttp1;
  http1_encoder_ = std::make_unique<Http1Encoder>(*this);
  config_->stats->downstream_cx_http1_total.inc();
  config_->stats->downstream_cx_http1_active.inc();
}

void ConnectionManager::startHttp2() {
  codec_ = Codec::kHttp2;
  config_->stats->downstream_cx_http2_total.inc();
  config_->stats->downstream_cx_http2_active.inc();
  http2::ProtocolOptions options = config_->http2_options;
  // A stream's queued response counts against the same limit as a connection's write buffer.
  options.stream_buffer_limit = config_->buffer_limit_bytes;
  http2_ = std::make_unique<http2::ServerConnection>(options, *this, &http2_stats_);
  flushHttp2();
}

// AUTO: ALPN decides over TLS; otherwise the HTTP/2 preface does, as soon as the bytes so far
// either match its start (wait) or do not (HTTP/1.1).
bool ConnectionManager::chooseCodec() {
  const std::string_view alpn = connection_->negotiatedProtocol();
  if (alpn == "h2") {
    startHttp2();
    return true;
  }
  if (!alpn.empty()) {
    startHttp1();
    return true;
  }
  const size_t n = std::min(input_.length(), kHttp2Preface.size());
  char head[kHttp2Preface.size()];
  input_.copyOut(0, n, head);
  if (std::memcmp(head, kHttp2Preface.data(), n) != 0) {
    startHttp1();
    return true;
  }
  if (n < kHttp2Preface.size()) return false;
  startHttp2();
  return true;
}

void ConnectionManager::writeRaw(std::string_view bytes) {
  network::Buffer b;
  b.add(bytes);
  connection_->write(b, false);
}

void ConnectionManager::onData(network::Buffer& data, bool /*end_stream*/) {
  config_->stats->downstream_cx_rx_bytes_total.inc(data.length());
  if (!connection_checked_ && data.length() > 0) {
    // Envoy's ONE_TIME_ON_FIRST_BYTE: TLS is up by now, so the peer certificate is known.
    connection_checked_ = true;
    for (const auto& check : config_->connection_checks) {
      if (!check(*connection_)) {
        data.drain(data.length());
        closeConnection(network::ConnectionCloseType::kNoFlush);
        return;
      }
    }
  }
  if (codec_ == Codec::kHttp2) {
    input_.move(data);
    dispatchHttp2();
    return;
  }
  const bool first_bytes = stream_ == nullptr && input_.length() == 0 && data.length() > 0;
  input_.move(data);
  if (codec_ == Codec::kUndecided) {
    if (!chooseCodec()) return;
    if (codec_ == Codec::kHttp2) {
      dispatchHttp2();
      return;
    }
  }
  if (first_bytes) {
    // The first byte of a new request starts the header timer.
    if (request_headers_timer_) request_headers_timer_->enable(config_->request_headers_timeout);
    if (idle_timer_) idle_timer_->disable();
  }
  dispatch();
}

void ConnectionManager::dispatchHttp2() {
  dispatching_ = true;
  while (!closed_ && input_.length() > 0) {
    std::string_view chunk = input_.frontSlice();
    Result<size_t> result = http2_->dispatch(chunk);
    if (!result.ok()) {
      input_.drain(input_.length());
      dispatching_ = false;
      config_->stats->downstream_cx_protocol_error.inc();
      SHEAVE_LOG_DEBUG("[C{}] http/2 codec error: {}", connection_->id(), result.error().message());
      // The codec's output now ends with its GOAWAY: send it, then close.
      flushHttp2();
      closeConnection(network::ConnectionCloseType::kFlushWrite);
      return;
    }
    input_.drain(chunk.size());
  }
  dispatching_ = false;
  flushHttp2();
}

void ConnectionManager::flushHttp2() {
  if (!http2_ || closed_ || dispatching_) return;
  // Frames stay in the codec while the connection's write buffer is full: the codec then stops
  // serializing, streams' queues fill and their watermarks stop the upstreams, and a peer that
  // does not read trips the codec's outbound flood limits instead of growing memory.
  const bool failed = http2_->error().has_value();
  while (failed || !connection_->aboveHighWatermark()) {
    std::string_view out = http2_->pendingOutput();
    if (out.empty()) break;
    network::Buffer buffer;
    buffer.add(out);
    http2_->drainOutput(out.size());
    connection_->write(buffer, false);
  }
  config_->http2_stats->publish(http2_stats_, http2_stats_published_);
  if (http2_->shouldClose() || (goaway_sent_ && streams_.empty())) {
    closeConnection(network::ConnectionCloseType::kFlushWrite);
  }
}

http2::StreamCallbacks* ConnectionManager::onNewStream(int32_t stream_id) {
  if (closed_) return nullptr;
  if (idle_timer_) idle_timer_->disable();
  auto& stats = *config_->stats;
  stats.downstream_rq_total.inc();
  stats.downstream_rq_http2_total.inc();
  stats.downstream_rq_active.inc();
  auto http2_stream = std::make_unique<Http2Stream>(*this, stream_id);
  Http2Stream* callbacks = http2_stream.get();
  auto stream = std::make_unique<ActiveStream>(*this, next_stream_id_++, *http2_stream);
  stream->setProtocol("HTTP/2");
  http2_stream->attach(*stream);
  stream->adoptHttp2Stream(std::move(http2_stream));
  streams_.push_front(std::move(stream));
  streams_.front()->list_entry = streams_.begin();
  return callbacks;
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
    if (!closed_ && stream_ != nullptr && stream_->upgrading()) {
      // Past an upgrade request's headers the bytes are not HTTP/1.1: they are the request
      // body of the tunnel, whatever the upstream answers.
      if (input_.length() > 0) {
        stream_->addBytesReceived(input_.length());
        network::Buffer data;
        data.move(input_);
        stream_->decodeData(data, false);
      }
    } else if (!closed_ && parser_.paused() && stream_ == nullptr) {
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
  stream_ = std::make_unique<ActiveStream>(*this, next_stream_id_++, *http1_encoder_);
  http1_encoder_->bind(*stream_, info.version_minor, info.keep_alive);
  stream_->setRequestInfo(info);

  if (info.expect_continue) {
    headers.remove("expect");
    if (!config_->proxy_100_continue) writeRaw("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (info.upgrade) {
    const std::string* upgrade = headers.get("upgrade");
    stream_->setUpgradeRequest(headers.method() == "CONNECT" || upgrade == nullptr ? std::string()
                                                                                   : *upgrade);
  }
  mutateRequestHeaders(headers, /*keep_client_scheme=*/false);
  // An upgrade request does not end with its headers: the tunnel's bytes follow.
  stream_->decodeHeaders(std::move(headers), !info.has_body && !info.upgrade);
}

void ConnectionManager::mutateRequestHeaders(HeaderMap& headers, bool keep_client_scheme) {
  removeHopByHopHeaders(headers);
  const std::string_view scheme = connection_->secure() ? "https" : "http";
  // An HTTP/2 request carries its own :scheme (mandatory there); HTTP/1.1 has none.
  if (!keep_client_scheme || !headers.has(":scheme")) headers.set(":scheme", scheme);
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
  if (stream_->upgrading()) return;        // what follows the headers is the tunnel's
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
    stream_ = std::make_unique<ActiveStream>(*this, next_stream_id_++, *http1_encoder_);
    http1_encoder_->bind(*stream_, 1, true);
  }
  stream_->streamInfo().setResponseFlag(ResponseFlag::kDownstreamProtocolError);
  if (stream_->responseStarted()) {
    stream_->resetStream();
    return;
  }
  stream_->sendLocalReply(error.http_status, "", error.details);
}

void ConnectionManager::onStreamDone(ActiveStream& stream) {
  if (codec_ == Codec::kHttp2) {
    if (Http2Stream* h2 = stream.http2Stream()) h2->detach();
    auto entry = stream.list_entry;
    // The stream's object may still be on the call stack: delete it later.
    loop_.deferredDelete(std::move(*entry));
    streams_.erase(entry);
    if (closed_) return;
    if (streams_.empty() && !draining_) armIdleTimer();
    flushHttp2();
    return;
  }
  // The stream's object may still be on the call stack: delete it later.
  loop_.deferredDelete(std::move(stream_));
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
  if (stream_ || !streams_.empty()) return;
  config_->stats->downstream_cx_idle_timeout.inc();
  if (http2_) {
    http2_->goAway();
    flushHttp2();
  }
  closeConnection(network::ConnectionCloseType::kFlushWrite);
}

void ConnectionManager::onRequestHeadersTimeout() {
  config_->stats->downstream_rq_header_timeout.inc();
  close_after_response_ = true;
  if (!stream_) {
    config_->stats->downstream_rq_total.inc();
    config_->stats->downstream_rq_active.inc();
    stream_ = std::make_unique<ActiveStream>(*this, next_stream_id_++, *http1_encoder_);
    http1_encoder_->bind(*stream_, 1, true);
  }
  stream_->sendLocalReply(408, "request header timeout", "request_header_timeout");
}

void ConnectionManager::startDrain() {
  if (closed_ || draining_) return;
  draining_ = true;
  if (codec_ == Codec::kHttp2) {
    // Envoy's two-step drain: a GOAWAY with the largest stream id first (the client stops
    // opening streams, none is refused yet), the real one after drain_timeout; the connection
    // closes when the last stream ends.
    http2_->shutdownNotice();
    flushHttp2();
    drain_timer_ = loop_.createTimer([this] { onDrainTimeout(); });
    drain_timer_->enable(config_->drain_timeout);
    return;
  }
  if (!stream_) {
    config_->stats->downstream_cx_drain_close.inc();
    closeConnection(network::ConnectionCloseType::kFlushWrite);
    return;
  }
  close_after_response_ = true;
}

void ConnectionManager::onDrainTimeout() {
  if (closed_ || !http2_) return;
  if (streams_.empty()) config_->stats->downstream_cx_drain_close.inc();
  goaway_sent_ = true;
  http2_->goAway();
  flushHttp2();
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
  // Every HTTP/2 stream still open ends as a downstream disconnect.
  if (http2_) http2_->close();
  if (idle_timer_) idle_timer_->disable();
  if (request_headers_timer_) request_headers_timer_->disable();
  if (drain_timer_) drain_timer_->disable();
  stats.downstream_cx_active.dec();
  if (codec_ == Codec::kHttp1) stats.downstream_cx_http1_active.dec();
  if (codec_ == Codec::kHttp2) {
    stats.downstream_cx_http2_active.dec();
    config_->http2_stats->publish(http2_stats_, http2_stats_published_);
  }
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
  if (stream_) stream_->onAboveHighWatermark();
  if (!streams_.empty()) {
    // A callback may end a stream (and unlink it); the objects themselves die later.
    std::vector<ActiveStream*> streams;
    for (auto& stream : streams_) streams.push_back(stream.get());
    for (ActiveStream* stream : streams) stream->onAboveHighWatermark();
  }
}

void ConnectionManager::onBelowWriteBufferLowWatermark() {
  above_high_watermark_ = false;
  if (stream_) stream_->onBelowLowWatermark();
  if (!streams_.empty()) {
    std::vector<ActiveStream*> streams;
    for (auto& stream : streams_) streams.push_back(stream.get());
    for (ActiveStream* stream : streams) stream->onBelowLowWatermark();
  }
  // Frames held in the codec while the buffer was full may go now.
  flushHttp2();
}

}  // namespace sheave::http
