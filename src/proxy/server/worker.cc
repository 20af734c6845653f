#include "proxy/server/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <optional>

#include "common/logging.h"
#include "proxy/network/listener_filters/http_inspector.h"
#include "proxy/network/listener_filters/original_dst.h"
#include "proxy/network/listener_filters/tls_inspector.h"

namespace sheave::server {

// Runs a listener's listener filters on one accepted socket: original_dst at once, the
// inspectors on bytes read with MSG_PEEK (so the transport socket later reads the same bytes
// from the kernel), bounded by listener_filters_timeout. Then either hands the socket to the
// listener owning its original destination (use_original_dst; that listener's own filters run
// next) or starts the connection on the matching filter chain.
class Worker::PendingSocket : public network::DeferredDeletable {
 public:
  PendingSocket(Worker& worker, std::shared_ptr<const ListenerConfig> config, int fd,
                const Address& local, const Address& remote)
      : worker_(worker), config_(std::move(config)), fd_(fd), local_(local), remote_(remote) {}

  ~PendingSocket() override {
    // Off epoll before the fd closes.
    file_event_.reset();
    if (fd_ >= 0) ::close(fd_);
    if (counted_) config_->stats->downstream_pre_cx_active.dec();
  }

  // May finish (and schedule this object's deletion) before it returns. Runs again for the
  // listener the socket is handed over to.
  void start() {
    destination_ = local_;
    index_ = 0;
    fed_ = 0;
    peeked_ = 0;
    peer_closed_ = false;
    tls_.reset();
    http_.reset();
    config_->stats->downstream_pre_cx_active.inc();
    counted_ = true;
    const bool needs_data = config_->hasListenerFilter(ListenerFilterKind::kTlsInspector) ||
                            config_->hasListenerFilter(ListenerFilterKind::kHttpInspector);
    if (needs_data) {
      if (config_->listener_filters_timeout.count() > 0) {
        if (!timer_) timer_ = worker_.loop_.createTimer([this] { onTimeout(); });
        timer_->enable(config_->listener_filters_timeout);
      }
      // What the peer already sent (a client usually writes right after connecting).
      peek();
    }
    runFilters();
  }

 private:
  void runFilters() {
    const auto& filters = config_->listener_filters;
    while (index_ < filters.size()) {
      if (config_->listenerFilterDisabled(index_, destination_)) {
        next();
        continue;
      }
      switch (filters[index_]) {
        case ListenerFilterKind::kOriginalDst: {
          // Without a NAT entry (no iptables redirect) the connection keeps its local address,
          // which is what its original destination was.
          auto original = originalDestination(fd_);
          if (original.ok()) destination_ = *original;
          next();
          continue;
        }
        case ListenerFilterKind::kHttpInspector:
          // Envoy skips it once another filter found a transport other than raw_buffer.
          if (!transport_protocol_.empty() && transport_protocol_ != "raw_buffer") {
            next();
            continue;
          }
          if (!http_) http_.emplace();
          break;
        case ListenerFilterKind::kTlsInspector:
          if (!tls_) tls_.emplace(config_->max_client_hello_size);
          break;
      }
      if (!inspect()) return;  // waiting for bytes, or closed
      next();
    }
    finish();
  }

  // Feeds the current inspector the peeked bytes it has not seen; true once it decided.
  bool inspect() {
    std::string_view peeked(worker_.peek_buffer_.data(), peeked_);
    std::string_view fresh = peeked.substr(fed_);
    fed_ = peeked_;
    auto& fstats = *config_->filter_stats;
    if (tls_ && config_->listener_filters[index_] == ListenerFilterKind::kTlsInspector) {
      switch (tls_->onData(fresh)) {
        case TlsInspector::State::kNeedMoreData:
          return waitForData();
        case TlsInspector::State::kTls:
          fstats.tls_found.inc();
          transport_protocol_ = TlsInspector::kTransportProtocol;
          server_name_ = tls_->serverName();
          application_protocols_ = tls_->applicationProtocols();
          (server_name_.empty() ? fstats.sni_not_found : fstats.sni_found).inc();
          (application_protocols_.empty() ? fstats.alpn_not_found : fstats.alpn_found).inc();
          return true;
        case TlsInspector::State::kNotTls:
          fstats.tls_not_found.inc();
          return true;
        case TlsInspector::State::kClientHelloTooLarge:
          fstats.client_hello_too_large.inc();
          config_->stats->downstream_listener_filter_error.inc();
          close();
          return false;
      }
    }
    switch (http_->onData(fresh)) {
      case HttpInspector::State::kNeedMoreData:
        return waitForData();
      case HttpInspector::State::kHttp1:
        (http_->applicationProtocol() == "http/1.1" ? fstats.http11_found : fstats.http10_found)
            .inc();
        application_protocols_ = {std::string(http_->applicationProtocol())};
        return true;
      case HttpInspector::State::kHttp2:
        fstats.http2_found.inc();
        application_protocols_ = {std::string(http_->applicationProtocol())};
        return true;
      case HttpInspector::State::kNotHttp:
        fstats.http_not_found.inc();
        return true;
    }
    return true;
  }

