#include "proxy/upstream/conn_pool.h"

#include <algorithm>

#include "common/logging.h"
#include "proxy/http/http1/encoder.h"
#include "proxy/http/http1/parser.h"
#include "proxy/network/connection.h"

namespace sheave::upstream {

void recordConnectionClosed(const ClusterInfo& cluster, const Host& host,
                            network::ConnectionEvent event, uint64_t bytes_sent,
                            std::chrono::milliseconds length) {
  auto& stats = *cluster.stats;
  stats.upstream_cx_active.dec();
  stats.upstream_cx_destroy.inc();
  if (event == network::ConnectionEvent::kRemoteClose) {
    stats.upstream_cx_destroy_remote.inc();
  } else {
    stats.upstream_cx_destroy_local.inc();
  }
  stats.upstream_cx_tx_bytes_total.inc(bytes_sent);
  stats.upstream_cx_length_ms.record(static_cast<uint64_t>(length.count()));
  host.stats().cx_active.fetch_sub(1, std::memory_order_relaxed);
  cluster.resources->connections.dec();
}

std::string_view resetReasonName(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::kConnectionFailure:
      return "connection failure";
    case StreamResetReason::kConnectionTermination:
      return "connection termination";
    case StreamResetReason::kOverflow:
      return "overflow";
    case StreamResetReason::kProtocolError:
      return "protocol error";
    case StreamResetReason::kLocalReset:
      return "local reset";
    case StreamResetReason::kRemoteReset:
      return "remote reset";
    case StreamResetReason::kRemoteRefusedStream:
      return "remote refused stream reset";
    case StreamResetReason::kGoAwayRefused:
      return "remote refused stream reset";
  }
  return "unknown";
}

struct Http1ConnPool::PendingStream : public Cancellable {
  PendingStream(Http1ConnPool& p, ResponseDecoder& d, PoolCallbacks& c)
      : pool(p), decoder(d), callbacks(c) {}
  void cancel() override { pool.cancelPending(*this); }

  Http1ConnPool& pool;
  ResponseDecoder& decoder;
  PoolCallbacks& callbacks;
};

