#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "match/jwt/jwt_status.h"

namespace sheave::jwt {

// The signature algorithms accepted. Anything else in a token's `alg`,
// "none" and the HMAC family included, is refused before any key is touched.
enum class JwtAlg { kRS256, kRS384, kRS512, kPS256, kPS384, kPS512, kES256, kES384 };

std::optional<JwtAlg> parseJwtAlg(std::string_view alg);
std::string_view jwtAlgName(JwtAlg alg);

// Larger tokens are refused without being decoded: real tokens are well
// under 4 KiB, and the limit bounds the JSON work an anonymous client can ask for.
inline constexpr size_t kMaxJwtBytes = 8192;

// A compact-serialized JWS token, split and decoded but not verified.
struct Jwt {
  JwtAlg alg = JwtAlg::kRS256;
  std::string kid;  // empty when the header has none
  nlohmann::json header;
  nlohmann::json payload;  // always an object
  std::string iss;
  std::string sub;
  std::vector<std::string> audiences;
  std::optional<int64_t> exp;
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
  std::string signed_part;     // "<header>.<payload>" as received: what the signature covers
  std::string payload_base64;  // the payload as received (forward_payload_header)
  std::string payload_json;    // decoded payload text
  std::string signature;       // raw signature bytes

  // Splits, decodes and type-checks the registered claims. kOk fills `out`.
  static JwtStatus parse(std::string_view token, Jwt& out);
};

}  // namespace sheave::jwt