  void next() {
    ++index_;
    fed_ = 0;
  }

  // The inspector needs more bytes than the peer has sent so far.
  bool waitForData() {
    if (peer_closed_) {
      // The peer finished (or failed) before the listener filters could decide.
      if (http_ && config_->listener_filters[index_] == ListenerFilterKind::kHttpInspector) {
        config_->filter_stats->read_error.inc();
      }
      close();
      return false;
    }
    // Edge-triggered: peeked bytes stay readable, so only new bytes may wake us up.
    if (!file_event_) {
      file_event_ = worker_.loop_.createFileEvent(
          fd_, [this](uint32_t ready) { onReady(ready); }, network::kRead | network::kClosed,
          network::FileTriggerType::kEdge);
    } else {
      file_event_->setEnabled(network::kRead | network::kClosed);
    }
    return false;
  }

  void peek() {
    auto& buffer = worker_.peek_buffer_;
    if (buffer.size() < kPeekSize) buffer.resize(kPeekSize);
    ssize_t n;
    do {
      n = ::recv(fd_, buffer.data(), buffer.size(), MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      peeked_ = static_cast<size_t>(n);
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      peer_closed_ = true;
    }
  }

  void onReady(uint32_t ready) {
    peek();
    if ((ready & network::kClosed) != 0) peer_closed_ = true;
    if (fed_ >= peeked_ && !peer_closed_) return;  // nothing new
    if (!inspect()) return;
    next();
    runFilters();
  }

  void stopWatching() {
    if (timer_) timer_->disable();
    // Off epoll, so the connection (or the next listener) can watch the fd; the object itself
    // goes with this one, never from inside its own callback.
    if (file_event_) file_event_->setEnabled(0);
  }

  void onTimeout() {
    config_->stats->downstream_pre_cx_timeout.inc();
    if (!config_->continue_on_listener_filters_timeout) {
      close();
      return;
    }
    // Go on with what the filters found so far; original_dst later in the list still runs.
    const auto& filters = config_->listener_filters;
    for (++index_; index_ < filters.size(); ++index_) {
      if (filters[index_] == ListenerFilterKind::kOriginalDst) {
        auto original = originalDestination(fd_);
        if (original.ok()) destination_ = *original;
      }
    }
    finish();
  }

  void finish() {
    stopWatching();
    if (config_->use_original_dst && !handed_off_) {
      ActiveListener* owner = worker_.originalDstOwner(destination_, config_.get());
      if (owner != nullptr) {
        // The owner sees the original destination as the local address and runs its own
        // listener filters; it does not hand the socket on again.
        config_->stats->downstream_pre_cx_active.dec();
        counted_ = false;
        config_ = owner->config;
        handed_off_ = true;
        local_ = destination_;
        start();
        return;
      }
    }
    ConnectionView view;
    view.destination = destination_;
    view.source = remote_;
    view.server_name = server_name_;
    view.transport_protocol = transport_protocol_;
    view.application_protocols = application_protocols_;
    const int fd = fd_;
    fd_ = -1;
    worker_.startConnection(config_, fd, destination_, remote_, view);
    worker_.finishPending(*this);
  }

  void close() {
    stopWatching();
    worker_.finishPending(*this);
  }

  // Envoy's tls_inspector reads at most this much; http_inspector decides within 8 KiB.
  static constexpr size_t kPeekSize = TlsInspector::kMaxClientHelloSize;

  Worker& worker_;
  std::shared_ptr<const ListenerConfig> config_;
  int fd_;
  Address local_;
  Address remote_;
  Address destination_;
  bool counted_ = false;
  bool handed_off_ = false;
  bool peer_closed_ = false;
  size_t index_ = 0;   // the listener filter running now
  size_t fed_ = 0;     // peeked bytes the current inspector has seen
  size_t peeked_ = 0;  // bytes the last MSG_PEEK returned
  std::optional<TlsInspector> tls_;
  std::optional<HttpInspector> http_;
  std::string transport_protocol_;
  std::string server_name_;
  std::vector<std::string> application_protocols_;
  std::unique_ptr<network::FileEvent> file_event_;
  std::unique_ptr<network::Timer> timer_;
};

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
  if (config->bind_to_port) {
    auto listener = network::TcpListener::create(
        loop_, bind, /*reuse_port=*/true,
        [this, raw](int fd, const Address& local, const Address& remote) {
          onAccept(*raw, fd, local, remote);
        });
    if (!listener.ok()) {
      return std::move(listener).error().at("listener '" + config->name + "' on " +
                                            bind.asString());
    }
    active->address = (*listener)->boundAddress();
    active->listener = std::move(listener).value();
  } else {
    active->address = bind;
  }
  Address bound = active->address;
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
    pending_.clear();
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
    // Sockets still in their listener filters are not connections yet: close them.
    for (auto& [key, socket] : pending_) loop_.deferredDelete(std::move(socket));
    pending_.clear();
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
  if (!listener.config->needsListenerFilters()) {
    ConnectionView view;
    view.destination = local;
    view.source = remote;
    startConnection(listener.config, fd, local, remote, view);
    return;
  }
  auto socket = std::make_unique<PendingSocket>(*this, listener.config, fd, local, remote);
  PendingSocket* raw = socket.get();
  pending_.emplace(raw, std::move(socket));
  raw->start();
}

void Worker::finishPending(PendingSocket& socket) {
  auto it = pending_.find(&socket);
  if (it == pending_.end()) return;
  // It is on the call stack.
  loop_.deferredDelete(std::move(it->second));
  pending_.erase(it);
}

Worker::ActiveListener* Worker::originalDstOwner(const Address& destination,
                                                 const ListenerConfig* accepting) {
  ActiveListener* exact = nullptr;
  ActiveListener* wildcard = nullptr;
  for (auto& [name, active] : listeners_) {
    if (active->config.get() == accepting) continue;
    const Address& address = active->address;
    if (address == destination) {
      if (exact == nullptr || !active->config->bind_to_port) exact = active.get();
    } else if (wildcard == nullptr && address.isAnyAddress() &&
               address.port() == destination.port() && address.family() == destination.family()) {
      wildcard = active.get();
    }
  }
  return exact != nullptr ? exact : wildcard;
}

void Worker::startConnection(const std::shared_ptr<const ListenerConfig>& config, int fd,
                             const Address& local, const Address& remote,
                             const ConnectionView& view) {
  const FilterChainConfig* chain = config->selectChain(view);
  if (chain == nullptr) {
    // Debug only: a scanner hitting a listener must not flood the log.
    SHEAVE_LOG_DEBUG("listener '{}': no filter chain matches {} -> {} (sni '{}', transport '{}')",
                     config->name, remote.asString(), local.asString(), view.server_name,
                     view.transport_protocol);
    config->stats->no_filter_chain_match.inc();
    ::close(fd);
    return;
  }
  const auto& tls = chain->transport_socket_factory;
  auto connection = network::Connection::createServer(loop_, fd, local, remote,
                                                      tls ? tls->createTransportSocket() : nullptr);
  connection->setBufferLimits(config->per_connection_buffer_limit_bytes);
  config->stats->downstream_cx_total.inc();
  config->stats->downstream_cx_active.inc();
  active_.fetch_add(1, std::memory_order_relaxed);
  if (chain->http) {
    auto hcm =
        std::make_unique<http::ConnectionManager>(chain->http, std::move(connection), loop_, *this);
    void* key = hcm.get();
    sessions_[key] = Session{std::move(hcm), config};
  } else {
    auto session = std::make_unique<tcp_proxy::TcpProxySession>(chain->tcp, std::move(connection),
                                                                loop_, clusters_, *this);
    void* key = session.get();
    sessions_[key] = Session{std::move(session), config};
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
