#include "control/ca/certificate_authority.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/logging.h"

namespace sheave::ca {

namespace {

constexpr std::string_view kCaCert = "ca-cert.pem";
constexpr std::string_view kCaKey = "ca-key.pem";
constexpr std::string_view kCertChain = "cert-chain.pem";
constexpr std::string_view kRootCert = "root-cert.pem";
constexpr std::string_view kPreviousRoots = "root-cert-previous.pem";
constexpr std::string_view kNextKey = "ca-key-next.pem";
constexpr std::string_view kNextRoot = "root-cert-next.pem";

std::chrono::seconds::rep secondsOf(std::chrono::seconds s) { return s.count(); }

// Refuses a private key file that anyone but its owner can reach: a CA key
// readable by a workload would let it mint any identity.
Status checkKeyPermissions(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ioError("cannot stat " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error(ErrorCode::kPermissionDenied,
                 path + " has mode " + mode +
                     ": a CA private key must be accessible only by its owner (chmod 600)");
  }
  return okStatus();
}

Status setSerial(X509* cert) {
  SHEAVE_ASSIGN_OR_RETURN(std::string bytes, randomBytes(16));
  // Positive and non-zero, as RFC 5280 requires.
  bytes[0] = static_cast<char>((static_cast<unsigned char>(bytes[0]) & 0x7f) | 0x01);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr);
  bool ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);
  if (!ok) return internalError("cannot set a certificate serial: " + opensslErrors());
  return okStatus();
}

Status setValidity(X509* cert, SystemTime from, SystemTime to) {
  if (ASN1_TIME_set(X509_getm_notBefore(cert), std::chrono::system_clock::to_time_t(from)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), std::chrono::system_clock::to_time_t(to)) ==
          nullptr) {
    return internalError("cannot set certificate validity: " + opensslErrors());
  }
  return okStatus();
}

// Adds a fixed-text extension (never user input) through OpenSSL's config syntax.
Status addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) {
    return internalError(std::string("cannot build extension ") + OBJ_nid2sn(nid) + ": " +
                         opensslErrors());
  }
  int rc = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (rc != 1) return internalError("cannot add a certificate extension: " + opensslErrors());
  return okStatus();
}

// Builds the SAN extension from typed values rather than OpenSSL's config
// syntax, so nothing in a name can be read as another directive.
Status addSubjectAltNames(X509* cert, const std::vector<std::string>& uris,
                          const std::vector<std::string>& names) {
  GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
  auto fail = [&](const std::string& what) {
    sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
    return internalError(what + ": " + opensslErrors());
  };
  auto pushString = [&](int type, const std::string& value) -> bool {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    GENERAL_NAME* gen = GENERAL_NAME_new();
    if (s == nullptr || gen == nullptr ||
        ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(gen);
      return false;
    }
    GENERAL_NAME_set0_value(gen, type, s);
    sk_GENERAL_NAME_push(gens, gen);
    return true;
  };
  for (const auto& uri : uris) {
    if (!pushString(GEN_URI, uri)) return fail("cannot build a URI SAN");
  }
  for (const auto& name : names) {
    if (ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str()); ip != nullptr) {
      GENERAL_NAME* gen = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
      sk_GENERAL_NAME_push(gens, gen);
      continue;
    }
    ERR_clear_error();
    if (!pushString(GEN_DNS, name)) return fail("cannot build a DNS SAN");
  }
  // Critical: the subject is empty, the SAN is the whole identity (RFC 5280 4.2.1.6).
  int rc = X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 1, X509V3_ADD_DEFAULT);
  sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
  if (rc != 1) return internalError("cannot add the SAN extension: " + opensslErrors());
  return okStatus();
}

bool selfIssued(X509* cert) { return X509_check_issued(cert, cert) == X509_V_OK; }

bool isCa(X509* cert) {
  // X509_check_ca is 1 for a v3 CA (basicConstraints CA:TRUE, keyCertSign
  // if keyUsage is present); other values are legacy forms we do not accept.
  return X509_check_ca(cert) == 1;
}

X509Ptr upRef(X509* cert) {
  X509_up_ref(cert);
  return X509Ptr(cert);
}

