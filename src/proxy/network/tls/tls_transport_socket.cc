#include "proxy/network/tls/tls_transport_socket.h"

#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "proxy/network/socket_options.h"

namespace sheave::network::tls {

namespace {
// One SSL_write per TLS record's worth of plaintext.
constexpr size_t kMaxRecordPlaintext = 16 * 1024;
constexpr size_t kMinReadSpace = 4096;
}  // namespace

// A source/sink BIO over the connection's fd: send() with MSG_NOSIGNAL (OpenSSL's socket BIO
// uses write(), which raises SIGPIPE on a closed peer), and errno kept for the failure reason.
struct SocketBio {
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sheave_socket");
      BIO_meth_set_write(bm, write);
      BIO_meth_set_read(bm, read);
      BIO_meth_set_ctrl(bm, ctrl);
      BIO_meth_set_create(bm, create);
      return bm;
    }();
    return m;
  }
  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
  static bool retryable(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }
  static int write(BIO* bio, const char* data, int len) {
    auto* s = static_cast<TlsTransportSocket*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    ssize_t n = ::send(s->callbacks_->fd(), data, static_cast<size_t>(len), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (retryable(errno)) {
      BIO_set_retry_write(bio);
    } else {
      s->last_errno_ = errno;
    }
    return -1;
  }
  static int read(BIO* bio, char* data, int len) {
    auto* s = static_cast<TlsTransportSocket*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    ssize_t n = ::recv(s->callbacks_->fd(), data, static_cast<size_t>(len), 0);
    if (n >= 0) return static_cast<int>(n);
    if (retryable(errno)) {
      BIO_set_retry_read(bio);
    } else {
      s->last_errno_ = errno;
    }
    return -1;
  }
  static long ctrl(BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) {
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
  }
};

TlsTransportSocket::TlsTransportSocket(std::shared_ptr<const TlsContext> context, std::string sni,
                                       std::string session_key)
    : context_(std::move(context)), sni_(std::move(sni)), session_key_(std::move(session_key)) {
  if (context_ != nullptr && !context_->isServer() && sni_.empty()) sni_ = context_->sni();
}

TlsTransportSocket::~TlsTransportSocket() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsTransportSocket::setCallbacks(TransportSocketCallbacks& callbacks) {
  callbacks_ = &callbacks;
  if (context_ == nullptr) return;  // the handshake fails: no secret yet
  ssl_ = SSL_new(context_->sslCtx());
  if (ssl_ == nullptr) return;  // doRead/onConnected report it
  BIO* bio = BIO_new(SocketBio::method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_ex_data(ssl_, TlsContext::verifyDetailIndex(), &verify_detail_);
  if (context_->isServer()) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!sni_.empty()) SSL_set_tlsext_host_name(ssl_, sni_.c_str());
  if (session_key_.empty()) {
    session_key_ = sni_ + "/" + callbacks.connection().remoteAddress().asString();
  }
  SSL_set_app_data(ssl_, const_cast<char*>(session_key_.c_str()));
  if (SSL_SESSION* session = context_->takeSession(session_key_)) {
    SSL_set_session(ssl_, session);
    SSL_SESSION_free(session);
  }
}

void TlsTransportSocket::onConnected() {
  // The client speaks first: send the ClientHello now rather than on the next write edge.
  IoResult r = handshake();
  if (r.failed()) callbacks_->raiseEvent(ConnectionEvent::kRemoteClose);
}

IoResult TlsTransportSocket::fail(std::string_view where) {
  failed_ = true;
  IoResult r;
  if (last_errno_ != 0 && ERR_peek_error() == 0) {
    r.error = last_errno_;
    failure_reason_ = drainTlsErrors(std::string(where) + ": " + errnoReason(last_errno_));
    return r;
  }
  r.error = EPROTO;
  failure_reason_ = drainTlsErrors(verify_detail_);
  return r;
}

IoResult TlsTransportSocket::handshake() {
  if (context_ == nullptr) {
    failed_ = true;
    failure_reason_ = "Secret is not supplied by SDS";
    return IoResult{0, EPROTO, false};
  }
  if (ssl_ == nullptr) {
    failed_ = true;
    failure_reason_ = drainTlsErrors("cannot create an SSL object");
    return IoResult{0, ENOMEM, false};
  }
  if (failed_) return IoResult{0, EPROTO, false};
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    onHandshakeDone();
    return IoResult{};
  }
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      return IoResult{0, EAGAIN, false};
    case SSL_ERROR_WANT_WRITE:
      // The connection only calls doWrite on a write edge when it has bytes to send, so a
      // handshake stuck on a full socket buffer (rare: flights are a few KiB) retries from the
      // next loop iteration.
      callbacks_->setTransportSocketIsReadable();
      return IoResult{0, EAGAIN, false};
    default:
      return fail("handshake");
  }
}

