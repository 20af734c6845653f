#include "proxy/grpc/async_client.h"

#include <algorithm>
#include <utility>

#include "common/logging.h"
#include "proxy/http/http2/connection.h"
#include "proxy/network/buffer.h"
#include "proxy/network/connection.h"

namespace sheave::grpc {

namespace {

// Fields the client owns in a request; the caller's metadata may not override them.
bool isReservedRequestField(std::string_view name) {
  return name.empty() || name[0] == ':' || name == "te" || name == "content-type" ||
         name == "user-agent" || name == "grpc-timeout" || name == "host";
}

HeaderMap withoutPseudoHeaders(HeaderMap&& headers) {
  const bool has_pseudo =
      std::any_of(headers.begin(), headers.end(),
                  [](const HeaderMap::Entry& e) { return !e.name.empty() && e.name[0] == ':'; });
  if (!has_pseudo) return std::move(headers);
  HeaderMap out;
  for (const HeaderMap::Entry& e : headers) {
    if (e.name.empty() || e.name[0] != ':') out.add(e.name, e.value);
  }
  return out;
}

Error closedStreamError() { return Error(ErrorCode::kUnavailable, "the gRPC stream is closed"); }

}  // namespace

class StreamState;

// One HTTP/2 connection of an AsyncClient: the socket, the codec between them, and the calls on
// it. Deleted through the loop (DeferredDeletable) because it may die inside its own socket's or
// codec's callbacks.
class ActiveConnection final : public network::DeferredDeletable,
                               public network::ConnectionCallbacks,
                               public http2::ConnectionCallbacks {
 public:
  ActiveConnection(AsyncClient& client, network::EventLoop& loop, const AsyncClientOptions& options,
                   const Address& address)
      : client_(&client), secure_(static_cast<bool>(options.transport_socket_factory)) {
    codec_ = std::make_unique<http2::ClientConnection>(options.http2, *this);
    std::unique_ptr<network::TransportSocket> socket;
    if (secure_) socket = options.transport_socket_factory();
    network_ = network::Connection::createClient(loop, address, std::move(socket));
    network_->setCallbacks(*this);
    network_->setBufferLimits(options.connection_buffer_limit);
    network_->setConnectTimeout(options.connect_timeout);
  }

  http2::ClientConnection& codec() { return *codec_; }
  const std::string& failureReason() const { return failure_reason_; }
  size_t streamCount() const { return streams_.size(); }
  // Whether a new call may go here: not failed, closing or draining.
  bool acceptsStreams() const {
    return !closed_ && !closing_ && !draining_ && !codec_->error() && !codec_->goAwayReceived();
  }

  void addStream(StreamState* stream) { streams_.push_back(stream); }
  void removeStream(StreamState* stream) {
    streams_.erase(std::remove(streams_.begin(), streams_.end(), stream), streams_.end());
    retireIfIdle();
  }

  // The client is being destroyed: silence every call and close without further events.
  void abandon();

  // Moves codec output to the socket while the socket's write buffer is below its watermark;
  // the rest waits in the codec (bounded by the peer's windows) until
  // onBelowWriteBufferLowWatermark.
  void flushOutput() {
    if (closed_ || network_->connecting()) return;
    while (!network_->aboveHighWatermark()) {
      const std::string_view out = codec_->pendingOutput();
      if (out.empty()) break;
      network::Buffer buffer;
      buffer.add(out);
      codec_->drainOutput(out.size());
      network_->write(buffer, false);
    }
    if (codec_->shouldClose() && !closing_) {
      closing_ = true;
      network_->close(network::ConnectionCloseType::kFlushWrite);
    }
  }

  // network::ConnectionCallbacks
  void onData(network::Buffer& data, bool) override {
    while (!data.empty()) {
      if (client_ == nullptr || closed_ || codec_->error()) {
        data.drain(data.length());
        return;
      }
      const std::string_view slice = data.frontSlice();
      const size_t n = slice.size();
      Result<size_t> result = codec_->dispatch(slice);
      if (client_ == nullptr) return;
      if (!result.ok()) {
        // The codec has reset every call (UNAVAILABLE) and queued its GOAWAY.
        failure_reason_ = result.error().message();
        data.drain(data.length());
        break;
      }
      data.drain(n);
    }
    flushOutput();
  }

  void onEvent(network::ConnectionEvent event) override {
    if (client_ == nullptr || closed_) return;
    if (event == network::ConnectionEvent::kConnected) {
      if (secure_ && network_->negotiatedProtocol() != "h2") {
        failure_reason_ = "the TLS peer did not negotiate ALPN h2";
        closing_ = true;
        network_->close(network::ConnectionCloseType::kNoFlush);
        return;
      }
      flushOutput();
      return;
    }
    closed_ = true;
    if (failure_reason_.empty()) {
      if (codec_->error()) {
        failure_reason_ = codec_->error()->message();
      } else if (!network_->failureReason().empty()) {
        failure_reason_ = std::string(network_->failureReason());
        if (!network_->transportFailureReason().empty()) {
          failure_reason_ += ": " + std::string(network_->transportFailureReason());
        }
      } else {
        failure_reason_ = event == network::ConnectionEvent::kRemoteClose
                              ? "connection closed by the server"
                              : "connection closed";
      }
    }
    SHEAVE_LOG_DEBUG("grpc: connection to {} closed: {}", network_->remoteAddress().asString(),
                     failure_reason_);
    // First, so a caller that starts a new call from onRemoteClose gets a new connection.
    if (client_ != nullptr) client_->onConnectionDraining(*this);
    codec_->close();  // every call still open ends with UNAVAILABLE and failure_reason_
    if (client_ != nullptr) client_->onConnectionClosed(*this);
  }

  void onBelowWriteBufferLowWatermark() override { flushOutput(); }

  // http2::ConnectionCallbacks
  void onGoAway(int32_t last_stream_id, http2::ErrorCode code) override {
    SHEAVE_LOG_DEBUG("grpc: GOAWAY from {} (last stream {}, {})",
                     network_->remoteAddress().asString(), last_stream_id,
                     http2::errorCodeName(code));
    draining_ = true;
    if (client_ != nullptr) client_->onConnectionDraining(*this);
  }

  // A draining connection (GOAWAY received) has no future: close it once its last call is over.
  void retireIfIdle() {
    if (draining_ && streams_.empty() && !closed_ && !closing_) {
      closing_ = true;
      network_->close(network::ConnectionCloseType::kFlushWrite);
    }
  }

 private:
  AsyncClient* client_;
  const bool secure_;
  std::unique_ptr<http2::ClientConnection> codec_;
  std::unique_ptr<network::Connection> network_;
  std::vector<StreamState*> streams_;
  std::string failure_reason_;
  bool draining_ = false;  // GOAWAY received: no new calls
  bool closing_ = false;   // close() requested
  bool closed_ = false;    // the socket is closed
};

// The state of one call. The caller's AsyncStream handle owns it; when the handle goes, the state
// is handed to the loop for deletion, since the codec or a timer may be calling it right now.
class StreamState final : public http2::StreamCallbacks, public network::DeferredDeletable {
 public:
  StreamState(network::EventLoop& loop, AsyncStreamCallbacks& callbacks,
              const AsyncClientOptions& options)
      : loop_(loop),
        callbacks_(&callbacks),
        framer_(options.max_receive_message_bytes),
        max_send_buffer_bytes_(options.max_send_buffer_bytes) {}

