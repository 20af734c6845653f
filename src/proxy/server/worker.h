#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
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

  // On the main thread: binds this worker's socket for the listener and
  // returns the bound address (port 0 picks one). Once the worker runs, the
  // socket is made on the worker's thread and the call waits for it. A
  // bind_to_port: false listener gets no socket: it only takes connections
  // handed over by a use_original_dst listener.
  Result<Address> addListener(std::shared_ptr<const ListenerConfig> config, const Address& bind);
  // Thread-safe. New connections get the new config (same name, same
  // address); HTTP connections of the old one drain.
  void updateListener(std::shared_ptr<const ListenerConfig> config);
  // Thread-safe. Closes the socket; the listener's HTTP connections drain.
  void removeListener(const std::string& name);
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
    std::unique_ptr<network::TcpListener> listener;  // null: bind_to_port false
    Address address;                                 // as bound (port 0 resolved)
  };
  // An accepted socket whose listener filters still run (Envoy's ActiveTcpSocket).
  class PendingSocket;
  friend class PendingSocket;
  struct Session {
    std::unique_ptr<network::DeferredDeletable> owner;
    std::shared_ptr<const ListenerConfig> listener;
  };

  Result<Address> bindListener(std::shared_ptr<const ListenerConfig> config, const Address& bind);
  void onAccept(ActiveListener& listener, int fd, const Address& local, const Address& remote);
  // The listener filters are done: picks the filter chain and starts the
  // connection on it, or closes the socket when no chain matches.
  void startConnection(const std::shared_ptr<const ListenerConfig>& config, int fd,
                       const Address& local, const Address& remote, const ConnectionView& view);
  // use_original_dst: the listener that owns `destination` (exact ip:port, a
  // bind_to_port: false one first, then 0.0.0.0:port / [::]:port), never
  // `accepting` itself; null when none does.
  ActiveListener* originalDstOwner(const Address& destination, const ListenerConfig* accepting);
  void finishPending(PendingSocket& socket);
  void removeSession(void* key);
  // Asks the HTTP connections accepted with `config` to finish (GOAWAY /
  // Connection: close); TCP sessions run to their end.
  void drainSessionsOf(const ListenerConfig* config);

  const uint32_t index_;
  network::EventLoop loop_;
  RandomGenerator random_;
  upstream::ThreadLocalClusterManager clusters_;
  // By name; a listener's object stays put while its socket lives (the accept
  // callback holds its address).
  std::map<std::string, std::unique_ptr<ActiveListener>, std::less<>> listeners_;
  bool started_ = false;
  std::unordered_map<void*, Session> sessions_;
  std::unordered_map<PendingSocket*, std::unique_ptr<PendingSocket>> pending_;
  // recv(MSG_PEEK) scratch, shared by this worker's pending sockets.
  std::string peek_buffer_;
  std::atomic<size_t> active_{0};
  bool draining_ = false;
  std::thread thread_;
};

}  // namespace sheave::server
