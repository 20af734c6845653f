#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/random.h"
#include "common/result.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "proxy/grpc/async_client.h"
#include "proxy/network/event_loop.h"
#include "proxy/network/tls/secret_manager.h"
#include "proxy/stats/scope.h"

namespace sheave::server {

// Istio's name for the workload certificate secret that TLS contexts reference over SDS.
inline constexpr std::string_view kWorkloadCertificateSecret = "default";
inline constexpr std::string_view kCreateCertificateMethod =
    "/istio.v1.auth.IstioCertificateService/CreateCertificate";

// A private key made in this process and a CSR for it (PEM). The CSR asks for nothing but the
// key: the CA decides the identity from how the caller authenticated.
struct KeyAndCsr {
  std::string key_pem;
  std::string csr_pem;
};
Result<KeyAndCsr> generateKeyAndCsr();

// What the CA returned, checked against our key.
struct IssuedCertificate {
  std::string chain_pem;  // leaf + intermediates, without the trailing self-signed root
  std::string spiffe_id;  // the leaf's URI SAN
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  // When it arrived: CAs backdate not_before a little for clock skew, so the lifetime the
  // renewal ratio applies to starts at the later of the two.
  std::chrono::system_clock::time_point received;
};
// `cert_chain` as IstioCertificateResponse carries it: leaf first, root last. The leaf must hold
// our key, carry exactly one spiffe:// URI SAN and be valid at `now`.
Result<IssuedCertificate> parseIssuedChain(const std::vector<std::string>& cert_chain,
                                           const std::string& key_pem,
                                           std::chrono::system_clock::time_point now);

// When to renew: `ratio` of the lifetime after `start` (Istio's SECRET_GRACE_PERIOD_RATIO),
// moved by up to +-`jitter` of the lifetime (`unit` in [0,1) picks where).
std::chrono::system_clock::time_point renewalTime(std::chrono::system_clock::time_point start,
                                                  std::chrono::system_clock::time_point not_after,
                                                  double ratio, double jitter, double unit);

// The proxy's side of Istio's workload identity (what istio-agent does next to Envoy): makes a
// key that never leaves the process, sends a CSR to the CA (Istio's IstioCertificateService on
// the ADS server's address), authenticated by the bootstrap token for the first certificate and
// by the current certificate (mTLS) afterwards, and provides the result to the SecretManager as
// secret `default`. Renews at `grace_ratio` of the lifetime with jitter; retries failures with
// jittered back-off; warns when the certificate gets close to expiry without a renewal, and
// withdraws it when it expires, so mTLS stops rather than going on with an expired certificate.
// Main thread only.
class WorkloadCertificateProvider {
 public:
  struct Options {
    std::string token_file;  // bootstrap token; read for each token-authenticated request
    Address ca_address;
    // The TLS settings to reach the CA (the ADS cluster's: trusted CA, SNI). Its
    // tls_certificate references are replaced: none for the token request, the current
    // certificate inline for renewals.
    envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext ca_tls;
    std::string ca_authority;
    std::chrono::seconds requested_ttl{0};  // 0: the CA's default (Istio's SECRET_TTL)
    double grace_ratio = 0.5;
    double jitter = 0.01;
    std::chrono::milliseconds request_timeout{10000};
    std::chrono::milliseconds initial_backoff{500};
    std::chrono::milliseconds max_backoff{30000};
    std::function<std::chrono::system_clock::time_point()> clock = [] {
      return std::chrono::system_clock::now();
    };
  };

  WorkloadCertificateProvider(network::EventLoop& loop, network::tls::SecretManager& secrets,
                              stats::Scope& server_scope, RandomGenerator& random, Options options);
  ~WorkloadCertificateProvider();

  void setCaAddress(Address address) { options_.ca_address = address; }
  // Requests the first certificate; `on_first_certificate` runs once it is in the SecretManager.
  void start(std::function<void()> on_first_certificate);

  bool hasCertificate() const { return current_.has_value(); }
  const IssuedCertificate* current() const { return current_ ? &*current_ : nullptr; }
  uint64_t issued() const { return issued_; }

 private:
  class Call;
  void request();
  void onResponse(Result<std::vector<std::string>> chain);
  void scheduleRetry();
  void scheduleRenewal();
  void onExpiryCheck();
  void updateExpiryGauge();

  network::EventLoop& loop_;
  network::tls::SecretManager& secrets_;
  RandomGenerator& random_;
  Options options_;
  stats::Gauge& days_until_expiring_;
  stats::Counter& renewals_;
  stats::Counter& failures_;

  std::optional<IssuedCertificate> current_;
  std::string current_key_pem_;
  KeyAndCsr pending_;
  std::unique_ptr<grpc::AsyncClient> client_;
  std::unique_ptr<Call> call_;
  std::unique_ptr<network::Timer> renew_timer_;
  std::unique_ptr<network::Timer> expiry_timer_;
  std::chrono::milliseconds backoff_{0};
  std::function<void()> on_first_;
  uint64_t issued_ = 0;
  bool warned_ = false;
};

}  // namespace sheave::server
