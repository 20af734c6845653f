#include "proxy/upstream/http2_conn_pool.h"

#include <algorithm>
#include <string>

#include "common/logging.h"
#include "proxy/http/http2/connection.h"
#include "proxy/http/http2/header_translation.h"
#include "proxy/network/buffer.h"
#include "proxy/network/connection.h"

namespace sheave::upstream {

namespace {

template <class T>
typename std::list<std::unique_ptr<T>>::iterator findIn(std::list<std::unique_ptr<T>>& list,
                                                        const T& item) {
  return std::find_if(list.begin(), list.end(), [&](const auto& p) { return p.get() == &item; });
}

}  // namespace

struct Http2ConnPool::PendingStream : public Cancellable {
  PendingStream(Http2ConnPool& p, ResponseDecoder& d, PoolCallbacks& c)
      : pool(p), decoder(d), callbacks(c) {}
  void cancel() override { pool.cancelPending(*this); }

  Http2ConnPool& pool;
  ResponseDecoder& decoder;
  PoolCallbacks& callbacks;
};

// One HTTP/2 connection: the socket, the codec and the streams on it.
class Http2ConnPool::ActiveClient : public network::ConnectionCallbacks,
                                    public http2::ConnectionCallbacks,
                                    public network::DeferredDeletable {
 public:
  enum class State { kConnecting, kReady, kDraining, kClosed };

  explicit ActiveClient(Http2ConnPool& pool) : pool_(pool), connect_start_(pool.loop_.now()) {
    const ClusterInfo& info = *pool_.cluster_;
    auto& stats = *info.stats;
    stats.upstream_cx_total.inc();
    stats.upstream_cx_http2_total.inc();
    stats.upstream_cx_active.inc();
    pool_.host_->stats().cx_total.fetch_add(1, std::memory_order_relaxed);
    pool_.host_->stats().cx_active.fetch_add(1, std::memory_order_relaxed);
    info.resources->connections.inc();
    http2::ProtocolOptions options = info.http2_options;
    // The codec stops serializing above this; the socket holds at most one
    // buffer limit more (flush() stops at its high watermark).
    options.stream_buffer_limit = info.per_connection_buffer_limit_bytes;
    codec_ = std::make_unique<http2::ClientConnection>(options, *this, &pool_.codec_stats_);
    const auto& tls = info.transportSocketFactoryFor(*pool_.host_);
    secure_ = static_cast<bool>(tls);
    network_ = network::Connection::createClient(pool_.loop_, pool_.host_->address(),
                                                 tls ? tls->createTransportSocket() : nullptr);
    network_->setCallbacks(*this);
    network_->setBufferLimits(info.per_connection_buffer_limit_bytes);
    network_->setConnectTimeout(info.connect_timeout);
    if (info.idle_timeout.count() > 0) {
      idle_timer_ = pool_.loop_.createTimer([this] { onIdleTimeout(); });
    }
    if (info.max_connection_duration.count() > 0) {
      duration_timer_ = pool_.loop_.createTimer([this] { onMaxDuration(); });
      duration_timer_->enable(info.max_connection_duration);
    }
  }

  ~ActiveClient() override {
    if (network_ && network_->state() != network::Connection::State::kClosed) {
      state_ = State::kClosed;
      network_->close(network::ConnectionCloseType::kNoFlush);
    }
  }

  State state() const { return state_; }
  bool secure() const { return secure_; }
  http2::ClientConnection& codec() { return *codec_; }
  const network::Connection& connection() const { return *network_; }
  size_t streamCount() const { return streams_.size(); }

  // Streams this connection may still take now.
  size_t room() const {
    if (state_ != State::kReady && state_ != State::kConnecting) return 0;
    uint64_t concurrent = pool_.assumedCapacity();
    if (connected_)
      concurrent = std::min<uint64_t>(concurrent, codec_->remoteMaxConcurrentStreams());
    uint64_t room = concurrent > streams_.size() ? concurrent - streams_.size() : 0;
    const uint64_t max_requests = pool_.cluster_->max_requests_per_connection;
    if (max_requests > 0) {
      room = std::min<uint64_t>(room,
                                max_requests > total_streams_ ? max_requests - total_streams_ : 0);
    }
    return static_cast<size_t>(room);
  }

  ActiveStream& newStream(ResponseDecoder& decoder);
  void onStreamDone(ActiveStream& stream);

  // Moves codec output to the socket while the socket is below its high
  // watermark; the rest waits in the codec, inside the peer's windows.
  void flush() {
    if (state_ == State::kClosed || network_->connecting()) return;
    while (!network_->aboveHighWatermark()) {
      const std::string_view out = codec_->pendingOutput();
      if (out.empty()) break;
      network::Buffer buffer;
      buffer.add(out);
      codec_->drainOutput(out.size());
      network_->write(buffer, false);
    }
    if (codec_->shouldClose() && !close_requested_) {
      close_requested_ = true;
      network_->close(network::ConnectionCloseType::kFlushWrite);
    }
  }

  void startDraining() {
    if (state_ == State::kClosed) return;
    if (state_ != State::kConnecting) state_ = State::kDraining;
    closeIfDrained();
  }

  // The pool is being destroyed: no event may reach it any more.
  void abandon() {
    if (state_ == State::kClosed) return;
    finishCloseAccounting(network::ConnectionEvent::kLocalClose);
    network_->close(network::ConnectionCloseType::kNoFlush);
  }

  // network::ConnectionCallbacks
  void onData(network::Buffer& data, bool /*end_stream*/) override {
    pool_.cluster_->stats->upstream_cx_rx_bytes_total.inc(data.length());
    while (!data.empty()) {
      if (state_ == State::kClosed || codec_->error()) {
        data.drain(data.length());
        return;
      }
      const std::string_view slice = data.frontSlice();
      const size_t n = slice.size();
      Result<size_t> result = codec_->dispatch(slice);
      if (!result.ok()) {
        // Every stream was reset (kConnectionFailure); the output ends with
        // a GOAWAY, and flush() closes once shouldClose().
        protocol_error_ = true;
        failure_reason_ = result.error().message();
        SHEAVE_LOG_DEBUG("upstream h2 {}: {}", pool_.host_->address().asString(), failure_reason_);
        data.drain(data.length());
        break;
      }
      data.drain(n);
    }
    flush();
  }

  void onEvent(network::ConnectionEvent event) override {
    if (state_ == State::kClosed) return;
    if (event == network::ConnectionEvent::kConnected) {
      auto connect_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(pool_.loop_.now() - connect_start_);
      pool_.cluster_->stats->upstream_cx_connect_ms.record(
          static_cast<uint64_t>(connect_ms.count()));
      connected_ = true;
      if (secure_ && network_->negotiatedProtocol() != "h2") {
        // As Envoy: an explicit HTTP/2 cluster speaks HTTP/2 whatever ALPN said.
        SHEAVE_LOG_DEBUG("upstream {}: TLS peer did not select ALPN h2 ('{}'), speaking h2 anyway",
                         pool_.host_->address().asString(), network_->negotiatedProtocol());
      }
      if (state_ == State::kConnecting) state_ = State::kReady;
      flush();
      pool_.attachPending();
      closeIfDrained();
      return;
    }
    const bool connect_failed = !connected_;
    std::string reason = failure_reason_;
    if (reason.empty()) {
      reason = std::string(network_->failureReason());
      if (!network_->transportFailureReason().empty()) {
        if (!reason.empty()) reason += ": ";
        reason += network_->transportFailureReason();
      }
    }
    if (connect_failed) {
      auto& stats = *pool_.cluster_->stats;
      stats.upstream_cx_connect_fail.inc();
      pool_.host_->stats().cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
      if (reason.find("timeout") != std::string::npos) stats.upstream_cx_connect_timeout.inc();
    }
    close_reason_ = connect_failed    ? StreamResetReason::kConnectionFailure
                    : protocol_error_ ? StreamResetReason::kProtocolError
                                      : StreamResetReason::kConnectionTermination;
    close_details_ = reason;
    finishCloseAccounting(event);
    // Every stream still open hears onReset(kConnectionClosed) from the codec.
    codec_->close();
    pool_.onClientClosed(*this, connect_failed, reason);
  }

  void onBelowWriteBufferLowWatermark() override { flush(); }

  // http2::ConnectionCallbacks
  void onGoAway(int32_t last_stream_id, http2::ErrorCode code) override {
    SHEAVE_LOG_DEBUG("upstream h2 {}: GOAWAY (last stream {}, {})",
                     pool_.host_->address().asString(), last_stream_id, http2::errorCodeName(code));
    if (state_ == State::kReady || state_ == State::kConnecting) state_ = State::kDraining;
    // The codec resets the refused streams after this returns; waiting
    // requests go to a new connection.
    closeIfDrained();
    pool_.attachPending();
  }

  void onSettings() override { pool_.attachPending(); }

  StreamResetReason closeReason() const { return close_reason_; }
  const std::string& closeDetails() const { return close_details_; }
  bool protocolError() const { return protocol_error_ || codec_->error().has_value(); }

 private:
  void closeIfDrained() {
    if (!streams_.empty() || state_ == State::kClosed || close_requested_) return;
    if (state_ == State::kDraining || (pool_.draining_ && state_ == State::kReady)) {
      close_requested_ = true;
      // Graceful: tell the server, let the GOAWAY leave, then close.
      codec_->goAway();
      flush();
      if (state_ != State::kClosed) network_->close(network::ConnectionCloseType::kFlushWrite);
    }
  }

  void onIdleTimeout() {
    if (!streams_.empty() || state_ == State::kClosed) return;
    pool_.cluster_->stats->upstream_cx_idle_timeout.inc();
    state_ = State::kDraining;
    closeIfDrained();
  }

  // max_connection_duration: no new streams; GOAWAY and close once the open ones are done.
  void onMaxDuration() {
    if (state_ == State::kClosed) return;
    pool_.cluster_->stats->upstream_cx_max_duration_reached.inc();
    state_ = State::kDraining;
    closeIfDrained();
    pool_.attachPending();
  }

  void finishCloseAccounting(network::ConnectionEvent event) {
    state_ = State::kClosed;
    if (idle_timer_) idle_timer_->disable();
    if (duration_timer_) duration_timer_->disable();
    recordConnectionClosed(
        *pool_.cluster_, *pool_.host_, event, network_->bytesSent(),
        std::chrono::duration_cast<std::chrono::milliseconds>(pool_.loop_.now() - connect_start_));
  }

  Http2ConnPool& pool_;
  std::unique_ptr<http2::ClientConnection> codec_;
  std::unique_ptr<network::Connection> network_;
  std::list<std::unique_ptr<ActiveStream>> streams_;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> duration_timer_;  // max_connection_duration
  std::chrono::steady_clock::time_point connect_start_;
  std::string failure_reason_;
  std::string close_details_;
  StreamResetReason close_reason_ = StreamResetReason::kConnectionTermination;
  State state_ = State::kConnecting;
  uint64_t total_streams_ = 0;
  bool secure_ = false;
  bool connected_ = false;
  bool protocol_error_ = false;
  bool close_requested_ = false;
};

// One request on a client's connection: the router's RequestEncoder and the
// codec's StreamCallbacks.
class Http2ConnPool::ActiveStream : public RequestEncoder,
                                    public http2::StreamCallbacks,
                                    public network::DeferredDeletable {
 public:
  ActiveStream(ActiveClient& client, ResponseDecoder& decoder, bool reused)
      : client_(client), decoder_(&decoder), reused_(reused) {}

  // RequestEncoder
  void encodeHeaders(const HeaderMap& headers, bool end_stream) override {
    if (done_ || id_ != 0) return;
    HeaderMap h2 = headers;
    http2::requestHeadersToHttp2(h2, client_.secure() ? "https" : "http");
    Result<int32_t> id = client_.codec().submitRequest(h2, end_stream, *this);
    if (!id.ok()) {
      const StreamResetReason reason = client_.codec().goAwayReceived()
                                           ? StreamResetReason::kGoAwayRefused
                                           : StreamResetReason::kConnectionTermination;
      fail(reason, id.error().message());
      return;
    }
    id_ = *id;
    request_complete_ = end_stream;
    client_.flush();
  }

  void encodeData(network::Buffer& data, bool end_stream) override {
    if (done_ || id_ == 0 || request_complete_) {
      data.drain(data.length());
      return;
    }
    std::string bytes = data.toString();
    data.drain(data.length());
    if (end_stream) request_complete_ = true;
    Status s = client_.codec().submitData(id_, std::move(bytes), end_stream);
    if (!s.ok()) SHEAVE_LOG_DEBUG("upstream h2 stream {}: {}", id_, s.error().message());
    client_.flush();
    if (end_stream && response_complete_) release(false);
  }

  void encodeTrailers(const HeaderMap& trailers) override {
    if (done_ || id_ == 0 || request_complete_) return;
    request_complete_ = true;
    HeaderMap t = trailers;
    http2::trailersForForwarding(t);
    Status s = t.empty() ? client_.codec().submitData(id_, std::string_view(), true)
                         : client_.codec().submitTrailers(id_, t);
    if (!s.ok()) SHEAVE_LOG_DEBUG("upstream h2 stream {}: {}", id_, s.error().message());
    client_.flush();
    if (response_complete_) release(false);
  }

  void resetStream() override {
    if (done_) return;
    decoder_ = nullptr;
    release(true);
  }

  void readDisable(bool disable) override {
    if (done_ || id_ == 0) return;
    if (!disable && read_disables_ == 0) return;
    read_disables_ += disable ? 1 : -1;
    client_.codec().readDisable(id_, disable);
    client_.flush();  // enabling may have delivered held data and freed window
  }

  bool reusedConnection() const override { return reused_; }
  const network::Connection& connection() const override { return client_.connection(); }

  // http2::StreamCallbacks
  void onHeaders(HeaderMap&& headers, bool end_stream) override {
    if (done_ || decoder_ == nullptr) return;
    if (!end_stream) {
      decoder_->decodeHeaders(std::move(headers), false);
      return;
    }
    ResponseDecoder* decoder = takeDecoder();
    decoder->decodeHeaders(std::move(headers), true);
    release(false);
  }

  void onInformationalHeaders(HeaderMap&& headers) override {
    if (!done_ && decoder_ != nullptr) decoder_->decode1xxHeaders(std::move(headers));
  }

  void onData(std::string_view data, bool end_stream) override {
    if (done_) return;
    // Acknowledged at once: the router stops reading (readDisable) when the
    // client falls behind, which holds the window closed instead.
    if (!data.empty()) client_.codec().consumeData(id_, data.size());
    if (decoder_ == nullptr) return;
    network::Buffer buffer;
    buffer.add(data);
    if (!end_stream) {
      decoder_->decodeData(buffer, false);
      return;
    }
    ResponseDecoder* decoder = takeDecoder();
    decoder->decodeData(buffer, true);
    release(false);
  }

  void onTrailers(HeaderMap&& trailers) override {
    if (done_ || decoder_ == nullptr) return;
    ResponseDecoder* decoder = takeDecoder();
    decoder->decodeTrailers(std::move(trailers));
    release(false);
  }

  void onReset(http2::ErrorCode code, http2::ResetSource source) override {
    if (done_) return;
    StreamResetReason reason = StreamResetReason::kRemoteReset;
    std::string details;
    switch (source) {
      case http2::ResetSource::kRemote:
        reason = code == http2::ErrorCode::kRefusedStream ? StreamResetReason::kRemoteRefusedStream
                                                          : StreamResetReason::kRemoteReset;
        details = std::string(http2::errorCodeName(code));
        break;
      case http2::ResetSource::kGoAway:
        reason = StreamResetReason::kGoAwayRefused;
        break;
      case http2::ResetSource::kLocal:
        reason = StreamResetReason::kProtocolError;
        details = std::string(http2::errorCodeName(code));
        break;
      case http2::ResetSource::kConnectionClosed:
        reason = client_.closeReason();
        details = client_.closeDetails();
        break;
      case http2::ResetSource::kConnectionFailure:
        reason = StreamResetReason::kProtocolError;
        if (client_.codec().error()) details = client_.codec().error()->message();
        break;
    }
    // The codec forgot the stream already: nothing to reset.
    id_released_ = true;
    fail(reason, details);
  }

  void onAboveWriteBufferHighWatermark() override {
    if (!done_ && decoder_ != nullptr) decoder_->onAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    if (!done_ && decoder_ != nullptr) decoder_->onBelowWriteBufferLowWatermark();
  }

 private:
  ResponseDecoder* takeDecoder() {
    response_complete_ = true;
    return std::exchange(decoder_, nullptr);
  }

  void fail(StreamResetReason reason, std::string_view details) {
    ResponseDecoder* decoder = std::exchange(decoder_, nullptr);
    release(true);
    if (decoder != nullptr) decoder->onResetStream(reason, details);
  }

  // The stream is over for the pool. A response that ended while the
  // request was still going cancels the rest of the request (RFC 9113 8.1);
  // otherwise queued request bytes still leave (detachStream).
  void release(bool reset) {
    if (done_) return;
    if (!reset) {
      if (!response_complete_) return;  // the response is still coming
      if (!request_complete_) reset = true;
    }
    done_ = true;
    decoder_ = nullptr;
    if (id_ != 0 && !id_released_) {
      if (reset) {
        client_.codec().resetStream(id_, http2::ErrorCode::kCancel);
      } else {
        client_.codec().detachStream(id_);
      }
      client_.flush();
    }
    client_.onStreamDone(*this);
  }

  ActiveClient& client_;
  ResponseDecoder* decoder_;
  int32_t id_ = 0;
  int read_disables_ = 0;
  const bool reused_;
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool id_released_ = false;
  bool done_ = false;
};

Http2ConnPool::ActiveStream& Http2ConnPool::ActiveClient::newStream(ResponseDecoder& decoder) {
  if (idle_timer_) idle_timer_->disable();
  const bool reused = total_streams_ > 0;
  ++total_streams_;
  const uint64_t max = pool_.cluster_->max_requests_per_connection;
  if (max > 0 && total_streams_ >= max && state_ == State::kReady) {
    pool_.cluster_->stats->upstream_cx_max_requests.inc();
    state_ = State::kDraining;
  }
  streams_.push_back(std::make_unique<ActiveStream>(*this, decoder, reused));
  return *streams_.back();
}

void Http2ConnPool::ActiveClient::onStreamDone(ActiveStream& stream) {
  auto it = findIn(streams_, stream);
  if (it == streams_.end()) return;
  // The stream may be on the call stack (a codec or router callback).
  pool_.loop_.deferredDelete(std::move(*it));
  streams_.erase(it);
  if (state_ == State::kClosed) return;
  if (streams_.empty()) {
    if (state_ == State::kDraining || pool_.draining_) {
      closeIfDrained();
      return;
    }
    if (idle_timer_) idle_timer_->enable(pool_.cluster_->idle_timeout);
  }
  pool_.attachPending();
}

Http2ConnPool::Http2ConnPool(network::EventLoop& loop, HostSharedPtr host,
                             std::shared_ptr<const ClusterInfo> cluster)
    : loop_(loop), host_(std::move(host)), cluster_(std::move(cluster)) {}

Http2ConnPool::~Http2ConnPool() {
  destroying_ = true;
  for (size_t i = 0; i < pending_.size(); ++i) {
    cluster_->resources->pending_requests.dec();
    cluster_->stats->upstream_rq_pending_active.dec();
  }
  pending_.clear();
  for (auto& c : clients_) c->abandon();
  clients_.clear();
}

uint32_t Http2ConnPool::assumedCapacity() const {
  return std::max<uint32_t>(cluster_->http2_options.max_concurrent_streams, 1);
}

Http2ConnPool::ActiveClient* Http2ConnPool::clientWithRoom() {
  // The busiest ready connection with room first, so that load concentrates
  // on few connections and idle ones can time out.
  ActiveClient* best = nullptr;
  for (auto& c : clients_) {
    if (c->state() != ActiveClient::State::kReady || c->room() == 0) continue;
    if (best == nullptr || c->streamCount() > best->streamCount()) best = c.get();
  }
  return best;
}

Cancellable* Http2ConnPool::newStream(ResponseDecoder& decoder, PoolCallbacks& callbacks) {
  if (pending_.empty()) {
    if (ActiveClient* client = clientWithRoom()) {
      ActiveStream& stream = client->newStream(decoder);
      callbacks.onPoolReady(stream, host_);
      return nullptr;
    }
  }
  if (!cluster_->resources->pending_requests.tryInc()) {
    cluster_->stats->upstream_rq_pending_overflow.inc();
    callbacks.onPoolFailure(PoolFailureReason::kOverflow, "overflow", host_);
    return nullptr;
  }
  cluster_->stats->upstream_rq_pending_total.inc();
  cluster_->stats->upstream_rq_pending_active.inc();
  pending_.push_back(std::make_unique<PendingStream>(*this, decoder, callbacks));
  Cancellable* handle = pending_.back().get();
  maybeCreateClients();
  // maybeCreateClients may have failed it already (no connection possible).
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return p.get() == handle; });
  return it == pending_.end() ? nullptr : handle;
}

