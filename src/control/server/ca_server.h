#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "control/ca/bootstrap_token_authenticator.h"
#include "control/ca/ca_service.h"
#include "control/ca/certificate_authenticator.h"
#include "control/ca/certificate_authority.h"
#include "control/ca/serving_credentials.h"
#include "control/model/config_set.h"
#include "control/xds/resource_provider.h"

namespace grpc {
class ServerCredentials;
class Service;
}  // namespace grpc

namespace sheave::control {

struct CaServerOptions {
  std::string ca_dir;
  std::string trust_domain = "cluster.local";
  // Where bootstrap tokens go, one file per WorkloadEntry: <token_dir>/<namespace>/<name>
  // (0600). Empty: no tokens are issued.
  std::string token_dir;
  std::chrono::seconds token_ttl = std::chrono::hours(1);
  std::chrono::seconds workload_cert_ttl = std::chrono::hours(24);
  // Names in the serving certificate of the xDS TLS port (Istio's istiod DNS name first).
  std::vector<std::string> serving_names = {"istiod.sheave-system.svc", "localhost", "127.0.0.1"};
};

// Istio's CA as sheave-control runs it: the certificate authority, the authenticators that bind
// a caller to an identity (bootstrap tokens for a proxy's first certificate, the certificate
// itself afterwards), the IstioCertificateService the xDS port carries, the TLS credentials of
// that port, and the bootstrap token files of local workloads. Thread-safe.
class CaServer {
 public:
  static Result<std::unique_ptr<CaServer>> create(const CaServerOptions& options);

  // For XdsServer::start: the serving certificate, client certificates verified (not required).
  std::shared_ptr<grpc::ServerCredentials> xdsCredentials() const;
  grpc::Service* service() { return service_.get(); }
  // MeshProvider's stream authenticator: the SPIFFE ID of the verified client certificate.
  // Tokens buy certificates only, never config.
  Result<std::string> authenticateStream(const xds::PeerCredentials& peer);
  std::string trustBundle() const { return ca_->trustBundle(); }

  // Issues a token file for every WorkloadEntry that has none yet, and forgets the tokens of
  // workloads that are gone. Called with each configuration.
  void syncTokens(const ConfigSet& config);

  // Istio's citadel_server_* metrics, Prometheus text.
  std::string metrics() const;

  // Rotates the built-in root when it nears expiry (and renews the TLS port's certificate when
  // due); true when the root changed (the caller pushes the new trust bundle).
  bool maybeRotate();

 private:
  CaServer() = default;

  CaServerOptions options_;
  std::unique_ptr<ca::CertificateAuthority> ca_;
  std::shared_ptr<ca::BootstrapTokenAuthenticator> tokens_;
  std::shared_ptr<ca::CertificateAuthenticator> certificates_;
  std::unique_ptr<ca::Authenticator> chain_;
  std::unique_ptr<ca::CaService> service_;
  // The TLS port's certificate and client-CA files, rewritten after a rotation so new handshakes
  // follow it without restarting the listener.
  std::unique_ptr<ca::ServingCredentials> serving_;
  std::mutex mu_;
  std::set<std::string> token_workloads_;  // "ns/name" with a token file written
};

}  // namespace sheave::control
