#include "control/ca/authenticator.h"

#include <optional>

namespace sheave::ca {

Result<AuthenticatedCaller> ChainAuthenticator::authenticate(const CallerCredentials& credentials) {
  std::optional<Error> denied;
  std::string reasons;
  for (const auto& a : authenticators_) {
    auto result = a->authenticate(credentials);
    if (result.ok()) return result;
    if (result.error().code() != ErrorCode::kUnauthenticated && !denied) {
      denied = result.error();
    }
    if (!reasons.empty()) reasons += "; ";
    reasons += std::string(a->name()) + ": " + result.error().message();
  }
  if (denied) return *denied;
  return unauthenticated(reasons.empty() ? "no authenticator configured"
                                         : "no credential presented (" + reasons + ")");
}

Status ChainAuthenticator::commitIssuance(const CallerCredentials& credentials,
                                          const AuthenticatedCaller& caller) {
  for (const auto& a : authenticators_) {
    if (a->name() == caller.authenticator) return a->commitIssuance(credentials, caller);
  }
  return internalError("no authenticator named " + caller.authenticator);
}

}  // namespace sheave::ca
