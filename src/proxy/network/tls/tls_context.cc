#include "proxy/network/tls/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "common/logging.h"
#include "proxy/network/tls/secret_manager.h"

namespace sheave::network::tls {

namespace tlsv3 = envoy::extensions::transport_sockets::tls::v3;

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// Envoy's defaults (BoringSSL equal-preference groups flattened into OpenSSL's order).
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
constexpr const char* kDefaultCurves = "X25519:P-256";
// Every server context gets the same id context: sessions never cross contexts anyway (ticket
// keys and the session cache are per SSL_CTX), but OpenSSL refuses to resume without one when
// client certificates are verified.
constexpr unsigned char kSessionIdContext[] = "sheave";
constexpr size_t kTicketKeyLength = 80;  // 16 name + 32 HMAC secret + 32 AES key, as Envoy's
constexpr size_t kMaxCachedHosts = 1024;

// Only the latest error matters in messages; the rest of the queue is dropped so it cannot leak
// into an unrelated connection's failure reason on this thread.
std::string lastSslError() {
  unsigned long err = ERR_peek_last_error();
  std::string out;
  if (err != 0) {
    const char* reason = ERR_reason_error_string(err);
    out = reason != nullptr ? reason : "error " + std::to_string(err);
  }
  ERR_clear_error();
  return out;
}

Error withSsl(std::string message) {
  std::string ssl = lastSslError();
  if (!ssl.empty()) message += " (" + ssl + ")";
  return invalidArgument(std::move(message));
}

// A PEM callback that never prompts on the terminal: `u` is the password or null.
int pemPassword(char* buf, int size, int /*rwflag*/, void* u) {
  if (u == nullptr) return -1;
  const auto* password = static_cast<const std::string*>(u);
  if (password->size() > static_cast<size_t>(size)) return -1;
  // OpenSSL takes the length from the return value: no terminator needed.
  std::memcpy(buf, password->data(),
              password->size());  // NOLINT(bugprone-not-null-terminated-result)
  return static_cast<int>(password->size());
}

Result<std::vector<X509Ptr>> parseCertificates(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> certs;
  ERR_clear_error();
  for (;;) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, pemPassword, nullptr);
    if (cert == nullptr) break;
    certs.emplace_back(cert);
  }
  unsigned long err = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  if (certs.empty()) return withSsl("no PEM certificate found");
  if (err != 0 && !clean_end)
    return withSsl("bad PEM certificate after " + std::to_string(certs.size()) + " good one(s)");
  ERR_clear_error();
  return certs;
}

Result<PkeyPtr> parsePrivateKey(const std::string& pem, const std::string* password) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ERR_clear_error();
  EVP_PKEY* key =
      PEM_read_bio_PrivateKey(bio.get(), nullptr, pemPassword, const_cast<std::string*>(password));
  if (key == nullptr) return withSsl("no usable PEM private key found");
  return PkeyPtr(key);
}

struct LoadedCertificate {
  std::vector<X509Ptr> chain;  // leaf first
  PkeyPtr key;
};

Result<LoadedCertificate> loadCertificate(const tlsv3::TlsCertificate& cert) {
  if (cert.has_pkcs12())
    return invalidArgument("pkcs12: not supported; use certificate_chain and private_key");
  if (cert.has_private_key_provider())
    return invalidArgument("private_key_provider: not supported");
  if (!cert.has_certificate_chain()) return invalidArgument("certificate_chain: required");
  if (!cert.has_private_key()) return invalidArgument("private_key: required");
  auto chain_pem = readDataSource(cert.certificate_chain());
  if (!chain_pem.ok()) return underField(std::move(chain_pem).error(), "certificate_chain");
  auto key_pem = readDataSource(cert.private_key());
  if (!key_pem.ok()) return underField(std::move(key_pem).error(), "private_key");
  std::optional<std::string> password;
  if (cert.has_password()) {
    auto p = readDataSource(cert.password());
    if (!p.ok()) return underField(std::move(p).error(), "password");
    password = std::move(*p);
  }
  LoadedCertificate out;
  auto chain = parseCertificates(*chain_pem);
  if (!chain.ok()) return underField(std::move(chain).error(), "certificate_chain");
  out.chain = std::move(*chain);
  auto key = parsePrivateKey(*key_pem, password ? &*password : nullptr);
  if (!key.ok()) return underField(std::move(key).error(), "private_key");
  out.key = std::move(*key);
  ERR_clear_error();
  if (X509_check_private_key(out.chain.front().get(), out.key.get()) != 1) {
    ERR_clear_error();
    return invalidArgument("private_key: does not match the certificate in certificate_chain");
  }
  return out;
}

