#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "common/result.h"
#include "match/jwt/jwt.h"

namespace sheave::jwt {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

// One usable public key of a JWKS. Immutable after parsing; OpenSSL allows
// concurrent verifications with one EVP_PKEY, so every worker shares it.
struct Jwk {
  enum class Type { kRsa, kEcP256, kEcP384 };
  Type type = Type::kRsa;
  std::string kid;                // empty when the key has none
  std::optional<JwtAlg> alg;      // the key's `alg`, when it names one
  std::shared_ptr<EVP_PKEY> key;  // never null

  // Whether this key may check a token signed with `alg` (the key type and
  // curve fit, and the key's own `alg`, if any, is the same).
  bool accepts(JwtAlg token_alg) const;
};

// A JSON Web Key Set (RFC 7517) with RSA and EC (P-256, P-384) signing
// keys. Keys of other types or curves, and encryption keys (`use: enc`),
// are skipped; a set with no usable key at all is an error.
class Jwks {
 public:
  static Result<std::shared_ptr<const Jwks>> parse(std::string_view json);

  const std::vector<Jwk>& keys() const { return keys_; }

 private:
  std::vector<Jwk> keys_;
};

}  // namespace sheave::jwt
