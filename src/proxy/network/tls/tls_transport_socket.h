#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/network/connection.h"
#include "proxy/network/tls/tls_context.h"
#include "proxy/network/transport_socket.h"

namespace sheave::network::tls {

// TLS over a connection's fd. The handshake runs inside doRead/doWrite (they return EAGAIN until
// application bytes can move) and raises kConnected on both sides when it completes; the server
// side of a plaintext connection never raises it, so consumers must not wait for it there.
// Reads and writes go straight to the fd through a small BIO that uses MSG_NOSIGNAL.
class TlsTransportSocket final : public TransportSocket {
 public:
  // The side comes from the context. Client: `sni` overrides the context's sni when non-empty;
  // `session_key` names the upstream host in the context's session cache (default: SNI and the
  // remote address), so connections of a pool to one host resume each other's sessions.
  explicit TlsTransportSocket(std::shared_ptr<const TlsContext> context, std::string sni = {},
                              std::string session_key = {});
  ~TlsTransportSocket() override;

  // TransportSocket
  void setCallbacks(TransportSocketCallbacks& callbacks) override;
  IoResult doRead(Buffer& buffer) override;
  IoResult doWrite(Buffer& buffer, bool end_stream) override;
  void onConnected() override;
  std::string_view negotiatedProtocol() const override { return alpn_; }
  void closeSocket(ConnectionEvent event) override;
  std::string_view failureReason() const override { return failure_reason_; }
  const PeerCertificateInfo* peerCertificate() const override { return peer_ ? &*peer_ : nullptr; }
  const PeerCertificateInfo* localCertificate() const override {
    return local_ ? &*local_ : nullptr;
  }
  bool secure() const override { return true; }
  std::string_view requestedServerName() const override;

  bool handshakeComplete() const { return handshake_complete_; }
  bool sessionReused() const;
  // "TLSv1.3", "TLSv1.2"...; empty before the handshake.
  std::string_view protocolVersion() const;
  std::string_view sni() const { return sni_; }
  const SSL* ssl() const { return ssl_; }  // for inspection (cipher, session); may be null

 private:
  friend struct SocketBio;

  // Advances the handshake. Returns a failed IoResult when it failed, EAGAIN while it waits.
  IoResult handshake();
  IoResult fail(std::string_view where);
  void onHandshakeDone();

  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_ = nullptr;
  TransportSocketCallbacks* callbacks_ = nullptr;
  std::string sni_;
  std::string session_key_;
  std::string alpn_;
  std::string failure_reason_;
  std::string verify_detail_;  // filled by the verify callback
  std::optional<PeerCertificateInfo> peer_;
  std::optional<PeerCertificateInfo> local_;
  size_t bytes_to_retry_ = 0;  // SSL_write wants the same length again after WANT_WRITE
  int last_errno_ = 0;         // from the BIO, for failures OpenSSL reports as SYSCALL
  bool handshake_complete_ = false;
  bool shutdown_sent_ = false;
  bool failed_ = false;
};

}  // namespace sheave::network::tls