void Http2ConnPool::maybeCreateClients() {
  if (destroying_) return;
  for (;;) {
    size_t capacity = 0;
    for (auto& c : clients_) {
      if (c->state() == ActiveClient::State::kConnecting) capacity += c->room();
    }
    if (pending_.size() <= capacity) return;
    if (!cluster_->resources->connections.canCreate()) {
      cluster_->stats->upstream_cx_overflow.inc();
      const bool any_usable = std::any_of(clients_.begin(), clients_.end(), [](const auto& c) {
        return c->state() == ActiveClient::State::kConnecting ||
               c->state() == ActiveClient::State::kReady;
      });
      // Nothing on this worker will ever take these requests.
      if (!any_usable) failPending(PoolFailureReason::kOverflow, "overflow", 0);
      return;
    }
    clients_.push_back(std::make_unique<ActiveClient>(*this));
  }
}

void Http2ConnPool::attachPending() {
  while (!pending_.empty() && !destroying_) {
    ActiveClient* client = clientWithRoom();
    if (client == nullptr) break;
    auto pending = std::move(pending_.front());
    pending_.pop_front();
    cluster_->resources->pending_requests.dec();
    cluster_->stats->upstream_rq_pending_active.dec();
    ActiveStream& stream = client->newStream(pending->decoder);
    pending->callbacks.onPoolReady(stream, host_);
  }
  if (!pending_.empty()) maybeCreateClients();
}

