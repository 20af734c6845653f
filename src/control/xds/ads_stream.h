#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/logging.h"
#include "control/xds/server_core.h"
#include "control/xds/type_urls.h"
#include "google/rpc/status.pb.h"

namespace sheave::control::xds {

// "ipv4:127.0.0.1:5000" -> ("127.0.0.1:5000", "127.0.0.1"); "ipv6:[::1]:5000" -> ("[::1]:5000",
// "::1").
std::pair<std::string, std::string> splitPeer(const std::string& grpc_peer);
grpc::Status toGrpcStatus(const Error& error);
// What the caller proved: the client certificate gRPC's TLS layer verified, and a bearer token.
PeerCredentials peerCredentials(const grpc::ServerContextBase& ctx, std::string address);
uint64_t hashResource(const google::protobuf::Any& resource);

// Per-type bookkeeping both protocols share: what was sent, what was
// answered. Written by the push thread under the stream's state mutex.
struct TypeBook {
  uint64_t version = 0;  // last version_info handed out, monotonic per connection and type
  std::string sent_version;
  std::string sent_nonce;
  std::string acked_version;
  bool nacked = false;
  bool nack_logged = false;
  std::string last_nack;
  uint64_t nacks = 0;
  bool awaiting_ack = false;
  std::chrono::steady_clock::time_point
      push_start{};  // earliest change the unACKed responses carry
};

// One ADS stream over gRPC's callback API. gRPC threads only move messages
// in and out (OnReadDone queues the request, OnWriteDone starts the next
// write); the protocol work (requests, pushes, provider calls) runs on the
// push thread in process(). The stream holds at most one unprocessed request
// and reads the next one only when its write queue is short, so a client that
// floods requests or never reads is slowed by gRPC flow control instead of
// growing our memory. Pushes coalesce into one pending PushRequest that is
// generated only when the previous responses have left, so a slow proxy
// gets the newest state, never a backlog.
template <typename Request, typename Response>
class AdsStream : public grpc::ServerBidiReactor<Request, Response>,
                  public StreamBase,
                  public std::enable_shared_from_this<AdsStream<Request, Response>> {
 public:
  using Clock = std::chrono::steady_clock;

  AdsStream(std::shared_ptr<ServerCore> core, grpc::CallbackServerContext* ctx, bool delta)
      : core_(std::move(core)), delta_(delta), connected_at_(std::chrono::system_clock::now()) {
    std::tie(peer_, peer_ip_) = splitPeer(ctx->peer());
    credentials_ = peerCredentials(*ctx, peer_);
  }

  // Right after make_shared, before gRPC gets the reactor.
  void start() {
    std::lock_guard<std::mutex> lock(io_mu_);
    self_ = this->shared_from_this();
    core_->updateStats([](XdsStats& s) { s.total_connections++; });
    if (!core_->admit(peer_ip_)) {
      SHEAVE_LOG_WARN("xds: rejecting a stream from {}: over the limit of {} streams per peer",
                      peer_, core_->options().max_streams_per_peer);
      core_->updateStats([](XdsStats& s) { s.rejected_streams++; });
      closed_ = true;
      finish_called_ = true;
      this->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "too many xDS streams from this peer"));
      return;
    }
    admitted_ = true;
    id_ = core_->addStream(this->weak_from_this());
    maybeStartReadLocked();
  }

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(io_mu_);
    reading_ = false;
    if (!ok) {
      // The client half-closed or went away.
      closeLocked(grpc::Status::OK);
      return;
    }
    if (closed_) {
      return;
    }
    inbox_.emplace(std::move(read_buf_), Clock::now());
    read_buf_.Clear();
    scheduleLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(io_mu_);
    writing_ = false;
    outbox_.pop_front();
    if (finish_pending_) {
      finishLocked(*finish_pending_);
      return;
    }
    if (!ok) {
      closeLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    if (!outbox_.empty()) {
      writing_ = true;
      this->StartWrite(&outbox_.front());
      return;
    }
    if (pending_push_) {
      scheduleLocked();
    }
    maybeStartReadLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(io_mu_);
    closeLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    std::shared_ptr<StreamBase> self;  // dies last, after the lock is released
    {
      std::lock_guard<std::mutex> lock(io_mu_);
      self = std::move(self_);
      closed_ = true;
      inbox_.reset();
      pending_push_.reset();
      outbox_.clear();
    }
    if (admitted_) {
      core_->removeStream(id_);
      core_->release(peer_ip_);
    }
    if (connected_.load()) {
      core_->updateStats([](XdsStats& s) { s.connected_proxies--; });
      SHEAVE_LOG_DEBUG("xds: {} disconnected ({})", proxy_id_, peer_);
    }
  }

  void process() final {
    std::optional<std::pair<Request, Clock::time_point>> request;
    std::optional<PushRequest> push;
    {
      std::lock_guard<std::mutex> lock(io_mu_);
      queued_ = false;
      if (closed_) {
        return;
      }
      request = std::move(inbox_);
      inbox_.reset();
      if (pending_push_ && outbox_.empty() && connected_.load()) {
        push = std::move(pending_push_);
        pending_push_.reset();
      }
    }
    if (request) {
      if (!connected_.load() && !connectProxy(request->first)) {
        return;
      }
      handleRequest(request->first, request->second);
    }
    if (push && !isClosed()) {
      auto started = Clock::now();
      handlePush(*push);
      double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      core_->updateStats([seconds](XdsStats& s) { s.push_time.record(seconds); });
    }
    std::lock_guard<std::mutex> lock(io_mu_);
    maybeStartReadLocked();
  }

  void notePush(const PushRequest& request) final {
    std::lock_guard<std::mutex> lock(io_mu_);
    if (closed_ || !connected_.load()) {
      return;  // a stream that is still connecting generates from the newest state anyway
    }
    if (pending_push_) {
      pending_push_->merge(request);
    } else {
      pending_push_ = request;
    }
    if (outbox_.empty()) {
      scheduleLocked();
    }
  }

  ConnectionStatus status() const final {
    ConnectionStatus out;
    out.connection_id = std::to_string(id_);
    out.peer = peer_;
    out.delta = delta_;
    out.connected_at = connected_at_;
    std::lock_guard<std::mutex> lock(state_mu_);
    out.proxy_id = proxy_id_;
    fillTypes(out.types);
    return out;
  }

 protected:
  // Push thread. The stream is connected (node known) when these run.
  virtual void handleRequest(Request& request, Clock::time_point received) = 0;
  virtual void handlePush(const PushRequest& push) = 0;
  // Under state_mu_.
  virtual void fillTypes(std::vector<TypeStatus>& types) const = 0;

  static void fillBook(const TypeBook& book, TypeStatus& t) {
    t.sent_version = book.sent_version;
    t.sent_nonce = book.sent_nonce;
    t.acked_version = book.acked_version;
    t.nacked = book.nacked;
    t.last_nack = book.last_nack;
    t.nacks = book.nacks;
  }

  // Queues a response; false when the stream is closing.
  bool send(Response response) {
    std::lock_guard<std::mutex> lock(io_mu_);
    if (closed_) {
      return false;
    }
    outbox_.push_back(std::move(response));
    if (!writing_) {
      writing_ = true;
      this->StartWrite(&outbox_.front());
    }
    return true;
  }

  void close(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(io_mu_);
    closeLocked(status);
  }

  bool isClosed() {
    std::lock_guard<std::mutex> lock(io_mu_);
    return closed_;
  }

  // A provider error ends this stream only.
  void failGeneration(std::string_view type_url, const Error& error) {
    SHEAVE_LOG_WARN("xds: closing the stream of {} ({}): generating {} failed: {}", proxy_id_,
                    peer_, shortTypeName(type_url), error.message());
    core_->updateStats([](XdsStats& s) { s.provider_errors++; });
    close(toGrpcStatus(error));
  }

  // Marks a response as sent with `nonce`. `push_start` is set for pushes:
  // their ACK measures convergence. An answer to a request measures only the
  // round trip, so it starts no measurement (but keeps one under way: its ACK
  // also confirms the state the earlier push carried). Call under state_mu_.
  void noteSent(TypeBook& book, const std::string& version, const std::string& nonce,
                std::optional<Clock::time_point> push_start) {
    book.sent_version = version;
    book.sent_nonce = nonce;
    if (push_start) {
      if (!book.awaiting_ack || *push_start < book.push_start) {
        book.push_start = *push_start;
      }
      book.awaiting_ack = true;
    }
  }

  // An answer to the latest response of a type. Call under state_mu_.
  void noteAnswer(TypeBook& book, std::string_view type_url, const google::rpc::Status* error,
                  Clock::time_point received) {
    if (error != nullptr) {
      book.nacked = true;
      book.nacks++;
      book.last_nack = error->message();
      book.awaiting_ack = false;
      core_->updateStats([&](XdsStats& s) { s.nacks[std::string(shortTypeName(type_url))]++; });
      if (!book.nack_logged) {
        // Once until the proxy accepts something again: a proxy that rejects
        // every push would otherwise fill the log.
        book.nack_logged = true;
        SHEAVE_LOG_WARN("xds: {} rejected {} version {}: {}", proxy_id_, shortTypeName(type_url),
                        book.sent_version, error->message());
      }
      return;
    }
    book.nacked = false;
    book.nack_logged = false;
    book.acked_version = book.sent_version;
    if (book.awaiting_ack) {
      book.awaiting_ack = false;
      double seconds = std::chrono::duration<double>(received - book.push_start).count();
      core_->updateStats([seconds](XdsStats& s) { s.convergence.record(seconds); });
    }
  }

  void countPush(std::string_view type_url) {
    core_->updateStats([&](XdsStats& s) { s.pushes[std::string(shortTypeName(type_url))]++; });
  }

  // Unknown types are logged once per stream and otherwise ignored, as
  // Istio does: no generator, no response, the stream stays up.
  bool checkType(const std::string& type_url) {
    if (isKnownType(type_url)) {
      return true;
    }
    core_->updateStats([](XdsStats& s) { s.unknown_type_requests++; });
    if (unknown_types_logged_.insert(type_url).second) {
      SHEAVE_LOG_WARN("xds: {} asked for unsupported type '{}'; ignored", proxy_id_, type_url);
    }
    return false;
  }

  std::shared_ptr<ServerCore> core_;
  std::shared_ptr<ProxyHandle> proxy_;  // push thread
  mutable std::mutex state_mu_;         // protocol state: push thread writes, status() reads
  std::string proxy_id_;
  PeerCredentials credentials_;  // until the first request

 private:
  // The first request names the proxy; without a node the stream is refused.
  bool connectProxy(const Request& request) {
    if (!request.has_node()) {
      SHEAVE_LOG_WARN("xds: closing a stream from {}: the first request has no node", peer_);
      core_->updateStats([](XdsStats& s) { s.rejected_streams++; });
      close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "missing node information"));
      return false;
    }
    auto handle = core_->provider().connect(request.node(), credentials_);
    credentials_ = {};  // the token is not needed again
    if (!handle.ok()) {
      SHEAVE_LOG_WARN("xds: closing a stream from {} (node '{}'): {}", peer_, request.node().id(),
                      handle.error().message());
      core_->updateStats([](XdsStats& s) { s.rejected_streams++; });
      const Error& e = handle.error();
      close(e.code() == ErrorCode::kInternal || e.code() == ErrorCode::kIo
                ? grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.message())
                : toGrpcStatus(e));
      return false;
    }
    proxy_ = std::move(handle).value();
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      proxy_id_ = request.node().id();
    }
    connected_ = true;
    core_->updateStats([](XdsStats& s) { s.connected_proxies++; });
    SHEAVE_LOG_DEBUG("xds: {} connected from {} ({})", proxy_id_, peer_, delta_ ? "delta" : "sotw");
    return true;
  }

  void scheduleLocked() {
    if (!queued_ && !closed_) {
      queued_ = true;
      core_->enqueue(self_);
    }
  }

  // Reads only while the previous request is handled and few responses wait,
  // so one stream's memory stays bounded whatever the client does.
  void maybeStartReadLocked() {
    static constexpr size_t kMaxQueuedResponses = 8;
    if (!closed_ && !reading_ && !inbox_ && outbox_.size() < kMaxQueuedResponses) {
      reading_ = true;
      this->StartRead(&read_buf_);
    }
  }

  void closeLocked(const grpc::Status& status) {
    if (closed_) {
      return;
    }
    closed_ = true;
    inbox_.reset();
    pending_push_.reset();
    if (writing_) {
      // gRPC wants the write finished first; OnWriteDone finishes the call.
      while (outbox_.size() > 1) {
        outbox_.pop_back();
      }
      finish_pending_ = status;
      return;
    }
    finishLocked(status);
  }

  void finishLocked(const grpc::Status& status) {
    if (finish_called_) {
      return;
    }
    finish_called_ = true;
    finish_pending_.reset();
    this->Finish(status);
  }

  const bool delta_;
  const std::chrono::system_clock::time_point connected_at_;
  std::string peer_;
  std::string peer_ip_;
  uint64_t id_ = 0;
  bool admitted_ = false;
  std::atomic<bool> connected_{false};
  std::set<std::string> unknown_types_logged_;  // push thread

  std::mutex io_mu_;
  std::shared_ptr<StreamBase> self_;  // the stream owns itself until OnDone
  Request read_buf_;
  bool reading_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool finish_called_ = false;
  bool queued_ = false;
  std::optional<grpc::Status> finish_pending_;
  std::optional<std::pair<Request, Clock::time_point>> inbox_;
  std::optional<PushRequest> pending_push_;
  std::deque<Response> outbox_;
};

}  // namespace sheave::control::xds