Result<X509Ptr> firstCertificate(const std::string& pem, const std::string& what) {
  auto certs = parseCertificates(pem);
  if (!certs.ok()) return std::move(certs).error().at(what);
  return std::move(certs->front());
}

}  // namespace

std::string CertificateAuthority::path(std::string_view file) const {
  return options_.ca_dir + "/" + std::string(file);
}

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::open(const CaOptions& options) {
  if (options.ca_dir.empty()) {
    return invalidArgument("the CA directory (--ca-dir) is not set");
  }
  SHEAVE_RETURN_IF_ERROR((SpiffeId{options.trust_domain, "x", "x"}.validate()));
  if (options.workload_cert_ttl.count() <= 0 || options.max_workload_cert_ttl.count() <= 0 ||
      options.workload_cert_ttl > options.max_workload_cert_ttl) {
    return invalidArgument("workload certificate TTL must be positive and at most the maximum");
  }
  if (options.root_ttl.count() <= 0) {
    return invalidArgument("root certificate TTL must be positive");
  }
  if (!(options.rotate_when_remaining > 0 && options.rotate_when_remaining < 1)) {
    return invalidArgument("rotate_when_remaining must be between 0 and 1");
  }
  auto ca = std::unique_ptr<CertificateAuthority>(new CertificateAuthority(options));
  if (!ca->options_.clock) {
    ca->options_.clock = [] { return std::chrono::system_clock::now(); };
  }
  std::error_code ec;
  if (!std::filesystem::exists(options.ca_dir, ec)) {
    std::filesystem::path dir(options.ca_dir);
    if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
    if (::mkdir(options.ca_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ioError("cannot create the CA directory " + options.ca_dir + ": " +
                     std::strerror(errno));
    }
  }
  if (fileExists(ca->path(kCertChain))) {
    SHEAVE_RETURN_IF_ERROR(ca->loadPluggedIn());
  } else {
    SHEAVE_RETURN_IF_ERROR(ca->loadOrCreateSelfSigned());
  }
  return ca;
}

Status CertificateAuthority::loadPluggedIn() {
  for (auto file : {kCaCert, kCaKey, kCertChain, kRootCert}) {
    if (!fileExists(path(file))) {
      return invalidArgument("plug-in CA in " + options_.ca_dir +
                             " is incomplete: " + std::string(file) +
                             " is missing (need ca-cert.pem, ca-key.pem, cert-chain.pem, "
                             "root-cert.pem)");
    }
  }
  SHEAVE_RETURN_IF_ERROR(checkKeyPermissions(path(kCaKey)));
  SHEAVE_ASSIGN_OR_RETURN(std::string key_pem, readFile(path(kCaKey)));
  SHEAVE_ASSIGN_OR_RETURN(std::string cert_pem, readFile(path(kCaCert)));
  SHEAVE_ASSIGN_OR_RETURN(std::string chain_pem, readFile(path(kCertChain)));
  SHEAVE_ASSIGN_OR_RETURN(std::string root_pem, readFile(path(kRootCert)));

  auto key = parsePrivateKey(key_pem);
  if (!key.ok()) return std::move(key).error().at(path(kCaKey));
  SHEAVE_ASSIGN_OR_RETURN(X509Ptr cert, firstCertificate(cert_pem, path(kCaCert)));
  auto chain = parseCertificates(chain_pem);
  if (!chain.ok()) return std::move(chain).error().at(path(kCertChain));
  auto roots = parseCertificates(root_pem);
  if (!roots.ok()) return std::move(roots).error().at(path(kRootCert));

  if (X509_check_private_key(cert.get(), key->get()) != 1) {
    ERR_clear_error();
    return invalidArgument(path(kCaKey) + " does not match the public key of " + path(kCaCert));
  }
  if (!isCa(cert.get())) {
    return invalidArgument(path(kCaCert) +
                           " is not a CA certificate (needs basicConstraints CA:TRUE and "
                           "keyUsage keyCertSign)");
  }
  // Intermediates: what cert-chain.pem holds besides the signing certificate and roots.
  std::vector<X509Ptr> intermediates;
  for (auto& c : *chain) {
    if (X509_cmp(c.get(), cert.get()) == 0 || selfIssued(c.get())) continue;
    intermediates.push_back(std::move(c));
  }
  std::vector<X509*> inter_raw;
  inter_raw.reserve(intermediates.size());
  for (auto& c : intermediates) inter_raw.push_back(c.get());
  std::vector<X509*> root_raw;
  root_raw.reserve(roots->size());
  for (auto& r : *roots) root_raw.push_back(r.get());
  auto verified = verifyChain(cert.get(), inter_raw, root_raw, options_.clock(), 0);
  if (!verified.ok()) {
    return invalidArgument(path(kCaCert) + " does not chain to " + path(kRootCert) + " through " +
                           path(kCertChain) + ": " + verified.error().message());
  }
  // The root the chain ends with goes last in every issued chain; other
  // roots in root-cert.pem are trusted too (an operator's rotation).
  X509* top = intermediates.empty() ? cert.get() : intermediates.back().get();
  for (auto& r : *roots) {
    if (!root_ && X509_check_issued(r.get(), top) == X509_V_OK) {
      root_ = std::move(r);
    } else {
      extra_roots_.push_back(std::move(r));
    }
  }
  if (!root_) {
    return invalidArgument("no certificate in " + path(kRootCert) + " issued " + path(kCaCert));
  }
  signing_key_ = std::move(*key);
  signing_cert_ = std::move(cert);
  intermediates_ = std::move(intermediates);
  plugged_in_ = true;
  SHEAVE_LOG_INFO("CA: using the plug-in CA in {} (signing certificate expires in {} days)",
                  options_.ca_dir,
                  std::chrono::duration_cast<std::chrono::hours>(notAfter(signing_cert_.get()) -
                                                                 options_.clock())
                          .count() /
                      24);
  return okStatus();
}

Status CertificateAuthority::loadOrCreateSelfSigned() {
  bool has_key = fileExists(path(kCaKey));
  bool has_cert = fileExists(path(kCaCert));
  if (!has_key && !has_cert) {
    SHEAVE_ASSIGN_OR_RETURN(EvpPkeyPtr key, generateP256Key());
    SHEAVE_ASSIGN_OR_RETURN(X509Ptr root, createRoot(key.get()));
    SHEAVE_RETURN_IF_ERROR(persistRotation(key.get(), root.get(), {}));
    signing_key_ = std::move(key);
    signing_cert_ = upRef(root.get());
    root_ = std::move(root);
    SHEAVE_LOG_INFO("CA: created a self-signed root for trust domain {} in {}",
                    options_.trust_domain, options_.ca_dir);
    return okStatus();
  }
  if (!has_key || !has_cert) {
    return invalidArgument("CA directory " + options_.ca_dir + " has " +
                           std::string(has_key ? kCaKey : kCaCert) + " but not " +
                           std::string(has_key ? kCaCert : kCaKey) +
                           "; restore the missing file or empty the directory");
  }
  SHEAVE_RETURN_IF_ERROR(checkKeyPermissions(path(kCaKey)));
  SHEAVE_ASSIGN_OR_RETURN(std::string key_pem, readFile(path(kCaKey)));
  SHEAVE_ASSIGN_OR_RETURN(std::string cert_pem, readFile(path(kCaCert)));
  auto key = parsePrivateKey(key_pem);
  if (!key.ok()) return std::move(key).error().at(path(kCaKey));
  SHEAVE_ASSIGN_OR_RETURN(X509Ptr cert, firstCertificate(cert_pem, path(kCaCert)));
  if (X509_check_private_key(cert.get(), key->get()) != 1) {
    ERR_clear_error();
    return invalidArgument(path(kCaKey) + " does not match the public key of " + path(kCaCert));
  }
  if (!isCa(cert.get())) {
    return invalidArgument(path(kCaCert) + " is not a CA certificate");
  }
  if (!selfIssued(cert.get())) {
    return invalidArgument(path(kCaCert) +
                           " is not self-signed and cert-chain.pem is missing: a plug-in CA "
                           "needs ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem");
  }
  if (fileExists(path(kPreviousRoots))) {
    SHEAVE_ASSIGN_OR_RETURN(std::string prev_pem, readFile(path(kPreviousRoots)));
    auto prev = parseCertificates(prev_pem);
    if (!prev.ok()) return std::move(prev).error().at(path(kPreviousRoots));
    for (auto& p : *prev) {
      if (notAfter(p.get()) > options_.clock()) previous_roots_.push_back(std::move(p));
    }
  }
  signing_key_ = std::move(*key);
  signing_cert_ = upRef(cert.get());
  root_ = std::move(cert);
  SHEAVE_LOG_INFO("CA: reusing the self-signed root in {}", options_.ca_dir);
  return loadPendingRotation();
}

Status CertificateAuthority::loadPendingRotation() {
  bool has_key = fileExists(path(kNextKey));
  bool has_root = fileExists(path(kNextRoot));
  if (!has_key && !has_root) return okStatus();
  auto discard = [&](const std::string& why) {
    SHEAVE_LOG_WARN("CA: discarding the pending root rotation in {}: {}", options_.ca_dir, why);
    ::unlink(path(kNextKey).c_str());
    ::unlink(path(kNextRoot).c_str());
    return okStatus();
  };
  if (!has_key || !has_root) return discard("it was not completely written");
  SHEAVE_RETURN_IF_ERROR(checkKeyPermissions(path(kNextKey)));
  SHEAVE_ASSIGN_OR_RETURN(std::string key_pem, readFile(path(kNextKey)));
  SHEAVE_ASSIGN_OR_RETURN(std::string root_pem, readFile(path(kNextRoot)));
  auto key = parsePrivateKey(key_pem);
  if (!key.ok()) return std::move(key).error().at(path(kNextKey));
  SHEAVE_ASSIGN_OR_RETURN(X509Ptr root, firstCertificate(root_pem, path(kNextRoot)));
  if (X509_check_private_key(root.get(), key->get()) != 1) {
    ERR_clear_error();
    return discard("its key does not match its certificate");
  }
  if (X509_cmp(root.get(), root_.get()) == 0) {
    return discard("it was already switched to");
  }
  next_key_ = std::move(*key);
  next_root_ = std::move(root);
  return okStatus();
}

Result<X509Ptr> CertificateAuthority::createRoot(EVP_PKEY* key) const {
  X509Ptr cert(X509_new());
  if (!cert) return internalError("cannot allocate a certificate");
  X509_set_version(cert.get(), X509_VERSION_3);
  SHEAVE_RETURN_IF_ERROR(setSerial(cert.get()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(options_.trust_domain.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  SystemTime now = options_.clock();
  SHEAVE_RETURN_IF_ERROR(setValidity(cert.get(), now - options_.backdate, now + options_.root_ttl));
  X509_set_pubkey(cert.get(), key);
  SHEAVE_RETURN_IF_ERROR(
      addExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  SHEAVE_RETURN_IF_ERROR(
      addExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  SHEAVE_RETURN_IF_ERROR(addExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  SHEAVE_RETURN_IF_ERROR(
      addExtension(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), key, EVP_sha256()) == 0) {
    return internalError("cannot self-sign the root certificate: " + opensslErrors());
  }
  return cert;
}

Status CertificateAuthority::persistRotation(EVP_PKEY* key, X509* root,
                                             const std::vector<X509Ptr>& previous) {
  // Previous roots first: if we stop half way, the next start still trusts
  // them. The key before the certificate: a key that does not match is
  // reported at the next start, never silently used.
  if (!previous.empty()) {
    std::string pem;
    for (const auto& p : previous) pem += certificateToPem(p.get());
    SHEAVE_RETURN_IF_ERROR(writeFileAtomic(path(kPreviousRoots), pem, 0644));
  }
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(path(kCaKey), privateKeyToPem(key), 0600));
  std::string root_pem = certificateToPem(root);
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(path(kCaCert), root_pem, 0644));
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(path(kRootCert), root_pem, 0644));
  return okStatus();
}

Result<X509Ptr> CertificateAuthority::issueLocked(EVP_PKEY* subject_key,
                                                  const std::vector<std::string>& uris,
                                                  const std::vector<std::string>& names,
                                                  std::chrono::seconds ttl, bool client_auth) {
  X509Ptr cert(X509_new());
  if (!cert) return internalError("cannot allocate a certificate");
  X509_set_version(cert.get(), X509_VERSION_3);
  SHEAVE_RETURN_IF_ERROR(setSerial(cert.get()));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signing_cert_.get()));
  // The subject stays empty: the identity is the SAN alone, as Istio issues.
  SystemTime now = options_.clock();
  SystemTime not_after = now + ttl;
  // Never outlive a certificate above it in the chain.
  not_after = std::min(not_after, notAfter(signing_cert_.get()));
  for (const auto& i : intermediates_) not_after = std::min(not_after, notAfter(i.get()));
  not_after = std::min(not_after, notAfter(root_.get()));
  if (not_after <= now) {
    return internalError("the CA's signing certificate has expired");
  }
  SHEAVE_RETURN_IF_ERROR(setValidity(cert.get(), now - options_.backdate, not_after));
  if (X509_set_pubkey(cert.get(), subject_key) != 1) {
    return internalError("cannot set the certificate's public key: " + opensslErrors());
  }
  X509* issuer = signing_cert_.get();
  SHEAVE_RETURN_IF_ERROR(
      addExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  SHEAVE_RETURN_IF_ERROR(
      addExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
  SHEAVE_RETURN_IF_ERROR(addExtension(cert.get(), issuer, NID_ext_key_usage,
                                      client_auth ? "serverAuth,clientAuth" : "serverAuth"));
  if (X509_get0_subject_key_id(issuer) != nullptr) {
    SHEAVE_RETURN_IF_ERROR(addExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid"));
  }
  SHEAVE_RETURN_IF_ERROR(addSubjectAltNames(cert.get(), uris, names));
  const EVP_MD* md = EVP_PKEY_get_bits(signing_key_.get()) > 256 &&
                             EVP_PKEY_get_base_id(signing_key_.get()) == EVP_PKEY_EC
                         ? EVP_sha384()
                         : EVP_sha256();
  if (X509_sign(cert.get(), signing_key_.get(), md) == 0) {
    return internalError("cannot sign the certificate: " + opensslErrors());
  }
  return cert;
}

std::vector<std::string> CertificateAuthority::chainLocked(X509* leaf) const {
  std::vector<std::string> out;
  out.push_back(certificateToPem(leaf));
  if (X509_cmp(signing_cert_.get(), root_.get()) != 0) {
    out.push_back(certificateToPem(signing_cert_.get()));
  }
  for (const auto& i : intermediates_) out.push_back(certificateToPem(i.get()));
  out.push_back(certificateToPem(root_.get()));
  return out;
}

Result<std::vector<std::string>> CertificateAuthority::sign(std::string_view csr_pem,
                                                            const SpiffeId& identity,
                                                            std::chrono::seconds ttl) {
  if (ttl.count() <= 0) {
    return invalidArgument("requested certificate TTL must be positive");
  }
  if (ttl > options_.max_workload_cert_ttl) {
    return invalidArgument("requested certificate TTL " + std::to_string(secondsOf(ttl)) +
                           "s exceeds the maximum of " +
                           std::to_string(secondsOf(options_.max_workload_cert_ttl)) + "s");
  }
  SHEAVE_RETURN_IF_ERROR(identity.validate());
  if (identity.trust_domain != options_.trust_domain) {
    return permissionDenied("identity's trust domain " + identity.trust_domain +
                            " is not this CA's (" + options_.trust_domain + ")");
  }
  SHEAVE_ASSIGN_OR_RETURN(X509ReqPtr req, parseCsr(csr_pem));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) {
    ERR_clear_error();
    return invalidArgument("the CSR carries no usable public key");
  }
  if (X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return invalidArgument("the CSR's signature does not verify with its own public key");
  }
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits < 2048 || bits > 8192) {
        return invalidArgument("the CSR's RSA key has " + std::to_string(bits) +
                               " bits; 2048 to 8192 are accepted");
      }
      break;
    }
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                         &len) != 1) {
        ERR_clear_error();
        return invalidArgument("the CSR's EC key has no named curve");
      }
      std::string_view g(group, len);
      if (g != "prime256v1" && g != "secp384r1") {
        return invalidArgument("the CSR's EC key uses curve " + std::string(g) +
                               "; P-256 and P-384 are accepted");
      }
      break;
    }
    default:
      return invalidArgument("the CSR's key type is not accepted (RSA or ECDSA P-256/P-384)");
  }
  std::lock_guard lock(mutex_);
  SHEAVE_RETURN_IF_ERROR(promoteLocked(options_.clock()));
  SHEAVE_ASSIGN_OR_RETURN(X509Ptr leaf, issueLocked(key, {identity.toString()}, {}, ttl, true));
  return chainLocked(leaf.get());
}