// One upstream connection and the HTTP/1.1 codec on it.
class Http1ConnPool::ActiveClient : public network::ConnectionCallbacks,
                                    public http1::ParserCallbacks,
                                    public RequestEncoder {
 public:
  enum class State { kConnecting, kReady, kBusy, kClosed };

  explicit ActiveClient(Http1ConnPool& pool)
      : pool_(pool),
        parser_(http1::Mode::kResponse, http1::Limits{}, *this),
        connect_start_(pool.loop_.now()) {
    auto& stats = *pool_.cluster_->stats;
    stats.upstream_cx_total.inc();
    stats.upstream_cx_http1_total.inc();
    stats.upstream_cx_active.inc();
    pool_.host_->stats().cx_total.fetch_add(1, std::memory_order_relaxed);
    pool_.host_->stats().cx_active.fetch_add(1, std::memory_order_relaxed);
    pool_.cluster_->resources->connections.inc();
    // A TLS socket's default session key is SNI + host address, so the pool's connections to one
    // host resume each other's sessions.
    const auto& tls = pool_.cluster_->transportSocketFactoryFor(*pool_.host_);
    connection_ = network::Connection::createClient(pool_.loop_, pool_.host_->address(),
                                                    tls ? tls->createTransportSocket() : nullptr);
    connection_->setCallbacks(*this);
    connection_->setBufferLimits(pool_.cluster_->per_connection_buffer_limit_bytes);
    connection_->setConnectTimeout(pool_.cluster_->connect_timeout);
    if (pool_.cluster_->idle_timeout.count() > 0) {
      idle_timer_ = pool_.loop_.createTimer([this] { onIdleTimeout(); });
    }
    if (pool_.cluster_->max_connection_duration.count() > 0) {
      duration_timer_ = pool_.loop_.createTimer([this] { onMaxDuration(); });
      duration_timer_->enable(pool_.cluster_->max_connection_duration);
    }
  }

  ~ActiveClient() override {
    if (connection_ && connection_->state() != network::Connection::State::kClosed) {
      connection_->close(network::ConnectionCloseType::kNoFlush);
    }
  }

  State state() const { return state_; }
  bool open() const { return connection_->state() == network::Connection::State::kOpen; }
  void closeNow() { connection_->close(network::ConnectionCloseType::kNoFlush); }
  void setState(State s) { state_ = s; }

  void attach(ResponseDecoder& decoder) {
    decoder_ = &decoder;
    state_ = State::kBusy;
    if (idle_timer_) idle_timer_->disable();
    response_started_ = false;
    request_complete_ = false;
    response_complete_ = false;
    keep_alive_ = true;
    upgrade_request_ = false;
    upgraded_ = false;
    reused_ = requests_ > 0;
    ++requests_;
  }

  // RequestEncoder
  void encodeHeaders(const HeaderMap& headers, bool end_stream) override {
    // An upgrade or CONNECT: the bytes after the headers are the tunnel's, unframed, and the
    // connection is never reused (even when the upstream declines).
    const bool connect = headers.method() == "CONNECT";
    upgrade_request_ = connect || headers.has("upgrade");
    if (upgrade_request_) keep_alive_ = false;
    chunked_request_ = !upgrade_request_ && !end_stream && !headers.has("content-length");
    if (headers.method() == "HEAD") parser_.setNextResponseIsForHead(true);
    if (connect) parser_.setNextResponseIsForConnect(true);
    std::string out;
    http1::encodeRequestHeaders(headers, chunked_request_, out);
    network::Buffer b;
    b.add(out);
    connection_->write(b, false);
    if (end_stream) request_complete_ = true;
  }

  void encodeData(network::Buffer& data, bool end_stream) override {
    if (data.length() > 0) {
      if (chunked_request_) {
        char line[32];
        int n = snprintf(line, sizeof(line), "%zx\r\n", data.length());
        network::Buffer framed;
        framed.add(line, static_cast<size_t>(n));
        framed.move(data);
        framed.add("\r\n", 2);
        connection_->write(framed, false);
      } else {
        connection_->write(data, false);
      }
    }
    if (end_stream) {
      if (chunked_request_) {
        network::Buffer last;
        last.add("0\r\n\r\n", 5);
        connection_->write(last, false);
      }
      onRequestComplete();
    }
  }

  void encodeTrailers(const HeaderMap& trailers) override {
    if (chunked_request_) {
      std::string out;
      http1::encodeLastChunk(&trailers, out);
      network::Buffer b;
      b.add(out);
      connection_->write(b, false);
    }
    onRequestComplete();
  }

  void resetStream() override {
    decoder_ = nullptr;
    keep_alive_ = false;
    connection_->close(network::ConnectionCloseType::kNoFlush);
  }

  void readDisable(bool disable) override {
    if (connection_->state() != network::Connection::State::kOpen) return;
    if (!disable && read_disables_ == 0) return;
    read_disables_ += disable ? 1 : -1;
    connection_->readDisable(disable);
  }
  bool reusedConnection() const override { return reused_; }
  const network::Connection& connection() const override { return *connection_; }

  // network::ConnectionCallbacks
  void onData(network::Buffer& data, bool end_stream) override {
    pool_.cluster_->stats->upstream_cx_rx_bytes_total.inc(data.length());
    while (data.length() > 0 && state_ != State::kClosed) {
      if (upgraded_) {
        // Past the 101 (or CONNECT's 2xx): tunnel bytes, as they come.
        if (decoder_ == nullptr) {
          data.drain(data.length());
          return;
        }
        decoder_->decodeData(data, false);
        return;
      }
      if (state_ != State::kBusy || decoder_ == nullptr) {
        // Bytes nobody asked for: the connection is not HTTP we understand.
        connection_->close(network::ConnectionCloseType::kNoFlush);
        return;
      }
      std::string_view chunk = data.frontSlice();
      http1::ParseResult result = parser_.parse(chunk);
      data.drain(result.consumed);
      if (!result.ok()) {
        failStream(StreamResetReason::kProtocolError, result.error->details);
        connection_->close(network::ConnectionCloseType::kNoFlush);
        return;
      }
      // After a complete response the parser pauses; anything after it is
      // unsolicited and caught above on the next turn.
      if (parser_.paused()) parser_.resume();
    }
  }

  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::kConnected) {
      auto connect_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(pool_.loop_.now() - connect_start_);
      pool_.cluster_->stats->upstream_cx_connect_ms.record(
          static_cast<uint64_t>(connect_ms.count()));
      connected_ = true;
      pool_.onClientReady(*this);
      return;
    }
    if (state_ == State::kClosed) return;
    const bool connect_failed = !connected_;
    std::string reason(connection_->failureReason());
    if (connect_failed) {
      auto& stats = *pool_.cluster_->stats;
      stats.upstream_cx_connect_fail.inc();
      pool_.host_->stats().cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
      if (reason.find("timeout") != std::string::npos) stats.upstream_cx_connect_timeout.inc();
    } else if (upgraded_ && decoder_) {
      // The upstream ended the tunnel: a clean end of the response.
      ResponseDecoder* decoder = decoder_;
      decoder_ = nullptr;
      finishCloseAccounting(event);
      network::Buffer empty;
      decoder->decodeData(empty, true);
      pool_.onClientClosed(*this, false, reason);
      return;
    } else if (event == network::ConnectionEvent::kRemoteClose && decoder_ && response_started_) {
      // A response without length ends with the connection.
      if (auto err = parser_.onEof(); !err) {
        finishCloseAccounting(event);
        pool_.onClientClosed(*this, false, reason);
        return;
      }
    }
    if (decoder_) {
      failStream(connect_failed ? StreamResetReason::kConnectionFailure
                                : StreamResetReason::kConnectionTermination,
                 reason);
    }
    finishCloseAccounting(event);
    pool_.onClientClosed(*this, connect_failed, reason);
  }

  void onAboveWriteBufferHighWatermark() override {
    if (decoder_) decoder_->onAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    if (decoder_) decoder_->onBelowWriteBufferLowWatermark();
  }

  // http1::ParserCallbacks
  void onInformational(HeaderMap&& headers, const http1::MessageInfo& /*info*/) override {
    if (decoder_) decoder_->decode1xxHeaders(std::move(headers));
  }

  void onHeaders(HeaderMap&& headers, const http1::MessageInfo& info) override {
    if (!decoder_) return;
    if (info.upgrade) {
      if (!upgrade_request_) {
        // 101 to a request that asked for no upgrade: nothing sane follows.
        failStream(StreamResetReason::kProtocolError, "upstream_switched_protocols_unasked");
        connection_->close(network::ConnectionCloseType::kNoFlush);
        return;
      }
      upgraded_ = true;
      response_started_ = true;
      keep_alive_ = false;
      decoder_->decodeHeaders(std::move(headers), false);
      return;
    }
    response_started_ = true;
    keep_alive_ = keep_alive_ && info.keep_alive;
    response_has_body_ = info.has_body;
    decoder_->decodeHeaders(std::move(headers), !info.has_body);
  }

  void onBody(std::string_view data) override {
    if (!decoder_) return;
    network::Buffer b;
    b.add(data);
    decoder_->decodeData(b, false);
  }

  void onMessageComplete(HeaderMap&& trailers) override {
    if (upgraded_) return;  // the tunnel's response ends with the connection
    response_complete_ = true;
    ResponseDecoder* decoder = decoder_;
    // Detach first: the decoder may start the next request on this very
    // connection from inside its callback.
    decoder_ = nullptr;
    const bool has_body = response_has_body_;
    releaseIfDone();
    if (decoder == nullptr) return;
    if (!trailers.empty()) {
      decoder->decodeTrailers(std::move(trailers));
    } else if (has_body) {
      network::Buffer empty;
      decoder->decodeData(empty, true);
    }
  }

 private:
  void onRequestComplete() {
    request_complete_ = true;
    if (response_complete_) releaseIfDone();
  }

  void releaseIfDone() {
    if (!response_complete_ || state_ != State::kBusy) return;
    if (!request_complete_) {
      // The upstream answered before reading the whole request: the
      // connection's framing is unknown now.
      keep_alive_ = false;
    }
    const auto max = pool_.cluster_->max_requests_per_connection;
    if (max > 0 && requests_ >= max) {
      pool_.cluster_->stats->upstream_cx_max_requests.inc();
      keep_alive_ = false;
    }
    if (!keep_alive_ || pool_.draining_ || expired_) {
      decoder_ = nullptr;
      connection_->close(network::ConnectionCloseType::kNoFlush);
      return;
    }
    // A stream that paused reading (slow client) must not leave the
    // connection paused for the next one, or an idle close goes unseen.
    while (read_disables_ > 0) readDisable(false);
    if (idle_timer_) idle_timer_->enable(pool_.cluster_->idle_timeout);
    pool_.attachPendingOrIdle(*this);
  }

  void failStream(StreamResetReason reason, std::string_view details) {
    ResponseDecoder* decoder = decoder_;
    decoder_ = nullptr;
    if (decoder) decoder->onResetStream(reason, details);
  }

  void onIdleTimeout() {
    pool_.cluster_->stats->upstream_cx_idle_timeout.inc();
    connection_->close(network::ConnectionCloseType::kNoFlush);
  }

  // max_connection_duration: an idle connection closes now, a busy one after its request.
  void onMaxDuration() {
    pool_.cluster_->stats->upstream_cx_max_duration_reached.inc();
    expired_ = true;
    if (state_ == State::kReady) {
      connection_->close(network::ConnectionCloseType::kNoFlush);
    }
  }

  void finishCloseAccounting(network::ConnectionEvent event) {
    state_ = State::kClosed;
    if (idle_timer_) idle_timer_->disable();
    if (duration_timer_) duration_timer_->disable();
    recordConnectionClosed(
        *pool_.cluster_, *pool_.host_, event, connection_->bytesSent(),
        std::chrono::duration_cast<std::chrono::milliseconds>(pool_.loop_.now() - connect_start_));
  }

  Http1ConnPool& pool_;
  std::unique_ptr<network::Connection> connection_;
  http1::Parser parser_;
  std::unique_ptr<network::Timer> idle_timer_;
  std::unique_ptr<network::Timer> duration_timer_;  // max_connection_duration
  bool expired_ = false;                            // past max_connection_duration
  ResponseDecoder* decoder_ = nullptr;
  std::chrono::steady_clock::time_point connect_start_;
  State state_ = State::kConnecting;
  uint64_t requests_ = 0;
  int read_disables_ = 0;  // readDisable(true) calls not undone yet
  bool connected_ = false;
  bool reused_ = false;
  bool chunked_request_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool response_has_body_ = false;
  bool keep_alive_ = true;
  bool upgrade_request_ = false;  // the request asked to switch protocols (or is CONNECT)
  bool upgraded_ = false;         // and the upstream did: raw bytes both ways
};

