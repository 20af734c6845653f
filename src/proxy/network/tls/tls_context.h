#pragma once

#include <openssl/ssl.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "match/string_matcher.h"
#include "proxy/network/transport_socket.h"

namespace sheave::network::tls {

class SecretManager;

// One SSL_CTX built from an Envoy DownstreamTlsContext (server) or UpstreamTlsContext (client),
// with its secrets already resolved. Immutable once built, shared by every worker: an SSL object
// takes a reference on its SSL_CTX, and a TlsTransportSocket holds the TlsContext it started
// with, so a connection keeps the context it handshook with across secret rotations.
class TlsContext {
 public:
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // `secrets` resolves sds_config references; may be null when the config has none. Errors name
  // the field path, e.g. "common_tls_context.tls_certificates[0].private_key: ...".
  static Result<std::shared_ptr<const TlsContext>> createServer(
      const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config,
      const SecretManager* secrets);
  static Result<std::shared_ptr<const TlsContext>> createClient(
      const envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext& config,
      const SecretManager* secrets);

  bool isServer() const { return server_; }
  SSL_CTX* sslCtx() const { return ctx_; }
  const std::string& sni() const { return sni_; }  // client: UpstreamTlsContext.sni
  bool hasValidation() const { return validation_ != nullptr; }
  const std::string& alpnWire() const { return alpn_wire_; }  // length-prefixed list

  // Client session cache (one entry per upstream key, e.g. "sni/address"): a pool's next
  // connection to the same host resumes instead of paying a full handshake.
  SSL_SESSION* takeSession(const std::string& key) const;  // caller owns the returned reference
  void storeSession(const std::string& key, SSL_SESSION* session) const;  // takes ownership

  // The checks OpenSSL's chain verification does not do: SAN matchers, certificate hash and SPKI
  // pins. On failure, `detail` says which check failed.
  bool verifyLeaf(X509* leaf, std::string& detail) const;
  bool verifyTrustChain() const;

  // SSL_CTX ex_data slot that points back at the owning TlsContext.
  static int sslCtxIndex();
  // SSL ex_data slot for a std::string that receives why verification failed (SAN mismatch...).
  static int verifyDetailIndex();

 private:
  struct SanMatcher {
    int type;  // SubjectAltNameMatcher::SanType; 0 = any type (deprecated match_subject_alt_names)
    StringMatcher matcher;
  };
  struct Validation {
    bool verify_trust_chain = true;
    std::vector<SanMatcher> san_matchers;
    std::vector<std::string> cert_hashes;  // lower-case hex sha256 of the DER certificate
    std::vector<std::string> spki_pins;    // base64 sha256 of the DER SubjectPublicKeyInfo
  };

  TlsContext(bool server, SSL_CTX* ctx);

  bool server_;
  SSL_CTX* ctx_;
  std::string sni_;
  std::string alpn_wire_;
  std::unique_ptr<Validation> validation_;
  uint32_t max_session_keys_ = 1;
  mutable std::mutex sessions_mu_;
  mutable std::map<std::string, SSL_SESSION*, std::less<>> sessions_;

  friend class TlsContextBuilder;
};

// The text Envoy puts in a connection's transport failure reason: "TLS_error:|<code>:<lib>:
// <func>:<reason>...:TLS_error_end", drained from this thread's OpenSSL error queue. `detail`
// (e.g. why verification failed) is appended before the end marker.
std::string drainTlsErrors(std::string_view detail = {});

// URI/DNS SANs, subject, serial and validity of a certificate.
PeerCertificateInfo describeCertificate(X509* cert);

// Parse checks for secrets before they are stored: the certificate chain and key are readable
// PEM and belong together; a trusted CA bundle holds at least one certificate.
Status checkTlsCertificate(
    const envoy::extensions::transport_sockets::tls::v3::TlsCertificate& cert);
Status checkValidationContext(
    const envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext& validation);

// Prefixes an error with a field path, joining nested paths with '.' ("a.b: ..." under "x"
// gives "x.a.b: ...", "[1].name: ..." gives "x[1].name: ...").
Error underField(const Error& error, std::string_view path);

// Reads a DataSource (filename, inline_string, inline_bytes, environment_variable).
Result<std::string> readDataSource(const envoy::config::core::v3::DataSource& source);

}  // namespace sheave::network::tls
