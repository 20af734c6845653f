#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sheave::network::tls::testing {

// Certificates made at test time with the OpenSSL API (ECDSA P-256), so no key is ever committed.
struct CertOptions {
  std::string cn = "test";
  std::vector<std::string> dns_sans;
  std::vector<std::string> uri_sans;
  long not_before_seconds = -3600;  // relative to now
  long not_after_seconds = 30L * 24 * 3600;
  bool is_ca = false;
};

class TestCert {
 public:
  TestCert() = default;
  TestCert(const TestCert&) = delete;
  TestCert& operator=(const TestCert&) = delete;
  TestCert(TestCert&& o) noexcept : cert_(o.cert_), key_(o.key_) {
    o.cert_ = nullptr;
    o.key_ = nullptr;
  }
  ~TestCert() {
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }

  // A self-signed CA (issuer == nullptr) or a certificate issued by `issuer`.
  static TestCert make(const CertOptions& opt, const TestCert* issuer = nullptr) {
    static std::atomic<long> serial{0x1000};
    TestCert c;
    c.key_ = EVP_EC_gen("P-256");
    c.cert_ = X509_new();
    X509_set_version(c.cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.cert_), serial.fetch_add(1));
    X509_gmtime_adj(X509_getm_notBefore(c.cert_), opt.not_before_seconds);
    X509_gmtime_adj(X509_getm_notAfter(c.cert_), opt.not_after_seconds);
    X509_set_pubkey(c.cert_, c.key_);
    X509_NAME* name = X509_get_subject_name(c.cert_);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("sheave-test"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(opt.cn.c_str()), -1, -1, 0);
    X509* issuer_cert = issuer != nullptr ? issuer->cert_ : c.cert_;
    EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key_ : c.key_;
    X509_set_issuer_name(c.cert_, X509_get_subject_name(issuer_cert));
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer_cert, c.cert_, nullptr, nullptr, 0);
    c.addExt(ctx, NID_basic_constraints, opt.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    c.addExt(ctx, NID_key_usage,
             opt.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    c.addExt(ctx, NID_subject_key_identifier, "hash");
    if (issuer != nullptr) c.addExt(ctx, NID_authority_key_identifier, "keyid:always");
    std::string sans;
    for (const auto& d : opt.dns_sans) sans += (sans.empty() ? "" : ",") + ("DNS:" + d);
    for (const auto& u : opt.uri_sans) sans += (sans.empty() ? "" : ",") + ("URI:" + u);
    if (!sans.empty()) c.addExt(ctx, NID_subject_alt_name, sans.c_str());
    if (X509_sign(c.cert_, issuer_key, EVP_sha256()) == 0) throw std::runtime_error("X509_sign");
    return c;
  }

  std::string certPem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert_);
    return drain(bio);
  }
  std::string keyPem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key_, nullptr, nullptr, 0, nullptr, nullptr);
    return drain(bio);
  }
  X509* cert() const { return cert_; }

 private:
  void addExt(X509V3_CTX& ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error(std::string("extension ") + value);
    X509_add_ext(cert_, ext, -1);
    X509_EXTENSION_free(ext);
  }
  static std::string drain(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(len));
    BIO_free(bio);
    return out;
  }

  X509* cert_ = nullptr;
  EVP_PKEY* key_ = nullptr;
};

inline CertOptions certOptions(std::string cn, std::vector<std::string> dns,
                               std::vector<std::string> uris, bool is_ca = false) {
  CertOptions o;
  o.cn = std::move(cn);
  o.dns_sans = std::move(dns);
  o.uri_sans = std::move(uris);
  o.is_ca = is_ca;
  return o;
}

inline CertOptions expiredOptions() {
  CertOptions o = certOptions("expired.test", {"server.test"}, {});
  o.not_before_seconds = -10L * 24 * 3600;
  o.not_after_seconds = -24L * 3600;
  return o;
}

// The set every test uses, made once per process (key generation is the slow part).
struct TestPki {
  TestCert ca = TestCert::make(certOptions("Sheave Test CA", {}, {}, true));
  TestCert other_ca = TestCert::make(certOptions("Other CA", {}, {}, true));
  TestCert server = TestCert::make(certOptions("server.test", {"server.test"}, {}), &ca);
  TestCert server2 = TestCert::make(certOptions("server2.test", {"server2.test"}, {}), &ca);
  TestCert client =
      TestCert::make(certOptions("client", {}, {"spiffe://cluster.local/ns/default/sa/test"}), &ca);
  TestCert expired = TestCert::make(expiredOptions(), &ca);
  TestCert foreign = TestCert::make(
      certOptions("foreign.test", {"server.test"}, {"spiffe://cluster.local/ns/default/sa/test"}),
      &other_ca);

  static const TestPki& get() {
    static TestPki pki;
    return pki;
  }
};

}  // namespace sheave::network::tls::testing
