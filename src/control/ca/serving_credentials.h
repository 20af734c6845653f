#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/ca/certificate_authority.h"

namespace grpc {
class ServerCredentials;
}  // namespace grpc

namespace sheave::ca {

// TLS credentials of the control plane's own port (15012) that follow the
// CA: the serving certificate and the client-CA bundle live in files that
// gRPC re-reads every `refresh`, so a root rotation or a renewal reaches new
// handshakes without restarting the listener or dropping a stream.
//
// Files in `dir` (created 0700): serving-key.pem (0600, one key for the
// object's life, so the key/certificate pair is never seen half-updated),
// serving-cert.pem, client-ca.pem; each replaced by an atomic rename.
class ServingCredentials {
 public:
  static Result<std::unique_ptr<ServingCredentials>> create(
      CertificateAuthority& ca, std::string dir, std::vector<std::string> names,
      std::chrono::seconds refresh = std::chrono::seconds(10),
      std::chrono::seconds ttl = std::chrono::hours(24 * 30));

  // Client certificates are requested (token callers have none) and, when
  // presented, verified against the CA's trust bundle at the handshake.
  std::shared_ptr<grpc::ServerCredentials> serverCredentials() const;

  // Rewrites the files when the trust bundle changed (a rotation) or the
  // serving certificate has less than half its life left. Call it on the
  // same tick as CertificateAuthority::maybeRotate. True when it rewrote.
  Result<bool> maybeRefresh();
  // Reissues the serving certificate and rewrites both files now.
  Status refresh();

  SystemTime expiry() const;
  std::string certificatePath() const { return dir_ + "/serving-cert.pem"; }
  std::string keyPath() const { return dir_ + "/serving-key.pem"; }
  std::string clientCaPath() const { return dir_ + "/client-ca.pem"; }

 private:
  ServingCredentials(CertificateAuthority& ca, std::string dir, std::vector<std::string> names,
                     std::chrono::seconds refresh, std::chrono::seconds ttl)
      : ca_(ca), dir_(std::move(dir)), names_(std::move(names)), refresh_(refresh), ttl_(ttl) {}

  CertificateAuthority& ca_;
  std::string dir_;
  std::vector<std::string> names_;
  std::chrono::seconds refresh_;
  std::chrono::seconds ttl_;
  mutable std::mutex mutex_;
  std::string key_pem_;
  std::string bundle_;  // as last written
  SystemTime not_before_{};
  SystemTime not_after_{};
};

}  // namespace sheave::ca
