#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/address.h"
#include "proxy/network/buffer.h"
#include "proxy/network/event_loop.h"
#include "proxy/network/transport_socket.h"

namespace sheave::network {

enum class ConnectionEvent { kRemoteClose, kLocalClose, kConnected };
enum class ConnectionCloseType {
  kFlushWrite,  // write pending data, then close
  kNoFlush,     // close now, drop pending data
  kAbortReset,  // close now with a TCP RST
};

// Callbacks run on the connection's loop, never from inside a Connection method, with one
// exception: the watermark callbacks run inside write() (so back-pressure is immediate). See
// README.md for the rule about destroying a connection from its callbacks.
class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  // The callee drains what it consumes; leftover stays buffered and is offered again with the next
  // bytes. end_stream: the peer half-closed (only when half-close is enabled).
  virtual void onData(Buffer& data, bool end_stream) = 0;
  virtual void onEvent(ConnectionEvent event) = 0;
  virtual void onAboveWriteBufferHighWatermark() {}
  virtual void onBelowWriteBufferLowWatermark() {}
};

// A TCP connection (raw or through a TransportSocket such as TLS) owned by one loop.
//
// Lifetime rule: never destroy a Connection from inside one of its own callbacks; hand it to
// EventLoop::deferredDelete() instead (a Connection is DeferredDeletable). Outside its callbacks
// (e.g. from a timer or another connection's callback) it may be destroyed directly; pending
// callbacks are cancelled and an open socket is closed silently.
class Connection : public DeferredDeletable {
 public:
  enum class State { kOpen, kClosing, kClosed };

  // Server side: wraps an accepted, non-blocking fd (owned from now on). socket == nullptr: raw.
  static std::unique_ptr<Connection> createServer(
      EventLoop& loop, int fd, Address local, Address remote,
      std::unique_ptr<TransportSocket> socket = nullptr);
  // Client side: starts a non-blocking connect; kConnected or kRemoteClose (with failureReason())
  // arrives later from the loop, so the caller has time to call setCallbacks().
  static std::unique_ptr<Connection> createClient(
      EventLoop& loop, const Address& remote, std::unique_ptr<TransportSocket> socket = nullptr);

  virtual void setCallbacks(ConnectionCallbacks& cb) = 0;
  // Moves the data out of `data`. end_stream: shutdown(SHUT_WR) once everything is flushed.
  // The bytes go out from the loop after the current callback (writes in one round coalesce into
  // one writev). Ignored once the connection is closing or closed, or after an end_stream write.
  virtual void write(Buffer& data, bool end_stream) = 0;
  // kLocalClose is delivered from the loop (not from inside close()); with kFlushWrite it arrives
  // once the data is out. Destroying the connection before that cancels it.
  virtual void close(ConnectionCloseType type) = 0;
  // Flow control; nested disables are counted, reading resumes when every disable is undone.
  // On resume, data already buffered is offered again through onData.
  virtual void readDisable(bool disable) = 0;
  virtual bool readEnabled() const = 0;
  virtual State state() const = 0;
  virtual bool connecting() const = 0;
  virtual const Address& localAddress() const = 0;
  virtual const Address& remoteAddress() const = 0;
  virtual uint64_t id() const = 0;  // unique per process
  // High watermark of the write buffer (low = half); also caps how much one read event pulls in.
  // 0 = no limit.
  virtual void setBufferLimits(uint32_t limit) = 0;
  virtual uint32_t bufferLimit() const = 0;
  // tcp_proxy needs half-close; HTTP does not. Off: a peer FIN closes the connection (kRemoteClose)
  // after the data before it was delivered.
  virtual void enableHalfClose(bool enabled) = 0;
  // Why the connection failed or closed: "connection refused", "connect timeout",
  // "connection reset by peer", ... Empty when it closed normally.
  virtual std::string_view failureReason() const = 0;
  virtual std::string_view transportFailureReason() const = 0;
  // Client side: fails the connect with "connect timeout" (kRemoteClose) if not connected in time.
  virtual void setConnectTimeout(std::chrono::milliseconds timeout) = 0;
  // kFlushWrite gives up after this long and closes without flushing (0 = wait forever).
  virtual void setFlushCloseTimeout(std::chrono::milliseconds timeout) = 0;
  virtual uint64_t bytesReceived() const = 0;
  virtual uint64_t bytesSent() const = 0;
  virtual size_t writeBufferLength() const = 0;
  virtual bool aboveHighWatermark() const = 0;
  virtual std::string_view negotiatedProtocol() const = 0;
  // The TLS peer's certificate; null on plaintext connections or when the peer sent none.
  virtual const PeerCertificateInfo* peerCertificate() const { return nullptr; }
  // The certificate this side presented on a TLS connection; null otherwise.
  virtual const PeerCertificateInfo* localCertificate() const { return nullptr; }
  virtual bool secure() const { return false; }
  virtual std::string_view requestedServerName() const { return {}; }
  virtual EventLoop& loop() = 0;
};

}  // namespace sheave::network
