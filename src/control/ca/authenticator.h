#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/ca/spiffe_id.h"

namespace sheave::ca {

// What a caller presented. Both parts may be empty.
struct CallerCredentials {
  // From `authorization: Bearer <token>` metadata.
  std::string bearer_token;
  // The peer's client certificate chain (PEM, leaf first) from the TLS
  // handshake.
  std::string peer_cert_chain_pem;
  // The workload the caller says it is (e.g. from node.id), "ns/name". A
  // hint only: when set, a credential bound to another workload is refused;
  // it never selects the identity.
  std::string claimed_workload;
};

// Who the caller is, as established by an authenticator.
struct AuthenticatedCaller {
  SpiffeId identity;
  // "ns/name" of the WorkloadEntry the credential is bound to; empty when
  // the credential names only an identity (a certificate).
  std::string workload_key;
  // Which authenticator accepted the caller ("bootstrap-token", "client-certificate").
  std::string authenticator;
};

// Binds a caller to an identity. Implementations are thread-safe.
//
// Errors: UNAUTHENTICATED when the caller presented no credential this
// authenticator understands, PERMISSION_DENIED when it presented one that is
// invalid (unknown, expired, spent, untrusted). Messages never contain the
// credential itself.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual std::string_view name() const = 0;
  virtual Result<AuthenticatedCaller> authenticate(const CallerCredentials& credentials) = 0;
  // Called after a certificate was issued for `caller`. A single-use
  // credential is consumed here, atomically: an error means another request
  // consumed it first, and the certificate must not be handed out.
  virtual Status commitIssuance(const CallerCredentials& credentials,
                                const AuthenticatedCaller& caller) {
    (void)credentials;
    (void)caller;
    return okStatus();
  }
};

// Tries each authenticator in order (Istio: token first, then certificate);
// the first that accepts wins. When none does, the result is the first
// PERMISSION_DENIED (a credential was presented and is bad), otherwise
// UNAUTHENTICATED (no credential at all).
class ChainAuthenticator final : public Authenticator {
 public:
  explicit ChainAuthenticator(std::vector<std::shared_ptr<Authenticator>> authenticators)
      : authenticators_(std::move(authenticators)) {}

  std::string_view name() const override { return "chain"; }
  Result<AuthenticatedCaller> authenticate(const CallerCredentials& credentials) override;
  // Delegates to the authenticator that accepted the caller.
  Status commitIssuance(const CallerCredentials& credentials,
                        const AuthenticatedCaller& caller) override;

 private:
  std::vector<std::shared_ptr<Authenticator>> authenticators_;
};

}  // namespace sheave::ca