Result<ServingCertificate> CertificateAuthority::issueServingCertificate(
    const std::vector<std::string>& names, std::chrono::seconds ttl) {
  SHEAVE_ASSIGN_OR_RETURN(EvpPkeyPtr key, generateP256Key());
  ServingCertificate out;
  out.private_key_pem = privateKeyToPem(key.get());
  SHEAVE_ASSIGN_OR_RETURN(out.cert_chain_pem,
                          issueServingCertificateForKey(out.private_key_pem, names, ttl));
  return out;
}

Result<std::string> CertificateAuthority::issueServingCertificateForKey(
    std::string_view private_key_pem, const std::vector<std::string>& names,
    std::chrono::seconds ttl) {
  if (names.empty()) {
    return invalidArgument("a serving certificate needs at least one DNS name or IP");
  }
  for (const auto& n : names) {
    bool ok = !n.empty() && n.size() <= 253 && std::all_of(n.begin(), n.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == ':' || c == '*';
    });
    if (!ok) return invalidArgument("invalid serving certificate name '" + n + "'");
  }
  if (ttl.count() <= 0) return invalidArgument("serving certificate TTL must be positive");
  SHEAVE_ASSIGN_OR_RETURN(EvpPkeyPtr key, parsePrivateKey(private_key_pem));
  std::lock_guard lock(mutex_);
  SHEAVE_RETURN_IF_ERROR(promoteLocked(options_.clock()));
  SHEAVE_ASSIGN_OR_RETURN(X509Ptr leaf, issueLocked(key.get(), {}, names, ttl, true));
  std::string chain;
  for (const auto& pem : chainLocked(leaf.get())) chain += pem;
  return chain;
}

