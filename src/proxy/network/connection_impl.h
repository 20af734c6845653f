#pragma once

#include <string>

#include "proxy/network/connection.h"
#include "proxy/network/transport_socket.h"

namespace sheave::network {

// The one Connection implementation: an fd registered edge-triggered for read, write and peer
// close once, so steady-state I/O makes no epoll_ctl call. Writes are flushed from a schedulable
// callback after the current round of callbacks, so several writes become one writev.
class ConnectionImpl final : public Connection, public TransportSocketCallbacks {
 public:
  // client: fd may be < 0 when socket() failed; connect() then reports the failure from the loop.
  ConnectionImpl(EventLoop& loop, int fd, Address local, Address remote,
                 std::unique_ptr<TransportSocket> socket, bool client);
  ~ConnectionImpl() override;

  // Client side: issues the non-blocking connect(); socket_errno is why socket() failed, if it did.
  void connect(int socket_errno);

  // Connection
  void setCallbacks(ConnectionCallbacks& cb) override { callbacks_ = &cb; }
  void write(Buffer& data, bool end_stream) override;
  void close(ConnectionCloseType type) override;
  void readDisable(bool disable) override;
  bool readEnabled() const override { return read_disable_count_ == 0; }
  State state() const override { return state_; }
  bool connecting() const override { return connecting_; }
  const Address& localAddress() const override { return local_; }
  const Address& remoteAddress() const override { return remote_; }
  uint64_t id() const override { return id_; }
  void setBufferLimits(uint32_t limit) override { buffer_limit_ = limit; }
  uint32_t bufferLimit() const override { return buffer_limit_; }
  void enableHalfClose(bool enabled) override { half_close_ = enabled; }
  std::string_view failureReason() const override { return failure_reason_; }
  std::string_view transportFailureReason() const override { return transport_->failureReason(); }
  void setConnectTimeout(std::chrono::milliseconds timeout) override;
  void setFlushCloseTimeout(std::chrono::milliseconds timeout) override {
    flush_close_timeout_ = timeout;
  }
  uint64_t bytesReceived() const override { return bytes_received_; }
  uint64_t bytesSent() const override { return bytes_sent_; }
  size_t writeBufferLength() const override { return write_buffer_.length(); }
  bool aboveHighWatermark() const override { return above_high_; }
  std::string_view negotiatedProtocol() const override { return transport_->negotiatedProtocol(); }
  bool secure() const override { return transport_->secure(); }
  std::string_view requestedServerName() const override {
    return transport_->requestedServerName();
  }
  const PeerCertificateInfo* peerCertificate() const override {
    return transport_->peerCertificate();
  }
  const PeerCertificateInfo* localCertificate() const override {
    return transport_->localCertificate();
  }
  EventLoop& loop() override { return loop_; }

  // TransportSocketCallbacks
  int fd() const override { return fd_; }
  Connection& connection() override { return *this; }
  bool shouldDrainReadBuffer() override;
  bool peerClosedHint() const override { return peer_closed_hint_; }
  void setTransportSocketIsReadable() override;
  void raiseEvent(ConnectionEvent event) override;
  void flushWriteBuffer() override;

 private:
  enum Pending : uint32_t {
    kPendingFlush = 1,
    kPendingRead = 2,        // re-offer buffered data and read again (after readDisable(false))
    kPendingCloseEvent = 4,  // deliver pending_close_event_
    kPendingConnectResult = 8,
  };

  void onFileReady(uint32_t ready);
  void onReadReady(bool reoffer);
  void onWriteReady();
  void onConnectResult(int err);
  void onDeferred();
  void schedule(uint32_t pending);
  // Closes the fd. deliver_now: we are on the loop's own stack (file event, timer, scheduled
  // callback), so the event goes to the callbacks at once; otherwise it is deferred.
  void closeSocket(ConnectionEvent event, bool deliver_now);
  void deliverEvent(ConnectionEvent event);
  size_t readCap() const;

  EventLoop& loop_;
  int fd_;
  Address local_;
  Address remote_;
  std::unique_ptr<TransportSocket> transport_;
  std::unique_ptr<FileEvent> file_event_;
  std::unique_ptr<SchedulableCallback> deferred_;     // this iteration: flush, events
  std::unique_ptr<SchedulableCallback> read_resume_;  // next iteration: keep reading
  std::unique_ptr<Timer> connect_timer_;
  std::unique_ptr<Timer> flush_close_timer_;
  ConnectionCallbacks* callbacks_ = nullptr;
  Buffer read_buffer_;
  Buffer write_buffer_;
  std::string failure_reason_;
  const uint64_t id_;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  std::chrono::milliseconds flush_close_timeout_{0};
  State state_ = State::kOpen;
  ConnectionEvent pending_close_event_ = ConnectionEvent::kLocalClose;
  uint32_t pending_ = 0;
  uint32_t read_disable_count_ = 0;
  uint32_t buffer_limit_ = 0;
  int deferred_connect_errno_ = 0;
  bool connecting_ = false;
  bool connect_result_deferred_ = false;
  bool half_close_ = false;
  bool read_end_stream_ = false;   // the peer's FIN was read
  bool write_end_stream_ = false;  // the user wrote end_stream
  bool force_write_ = false;
  bool above_high_ = false;
  bool peer_closed_hint_ = false;     // sticky: some readiness report carried RDHUP/HUP/ERR
  bool transport_connected_ = false;  // the transport raised kConnected (e.g. handshake done)
  // A handshake asked for another pass while the socket could not take more bytes: retry it on
  // the next write edge instead of spinning through loop iterations.
  bool retry_on_write_edge_ = false;
};

}  // namespace sheave::network
