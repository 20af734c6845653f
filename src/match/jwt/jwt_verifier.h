#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "match/jwt/jwks.h"
#include "match/jwt/jwt.h"
#include "match/jwt/jwt_status.h"

namespace sheave::jwt {

// What a provider requires of a token besides a good signature.
struct JwtClaimRules {
  std::string issuer;                  // empty: `iss` is not checked
  std::vector<std::string> audiences;  // empty: `aud` is not checked
  uint32_t clock_skew_seconds = 60;    // Envoy's default
  bool require_expiration = false;
};

// Envoy's order: issuer, then time (nbf / exp with the skew allowance), then
// audiences; the cheap claim checks come before any public-key work.
JwtStatus checkClaims(const Jwt& jwt, const JwtClaimRules& rules, int64_t now_seconds);

// Tries each key that fits the token's kid and alg (a token without a kid
// tries every key of the right type): kOk when one verifies, kJwtVerificationFail
// when keys fit but none verifies, kJwksKidAlgMismatch when no key fits.
JwtStatus verifySignature(const Jwt& jwt, const Jwks& jwks);

// checkClaims, then verifySignature.
JwtStatus verifyJwt(const Jwt& jwt, const Jwks& jwks, const JwtClaimRules& rules,
                    int64_t now_seconds);

}  // namespace sheave::jwt