std::string CertificateAuthority::trustBundle() const {
  std::string out;
  for (const auto& r : trustedRoots()) out += certificateToPem(r.get());
  return out;
}

std::vector<X509Ptr> CertificateAuthority::trustedRoots() const {
  std::lock_guard lock(mutex_);
  SystemTime now = options_.clock();
  std::vector<X509Ptr> out;
  out.push_back(upRef(root_.get()));
  if (next_root_) out.push_back(upRef(next_root_.get()));
  for (const auto& r : extra_roots_) out.push_back(upRef(r.get()));
  for (const auto& r : previous_roots_) {
    if (notAfter(r.get()) > now) out.push_back(upRef(r.get()));
  }
  return out;
}

std::vector<X509Ptr> CertificateAuthority::intermediates() const {
  std::lock_guard lock(mutex_);
  std::vector<X509Ptr> out;
  if (X509_cmp(signing_cert_.get(), root_.get()) != 0) out.push_back(upRef(signing_cert_.get()));
  for (const auto& i : intermediates_) out.push_back(upRef(i.get()));
  return out;
}

Status CertificateAuthority::rotateRoot() {
  if (plugged_in_) {
    return invalidArgument(
        "the plug-in CA's root is rotated by its operator (replace the files in " +
        options_.ca_dir + ")");
  }
  {
    std::lock_guard lock(mutex_);
    if (next_root_) return invalidArgument("a root rotation is already pending");
  }
  SHEAVE_ASSIGN_OR_RETURN(EvpPkeyPtr key, generateP256Key());
  SHEAVE_ASSIGN_OR_RETURN(X509Ptr root, createRoot(key.get()));
  std::lock_guard lock(mutex_);
  if (options_.root_switch_delay.count() == 0) {
    return switchRootLocked(std::move(key), std::move(root));
  }
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(path(kNextKey), privateKeyToPem(key.get()), 0600));
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(path(kNextRoot), certificateToPem(root.get()), 0644));
  next_key_ = std::move(key);
  next_root_ = std::move(root);
  SHEAVE_LOG_INFO("CA: new root in {} is trusted now and signs in {}s", options_.ca_dir,
                  options_.root_switch_delay.count());
  return okStatus();
}

