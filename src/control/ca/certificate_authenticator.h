#pragma once

#include <functional>

#include "control/ca/authenticator.h"
#include "control/ca/certificate_authority.h"

namespace sheave::ca {

// Authenticates a caller by the client certificate of its TLS connection
// (certificate renewal, and the xDS stream after bootstrap): the chain must
// verify against the CA's current trust bundle for TLS client use at "now",
// and the leaf must carry exactly one URI SAN, a SPIFFE ID in the CA's
// trust domain. Stateless apart from the CA; thread-safe.
class CertificateAuthenticator final : public Authenticator {
 public:
  explicit CertificateAuthenticator(const CertificateAuthority& ca) : ca_(ca) {}

  std::string_view name() const override { return "client-certificate"; }
  Result<AuthenticatedCaller> authenticate(const CallerCredentials& credentials) override;

 private:
  const CertificateAuthority& ca_;
};

// The single SPIFFE URI SAN of `cert`; an error when there is none, more
// than one URI SAN, or it does not parse.
Result<SpiffeId> spiffeIdOf(X509* cert);

}  // namespace sheave::ca