  void start(ActiveConnection& conn, const HeaderMap& headers,
             std::optional<std::chrono::milliseconds> timeout) {
    if (timeout) {
      timer_ = loop_.createTimer([this, timeout] {
        finish(StatusCode::kDeadlineExceeded,
               "deadline exceeded after " + std::to_string(timeout->count()) + "ms",
               http2::ErrorCode::kCancel);
      });
      timer_->enable(*timeout);
    }
    Result<int32_t> id = conn.codec().submitRequest(headers, /*end_stream=*/false, *this);
    if (!id.ok()) {
      finishLater(StatusCode::kUnavailable, "cannot start the call: " + id.error().message());
      return;
    }
    conn_ = &conn;
    stream_id_ = *id;
    conn.addStream(this);
    conn.flushOutput();
  }

  // Ends the call from the loop, never from inside the caller's own call into the client.
  void finishLater(StatusCode code, std::string message) {
    pending_ = GrpcStatus{code, std::move(message)};
    deferred_ = loop_.createSchedulableCallback([this] {
      GrpcStatus status = std::move(*pending_);
      finish(status.code, std::move(status.message), http2::ErrorCode::kCancel);
    });
    deferred_->scheduleCallbackCurrentIteration();
  }

  Status sendMessage(std::string_view message, bool end_stream) {
    if (done_ || conn_ == nullptr) return closedStreamError();
    if (local_closed_) return invalidArgument("the gRPC stream is half-closed");
    if (message.size() > UINT32_MAX - MessageFramer::kPrefixBytes) {
      return invalidArgument("gRPC message too large");
    }
    const size_t framed = message.size() + MessageFramer::kPrefixBytes;
    const size_t queued = conn_->codec().pendingSendBytes(stream_id_);
    if (queued + framed > max_send_buffer_bytes_) {
      return Error(ErrorCode::kUnavailable, "gRPC send buffer full (" + std::to_string(queued) +
                                                " bytes queued, limit " +
                                                std::to_string(max_send_buffer_bytes_) + ")");
    }
    ActiveConnection* conn = conn_;
    // May run the high-watermark callback, which may destroy this stream or the client.
    Status status = conn->codec().submitData(stream_id_, MessageFramer::frame(message), end_stream);
    if (!status.ok()) return status;
    if (end_stream) local_closed_ = true;
    if (conn_ != nullptr) conn_->flushOutput();
    return okStatus();
  }