bool CertificateAuthority::rotationPending() const {
  std::lock_guard lock(mutex_);
  return next_root_ != nullptr;
}

Status CertificateAuthority::promoteLocked(SystemTime now) {
  if (!next_root_) return okStatus();
  // The creation time is in the certificate (notBefore + backdate), so the
  // schedule survives a restart without more state.
  SystemTime switch_at =
      notBefore(next_root_.get()) + options_.backdate + options_.root_switch_delay;
  if (now < switch_at) return okStatus();
  SHEAVE_RETURN_IF_ERROR(switchRootLocked(std::move(next_key_), std::move(next_root_)));
  ::unlink(path(kNextKey).c_str());
  ::unlink(path(kNextRoot).c_str());
  return okStatus();
}

Status CertificateAuthority::switchRootLocked(EvpPkeyPtr key, X509Ptr root) {
  SystemTime now = options_.clock();
  std::vector<X509Ptr> previous;
  previous.push_back(upRef(root_.get()));
  for (const auto& p : previous_roots_) {
    if (notAfter(p.get()) > now) previous.push_back(upRef(p.get()));
  }
  SHEAVE_RETURN_IF_ERROR(persistRotation(key.get(), root.get(), previous));
  previous_roots_ = std::move(previous);
  signing_key_ = std::move(key);
  signing_cert_ = upRef(root.get());
  root_ = std::move(root);
  SHEAVE_LOG_INFO("CA: rotated the self-signed root in {}; {} earlier root(s) stay trusted",
                  options_.ca_dir, previous_roots_.size());
  return okStatus();
}