// The ActiveClient is owned by one of the pool's lists; these helpers move
// it between them.
namespace {
template <class T>
typename std::list<std::unique_ptr<T>>::iterator findIn(std::list<std::unique_ptr<T>>& list,
                                                        const T& item) {
  return std::find_if(list.begin(), list.end(), [&](const auto& p) { return p.get() == &item; });
}
}  // namespace

Http1ConnPool::Http1ConnPool(network::EventLoop& loop, HostSharedPtr host,
                             std::shared_ptr<const ClusterInfo> cluster)
    : loop_(loop), host_(std::move(host)), cluster_(std::move(cluster)) {}

Http1ConnPool::~Http1ConnPool() {
  for (size_t i = 0; i < pending_.size(); ++i) {
    cluster_->resources->pending_requests.dec();
    cluster_->stats->upstream_rq_pending_active.dec();
  }
  // Clients close their connections in their destructors; the close events
  // must not reach a pool that is going away.
  auto destroy = [&](std::list<std::unique_ptr<ActiveClient>>& list) {
    for (auto& c : list) {
      if (c->state() != ActiveClient::State::kClosed) {
        c->setState(ActiveClient::State::kClosed);
        cluster_->stats->upstream_cx_active.dec();
        cluster_->resources->connections.dec();
        host_->stats().cx_active.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    list.clear();
  };
  destroy(connecting_);
  destroy(ready_);
  destroy(busy_);
}

Cancellable* Http1ConnPool::newStream(ResponseDecoder& decoder, PoolCallbacks& callbacks) {
  // A connection closing (idle timeout) waits in busy_ for its close event.
  while (!ready_.empty() && !ready_.front()->open()) {
    busy_.splice(busy_.end(), ready_, ready_.begin());
  }
  if (!ready_.empty()) {
    auto& client = *ready_.front();
    busy_.splice(busy_.end(), ready_, ready_.begin());
    attach(client, decoder, callbacks);
    return nullptr;
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
  // One connection per waiting request, within max_connections; over the
  // limit the request waits for a connection to free up.
  if (connecting_.size() < pending_.size()) {
    if (cluster_->resources->connections.canCreate()) {
      createClient();
    } else {
      cluster_->stats->upstream_cx_overflow.inc();
      if (ready_.empty() && busy_.empty() && connecting_.empty()) {
        // Nothing will ever free up for this request on this worker.
        auto pending = std::move(pending_.back());
        pending_.pop_back();
        cluster_->resources->pending_requests.dec();
        cluster_->stats->upstream_rq_pending_active.dec();
        callbacks.onPoolFailure(PoolFailureReason::kOverflow, "overflow", host_);
        return nullptr;
      }
    }
  }
  return handle;
}

void Http1ConnPool::createClient() { connecting_.push_back(std::make_unique<ActiveClient>(*this)); }

void Http1ConnPool::attach(ActiveClient& client, ResponseDecoder& decoder,
                           PoolCallbacks& callbacks) {
  client.attach(decoder);
  callbacks.onPoolReady(client, host_);
}

void Http1ConnPool::onClientReady(ActiveClient& client) {
  auto it = findIn(connecting_, client);
  if (it == connecting_.end()) return;
  client.setState(ActiveClient::State::kReady);
  ready_.splice(ready_.end(), connecting_, it);
  attachPendingOrIdle(client);
}

void Http1ConnPool::attachPendingOrIdle(ActiveClient& client) {
  auto it = findIn(busy_, client);
  if (it != busy_.end()) {
    client.setState(ActiveClient::State::kReady);
    ready_.splice(ready_.end(), busy_, it);
  }
  if (pending_.empty()) return;
  auto pending = std::move(pending_.front());
  pending_.pop_front();
  cluster_->resources->pending_requests.dec();
  cluster_->stats->upstream_rq_pending_active.dec();
  auto rit = findIn(ready_, client);
  busy_.splice(busy_.end(), ready_, rit);
  attach(client, pending->decoder, pending->callbacks);
}

void Http1ConnPool::onClientClosed(ActiveClient& client, bool connect_failed,
                                   std::string_view reason) {
  std::unique_ptr<ActiveClient> owned;
  for (auto* list : {&connecting_, &ready_, &busy_}) {
    auto it = findIn(*list, client);
    if (it != list->end()) {
      owned = std::move(*it);
      list->erase(it);
      break;
    }
  }
  if (connect_failed) {
    // Requests waiting beyond what the remaining connection attempts can
    // serve fail now, with the reason of this failure.
    while (pending_.size() > connecting_.size() + ready_.size()) {
      auto pending = std::move(pending_.back());
      pending_.pop_back();
      cluster_->resources->pending_requests.dec();
      cluster_->stats->upstream_rq_pending_active.dec();
      cluster_->stats->upstream_rq_pending_failure_eject.inc();
      pending->callbacks.onPoolFailure(PoolFailureReason::kConnectionFailure, reason, host_);
    }
  } else if (!pending_.empty() && connecting_.size() < pending_.size() &&
             cluster_->resources->connections.canCreate() && !draining_) {
    createClient();
  }
  if (owned) {
    // The client is on the call stack (this runs from its close event).
    loop_.deferredDelete(std::move(owned));
  }
}

void Http1ConnPool::cancelPending(PendingStream& pending) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return p.get() == &pending; });
  if (it == pending_.end()) return;
  pending_.erase(it);
  cluster_->resources->pending_requests.dec();
  cluster_->stats->upstream_rq_pending_active.dec();
  cluster_->stats->upstream_rq_cancelled.inc();
}

void Http1ConnPool::drainConnections() {
  draining_ = true;
  // Idle connections close now (their close events remove them); busy ones
  // close when their response is done.
  for (auto& c : ready_) c->closeNow();
  busy_.splice(busy_.end(), ready_);
}

bool Http1ConnPool::idle() const {
  return connecting_.empty() && busy_.empty() && pending_.empty();
}

}  // namespace sheave::upstream
