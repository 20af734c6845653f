#pragma once

#include <functional>
#include <memory>

#include "common/address.h"
#include "common/result.h"
#include "proxy/network/event_loop.h"

namespace sheave::network {

// A listening TCP socket on one loop. One per worker per listener with SO_REUSEPORT, so the kernel
// spreads connections across workers. Accepted fds are non-blocking with TCP_NODELAY set, and
// owned by on_accept. Do not destroy a listener from its own on_accept; use deferredDelete().
class TcpListener : public DeferredDeletable {
 public:
  using AcceptCallback = std::function<void(int fd, const Address& local, const Address& remote)>;

  // Binding port 0 picks a port: bind the first worker's listener with port 0, then the others to
  // that one's boundAddress().
  static Result<std::unique_ptr<TcpListener>> create(EventLoop& loop, const Address& bind,
                                                     bool reuse_port, AcceptCallback on_accept,
                                                     int backlog = 1024);
  ~TcpListener() override;
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  const Address& boundAddress() const { return bound_; }
  // Stop/start accepting (drain). While disabled the kernel still queues connections in the
  // backlog (and, with SO_REUSEPORT, may still hash new ones to this socket).
  void disable();
  void enable();
  bool enabled() const { return enabled_; }
  int fd() const { return fd_; }

 private:
  TcpListener(EventLoop& loop, int fd, Address bound, AcceptCallback on_accept);
  void onAcceptReady();

  EventLoop& loop_;
  int fd_;
  Address bound_;
  AcceptCallback on_accept_;
  std::unique_ptr<FileEvent> file_event_;
  std::unique_ptr<Timer> backoff_timer_;  // out of fds: pause instead of spinning
  bool enabled_ = true;
};

}  // namespace sheave::network
