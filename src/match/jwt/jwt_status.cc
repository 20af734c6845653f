#include "match/jwt/jwt_status.h"

namespace sheave::jwt {

std::string_view jwtStatusMessage(JwtStatus status) {
  switch (status) {
    case JwtStatus::kOk:
      return "OK";
    case JwtStatus::kJwtMissed:
      return "Jwt is missing";
    case JwtStatus::kJwtExpired:
      return "Jwt is expired";
    case JwtStatus::kJwtNotYetValid:
      return "Jwt not yet valid";
    case JwtStatus::kJwtBadFormat:
      return "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
    case JwtStatus::kJwtTooLarge:
      // Envoy has no token size limit of its own; an oversized token is
      // answered like any token that cannot be verified.
      return "Jwt verification fails";
    case JwtStatus::kJwtHeaderParseErrorBadBase64:
      return "Jwt header is an invalid Base64url encoded";
    case JwtStatus::kJwtHeaderParseErrorBadJson:
      return "Jwt header is an invalid JSON";
    case JwtStatus::kJwtHeaderBadAlg:
      return "Jwt header [alg] field is required and must be a string";
    case JwtStatus::kJwtHeaderNotImplementedAlg:
      return "Jwt header [alg] is not supported";
    case JwtStatus::kJwtHeaderBadKid:
      return "Jwt header [kid] field is not a string";
    case JwtStatus::kJwtPayloadParseErrorBadBase64:
      return "Jwt payload is an invalid Base64url encoded";
    case JwtStatus::kJwtPayloadParseErrorBadJson:
      return "Jwt payload is an invalid JSON";
    case JwtStatus::kJwtPayloadParseErrorIssNotString:
      return "Jwt payload [iss] field is not a string";
    case JwtStatus::kJwtPayloadParseErrorSubNotString:
      return "Jwt payload [sub] field is not a string";
    case JwtStatus::kJwtPayloadParseErrorAudNotString:
      return "Jwt payload [aud] field is not a string or string list";
    case JwtStatus::kJwtPayloadParseErrorExpNotInteger:
      return "Jwt payload [exp] field is not an integer";
    case JwtStatus::kJwtPayloadParseErrorNbfNotInteger:
      return "Jwt payload [nbf] field is not an integer";
    case JwtStatus::kJwtPayloadParseErrorIatNotInteger:
      return "Jwt payload [iat] field is not an integer";
    case JwtStatus::kJwtSignatureParseErrorBadBase64:
      return "Jwt signature is an invalid Base64url encoded";
    case JwtStatus::kJwtUnknownIssuer:
      return "Jwt issuer is not configured";
    case JwtStatus::kJwtAudienceNotAllowed:
      return "Audiences in Jwt are not allowed";
    case JwtStatus::kJwtVerificationFail:
      return "Jwt verification fails";
    case JwtStatus::kJwksKidAlgMismatch:
      return "Jwks doesn't have key to match kid or alg from Jwt";
  }
  return "Jwt verification fails";
}

}  // namespace sheave::jwt