  void closeStream() {
    if (done_ || conn_ == nullptr || local_closed_) return;
    local_closed_ = true;
    Status status = conn_->codec().submitData(stream_id_, std::string_view(), true);
    if (!status.ok()) {
      SHEAVE_LOG_DEBUG("grpc: half-close of stream {} failed: {}", stream_id_,
                       status.error().message());
    }
    if (conn_ != nullptr) conn_->flushOutput();
  }

  void resetStream() {
    callbacks_ = nullptr;
    if (done_) return;
    done_ = true;
    if (timer_) timer_->disable();
    if (deferred_) deferred_->cancel();
    releaseStream(http2::ErrorCode::kCancel);
  }

  // The handle is gone.
  void detach() {
    resetStream();
    loop_.deferredDelete(std::unique_ptr<network::DeferredDeletable>(this));
  }

  // The client is gone: no more callbacks, no more I/O.
  void silence() {
    callbacks_ = nullptr;
    conn_ = nullptr;
    done_ = true;
    if (timer_) timer_->disable();
    if (deferred_) deferred_->cancel();
  }

  bool aboveHighWatermark() const { return above_high_watermark_; }
  bool done() const { return done_; }

  // http2::StreamCallbacks
  void onHeaders(HeaderMap&& headers, bool end_stream) override {
    if (done_) return;
    const std::string_view http_status = headers.status();
    if (http_status != "200") {
      // grpc-status, when present, is the answer; the HTTP status only fills in without it.
      if (std::optional<GrpcStatus> status = grpcStatusFromHeaders(headers)) {
        finish(status->code, std::move(status->message), http2::ErrorCode::kCancel);
        return;
      }
      uint32_t code = 0;
      for (char c : http_status) code = code * 10 + static_cast<uint32_t>(c - '0');
      finish(httpStatusToGrpcStatus(code),
             "HTTP status " + std::string(http_status) + " without grpc-status",
             http2::ErrorCode::kCancel);
      return;
    }
    if (end_stream) {
      // Trailers-Only: the headers carry the status.
      onTrailingHeaders(std::move(headers));
      return;
    }
    const std::string* content_type = headers.get("content-type");
    if (content_type == nullptr || !content_type->starts_with("application/grpc")) {
      finish(StatusCode::kInternal,
             "response content-type is not application/grpc: " +
                 (content_type ? *content_type : std::string("(none)")),
             http2::ErrorCode::kCancel);
      return;
    }
    if (const std::string* encoding = headers.get("grpc-encoding")) {
      framer_.setMessageEncoding(*encoding);
    }
    callbacks_->onReceiveInitialMetadata(withoutPseudoHeaders(std::move(headers)));
  }

