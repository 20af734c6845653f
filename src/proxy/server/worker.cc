#include "proxy/server/worker.h"

#include "common/logging.h"

namespace sheave::server {

Worker::Worker(uint32_t index) : index_(index), clusters_(loop_, random_) {}

Worker::~Worker() { stop(); }

Result<Address> Worker::addListener(std::shared_ptr<const ListenerConfig> config,
                                    const Address& bind) {
  const ListenerConfig* raw = config.get();
  auto listener = network::TcpListener::create(
      loop_, bind, /*reuse_port=*/true,
      [this, raw](int fd, const Address& local, const Address& remote) {
        onAccept(*raw, fd, local, remote);
      });
  if (!listener.ok()) {
    return std::move(listener).error().at("listener '" + config->name + "' on " + bind.asString());
  }
  Address bound = (*listener)->boundAddress();
  listeners_.push_back(ActiveListener{std::move(config), std::move(listener).value()});
  return bound;
}

void Worker::start(upstream::ClusterManager& clusters) {
  clusters.registerWorker(clusters_);
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

void Worker::onAccept(const ListenerConfig& config, int fd, const Address& local,
                      const Address& remote) {
  if (draining_) {
    ::close(fd);
    return;
  }
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
    sessions_[key] = Session{std::move(hcm), &config};
  } else {
    auto session = std::make_unique<tcp_proxy::TcpProxySession>(config.tcp, std::move(connection),
                                                                loop_, clusters_, *this);
    void* key = session.get();
    sessions_[key] = Session{std::move(session), &config};
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