Result<bool> CertificateAuthority::maybeRotate(SystemTime now) {
  SystemTime from;
  SystemTime to;
  {
    std::lock_guard lock(mutex_);
    SHEAVE_RETURN_IF_ERROR(promoteLocked(now));
    if (next_root_) return false;
    // For a plug-in CA the certificate that runs out first is the signing
    // one; for the built-in root they are the same.
    from = notBefore(signing_cert_.get());
    to = notAfter(signing_cert_.get());
  }
  auto life = to - from;
  auto left = to - now;
  if (left >
      std::chrono::duration_cast<SystemTime::duration>(life * options_.rotate_when_remaining)) {
    return false;
  }
  if (plugged_in_) {
    // Nothing we can do but warn, well ahead and at most once a day.
    std::lock_guard lock(mutex_);
    if (now - last_expiry_warning_ >= std::chrono::hours(24)) {
      last_expiry_warning_ = now;
      SHEAVE_LOG_WARN(
          "CA: the plug-in signing certificate in {} expires in {} hours; workload certificates "
          "will stop verifying then unless the operator replaces it",
          options_.ca_dir, std::chrono::duration_cast<std::chrono::hours>(left).count());
    }
    return false;
  }
  SHEAVE_RETURN_IF_ERROR(rotateRoot());
  return true;
}

SystemTime CertificateAuthority::rootExpiry() const {
  std::lock_guard lock(mutex_);
  return notAfter(root_.get());
}

SystemTime CertificateAuthority::signingCertificateExpiry() const {
  std::lock_guard lock(mutex_);
  return notAfter(signing_cert_.get());
}

Result<SystemTime> certificateExpiry(std::string_view pem) {
  SHEAVE_ASSIGN_OR_RETURN(auto certs, parseCertificates(pem));
  return notAfter(certs.front().get());
}

}  // namespace sheave::ca
