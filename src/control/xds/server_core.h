#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "control/xds/push_debouncer.h"
#include "control/xds/resource_provider.h"
#include "control/xds/xds_server.h"
#include "control/xds/xds_status.h"

namespace sheave::control::xds {

// What the push thread sees of a stream, whichever protocol it speaks.
class StreamBase {
 public:
  virtual ~StreamBase() = default;
  // Push thread: handle the waiting request, then the waiting push.
  virtual void process() = 0;
  // Push thread: a push round started; merge it into this stream's pending push.
  virtual void notePush(const PushRequest& request) = 0;
  // Any thread.
  virtual ConnectionStatus status() const = 0;
};

// State shared by the gRPC service, the streams and the push thread. Streams
// hold it by shared_ptr, so it outlives the last of them.
class ServerCore {
 public:
  ServerCore(ResourceProvider& provider, XdsOptions options);

  ResourceProvider& provider() { return provider_; }
  const XdsOptions& options() const { return options_; }

  void startPushThread();
  void stopPushThread();
  bool stopping() const { return stopping_.load(); }

  // Thread-safe: hands a request to the debouncer.
  void push(PushRequest request);
  // Puts a stream on the push thread's queue; the stream guarantees it is
  // queued at most once, which bounds the queue by the number of streams.
  void enqueue(std::shared_ptr<StreamBase> stream);

  // Per-peer stream accounting; false when the peer is at its limit.
  bool admit(const std::string& peer_ip);
  void release(const std::string& peer_ip);

  uint64_t addStream(std::weak_ptr<StreamBase> stream);
  void removeStream(uint64_t id);

  std::string nextNonce();

  template <typename F>
  void updateStats(F&& f) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    f(stats_);
  }
  XdsStats stats() const;
  std::vector<ConnectionStatus> connections() const;

 private:
  void run();
  void startPush(const PushRequest& request);

  ResourceProvider& provider_;
  const XdsOptions options_;

  std::mutex push_mu_;
  std::condition_variable push_cv_;
  PushDebouncer debouncer_;
  std::deque<std::shared_ptr<StreamBase>> ready_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  mutable std::mutex streams_mu_;
  std::map<uint64_t, std::weak_ptr<StreamBase>> streams_;
  std::unordered_map<std::string, size_t> per_peer_;
  uint64_t next_stream_id_ = 1;

  std::atomic<uint64_t> next_nonce_{1};
  std::string nonce_prefix_;

  mutable std::mutex stats_mu_;
  XdsStats stats_;
};

}  // namespace sheave::control::xds
