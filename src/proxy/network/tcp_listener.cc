#include "proxy/network/tcp_listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/logging.h"
#include "proxy/network/socket_options.h"

namespace sheave::network {

namespace {
// Accepts per readiness report; the level-triggered event reports again if more are queued, so
// other fds get a turn under a connection storm.
constexpr int kMaxAcceptsPerEvent = 64;
constexpr std::chrono::milliseconds kOutOfFdsBackoff{100};
}  // namespace

Result<std::unique_ptr<TcpListener>> TcpListener::create(EventLoop& loop, const Address& bind,
                                                         bool reuse_port, AcceptCallback on_accept,
                                                         int backlog) {
  if (bind.family() != AF_INET && bind.family() != AF_INET6) {
    return invalidArgument("listener address must be IPv4 or IPv6");
  }
  int fd = ::socket(bind.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ioError("socket() for " + bind.asString() + ": " + errnoReason(errno));
  auto fail = [&](const char* what) {
    int err = errno;
    ::close(fd);
    return ioError(std::string(what) + " " + bind.asString() + ": " + errnoReason(err));
  };
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return fail("SO_REUSEADDR on");
  }
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return fail("SO_REUSEPORT on");
  }
  if (bind.family() == AF_INET6) {
    // "[::]:80" means IPv6 only, as in Envoy; an IPv4 listener is configured separately.
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd, bind.sockAddr(), bind.len()) != 0) return fail("cannot bind");
  if (::listen(fd, backlog) != 0) return fail("cannot listen on");
  Address bound = Address::localOf(fd);
  return std::unique_ptr<TcpListener>(new TcpListener(loop, fd, bound, std::move(on_accept)));
}

TcpListener::TcpListener(EventLoop& loop, int fd, Address bound, AcceptCallback on_accept)
    : loop_(loop), fd_(fd), bound_(bound), on_accept_(std::move(on_accept)) {
  file_event_ = loop_.createFileEvent(
      fd_, [this](uint32_t) { onAcceptReady(); }, kRead, FileTriggerType::kLevel);
}

TcpListener::~TcpListener() {
  file_event_.reset();
  ::close(fd_);
}

void TcpListener::disable() {
  enabled_ = false;
  if (backoff_timer_) backoff_timer_->disable();
  file_event_->setEnabled(0);
}

void TcpListener::enable() {
  enabled_ = true;
  file_event_->setEnabled(kRead);
}

void TcpListener::onAcceptReady() {
  const bool wildcard = bound_.isAnyAddress();
  for (int i = 0; i < kMaxAcceptsPerEvent && enabled_; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    int fd =
        ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        SHEAVE_LOG_WARN("listener {}: accept failed ({}), pausing accepts for {} ms",
                        bound_.asString(), errnoReason(errno), kOutOfFdsBackoff.count());
        file_event_->setEnabled(0);
        if (!backoff_timer_) {
          backoff_timer_ = loop_.createTimer([this] {
            if (enabled_) file_event_->setEnabled(kRead);
          });
        }
        backoff_timer_->enable(kOutOfFdsBackoff);
        return;
      }
      SHEAVE_LOG_WARN("listener {}: accept failed: {}", bound_.asString(), errnoReason(errno));
      return;
    }
    setTcpNoDelay(fd);
    Address remote = Address::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), peer_len);
    // Behind a wildcard bind the local address is per connection (and original_dst needs it).
    if (wildcard) {
      Address local = Address::localOf(fd);
      on_accept_(fd, local, remote);
    } else {
      on_accept_(fd, bound_, remote);
    }
  }
}

}  // namespace sheave::network
