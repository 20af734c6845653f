#include "proxy/server/worker.h"

#include <future>

#include "common/logging.h"

namespace sheave::server {

Worker::Worker(uint32_t index) : index_(index), clusters_(loop_, random_) {}

Worker::~Worker() { stop(); }

Result<Address> Worker::addListener(std::shared_ptr<const ListenerConfig> config,
                                    const Address& bind) {
  if (!started_) return bindListener(std::move(config), bind);
  // The socket's events belong to the worker's loop: make it there, and wait
  // (the worker never waits for the main thread, so this cannot deadlock).
  std::promise<Result<Address>> done;
  auto result = done.get_future();
  loop_.post([this, &done, config = std::move(config), bind]() mutable {
    done.set_value(bindListener(std::move(config), bind));
  });
  return result.get();
}

Result<Address> Worker::bindListener(std::shared_ptr<const ListenerConfig> config,
                                     const Address& bind) {
  auto active = std::make_unique<ActiveListener>();
  ActiveListener* raw = active.get();
  auto listener = network::TcpListener::create(
      loop_, bind, /*reuse_port=*/true,
      [this, raw](int fd, const Address& local, const Address& remote) {
        onAccept(*raw, fd, local, remote);
      });
  if (!listener.ok()) {
    return std::move(listener).error().at("listener '" + config->name + "' on " + bind.asString());
  }
  Address bound = (*listener)->boundAddress();
  active->listener = std::move(listener).value();
  std::string name = config->name;
  active->config = std::move(config);
  listeners_[name] = std::move(active);
  return bound;
}

void Worker::updateListener(std::shared_ptr<const ListenerConfig> config) {
  loop_.post([this, config = std::move(config)]() mutable {
    auto it = listeners_.find(config->name);
    if (it == listeners_.end()) return;
    auto old = std::move(it->second->config);
    it->second->config = std::move(config);
    drainSessionsOf(old.get());
  });
}

void Worker::removeListener(const std::string& name) {
  loop_.post([this, name] {
    auto it = listeners_.find(name);
    if (it == listeners_.end()) return;
    auto config = it->second->config;
    // Not from inside its own accept callback: this runs from the post queue.
    listeners_.erase(it);
    drainSessionsOf(config.get());
  });
}

void Worker::drainSessionsOf(const ListenerConfig* config) {
  std::vector<void*> keys;
  for (auto& [key, session] : sessions_) {
    if (session.listener.get() == config) keys.push_back(key);
  }
  for (void* key : keys) {
    auto it = sessions_.find(key);
    if (it == sessions_.end()) continue;
    if (auto* hcm = dynamic_cast<http::ConnectionManager*>(it->second.owner.get())) {
      hcm->startDrain();
    }
  }
}

void Worker::start(upstream::ClusterManager& clusters) {
  clusters.registerWorker(clusters_);
  started_ = true;
  thread_ = std::thread([this] {
    upstream::ThreadLocalClusterManager::setCurrent(&clusters_);
    loop_.run();
    // Connections die with the worker, on its own thread.
    sessions_.clear();
    listeners_.clear();
  });
}

void Worker::drain() {
  loop_.post([this] {
    draining_ = true;
    // Closing the sockets (not just pausing accept) makes new connections
    // fail at once instead of waiting in the kernel's backlog.
    listeners_.clear();
    // Copy the keys: a drained connection may close (and leave) at once.
    std::vector<void*> keys;
    keys.reserve(sessions_.size());
    for (auto& [key, session] : sessions_) keys.push_back(key);
    for (void* key : keys) {
      auto it = sessions_.find(key);
      if (it == sessions_.end()) continue;
      if (auto* hcm = dynamic_cast<http::ConnectionManager*>(it->second.owner.get())) {
        hcm->startDrain();
      }
    }
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  loop_.exit();
  thread_.join();
}

void Worker::onAccept(ActiveListener& listener, int fd, const Address& local,
                      const Address& remote) {
  if (draining_) {
    ::close(fd);
    return;
  }
  const ListenerConfig& config = *listener.config;
  const auto& tls = config.transport_socket_factory;
  auto connection = network::Connection::createServer(loop_, fd, local, remote,
                                                      tls ? tls->createTransportSocket() : nullptr);
  connection->setBufferLimits(config.per_connection_buffer_limit_bytes);
  config.stats->downstream_cx_total.inc();
  config.stats->downstream_cx_active.inc();
  active_.fetch_add(1, std::memory_order_relaxed);
  if (config.http) {
    auto hcm =
        std::make_unique<http::ConnectionManager>(config.http, std::move(connection), loop_, *this);
    void* key = hcm.get();
    sessions_[key] = Session{std::move(hcm), listener.config};
  } else {
    auto session = std::make_unique<tcp_proxy::TcpProxySession>(config.tcp, std::move(connection),
                                                                loop_, clusters_, *this);
    void* key = session.get();
    sessions_[key] = Session{std::move(session), listener.config};
  }
}

void Worker::removeSession(void* key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  it->second.listener->stats->downstream_cx_active.dec();
  it->second.listener->stats->downstream_cx_destroy.inc();
  active_.fetch_sub(1, std::memory_order_relaxed);
  // The session is on the call stack: delete it after this callback.
  loop_.deferredDelete(std::move(it->second.owner));
  sessions_.erase(it);
}

void Worker::onConnectionManagerClosed(http::ConnectionManager& manager) {
  removeSession(&manager);
}

void Worker::onSessionClosed(tcp_proxy::TcpProxySession& session) { removeSession(&session); }

}  // namespace sheave::server