Result<std::vector<X509Ptr>> loadCa(const envoy::config::core::v3::DataSource& source) {
  auto pem = readDataSource(source);
  if (!pem.ok()) return std::move(pem).error();
  return parseCertificates(*pem);
}

int protocolVersion(tlsv3::TlsParameters::TlsProtocol p, int fallback) {
  switch (p) {
    case tlsv3::TlsParameters::TLSv1_0:
      return TLS1_VERSION;
    case tlsv3::TlsParameters::TLSv1_1:
      return TLS1_1_VERSION;
    case tlsv3::TlsParameters::TLSv1_2:
      return TLS1_2_VERSION;
    case tlsv3::TlsParameters::TLSv1_3:
      return TLS1_3_VERSION;
    default:
      return fallback;
  }
}

std::string join(const std::vector<std::string>& parts, char sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

Status applyParams(SSL_CTX* ctx, const tlsv3::TlsParameters& params) {
  int min = protocolVersion(params.tls_minimum_protocol_version(), TLS1_2_VERSION);
  int max = protocolVersion(params.tls_maximum_protocol_version(), TLS1_3_VERSION);
  if (min > max) {
    return invalidArgument("tls_minimum_protocol_version: is above tls_maximum_protocol_version");
  }
  if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, max) != 1) {
    return withSsl("tls_minimum_protocol_version: cannot be applied");
  }
  if (min < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);  // OpenSSL 3 refuses 1.0/1.1

  // BoringSSL's "[A|B]" equal-preference groups have no OpenSSL equivalent: flatten them in
  // order. Names starting with "TLS_" are TLS 1.3 suites, which OpenSSL configures apart.
  std::vector<std::string> tls12;
  std::vector<std::string> tls13;
  for (int i = 0; i < params.cipher_suites_size(); ++i) {
    std::string entry = params.cipher_suites(i);
    std::string path = "cipher_suites[" + std::to_string(i) + "]";
    if (!entry.empty() && entry.front() == '[' && entry.back() == ']') {
      entry = entry.substr(1, entry.size() - 2);
    }
    std::stringstream ss(entry);
    std::string name;
    while (std::getline(ss, name, '|')) {
      if (name.empty()) return invalidArgument(path + ": empty cipher name");
      if (name.rfind("TLS_", 0) == 0) {
        if (SSL_CTX_set_ciphersuites(ctx, name.c_str()) != 1) {
          ERR_clear_error();
          return invalidArgument(path + ": unknown TLS 1.3 cipher suite '" + name + "'");
        }
        tls13.push_back(name);
      } else {
        if (SSL_CTX_set_cipher_list(ctx, name.c_str()) != 1) {
          ERR_clear_error();
          return invalidArgument(path + ": unknown cipher suite '" + name + "'");
        }
        tls12.push_back(name);
      }
    }
  }
  std::string list12 = tls12.empty() ? kDefaultCiphers : join(tls12, ':');
  if (SSL_CTX_set_cipher_list(ctx, list12.c_str()) != 1) {
    return withSsl("cipher_suites: cannot be applied");
  }
  if (!tls13.empty() && SSL_CTX_set_ciphersuites(ctx, join(tls13, ':').c_str()) != 1) {
    return withSsl("cipher_suites: cannot be applied");
  }

  for (int i = 0; i < params.ecdh_curves_size(); ++i) {
    if (SSL_CTX_set1_groups_list(ctx, params.ecdh_curves(i).c_str()) != 1) {
      ERR_clear_error();
      return invalidArgument("ecdh_curves[" + std::to_string(i) + "]: unknown curve '" +
                             params.ecdh_curves(i) + "'");
    }
  }
  std::string curves = params.ecdh_curves().empty()
                           ? std::string(kDefaultCurves)
                           : join({params.ecdh_curves().begin(), params.ecdh_curves().end()}, ':');
  if (SSL_CTX_set1_groups_list(ctx, curves.c_str()) != 1)
    return withSsl("ecdh_curves: cannot be applied");

  if (!params.signature_algorithms().empty()) {
    std::string algs =
        join({params.signature_algorithms().begin(), params.signature_algorithms().end()}, ':');
    if (SSL_CTX_set1_sigalgs_list(ctx, algs.c_str()) != 1) {
      return withSsl("signature_algorithms: unknown algorithm in '" + algs + "'");
    }
  }
  return okStatus();
}

