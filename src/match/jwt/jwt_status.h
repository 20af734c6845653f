#pragma once

#include <string_view>

namespace sheave::jwt {

// The outcome of checking one token. Not an Error: a failed check is an
// ordinary answer about untrusted input, and the filter needs the kind (a
// missing token passes under allow_missing, a wrong audience is a 403).
// The messages are Envoy's (jwt_verify_lib), which clients and dashboards
// already match on.
enum class JwtStatus {
  kOk,
  kJwtMissed,
  kJwtExpired,
  kJwtNotYetValid,
  kJwtBadFormat,
  kJwtTooLarge,
  kJwtHeaderParseErrorBadBase64,
  kJwtHeaderParseErrorBadJson,
  kJwtHeaderBadAlg,
  kJwtHeaderNotImplementedAlg,
  kJwtHeaderBadKid,
  kJwtPayloadParseErrorBadBase64,
  kJwtPayloadParseErrorBadJson,
  kJwtPayloadParseErrorIssNotString,
  kJwtPayloadParseErrorSubNotString,
  kJwtPayloadParseErrorAudNotString,
  kJwtPayloadParseErrorExpNotInteger,
  kJwtPayloadParseErrorNbfNotInteger,
  kJwtPayloadParseErrorIatNotInteger,
  kJwtSignatureParseErrorBadBase64,
  kJwtUnknownIssuer,
  kJwtAudienceNotAllowed,
  kJwtVerificationFail,
  kJwksKidAlgMismatch,
};

std::string_view jwtStatusMessage(JwtStatus status);

}  // namespace sheave::jwt
