#include "control/ca/openssl_util.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace sheave::ca {

namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr memoryBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

SystemTime asn1ToTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return SystemTime{};
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// PEM inputs come from the network (CSRs, peer chains): bound them before
// handing them to the parser.
constexpr size_t kMaxPemBytes = 256 * 1024;

}  // namespace

std::string opensslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Result<std::vector<X509Ptr>> parseCertificates(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) {
    return invalidArgument("certificate PEM is larger than 256 KiB");
  }
  ERR_clear_error();
  std::vector<X509Ptr> out;
  auto bio = memoryBio(pem);
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    out.emplace_back(cert);
  }
  unsigned long err = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  if (err != 0 && !clean_end) {
    return invalidArgument("garbled certificate PEM: " + opensslErrors());
  }
  ERR_clear_error();
  if (out.empty()) {
    return invalidArgument("no PEM CERTIFICATE block found");
  }
  return out;
}

Result<EvpPkeyPtr> parsePrivateKey(std::string_view pem) {
  ERR_clear_error();
  auto bio = memoryBio(pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return invalidArgument("unreadable private key PEM: " + opensslErrors());
  }
  return EvpPkeyPtr(key);
}

Result<X509ReqPtr> parseCsr(std::string_view pem) {
  if (pem.empty()) {
    return invalidArgument("the CSR is empty");
  }
  if (pem.size() > kMaxPemBytes) {
    return invalidArgument("the CSR is larger than 256 KiB");
  }
  ERR_clear_error();
  auto bio = memoryBio(pem);
  X509_REQ* req = PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr);
  if (req == nullptr) {
    return invalidArgument("the CSR is not a PEM CERTIFICATE REQUEST: " + opensslErrors());
  }
  return X509ReqPtr(req);
}

std::string certificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bioContents(bio.get());
}

std::string privateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bioContents(bio.get());
}

SystemTime notBefore(const X509* cert) { return asn1ToTime(X509_get0_notBefore(cert)); }
SystemTime notAfter(const X509* cert) { return asn1ToTime(X509_get0_notAfter(cert)); }

Result<EvpPkeyPtr> generateP256Key() {
  ERR_clear_error();
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) {
    return internalError("cannot generate an ECDSA P-256 key: " + opensslErrors());
  }
  return EvpPkeyPtr(key);
}

Result<std::string> randomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return internalError("the random number generator failed: " + opensslErrors());
  }
  return out;
}

Status verifyChain(X509* leaf, const std::vector<X509*>& intermediates,
                   const std::vector<X509*>& roots, SystemTime at, int purpose) {
  ERR_clear_error();
  X509StorePtr store(X509_STORE_new());
  for (X509* root : roots) X509_STORE_add_cert(store.get(), root);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (X509* cert : intermediates) sk_X509_push(untrusted, cert);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  Status result;
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted) != 1) {
    result = internalError("cannot set up certificate verification: " + opensslErrors());
  } else {
    if (purpose != 0) X509_STORE_CTX_set_purpose(ctx.get(), purpose);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()),
                               std::chrono::system_clock::to_time_t(at));
    if (X509_verify_cert(ctx.get()) != 1) {
      int code = X509_STORE_CTX_get_error(ctx.get());
      result = permissionDenied(std::string("certificate chain does not verify: ") +
                                X509_verify_cert_error_string(code));
    }
  }
  sk_X509_free(untrusted);  // the certificates stay owned by the caller
  ERR_clear_error();
  return result;
}

Result<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ioError("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return ioError("cannot read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 4 * 1024 * 1024) {
      ::close(fd);
      return ioError(path + " is larger than 4 MiB");
    }
  }
  ::close(fd);
  return out;
}

Status writeFileAtomic(const std::string& path, std::string_view data, unsigned mode) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover from a crash; O_EXCL below must create a fresh file
  // The mode is applied at creation (the umask can only narrow it), so the
  // bytes are never readable by others, not even briefly.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  static_cast<mode_t>(mode));
  if (fd < 0) {
    return ioError("cannot create " + tmp + ": " + std::strerror(errno));
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ioError("cannot write " + tmp + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  int sync_rc = ::fsync(fd);
  int sync_errno = errno;
  int close_rc = ::close(fd);
  if (sync_rc != 0 || close_rc != 0) {
    int e = sync_rc != 0 ? sync_errno : errno;
    ::unlink(tmp.c_str());
    return ioError("cannot write " + tmp + ": " + std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ioError("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
  return okStatus();
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace sheave::ca
