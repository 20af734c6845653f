#include "proxy/network/connection_impl.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cerrno>

#include "proxy/network/raw_transport_socket.h"
#include "proxy/network/socket_options.h"

namespace sheave::network {

namespace {

std::atomic<uint64_t> g_next_connection_id{1};

// Without a buffer limit, one read event still stops after this much so a fast peer cannot keep
// the loop to itself.
constexpr size_t kDefaultReadCap = 1024 * 1024;

std::unique_ptr<TransportSocket> orRaw(std::unique_ptr<TransportSocket> socket) {
  if (socket) return socket;
  return std::make_unique<RawTransportSocket>();
}

std::string connectFailureReason(int err) {
  if (err == ETIMEDOUT) return "connect timeout";
  return errnoReason(err);
}

}  // namespace

std::unique_ptr<Connection> Connection::createServer(EventLoop& loop, int fd, Address local,
                                                     Address remote,
                                                     std::unique_ptr<TransportSocket> socket) {
  if (local.family() == AF_INET || local.family() == AF_INET6) setTcpNoDelay(fd);
  return std::make_unique<ConnectionImpl>(loop, fd, local, remote, orRaw(std::move(socket)),
                                          /*client=*/false);
}

std::unique_ptr<Connection> Connection::createClient(EventLoop& loop, const Address& remote,
                                                     std::unique_ptr<TransportSocket> socket) {
  int fd = ::socket(remote.empty() ? AF_INET : remote.family(),
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int socket_errno = fd < 0 ? errno : 0;
  if (fd >= 0) setTcpNoDelay(fd);
  auto conn = std::make_unique<ConnectionImpl>(loop, fd, Address(), remote,
                                               orRaw(std::move(socket)), /*client=*/true);
  conn->connect(socket_errno);
  return conn;
}

ConnectionImpl::ConnectionImpl(EventLoop& loop, int fd, Address local, Address remote,
                               std::unique_ptr<TransportSocket> socket, bool client)
    : loop_(loop),
      fd_(fd),
      local_(local),
      remote_(remote),
      transport_(std::move(socket)),
      id_(g_next_connection_id.fetch_add(1, std::memory_order_relaxed)) {
  transport_->setCallbacks(*this);
  deferred_ = loop_.createSchedulableCallback([this] { onDeferred(); });
  read_resume_ = loop_.createSchedulableCallback([this] { onReadReady(false); });
  connecting_ = client;
  if (fd_ >= 0) {
    file_event_ = loop_.createFileEvent(
        fd_, [this](uint32_t ready) { onFileReady(ready); }, kRead | kWrite | kClosed,
        FileTriggerType::kEdge);
  }
}

ConnectionImpl::~ConnectionImpl() {
  file_event_.reset();
  if (fd_ >= 0) {
    transport_->closeSocket(ConnectionEvent::kLocalClose);
    ::close(fd_);
  }
}

void ConnectionImpl::connect(int socket_errno) {
  int err = 0;
  if (fd_ < 0) {
    err = socket_errno != 0 ? socket_errno : EBADF;
  } else if (remote_.empty()) {
    err = EAFNOSUPPORT;
  } else if (::connect(fd_, remote_.sockAddr(), remote_.len()) == 0) {
    err = 0;
  } else if (errno == EINPROGRESS) {
    return;  // the outcome arrives as a write (or error) event
  } else {
    err = errno;
  }
  // Done (or failed) at once: report from the loop, after the caller has set its callbacks.
  connect_result_deferred_ = true;
  deferred_connect_errno_ = err;
  schedule(kPendingConnectResult);
}

void ConnectionImpl::setConnectTimeout(std::chrono::milliseconds timeout) {
  if (!connecting_ || timeout.count() <= 0) return;
  if (!connect_timer_) {
    connect_timer_ = loop_.createTimer([this] {
      if (!connecting_) return;
      failure_reason_ = "connect timeout";
      closeSocket(ConnectionEvent::kRemoteClose, /*deliver_now=*/true);
    });
  }
  connect_timer_->enable(timeout);
}

void ConnectionImpl::schedule(uint32_t pending) {
  pending_ |= pending;
  deferred_->scheduleCallbackCurrentIteration();
}

void ConnectionImpl::onDeferred() {
  uint32_t pending = pending_;
  pending_ = 0;
  if (pending & kPendingConnectResult) {
    connect_result_deferred_ = false;
    onConnectResult(deferred_connect_errno_);
  }
  if (state_ == State::kClosed) {
    if (pending & kPendingCloseEvent) deliverEvent(pending_close_event_);
    return;
  }
  if (pending & kPendingFlush) onWriteReady();
  if (state_ != State::kClosed && (pending & kPendingRead)) onReadReady(/*reoffer=*/true);
}

void ConnectionImpl::onFileReady(uint32_t ready) {
  if (ready & kClosed) peer_closed_hint_ = true;
  if (connecting_) {
    if (connect_result_deferred_) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && !(ready & kWrite)) return;  // not connected yet
    onConnectResult(err);
    if (state_ == State::kClosed) return;
  }
  if (ready & kWrite) onWriteReady();
  if (state_ == State::kClosed) return;
  const bool retry = retry_on_write_edge_ && (ready & kWrite);
  if (retry) retry_on_write_edge_ = false;
  if ((ready & (kRead | kClosed)) || retry) onReadReady(/*reoffer=*/false);
}

void ConnectionImpl::onConnectResult(int err) {
  if (!connecting_ || state_ == State::kClosed) return;
  if (connect_timer_) connect_timer_->disable();
  if (err != 0) {
    failure_reason_ = connectFailureReason(err);
    closeSocket(ConnectionEvent::kRemoteClose, /*deliver_now=*/true);
    return;
  }
  connecting_ = false;
  local_ = Address::localOf(fd_);
  transport_->onConnected();  // a raw socket raises kConnected here
  if (state_ == State::kClosed) return;
  if (!write_buffer_.empty() || write_end_stream_ || force_write_) onWriteReady();
  if (state_ == State::kClosed) return;
  // Bytes may have arrived with the handshake; edge-triggered, so look now.
  onReadReady(/*reoffer=*/false);
}

size_t ConnectionImpl::readCap() const {
  return buffer_limit_ > 0 ? buffer_limit_ : kDefaultReadCap;
}

bool ConnectionImpl::shouldDrainReadBuffer() { return read_buffer_.length() >= readCap(); }

void ConnectionImpl::setTransportSocketIsReadable() {
  if (state_ != State::kOpen) return;
  if (!transport_connected_ && fd_ >= 0) {
    // Before kConnected a transport holds no application bytes, so this is a handshake that could
    // not send (e.g. TLS wanting to write into a full socket buffer). Retrying every loop
    // iteration would spin until the peer reads; the edge-triggered write event says when it can
    // go on. A socket that is writable already retries at once, as below.
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, 0) == 0) {
      retry_on_write_edge_ = true;
      return;
    }
  }
  read_resume_->scheduleCallbackNextIteration();
}