// ALPN wire format: each protocol prefixed by its length.
Result<std::string> alpnWire(const google::protobuf::RepeatedPtrField<std::string>& protocols) {
  std::string wire;
  for (int i = 0; i < protocols.size(); ++i) {
    const std::string& p = protocols.Get(i);
    if (p.empty() || p.size() > 255) {
      return invalidArgument("alpn_protocols[" + std::to_string(i) +
                             "]: must be 1 to 255 bytes long");
    }
    wire += static_cast<char>(p.size());
    wire += p;
  }
  return wire;
}

int serverAlpnSelect(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void* arg) {
  const std::string& wire = static_cast<const TlsContext*>(arg)->alpnWire();
  unsigned char* selected = nullptr;
  // The server's preference order wins, as in Envoy.
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int requireSni(SSL* ssl, int* alert, void* /*arg*/) {
  const unsigned char* ext = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) != 1 || len == 0) {
    *alert = SSL_AD_MISSING_EXTENSION;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

// Replaces OpenSSL's chain check so the SAN and pin checks run in the same place and a failure
// names itself; chain verification itself is still X509_verify_cert.
int verifyCertificate(X509_STORE_CTX* store_ctx, void* arg) {
  const auto* ctx = static_cast<const TlsContext*>(arg);
  SSL* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* detail =
      ssl != nullptr
          ? static_cast<std::string*>(SSL_get_ex_data(ssl, TlsContext::verifyDetailIndex()))
          : nullptr;
  if (ctx->verifyTrustChain()) {
    if (X509_verify_cert(store_ctx) != 1) {
      if (detail != nullptr) {
        *detail = std::string("verify cert failed: ") +
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(store_ctx));
      }
      return 0;
    }
  }
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  std::string why;
  if (leaf == nullptr || !ctx->verifyLeaf(leaf, why)) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    if (detail != nullptr) *detail = "verify cert failed: " + why;
    return 0;
  }
  X509_STORE_CTX_set_error(store_ctx, X509_V_OK);
  return 1;
}

int newClientSession(SSL* ssl, SSL_SESSION* session) {
  const auto* ctx = static_cast<const TlsContext*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), TlsContext::sslCtxIndex()));
  const char* key = static_cast<const char*>(SSL_get_app_data(ssl));
  if (ctx == nullptr || key == nullptr) return 0;
  ctx->storeSession(key, session);
  return 1;  // we own the reference now
}

