#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

#include "control/ca/openssl_util.h"

// Helpers for the CA tests: temporary directories, keys, CSRs and a fake clock.
namespace sheave::ca::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sheave-ca-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A settable clock shared by reference with the code under test.
class FakeClock {
 public:
  FakeClock() : now_(std::chrono::system_clock::from_time_t(1893456000)) {}  // 2030-01-01
  SystemTime now() const {
    std::lock_guard lock(mutex_);
    return now_;
  }
  void advance(std::chrono::seconds d) {
    std::lock_guard lock(mutex_);
    now_ += d;
  }
  void set(SystemTime t) {
    std::lock_guard lock(mutex_);
    now_ = t;
  }
  std::function<SystemTime()> fn() {
    return [this] { return now(); };
  }

 private:
  mutable std::mutex mutex_;
  SystemTime now_;
};

inline EvpPkeyPtr ecKey(const char* curve = "P-256") { return EvpPkeyPtr(EVP_EC_gen(curve)); }
inline EvpPkeyPtr rsaKey(unsigned bits) { return EvpPkeyPtr(EVP_RSA_gen(bits)); }

// A CSR signed by `key`, asking for `subject_cn` and the URI SAN `uri`
// (both optional): what a hostile proxy could put in.
inline std::string makeCsr(EVP_PKEY* key, const std::string& uri = "",
                           const std::string& subject_cn = "", EVP_PKEY* swap_key = nullptr) {
  X509ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_REQ_set_pubkey(req.get(), key);
  if (!subject_cn.empty()) {
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(subject_cn.c_str()), -1, -1,
                               0);
  }
  if (!uri.empty()) {
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    std::string value = "URI:" + uri;
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str());
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_sign(req.get(), key, EVP_sha256());
  // Replacing the key after signing leaves a signature that does not verify.
  if (swap_key != nullptr) X509_REQ_set_pubkey(req.get(), swap_key);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(bio, req.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

inline void writeFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  ::chmod(path.c_str(), mode);
}

inline unsigned fileMode(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

// Runs a shell command, returns its exit code and stdout+stderr.
inline std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WEXITSTATUS(rc), out};
}

inline X509Ptr firstCert(const std::string& pem) {
  auto certs = parseCertificates(pem);
  if (!certs.ok()) return nullptr;
  return std::move(certs->front());
}

}  // namespace sheave::ca::testing