  void onData(std::string_view data, bool end_stream) override {
    // The framer holds at most one message (bounded by the receive limit), so the window can
    // reopen at once: the server is never throttled by this client's processing.
    if (conn_ != nullptr && !data.empty()) conn_->codec().consumeData(stream_id_, data.size());
    if (done_) return;
    std::vector<std::string> messages;
    std::optional<GrpcStatus> framing_error = framer_.decode(data, messages);
    for (std::string& message : messages) {
      if (done_) return;  // a callback ended or destroyed the stream (or the client)
      callbacks_->onReceiveMessage(std::move(message));
    }
    if (done_) return;
    if (framing_error) {
      finish(framing_error->code, std::move(framing_error->message), http2::ErrorCode::kCancel);
      return;
    }
    if (end_stream) {
      finish(StatusCode::kInternal, "the server ended the stream without trailers",
             http2::ErrorCode::kNoError);
    }
  }

  void onTrailers(HeaderMap&& trailers) override {
    if (done_) return;
    onTrailingHeaders(std::move(trailers));
  }

  void onReset(http2::ErrorCode code, http2::ResetSource source) override {
    if (done_) return;
    switch (source) {
      case http2::ResetSource::kRemote:
        finish(http2ErrorToGrpcStatus(static_cast<uint32_t>(code)),
               "stream reset by the server: " + std::string(http2::errorCodeName(code)),
               http2::ErrorCode::kNoError);
        return;
      case http2::ResetSource::kGoAway:
        finish(StatusCode::kUnavailable, "the server sent GOAWAY before processing the call",
               http2::ErrorCode::kNoError);
        return;
      case http2::ResetSource::kConnectionClosed:
      case http2::ResetSource::kConnectionFailure:
        finish(StatusCode::kUnavailable, connectionFailureMessage(), http2::ErrorCode::kNoError);
        return;
      case http2::ResetSource::kLocal:
        finish(StatusCode::kInternal,
               "stream reset by the HTTP/2 codec: " + std::string(http2::errorCodeName(code)),
               http2::ErrorCode::kNoError);
        return;
    }
  }

  void onAboveWriteBufferHighWatermark() override {
    above_high_watermark_ = true;
    if (!done_) callbacks_->onAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    above_high_watermark_ = false;
    if (!done_) callbacks_->onBelowWriteBufferLowWatermark();
  }

 private:
  void onTrailingHeaders(HeaderMap&& headers) {
    std::optional<GrpcStatus> status = grpcStatusFromHeaders(headers);
    if (!status) {
      status = GrpcStatus{StatusCode::kUnknown, "the response has no valid grpc-status"};
    } else if (status->ok() && !framer_.idle()) {
      status = GrpcStatus{StatusCode::kInternal, "the stream ended inside a gRPC message"};
    }
    callbacks_->onReceiveTrailingMetadata(std::move(headers));
    finish(status->code, std::move(status->message), http2::ErrorCode::kNoError);
  }

  std::string connectionFailureMessage() const {
    std::string reason;
    if (conn_ != nullptr) {
      reason = conn_->codec().error() ? conn_->codec().error()->message() : conn_->failureReason();
    }
    if (reason.empty()) reason = "connection closed";
    return "connection to the gRPC server failed: " + reason;
  }

  // Delivers onRemoteClose once and lets go of the HTTP/2 stream (RST_STREAM with reset_code if
  // it is still open on our side).
  void finish(StatusCode code, std::string message, http2::ErrorCode reset_code) {
    if (done_) return;
    done_ = true;
    if (timer_) timer_->disable();
    if (deferred_) deferred_->cancel();
    releaseStream(reset_code);
    AsyncStreamCallbacks* callbacks = std::exchange(callbacks_, nullptr);
    if (callbacks != nullptr) callbacks->onRemoteClose(code, std::move(message));
  }

  void releaseStream(http2::ErrorCode code) {
    ActiveConnection* conn = std::exchange(conn_, nullptr);
    if (conn == nullptr) return;
    // A stream the codec has closed already gets no frame; it only forgets our callbacks.
    conn->codec().resetStream(stream_id_, code);
    conn->flushOutput();
    conn->removeStream(this);
  }