std::string toLowerHexNoColons(std::string_view in) {
  std::string out;
  for (char c : in) {
    if (c == ':') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string hex(const unsigned char* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

std::string asn1String(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// (SanType, value) for every SAN of the certificate.
std::vector<std::pair<int, std::string>> subjectAltNames(X509* cert) {
  std::vector<std::pair<int, std::string>> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    switch (gn->type) {
      case GEN_DNS:
        out.emplace_back(tlsv3::SubjectAltNameMatcher::DNS, asn1String(gn->d.dNSName));
        break;
      case GEN_URI:
        out.emplace_back(tlsv3::SubjectAltNameMatcher::URI,
                         asn1String(gn->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        out.emplace_back(tlsv3::SubjectAltNameMatcher::EMAIL, asn1String(gn->d.rfc822Name));
        break;
      case GEN_IPADD: {
        char buf[INET6_ADDRSTRLEN] = {};
        int len = ASN1_STRING_length(gn->d.iPAddress);
        const unsigned char* p = ASN1_STRING_get0_data(gn->d.iPAddress);
        if ((len == 4 && inet_ntop(AF_INET, p, buf, sizeof(buf)) != nullptr) ||
            (len == 16 && inet_ntop(AF_INET6, p, buf, sizeof(buf)) != nullptr)) {
          out.emplace_back(tlsv3::SubjectAltNameMatcher::IP_ADDRESS, buf);
        }
        break;
      }
      default:
        break;
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

// A DNS SAN "*.example.com" covers exactly one label, as in RFC 6125 and Envoy.
bool dnsWildcardMatch(std::string_view san, std::string_view name) {
  if (san.size() < 3 || san.substr(0, 2) != "*.") return false;
  std::string_view suffix = san.substr(1);  // ".example.com"
  if (name.size() <= suffix.size()) return false;
  if (!endsWithIgnoreCase(name, suffix)) return false;
  std::string_view label = name.substr(0, name.size() - suffix.size());
  return label.find('.') == std::string_view::npos;
}

std::chrono::system_clock::time_point asn1Time(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

// Builds one context; a friend of TlsContext so it can fill the private parts.
class TlsContextBuilder {
 public:
  TlsContextBuilder(bool server, const SecretManager* secrets)
      : server_(server), secrets_(secrets) {}

  Result<std::shared_ptr<TlsContext>> build(const tlsv3::CommonTlsContext& common) {
    SslCtxPtr ssl_ctx(SSL_CTX_new(server_ ? TLS_server_method() : TLS_client_method()));
    if (!ssl_ctx) return withSsl("cannot create an SSL_CTX");
    std::shared_ptr<TlsContext> ctx(new TlsContext(server_, ssl_ctx.release()));
    SSL_CTX* c = ctx->ctx_;
    SSL_CTX_set_ex_data(c, TlsContext::sslCtxIndex(), ctx.get());
    SSL_CTX_set_options(
        c, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(c, 1);

    if (common.has_tls_certificate_provider_instance()) {
      return invalidArgument(
          "common_tls_context.tls_certificate_provider_instance: not supported; use "
          "tls_certificates or tls_certificate_sds_secret_configs");
    }
    if (common.has_key_log()) return invalidArgument("common_tls_context.key_log: not supported");

    auto status = applyParams(c, common.tls_params());
    if (!status.ok()) return underField(std::move(status).error(), "common_tls_context.tls_params");

    // Certificates: inline ones first, then the ones named through SDS.
    size_t cert_count = 0;
    for (int i = 0; i < common.tls_certificates_size(); ++i) {
      std::string path = "common_tls_context.tls_certificates[" + std::to_string(i) + "]";
      SHEAVE_RETURN_IF_ERROR(useCertificate(c, common.tls_certificates(i), path));
      ++cert_count;
    }
    for (int i = 0; i < common.tls_certificate_sds_secret_configs_size(); ++i) {
      std::string path =
          "common_tls_context.tls_certificate_sds_secret_configs[" + std::to_string(i) + "]";
      SHEAVE_ASSIGN_OR_RETURN(auto secret,
                              findSecret(common.tls_certificate_sds_secret_configs(i), path));
      path += " (secret '" + secret->name() + "')";
      if (!secret->has_tls_certificate()) {
        return invalidArgument(path + ": is not a tls_certificate secret");
      }
      SHEAVE_RETURN_IF_ERROR(
          useCertificate(c, secret->tls_certificate(), path + ".tls_certificate"));
      ++cert_count;
    }
    if (server_ && cert_count == 0) {
      return invalidArgument(
          "common_tls_context: a server needs a certificate (tls_certificates or "
          "tls_certificate_sds_secret_configs)");
    }

    // Validation context: inline, by name, or the combination (a named one, e.g. the mesh root
    // CA, merged into a default that carries the SAN matchers; Istio uses this form).
    std::optional<tlsv3::CertificateValidationContext> validation;
    std::string vpath = "common_tls_context.validation_context";
    switch (common.validation_context_type_case()) {
      case tlsv3::CommonTlsContext::kValidationContext:
        validation = common.validation_context();
        break;
      case tlsv3::CommonTlsContext::kValidationContextSdsSecretConfig: {
        vpath = "common_tls_context.validation_context_sds_secret_config";
        SHEAVE_ASSIGN_OR_RETURN(auto secret,
                                findSecret(common.validation_context_sds_secret_config(), vpath));
        vpath += " (secret '" + secret->name() + "')";
        if (!secret->has_validation_context()) {
          return invalidArgument(vpath + ": is not a validation_context secret");
        }
        validation = secret->validation_context();
        vpath += ".validation_context";
        break;
      }
      case tlsv3::CommonTlsContext::kCombinedValidationContext: {
        const auto& combined = common.combined_validation_context();
        vpath = "common_tls_context.combined_validation_context";
        if (combined.has_validation_context_certificate_provider_instance()) {
          return invalidArgument(
              vpath + ".validation_context_certificate_provider_instance: not supported");
        }
        validation = combined.default_validation_context();
        if (combined.has_validation_context_sds_secret_config()) {
          SHEAVE_ASSIGN_OR_RETURN(auto secret,
                                  findSecret(combined.validation_context_sds_secret_config(),
                                             vpath + ".validation_context_sds_secret_config"));
          if (!secret->has_validation_context()) {
            return invalidArgument(vpath + ".validation_context_sds_secret_config (secret '" +
                                   secret->name() + "'): is not a validation_context secret");
          }
          validation->MergeFrom(secret->validation_context());
        }
        break;
      }
      default:
        break;
    }
    if (validation) SHEAVE_RETURN_IF_ERROR(useValidation(*ctx, *validation, vpath));

    auto alpn = alpnWire(common.alpn_protocols());
    if (!alpn.ok()) return underField(std::move(alpn).error(), "common_tls_context");
    if (!alpn->empty()) {
      ctx->alpn_wire_ = *alpn;
      if (server_) {
        SSL_CTX_set_alpn_select_cb(c, serverAlpnSelect, ctx.get());
      } else if (SSL_CTX_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(alpn->data()),
                                         static_cast<unsigned int>(alpn->size())) != 0) {
        return withSsl("common_tls_context.alpn_protocols: cannot be applied");
      }
    }
    return ctx;
  }

 private:
  Result<std::shared_ptr<const tlsv3::Secret>> findSecret(const tlsv3::SdsSecretConfig& ref,
                                                          const std::string& path) {
    if (ref.name().empty()) return invalidArgument(path + ".name: required");
    std::shared_ptr<const tlsv3::Secret> secret =
        secrets_ != nullptr ? secrets_->find(ref.name()) : nullptr;
    if (!secret) {
      return invalidArgument(path + ": no secret named '" + ref.name() +
                             "' (static_resources.secrets; dynamic SDS is not supported yet)");
    }
    return secret;
  }

  Status useCertificate(SSL_CTX* c, const tlsv3::TlsCertificate& cert, const std::string& path) {
    auto loaded = loadCertificate(cert);
    if (!loaded.ok()) return underField(std::move(loaded).error(), path);
    STACK_OF(X509)* chain = sk_X509_new_null();
    for (size_t i = 1; i < loaded->chain.size(); ++i) {
      X509_up_ref(loaded->chain[i].get());
      sk_X509_push(chain, loaded->chain[i].get());
    }
    // override = 0: a second certificate of the same key type is a configuration error (OpenSSL
    // keeps one per type: e.g. one RSA and one ECDSA).
    int ok = SSL_CTX_use_cert_and_key(c, loaded->chain.front().get(), loaded->key.get(), chain, 0);
    sk_X509_pop_free(chain, X509_free);
    if (ok != 1) {
      return withSsl(path +
                     ": cannot be used (a certificate with the same key type is already "
                     "configured, or the key is too weak)");
    }
    return okStatus();
  }

  Status useValidation(TlsContext& ctx, const tlsv3::CertificateValidationContext& v,
                       const std::string& path) {
    SSL_CTX* c = ctx.ctx_;
    if (v.has_ca_certificate_provider_instance()) {
      return invalidArgument(path + ".ca_certificate_provider_instance: not supported");
    }
    if (v.has_custom_validator_config()) {
      return invalidArgument(path + ".custom_validator_config: not supported");
    }
    if (v.has_require_signed_certificate_timestamp() &&
        v.require_signed_certificate_timestamp().value()) {
      return invalidArgument(path + ".require_signed_certificate_timestamp: not supported");
    }
    auto validation = std::make_unique<TlsContext::Validation>();
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    bool has_ca = false;
    if (v.has_trusted_ca()) {
      auto cas = loadCa(v.trusted_ca());
      if (!cas.ok()) return underField(std::move(cas).error(), path + ".trusted_ca");
      for (auto& ca : *cas) X509_STORE_add_cert(store, ca.get());
      has_ca = true;
    }
    if (v.has_system_root_certs()) {
      if (X509_STORE_set_default_paths(store) != 1) {
        return withSsl(path + ".system_root_certs: cannot load the system trust store");
      }
      has_ca = true;
    }
    if (v.has_crl()) {
      auto pem = readDataSource(v.crl());
      if (!pem.ok()) return underField(std::move(pem).error(), path + ".crl");
      BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
      int count = 0;
      while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, pemPassword, nullptr)) {
        X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        ++count;
      }
      ERR_clear_error();
      if (count == 0) return invalidArgument(path + ".crl: no PEM CRL found");
      X509_STORE_set_flags(store, v.only_verify_leaf_cert_crl()
                                      ? X509_V_FLAG_CRL_CHECK
                                      : X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    for (int i = 0; i < v.verify_certificate_hash_size(); ++i) {
      std::string h = toLowerHexNoColons(v.verify_certificate_hash(i));
      if (h.size() != 64 || h.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return invalidArgument(path + ".verify_certificate_hash[" + std::to_string(i) +
                               "]: not a hex SHA-256 fingerprint");
      }
      validation->cert_hashes.push_back(h);
    }
    for (const auto& pin : v.verify_certificate_spki()) validation->spki_pins.push_back(pin);
    for (int i = 0; i < v.match_typed_subject_alt_names_size(); ++i) {
      const auto& m = v.match_typed_subject_alt_names(i);
      std::string mpath = path + ".match_typed_subject_alt_names[" + std::to_string(i) + "]";
      if (m.san_type() == tlsv3::SubjectAltNameMatcher::SAN_TYPE_UNSPECIFIED) {
        return invalidArgument(mpath + ".san_type: required");
      }
      if (m.san_type() == tlsv3::SubjectAltNameMatcher::OTHER_NAME) {
        return invalidArgument(mpath + ".san_type: OTHER_NAME is not supported");
      }
      auto matcher = StringMatcher::create(m.matcher());
      if (!matcher.ok()) return underField(std::move(matcher).error(), mpath + ".matcher");
      validation->san_matchers.push_back({m.san_type(), std::move(*matcher)});
    }
    for (int i = 0; i < v.match_subject_alt_names_size(); ++i) {
      auto matcher = StringMatcher::create(v.match_subject_alt_names(i));
      if (!matcher.ok()) {
        return underField(std::move(matcher).error(),
                          path + ".match_subject_alt_names[" + std::to_string(i) + "]");
      }
      validation->san_matchers.push_back({0, std::move(*matcher)});
    }
    bool accept_untrusted =
        v.trust_chain_verification() == tlsv3::CertificateValidationContext::ACCEPT_UNTRUSTED;
    if (!has_ca && !accept_untrusted) {
      if (!validation->san_matchers.empty()) {
        return invalidArgument(path +
                               ": SAN matching without trusted_ca would accept any self-made "
                               "certificate; add trusted_ca");
      }
      if (validation->cert_hashes.empty() && validation->spki_pins.empty()) {
        return okStatus();  // nothing to verify against: peers are not verified
      }
    }
    validation->verify_trust_chain = has_ca && !accept_untrusted;
    if (v.allow_expired_certificate()) {
      X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c), X509_V_FLAG_NO_CHECK_TIME);
    }
    if (v.has_max_verify_depth()) {
      SSL_CTX_set_verify_depth(c, static_cast<int>(v.max_verify_depth().value()));
    }
    ctx.validation_ = std::move(validation);
    SSL_CTX_set_cert_verify_callback(c, verifyCertificate, &ctx);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    return okStatus();
  }

  bool server_;
  const SecretManager* secrets_;
};

TlsContext::TlsContext(bool server, SSL_CTX* ctx) : server_(server), ctx_(ctx) {}

TlsContext::~TlsContext() {
  // SSL objects may still hold the SSL_CTX; they must not call back into this object. Sockets
  // hold the TlsContext as long as their SSL, so when we get here no SSL uses it.
  SSL_CTX_set_ex_data(ctx_, sslCtxIndex(), nullptr);
  SSL_CTX_free(ctx_);
  for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
}

int TlsContext::sslCtxIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int TlsContext::verifyDetailIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

Result<std::shared_ptr<const TlsContext>> TlsContext::createServer(
    const tlsv3::DownstreamTlsContext& config, const SecretManager* secrets) {
  TlsContextBuilder builder(/*server=*/true, secrets);
  auto built = builder.build(config.common_tls_context());
  if (!built.ok()) return std::move(built).error();
  std::shared_ptr<TlsContext> ctx = std::move(*built);
  SSL_CTX* c = ctx->ctx_;

  bool require_client =
      config.has_require_client_certificate() && config.require_client_certificate().value();
  if (require_client) {
    if (!ctx->validation_) {
      return invalidArgument(
          "require_client_certificate: needs a validation context with trusted_ca to verify "
          "client certificates against");
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  if (config.has_require_sni() && config.require_sni().value()) {
    SSL_CTX_set_client_hello_cb(c, requireSni, nullptr);
  }
  if (config.ocsp_staple_policy() != tlsv3::DownstreamTlsContext::LENIENT_STAPLING) {
    return invalidArgument("ocsp_staple_policy: only LENIENT_STAPLING is supported");
  }
  if (!config.prefer_client_ciphers()) SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);

  SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof(kSessionIdContext) - 1);
  SSL_CTX_set_session_cache_mode(
      c, config.disable_stateful_session_resumption() ? SSL_SESS_CACHE_OFF : SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_num_tickets(c, 1);
  if (config.has_session_timeout()) {
    SSL_CTX_set_timeout(c, static_cast<long>(config.session_timeout().seconds()));
  }
  switch (config.session_ticket_keys_type_case()) {
    case tlsv3::DownstreamTlsContext::kDisableStatelessSessionResumption:
      if (config.disable_stateless_session_resumption()) SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
      break;
    case tlsv3::DownstreamTlsContext::kSessionTicketKeys: {
      // Shared keys let several proxies (or restarts) resume each other's sessions. OpenSSL
      // holds one key: the first one encrypts and decrypts, as Envoy's first key encrypts.
      const auto& keys = config.session_ticket_keys().keys();
      if (keys.empty())
        return invalidArgument("session_ticket_keys.keys: at least one key is required");
      std::string first;
      for (int i = 0; i < keys.size(); ++i) {
        auto key = readDataSource(keys.Get(i));
        std::string path = "session_ticket_keys.keys[" + std::to_string(i) + "]";
        if (!key.ok()) return underField(std::move(key).error(), path);
        if (key->size() != kTicketKeyLength) {
          return invalidArgument(path + ": must be exactly 80 bytes, got " +
                                 std::to_string(key->size()));
        }
        if (i == 0) first = std::move(*key);
      }
      if (SSL_CTX_set_tlsext_ticket_keys(c, first.data(), static_cast<long>(first.size())) != 1) {
        return withSsl("session_ticket_keys: cannot be applied");
      }
      break;
    }
    case tlsv3::DownstreamTlsContext::kSessionTicketKeysSdsSecretConfig:
      return invalidArgument("session_ticket_keys_sds_secret_config: not supported yet");
    default:
      break;  // random keys per context (OpenSSL's default)
  }
  return std::shared_ptr<const TlsContext>(std::move(ctx));
}

Result<std::shared_ptr<const TlsContext>> TlsContext::createClient(
    const tlsv3::UpstreamTlsContext& config, const SecretManager* secrets) {
  TlsContextBuilder builder(/*server=*/false, secrets);
  auto built = builder.build(config.common_tls_context());
  if (!built.ok()) return std::move(built).error();
  std::shared_ptr<TlsContext> ctx = std::move(*built);
  SSL_CTX* c = ctx->ctx_;
  if (config.sni().size() > 255) return invalidArgument("sni: longer than 255 bytes");
  ctx->sni_ = config.sni();
  ctx->max_session_keys_ = config.has_max_session_keys() ? config.max_session_keys().value() : 1;
  if (ctx->max_session_keys_ > 0) {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, newClientSession);
  } else {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  }
  return std::shared_ptr<const TlsContext>(std::move(ctx));
}

bool TlsContext::verifyTrustChain() const { return validation_ && validation_->verify_trust_chain; }

bool TlsContext::verifyLeaf(X509* leaf, std::string& detail) const {
  if (!validation_) return true;
  if (!validation_->san_matchers.empty()) {
    bool matched = false;
    auto sans = subjectAltNames(leaf);
    for (const auto& m : validation_->san_matchers) {
      for (const auto& [type, value] : sans) {
        if (m.type != 0 && m.type != type) continue;
        if (m.matcher.match(value) || (type == tlsv3::SubjectAltNameMatcher::DNS &&
                                       m.matcher.kind() == StringMatcher::Kind::kExact &&
                                       dnsWildcardMatch(value, m.matcher.pattern()))) {
          matched = true;
          break;
        }
      }
      if (matched) break;
    }
    if (!matched) {
      detail = "SAN matcher";
      return false;
    }
  }
  if (!validation_->cert_hashes.empty() || !validation_->spki_pins.empty()) {
    bool matched = false;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!validation_->cert_hashes.empty() && X509_digest(leaf, EVP_sha256(), md, &md_len) == 1) {
      std::string h = hex(md, md_len);
      for (const auto& want : validation_->cert_hashes) matched = matched || want == h;
    }
    if (!matched && !validation_->spki_pins.empty()) {
      unsigned char* der = nullptr;
      int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der);
      if (len > 0 &&
          EVP_Digest(der, static_cast<size_t>(len), md, &md_len, EVP_sha256(), nullptr) == 1) {
        unsigned char b64[64] = {};
        EVP_EncodeBlock(b64, md, static_cast<int>(md_len));
        std::string pin(reinterpret_cast<char*>(b64));
        for (const auto& want : validation_->spki_pins) matched = matched || want == pin;
      }
      OPENSSL_free(der);
    }
    if (!matched) {
      detail = "certificate hash/SPKI pin";
      return false;
    }
  }
  return true;
}

SSL_SESSION* TlsContext::takeSession(const std::string& key) const {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION* s = it->second;
  if (SSL_SESSION_is_resumable(s) != 1) {
    SSL_SESSION_free(s);
    sessions_.erase(it);
    return nullptr;
  }
  SSL_SESSION_up_ref(s);
  return s;
}

void TlsContext::storeSession(const std::string& key, SSL_SESSION* session) const {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    SSL_SESSION_free(it->second);
    it->second = session;
    return;
  }
  if (sessions_.size() >= kMaxCachedHosts) {
    SSL_SESSION_free(sessions_.begin()->second);
    sessions_.erase(sessions_.begin());
  }
  sessions_.emplace(key, session);
}

std::string drainTlsErrors(std::string_view detail) {
  std::string out = "TLS_error:";
  while (unsigned long err = ERR_get_error()) {
    const char* lib = ERR_lib_error_string(err);
    const char* reason = ERR_reason_error_string(err);
    out += '|';
    out += std::to_string(err);
    out += ':';
    out += lib != nullptr ? lib : "unknown library";
    out += ":OPENSSL_internal:";
    out += reason != nullptr ? reason : "reason " + std::to_string(ERR_GET_REASON(err));
  }
  if (!detail.empty()) {
    out += ':';
    out += detail;
  }
  out += ":TLS_error_end";
  return out;
}

PeerCertificateInfo describeCertificate(X509* cert) {
  PeerCertificateInfo info;
  for (auto& [type, value] : subjectAltNames(cert)) {
    if (type == tlsv3::SubjectAltNameMatcher::URI) {
      info.uri_sans.push_back(std::move(value));
    } else if (type == tlsv3::SubjectAltNameMatcher::DNS) {
      info.dns_sans.push_back(std::move(value));
    }
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    if (len > 0) info.subject.assign(data, static_cast<size_t>(len));
  }
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn != nullptr) {
    char* h = BN_bn2hex(bn);
    if (h != nullptr) {
      info.serial_number = asciiLower(h);
      OPENSSL_free(h);
    }
    BN_free(bn);
  }
  info.not_before = asn1Time(X509_get0_notBefore(cert));
  info.not_after = asn1Time(X509_get0_notAfter(cert));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_len) == 1) {
    static constexpr char kHex[] = "0123456789abcdef";
    info.sha256.reserve(digest_len * 2);
    for (unsigned int i = 0; i < digest_len; ++i) {
      info.sha256 += kHex[digest[i] >> 4];
      info.sha256 += kHex[digest[i] & 0xf];
    }
  }
  return info;
}

Status checkTlsCertificate(const tlsv3::TlsCertificate& cert) {
  auto loaded = loadCertificate(cert);
  if (!loaded.ok()) return std::move(loaded).error();
  return okStatus();
}

Status checkValidationContext(const tlsv3::CertificateValidationContext& validation) {
  if (validation.has_trusted_ca()) {
    auto cas = loadCa(validation.trusted_ca());
    if (!cas.ok()) return underField(std::move(cas).error(), "trusted_ca");
  }
  return okStatus();
}

Error underField(const Error& error, std::string_view path) {
  const std::string& m = error.message();
  size_t colon = m.find(": ");
  bool is_path = colon != std::string::npos && colon > 0 &&
                 m.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.[]", 0) == colon;
  std::string out(path);
  if (is_path) {
    if (m.front() != '[') out += '.';
    out += m;
  } else {
    out += ": ";
    out += m;
  }
  return Error(error.code(), std::move(out));
}

Result<std::string> readDataSource(const envoy::config::core::v3::DataSource& source) {
  using DS = envoy::config::core::v3::DataSource;
  switch (source.specifier_case()) {
    case DS::kFilename: {
      std::ifstream in(source.filename(), std::ios::binary);
      if (!in) {
        return invalidArgument("cannot read file '" + source.filename() +
                               "': " + std::strerror(errno));
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      if (ss.str().empty()) return invalidArgument("file '" + source.filename() + "' is empty");
      return ss.str();
    }
    case DS::kInlineBytes:
      if (source.inline_bytes().empty()) return invalidArgument("inline_bytes is empty");
      return source.inline_bytes();
    case DS::kInlineString:
      if (source.inline_string().empty()) return invalidArgument("inline_string is empty");
      return source.inline_string();
    case DS::kEnvironmentVariable: {
      const char* value = std::getenv(source.environment_variable().c_str());
      if (value == nullptr || *value == '\0') {
        return invalidArgument("environment variable '" + source.environment_variable() +
                               "' is not set or empty");
      }
      return std::string(value);
    }
    default:
      return invalidArgument(
          "no data source set (filename, inline_string, inline_bytes or "
          "environment_variable)");
  }
}

}  // namespace sheave::network::tls