void ConnectionImpl::flushWriteBuffer() {
  if (state_ == State::kClosed) return;
  force_write_ = true;
  if (!connecting_) schedule(kPendingFlush);
}

void ConnectionImpl::raiseEvent(ConnectionEvent event) {
  if (event == ConnectionEvent::kConnected) {
    transport_connected_ = true;
    retry_on_write_edge_ = false;
    deliverEvent(event);
    return;
  }
  closeSocket(event, /*deliver_now=*/true);
}

void ConnectionImpl::deliverEvent(ConnectionEvent event) {
  if (callbacks_ != nullptr) callbacks_->onEvent(event);
}

void ConnectionImpl::onReadReady(bool reoffer) {
  if (state_ != State::kOpen || connecting_ || read_disable_count_ > 0) return;
  if (read_end_stream_) {
    // Half-closed by the peer: nothing more to read, but resumed readers see leftovers again.
    if (reoffer && !read_buffer_.empty() && callbacks_ != nullptr) {
      callbacks_->onData(read_buffer_, true);
    }
    return;
  }

  IoResult r = transport_->doRead(read_buffer_);
  bytes_received_ += r.bytes;
  bool close_after = false;
  bool end_stream = false;
  if (r.failed()) {
    failure_reason_ = errnoReason(r.error);
    close_after = true;
  } else if (r.eof) {
    read_end_stream_ = true;
    if (half_close_) {
      end_stream = true;
    } else {
      close_after = true;
    }
  }

  if ((r.bytes > 0 || end_stream || (reoffer && !read_buffer_.empty())) && callbacks_ != nullptr) {
    callbacks_->onData(read_buffer_, end_stream);
    if (state_ == State::kClosed) return;  // closed from onData; its event is on its way
  }
  if (state_ == State::kClosing && !r.failed()) return;  // let the flush finish
  if (close_after) {
    closeSocket(ConnectionEvent::kRemoteClose, /*deliver_now=*/true);
    return;
  }
  if (read_end_stream_ && write_end_stream_ && write_buffer_.empty()) {
    closeSocket(ConnectionEvent::kRemoteClose, /*deliver_now=*/true);
    return;
  }
  if (!r.eof && r.error == 0) {
    // Stopped at the read cap, not at EAGAIN: the kernel will not signal the rest again.
    read_resume_->scheduleCallbackNextIteration();
  }
}

