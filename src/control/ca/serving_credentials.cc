#include "control/ca/serving_credentials.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/logging.h"

namespace sheave::ca {

Result<std::unique_ptr<ServingCredentials>> ServingCredentials::create(
    CertificateAuthority& ca, std::string dir, std::vector<std::string> names,
    std::chrono::seconds refresh, std::chrono::seconds ttl) {
  if (dir.empty()) return invalidArgument("serving credentials need a directory");
  if (refresh.count() < 1) return invalidArgument("refresh interval must be at least 1s");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ioError("cannot create " + dir + ": " + std::strerror(errno));
  }
  std::unique_ptr<ServingCredentials> out(
      new ServingCredentials(ca, std::move(dir), std::move(names), refresh, ttl));
  SHEAVE_ASSIGN_OR_RETURN(EvpPkeyPtr key, generateP256Key());
  out->key_pem_ = privateKeyToPem(key.get());
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(out->keyPath(), out->key_pem_, 0600));
  SHEAVE_RETURN_IF_ERROR(out->refresh());
  return out;
}

std::shared_ptr<grpc::ServerCredentials> ServingCredentials::serverCredentials() const {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      keyPath(), certificatePath(), clientCaPath(), static_cast<unsigned>(refresh_.count()));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

Status ServingCredentials::refresh() {
  std::lock_guard lock(mutex_);
  // The bundle before the certificate: a client with a new-root certificate
  // must be accepted no later than the server presents a new-root chain.
  std::string bundle = ca_.trustBundle();
  SHEAVE_ASSIGN_OR_RETURN(std::string chain,
                          ca_.issueServingCertificateForKey(key_pem_, names_, ttl_));
  SHEAVE_ASSIGN_OR_RETURN(auto certs, parseCertificates(chain));
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(clientCaPath(), bundle, 0644));
  SHEAVE_RETURN_IF_ERROR(writeFileAtomic(certificatePath(), chain, 0644));
  bundle_ = std::move(bundle);
  not_before_ = notBefore(certs.front().get());
  not_after_ = notAfter(certs.front().get());
  return okStatus();
}

Result<bool> ServingCredentials::maybeRefresh() {
  bool due = false;
  {
    std::lock_guard lock(mutex_);
    SystemTime now = ca_.now();
    due = ca_.trustBundle() != bundle_ || now >= not_before_ + (not_after_ - not_before_) / 2;
  }
  if (!due) return false;
  SHEAVE_RETURN_IF_ERROR(refresh());
  SHEAVE_LOG_INFO("CA: renewed the serving certificate in {}", dir_);
  return true;
}

SystemTime ServingCredentials::expiry() const {
  std::lock_guard lock(mutex_);
  return not_after_;
}

}  // namespace sheave::ca
