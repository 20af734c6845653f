#include "control/xds/server_core.h"

#include <fmt/format.h>

#include <random>

#include "common/logging.h"

namespace sheave::control::xds {

ServerCore::ServerCore(ResourceProvider& provider, XdsOptions options)
    : provider_(provider),
      options_(options),
      debouncer_(options.debounce_after, options.debounce_max) {
  // A prefix per server instance keeps nonces unique across restarts, so a
  // proxy reconnecting to a new instance never matches an old nonce by chance.
  std::random_device rd;
  nonce_prefix_ = fmt::format("{:08x}", rd());
}

void ServerCore::startPushThread() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ServerCore::stopPushThread() {
  {
    std::lock_guard<std::mutex> lock(push_mu_);
    stopping_ = true;
  }
  push_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  std::lock_guard<std::mutex> lock(push_mu_);
  ready_.clear();
}

void ServerCore::push(PushRequest request) {
  auto now = PushDebouncer::Clock::now();
  if (request.start == PushDebouncer::Clock::time_point{}) {
    request.start = now;
  }
  {
    std::lock_guard<std::mutex> lock(push_mu_);
    debouncer_.add(request, now);
  }
  push_cv_.notify_all();
}

void ServerCore::enqueue(std::shared_ptr<StreamBase> stream) {
  {
    std::lock_guard<std::mutex> lock(push_mu_);
    if (stopping_) {
      return;
    }
    ready_.push_back(std::move(stream));
  }
  push_cv_.notify_all();
}

void ServerCore::run() {
  std::unique_lock<std::mutex> lock(push_mu_);
  while (!stopping_) {
    auto now = PushDebouncer::Clock::now();
    // A due push goes first: its requests merge into streams still queued
    // from an earlier round, so nothing is generated twice.
    if (auto request = debouncer_.take(now)) {
      lock.unlock();
      startPush(*request);
      lock.lock();
      continue;
    }
    if (!ready_.empty()) {
      auto stream = std::move(ready_.front());
      ready_.pop_front();
      lock.unlock();
      stream->process();
      stream.reset();
      lock.lock();
      continue;
    }
    if (auto deadline = debouncer_.nextDeadline()) {
      push_cv_.wait_until(lock, *deadline);
    } else {
      push_cv_.wait(lock);
    }
  }
}

void ServerCore::startPush(const PushRequest& request) {
  SHEAVE_LOG_DEBUG("xds: push ({}, full={}, reason: {})", request.full ? "config" : "endpoints",
                   request.full, request.reason);
  provider_.beginPush(request);
  updateStats([](XdsStats& s) { s.push_rounds++; });
  std::vector<std::shared_ptr<StreamBase>> streams;
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams.reserve(streams_.size());
    for (auto& [id, weak] : streams_) {
      if (auto s = weak.lock()) {
        streams.push_back(std::move(s));
      }
    }
  }
  for (auto& s : streams) {
    s->notePush(request);
  }
}

bool ServerCore::admit(const std::string& peer_ip) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  size_t& n = per_peer_[peer_ip];
  if (options_.max_streams_per_peer != 0 && n >= options_.max_streams_per_peer) {
    if (n == 0) {
      per_peer_.erase(peer_ip);
    }
    return false;
  }
  n++;
  return true;
}

void ServerCore::release(const std::string& peer_ip) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  auto it = per_peer_.find(peer_ip);
  if (it != per_peer_.end() && --it->second == 0) {
    per_peer_.erase(it);
  }
}

uint64_t ServerCore::addStream(std::weak_ptr<StreamBase> stream) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  uint64_t id = next_stream_id_++;
  streams_.emplace(id, std::move(stream));
  return id;
}

void ServerCore::removeStream(uint64_t id) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  streams_.erase(id);
}

std::string ServerCore::nextNonce() {
  return fmt::format("{}-{}", nonce_prefix_, next_nonce_.fetch_add(1));
}

XdsStats ServerCore::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

std::vector<ConnectionStatus> ServerCore::connections() const {
  std::vector<std::shared_ptr<StreamBase>> streams;
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    for (const auto& [id, weak] : streams_) {
      if (auto s = weak.lock()) {
        streams.push_back(std::move(s));
      }
    }
  }
  std::vector<ConnectionStatus> out;
  out.reserve(streams.size());
  for (const auto& s : streams) {
    out.push_back(s->status());
  }
  return out;
}

}  // namespace sheave::control::xds