void ConnectionImpl::onWriteReady() {
  if (state_ == State::kClosed || connecting_) return;
  if (write_buffer_.empty() && !write_end_stream_ && !force_write_) return;  // spurious edge
  force_write_ = false;
  IoResult r = transport_->doWrite(write_buffer_, write_end_stream_);
  bytes_sent_ += r.bytes;
  if (r.failed()) {
    failure_reason_ = errnoReason(r.error);
    closeSocket(ConnectionEvent::kRemoteClose, /*deliver_now=*/true);
    return;
  }
  if (above_high_ && write_buffer_.length() <= buffer_limit_ / 2) {
    above_high_ = false;
    if (callbacks_ != nullptr) callbacks_->onBelowWriteBufferLowWatermark();
    if (state_ == State::kClosed) return;
  }
  if (!write_buffer_.empty()) return;  // wait for the next write edge
  if (state_ == State::kClosing || (write_end_stream_ && read_end_stream_)) {
    closeSocket(ConnectionEvent::kLocalClose, /*deliver_now=*/true);
  }
}

void ConnectionImpl::write(Buffer& data, bool end_stream) {
  if (state_ != State::kOpen || write_end_stream_) {
    data.drain(data.length());
    return;
  }
  if (data.empty() && !end_stream) return;
  write_buffer_.move(data);
  write_end_stream_ = end_stream;
  if (buffer_limit_ > 0 && !above_high_ && write_buffer_.length() > buffer_limit_) {
    above_high_ = true;
    if (callbacks_ != nullptr) callbacks_->onAboveWriteBufferHighWatermark();
  }
  if (!connecting_ && state_ == State::kOpen) schedule(kPendingFlush);
}

void ConnectionImpl::close(ConnectionCloseType type) {
  if (state_ == State::kClosed) return;
  if (type == ConnectionCloseType::kFlushWrite) {
    if (state_ == State::kClosing) return;  // already flushing
    bool has_pending = !write_buffer_.empty() || (write_end_stream_ && !connecting_);
    if (has_pending && fd_ >= 0) {
      state_ = State::kClosing;
      if (flush_close_timeout_.count() > 0) {
        flush_close_timer_ = loop_.createTimer(
            [this] { closeSocket(ConnectionEvent::kLocalClose, /*deliver_now=*/true); });
        flush_close_timer_->enable(flush_close_timeout_);
      }
      if (!connecting_) schedule(kPendingFlush);
      return;
    }
  }
  if (type == ConnectionCloseType::kAbortReset && fd_ >= 0) setAbortOnClose(fd_);
  closeSocket(ConnectionEvent::kLocalClose, /*deliver_now=*/false);
}

void ConnectionImpl::closeSocket(ConnectionEvent event, bool deliver_now) {
  if (state_ == State::kClosed) return;
  file_event_.reset();
  if (fd_ >= 0) {
    transport_->closeSocket(event);
    ::close(fd_);
    fd_ = -1;
  }
  state_ = State::kClosed;
  connecting_ = false;
  if (connect_timer_) connect_timer_->disable();
  if (flush_close_timer_) flush_close_timer_->disable();
  read_resume_->cancel();
  write_buffer_.drain(write_buffer_.length());
  pending_ = 0;
  if (deliver_now) {
    deferred_->cancel();
    deliverEvent(event);
  } else {
    pending_close_event_ = event;
    schedule(kPendingCloseEvent);
  }
}

void ConnectionImpl::readDisable(bool disable) {
  if (disable) {
    ++read_disable_count_;
    return;
  }
  assert(read_disable_count_ > 0);
  if (read_disable_count_ == 0) return;
  if (--read_disable_count_ == 0 && state_ == State::kOpen) schedule(kPendingRead);
}

}  // namespace sheave::network
