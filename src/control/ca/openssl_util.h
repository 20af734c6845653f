#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

// Small RAII and PEM helpers shared by the CA and the authenticators. Not a
// general OpenSSL wrapper: only what this module needs.
namespace sheave::ca {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509ReqDeleter {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct X509StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct X509StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using X509ReqPtr = std::unique_ptr<X509_REQ, X509ReqDeleter>;
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreDeleter>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, X509StoreCtxDeleter>;

using SystemTime = std::chrono::system_clock::time_point;

// Drains OpenSSL's thread-local error queue into one line (empty when none),
// so a stale error never leaks into a later, unrelated message.
std::string opensslErrors();

// Every CERTIFICATE block of `pem`, in order. An error when there is none or
// when any block does not parse.
Result<std::vector<X509Ptr>> parseCertificates(std::string_view pem);
Result<EvpPkeyPtr> parsePrivateKey(std::string_view pem);
Result<X509ReqPtr> parseCsr(std::string_view pem);

std::string certificateToPem(X509* cert);
std::string privateKeyToPem(EVP_PKEY* key);

SystemTime notBefore(const X509* cert);
SystemTime notAfter(const X509* cert);

// A fresh ECDSA P-256 key.
Result<EvpPkeyPtr> generateP256Key();

// Bytes from OpenSSL's CSPRNG.
Result<std::string> randomBytes(size_t n);

// X509_verify_cert of `leaf` against `roots`, with `intermediates` as
// untrusted helpers, at time `at`, for `purpose` (X509_PURPOSE_SSL_CLIENT,
// X509_PURPOSE_SSL_SERVER, or 0 for none). PERMISSION_DENIED-style error
// naming OpenSSL's reason when it fails.
Status verifyChain(X509* leaf, const std::vector<X509*>& intermediates,
                   const std::vector<X509*>& roots, SystemTime at, int purpose);

// Files. The key writer never lets the bytes be readable by anyone but the
// owner, not even between create and chmod.
Result<std::string> readFile(const std::string& path);
// Writes `data` to a temporary sibling created with O_EXCL and `mode`, then
// renames it over `path`, so readers see either the old or the new content.
Status writeFileAtomic(const std::string& path, std::string_view data, unsigned mode);
bool fileExists(const std::string& path);

}  // namespace sheave::ca