void TlsTransportSocket::onHandshakeDone() {
  handshake_complete_ = true;
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &proto, &len);
  if (proto != nullptr) alpn_.assign(reinterpret_cast<const char*>(proto), len);
  if (X509* peer = SSL_get0_peer_certificate(ssl_)) {
    peer_ = describeCertificate(peer);
    peer_->validated = context_->hasValidation() && SSL_get_verify_result(ssl_) == X509_V_OK;
  }
  if (X509* local = SSL_get_certificate(ssl_)) local_ = describeCertificate(local);
  callbacks_->raiseEvent(ConnectionEvent::kConnected);
  // Application data written while the handshake ran is waiting for a write edge that may
  // already have passed.
  callbacks_->flushWriteBuffer();
}

IoResult TlsTransportSocket::doRead(Buffer& buffer) {
  if (!handshake_complete_) {
    IoResult r = handshake();
    if (r.failed() || !handshake_complete_) return r;
    if (callbacks_->connection().state() == Connection::State::kClosed) {
      return IoResult{0, EAGAIN, false};  // closed from the kConnected callback
    }
  }
  IoResult total;
  if (failed_) {
    total.error = EPROTO;
    return total;
  }
  for (;;) {
    auto [data, space] = buffer.reserveSingleSlice(kMinReadSpace);
    ERR_clear_error();
    int n = SSL_read(ssl_, data, static_cast<int>(std::min<size_t>(space, INT_MAX)));
    if (n > 0) {
      buffer.commit(static_cast<size_t>(n));
      total.bytes += static_cast<uint64_t>(n);
      // Stopping here leaves decrypted bytes in OpenSSL; the connection comes back next
      // iteration because we return without EAGAIN.
      if (callbacks_->shouldDrainReadBuffer()) return total;
      continue;
    }
    switch (SSL_get_error(ssl_, n)) {
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:
        total.error = EAGAIN;
        return total;
      case SSL_ERROR_ZERO_RETURN:
        total.eof = true;  // close_notify, or a bare FIN (SSL_OP_IGNORE_UNEXPECTED_EOF)
        return total;
      case SSL_ERROR_SYSCALL:
        if (last_errno_ == 0 && ERR_peek_error() == 0) {
          total.eof = true;
          return total;
        }
        [[fallthrough]];
      default: {
        IoResult r = fail("read");
        total.error = r.error;
        return total;
      }
    }
  }
}

IoResult TlsTransportSocket::doWrite(Buffer& buffer, bool end_stream) {
  if (!handshake_complete_) {
    IoResult r = handshake();
    if (r.failed() || !handshake_complete_) return r;
    if (callbacks_->connection().state() == Connection::State::kClosed) {
      return IoResult{0, EAGAIN, false};
    }
  }
  IoResult total;
  if (failed_) {
    total.error = EPROTO;
    return total;
  }
  while (!buffer.empty()) {
    size_t len =
        bytes_to_retry_ != 0 ? bytes_to_retry_ : std::min(buffer.length(), kMaxRecordPlaintext);
    const char* data = buffer.linearize(len);
    ERR_clear_error();
    int n = SSL_write(ssl_, data, static_cast<int>(len));
    if (n > 0) {
      bytes_to_retry_ = 0;
      buffer.drain(static_cast<size_t>(n));
      total.bytes += static_cast<uint64_t>(n);
      continue;
    }
    switch (SSL_get_error(ssl_, n)) {
      case SSL_ERROR_WANT_WRITE:
      case SSL_ERROR_WANT_READ:
        bytes_to_retry_ = len;
        total.error = EAGAIN;
        return total;
      default: {
        IoResult r = fail("write");
        total.error = r.error;
        return total;
      }
    }
  }
  if (end_stream && !shutdown_sent_) {
    shutdown_sent_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // close_notify; we do not wait for the peer's
    ERR_clear_error();
    ::shutdown(callbacks_->fd(), SHUT_WR);
  }
  return total;
}

void TlsTransportSocket::closeSocket(ConnectionEvent /*event*/) {
  // A clean close says so with close_notify; after a fatal error OpenSSL forbids it.
  if (ssl_ != nullptr && handshake_complete_ && !failed_ && !shutdown_sent_ &&
      callbacks_->fd() >= 0) {
    shutdown_sent_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

bool TlsTransportSocket::sessionReused() const {
  return ssl_ != nullptr && handshake_complete_ && SSL_session_reused(ssl_) == 1;
}

std::string_view TlsTransportSocket::protocolVersion() const {
  if (ssl_ == nullptr || !handshake_complete_) return {};
  return SSL_get_version(ssl_);
}

}  // namespace sheave::network::tls

namespace sheave::network::tls {

std::string_view TlsTransportSocket::requestedServerName() const {
  const char* name = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return name ? std::string_view(name) : std::string_view();
}

}  // namespace sheave::network::tls