  network::EventLoop& loop_;
  AsyncStreamCallbacks* callbacks_;
  ActiveConnection* conn_ = nullptr;
  int32_t stream_id_ = 0;
  MessageFramer framer_;
  const uint32_t max_send_buffer_bytes_;
  std::unique_ptr<network::Timer> timer_;
  std::unique_ptr<network::SchedulableCallback> deferred_;
  std::optional<GrpcStatus> pending_;
  bool done_ = false;          // onRemoteClose delivered, or reset/silenced: no more callbacks
  bool local_closed_ = false;  // END_STREAM queued
  bool above_high_watermark_ = false;
};

void ActiveConnection::abandon() {
  client_ = nullptr;
  for (StreamState* stream : streams_) stream->silence();
  streams_.clear();
  if (!closed_) {
    closed_ = true;
    network_->close(network::ConnectionCloseType::kNoFlush);
  }
}

namespace {

class AsyncStreamImpl final : public AsyncStream {
 public:
  explicit AsyncStreamImpl(StreamState* state) : state_(state) {}
  ~AsyncStreamImpl() override { state_->detach(); }

  Status sendMessage(std::string_view serialized, bool end_stream) override {
    return state_->sendMessage(serialized, end_stream);
  }
  void closeStream() override { state_->closeStream(); }
  void resetStream() override { state_->resetStream(); }
  bool isAboveWriteBufferHighWatermark() const override { return state_->aboveHighWatermark(); }
  bool closed() const override { return state_->done(); }

 private:
  StreamState* state_;  // handed to the loop for deletion by detach()
};

}  // namespace

AsyncClient::AsyncClient(network::EventLoop& loop, Address address, AsyncClientOptions options)
    : loop_(loop), address_(address), options_(std::move(options)) {}

AsyncClient::~AsyncClient() {
  for (std::unique_ptr<ActiveConnection>& connection : connections_) {
    connection->abandon();
    loop_.deferredDelete(std::move(connection));
  }
}

std::unique_ptr<AsyncStream> AsyncClient::start(std::string_view path,
                                                AsyncStreamCallbacks& callbacks,
                                                const HeaderMap& initial_metadata,
                                                std::optional<std::chrono::milliseconds> timeout) {
  auto* state = new StreamState(loop_, callbacks, options_);
  auto handle = std::make_unique<AsyncStreamImpl>(state);
  if (path.size() < 2 || path[0] != '/') {
    state->finishLater(
        StatusCode::kInvalidArgument,
        "a gRPC method path looks like /package.Service/Method, not '" + std::string(path) + "'");
    return handle;
  }
  HeaderMap headers;
  headers.add(":method", "POST");
  headers.add(":scheme", options_.transport_socket_factory ? "https" : "http");
  headers.add(":path", path);
  headers.add(":authority", options_.authority.empty() ? address_.asString() : options_.authority);
  headers.add("te", "trailers");
  if (timeout) headers.add("grpc-timeout", formatGrpcTimeout(*timeout));
  headers.add("content-type", "application/grpc");
  headers.add("user-agent", options_.user_agent);
  for (const HeaderMap::Entry& e : initial_metadata) {
    if (!isReservedRequestField(e.name)) headers.add(e.name, e.value);
  }
  state->start(connectionForNewStream(), headers, timeout);
  return handle;
}

size_t AsyncClient::activeStreams() const {
  size_t n = 0;
  for (const std::unique_ptr<ActiveConnection>& c : connections_) n += c->streamCount();
  return n;
}

ActiveConnection& AsyncClient::connectionForNewStream() {
  // A connection whose codec failed inside a read still reports it from that read; a call
  // started meanwhile (e.g. from onRemoteClose) goes to a new one.
  if (active_ != nullptr && !active_->acceptsStreams()) active_ = nullptr;
  if (active_ == nullptr) {
    auto connection = std::make_unique<ActiveConnection>(*this, loop_, options_, address_);
    active_ = connection.get();
    connections_.push_back(std::move(connection));
    ++connections_opened_;
  }
  return *active_;
}

void AsyncClient::onConnectionDraining(ActiveConnection& connection) {
  if (active_ == &connection) active_ = nullptr;
  connection.retireIfIdle();
}

void AsyncClient::onConnectionClosed(ActiveConnection& connection) {
  if (active_ == &connection) active_ = nullptr;
  auto it = std::find_if(
      connections_.begin(), connections_.end(),
      [&](const std::unique_ptr<ActiveConnection>& c) { return c.get() == &connection; });
  if (it == connections_.end()) return;
  loop_.deferredDelete(std::move(*it));
  connections_.erase(it);
}

}  // namespace sheave::grpc
