#include "proxy/network/raw_transport_socket.h"

#include <sys/socket.h>

#include <cerrno>

namespace sheave::network {

namespace {
// One readv pulls in up to 4 slices; a read event loops until EAGAIN or the connection's cap.
constexpr size_t kReadChunk = 4 * Buffer::kSliceSize;
}  // namespace

IoResult RawTransportSocket::doRead(Buffer& buffer) {
  IoResult total;
  for (;;) {
    IoResult r = buffer.readFromFd(callbacks_->fd(), kReadChunk);
    total.bytes += r.bytes;
    if (r.eof || r.error != 0) {
      total.eof = r.eof;
      total.error = r.error;
      return total;
    }
    if (r.bytes < kReadChunk && !callbacks_->peerClosedHint()) {
      total.error = EAGAIN;  // short read: drained, see peerClosedHint()
      return total;
    }
    if (callbacks_->shouldDrainReadBuffer()) return total;
  }
}

IoResult RawTransportSocket::doWrite(Buffer& buffer, bool end_stream) {
  IoResult r = buffer.writeToFd(callbacks_->fd());
  if (r.failed()) return r;
  if (end_stream && buffer.empty() && !shutdown_) {
    ::shutdown(callbacks_->fd(), SHUT_WR);
    shutdown_ = true;
  }
  return r;
}

void RawTransportSocket::onConnected() { callbacks_->raiseEvent(ConnectionEvent::kConnected); }

}  // namespace sheave::network
