#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/random.h"
#include "proxy/filters/tcp_proxy/tcp_proxy.h"
#include "proxy/http/connection_manager.h"
#include "proxy/network/event_loop.h"
#include "proxy/network/tcp_listener.h"
#include "proxy/server/listener_config.h"
#include "proxy/upstream/cluster_manager.h"

namespace sheave::server {

// One worker thread: its own event loop, its own accept socket per listener
// (SO_REUSEPORT spreads connections across workers in the kernel), its own
// connection pools and load balancers. A connection never leaves the worker
// that accepted it, so the request path takes no lock.
class Worker : public http::ConnectionManagerHost, public tcp_proxy::TcpProxySession::Host {
 public:
  explicit Worker(uint32_t index);
  ~Worker() override;

  // Before start(), on the main thread: binds this worker's socket for the
  // listener and returns the bound address (port 0 picks one).
  Result<Address> addListener(std::shared_ptr<const ListenerConfig> config, const Address& bind);
  void start(upstream::ClusterManager& clusters);
  // Thread-safe. Stop accepting, then ask every connection to finish.
  void drain();
  void stop();
  // Thread-safe: connections this worker still has.
  size_t activeConnections() const { return active_.load(std::memory_order_relaxed); }

  network::EventLoop& loop() { return loop_; }

  // http::ConnectionManagerHost / tcp_proxy::TcpProxySession::Host
  RandomGenerator& random() override { return random_; }
  bool draining() const override { return draining_; }
  void onConnectionManagerClosed(http::ConnectionManager& manager) override;
  void onSessionClosed(tcp_proxy::TcpProxySession& session) override;

 private:
  struct ActiveListener {
    std::shared_ptr<const ListenerConfig> config;
    std::unique_ptr<network::TcpListener> listener;
  };
  struct Session {
    std::unique_ptr<network::DeferredDeletable> owner;
    const ListenerConfig* listener;
  };

  void onAccept(const ListenerConfig& config, int fd, const Address& local, const Address& remote);
  void removeSession(void* key);

  const uint32_t index_;
  network::EventLoop loop_;
  RandomGenerator random_;
  upstream::ThreadLocalClusterManager clusters_;
  std::vector<ActiveListener> listeners_;
  std::unordered_map<void*, Session> sessions_;
  std::atomic<size_t> active_{0};
  bool draining_ = false;
  std::thread thread_;
};

}  // namespace sheave::server