void Http2ConnPool::failPending(PoolFailureReason reason, std::string_view details, size_t keep) {
  const std::string reason_text(details);
  while (pending_.size() > keep) {
    auto pending = std::move(pending_.back());
    pending_.pop_back();
    cluster_->resources->pending_requests.dec();
    cluster_->stats->upstream_rq_pending_active.dec();
    if (reason == PoolFailureReason::kConnectionFailure) {
      cluster_->stats->upstream_rq_pending_failure_eject.inc();
    }
    pending->callbacks.onPoolFailure(reason, reason_text, host_);
  }
}

void Http2ConnPool::onClientClosed(ActiveClient& client, bool connect_failed,
                                   std::string_view reason) {
  auto it = findIn(clients_, client);
  if (it != clients_.end()) {
    // The client is on the call stack (this runs from its close event).
    loop_.deferredDelete(std::move(*it));
    clients_.erase(it);
  }
  if (destroying_ || pending_.empty()) return;
  if (connect_failed) {
    // Requests beyond what the remaining attempts can serve fail now, with
    // the reason of this failure.
    size_t capacity = 0;
    for (auto& c : clients_) capacity += c->room();
    failPending(PoolFailureReason::kConnectionFailure, reason, capacity);
    return;
  }
  attachPending();
}

void Http2ConnPool::cancelPending(PendingStream& pending) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return p.get() == &pending; });
  if (it == pending_.end()) return;
  pending_.erase(it);
  cluster_->resources->pending_requests.dec();
  cluster_->stats->upstream_rq_pending_active.dec();
  cluster_->stats->upstream_rq_cancelled.inc();
}

void Http2ConnPool::drainConnections() {
  draining_ = true;
  // Copied: a client that closes at once leaves the list.
  std::vector<ActiveClient*> clients;
  for (auto& c : clients_) clients.push_back(c.get());
  for (ActiveClient* c : clients) c->startDraining();
}

bool Http2ConnPool::idle() const {
  if (!pending_.empty()) return false;
  return std::all_of(clients_.begin(), clients_.end(), [](const auto& c) {
    return c->streamCount() == 0 && c->state() != ActiveClient::State::kConnecting;
  });
}

}  // namespace sheave::upstream
