#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "control/ca/authenticator.h"
#include "control/ca/certificate_authority.h"
#include "istio/security/v1alpha1/ca.grpc.pb.h"

namespace grpc {
class ServerCredentials;
}  // namespace grpc

namespace sheave::ca {

// Counters for /metrics, named after Istio's citadel_server_* metrics.
struct CaServiceStats {
  std::atomic<uint64_t> csr_count{0};                     // requests received
  std::atomic<uint64_t> success_cert_issuance_count{0};   // certificates handed out
  std::atomic<uint64_t> authentication_failure_count{0};  // UNAUTHENTICATED + PERMISSION_DENIED
  std::atomic<uint64_t> csr_parsing_err_count{0};         // INVALID_ARGUMENT (CSR, TTL)
  std::atomic<uint64_t> csr_sign_err_count{0};            // internal signing failures
};

// istio.v1.auth.IstioCertificateService over gRPC's callback API.
// CreateCertificate authenticates the caller (bearer token from the
// `authorization` metadata, or the TLS client certificate), signs the CSR
// for the identity the authenticator established (never what the CSR or
// the request metadata ask for) and returns the chain leaf first, root last.
//
// Status codes: UNAUTHENTICATED without a credential, PERMISSION_DENIED for
// a bad one (or a token consumed by a concurrent request), INVALID_ARGUMENT
// for a bad CSR or TTL, INTERNAL otherwise.
class CaService final : public istio::v1::auth::IstioCertificateService::CallbackService {
 public:
  // Neither is owned; both must outlive the service.
  CaService(CertificateAuthority& ca, Authenticator& authenticator)
      : ca_(ca), authenticator_(authenticator) {}

  ::grpc::ServerUnaryReactor* CreateCertificate(
      ::grpc::CallbackServerContext* context,
      const istio::v1::auth::IstioCertificateRequest* request,
      istio::v1::auth::IstioCertificateResponse* response) override;

  const CaServiceStats& stats() const { return stats_; }

  // The request handling without gRPC: what CreateCertificate does once the
  // credentials are extracted. Public for tests and other transports.
  Result<std::vector<std::string>> handle(const CallerCredentials& credentials,
                                          const istio::v1::auth::IstioCertificateRequest& request);

 private:
  CertificateAuthority& ca_;
  Authenticator& authenticator_;
  CaServiceStats stats_;
};

// Credentials for the control plane's TLS port (Istio's 15012): `serving`
// as the server certificate; client certificates are requested (not
// required, token callers have none) and verified against `client_ca_pem`.
std::shared_ptr<::grpc::ServerCredentials> makeServerCredentials(const ServingCertificate& serving,
                                                                 const std::string& client_ca_pem);

}  // namespace sheave::ca
