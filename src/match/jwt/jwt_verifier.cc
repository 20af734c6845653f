#include "match/jwt/jwt_verifier.h"

#include <algorithm>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

namespace sheave::jwt {

namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

const EVP_MD* digestFor(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::kRS256:
    case JwtAlg::kPS256:
    case JwtAlg::kES256:
      return EVP_sha256();
    case JwtAlg::kRS384:
    case JwtAlg::kPS384:
    case JwtAlg::kES384:
      return EVP_sha384();
    case JwtAlg::kRS512:
    case JwtAlg::kPS512:
      return EVP_sha512();
  }
  return nullptr;
}

bool isPss(JwtAlg alg) {
  return alg == JwtAlg::kPS256 || alg == JwtAlg::kPS384 || alg == JwtAlg::kPS512;
}

// JOSE carries an ECDSA signature as r||s, each the field size; OpenSSL
// wants DER. Any other length is not a signature of this curve.
std::optional<std::string> joseToDer(std::string_view raw, size_t field_bytes) {
  if (raw.size() != 2 * field_bytes) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()),
                        static_cast<int>(field_bytes), nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + field_bytes),
                        static_cast<int>(field_bytes), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool verifyWithKey(const Jwt& jwt, const Jwk& jwk) {
  std::string der;
  std::string_view signature = jwt.signature;
  if (jwk.type != Jwk::Type::kRsa) {
    auto converted = joseToDer(jwt.signature, jwk.type == Jwk::Type::kEcP256 ? 32 : 48);
    if (!converted) return false;
    der = std::move(*converted);
    signature = der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = digestFor(jwt.alg);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, jwk.key.get()) != 1) {
    return false;
  }
  if (isPss(jwt.alg)) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1) {
      return false;
    }
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(),
                          reinterpret_cast<const unsigned char*>(jwt.signed_part.data()),
                          jwt.signed_part.size()) == 1;
}

// jwt_verify_lib's audience comparison: a scheme prefix and one trailing
// slash do not count ("https://a.com/" == "a.com").
std::string_view normalizeAudience(std::string_view aud) {
  if (aud.rfind("http://", 0) == 0) {
    aud.remove_prefix(7);
  } else if (aud.rfind("https://", 0) == 0) {
    aud.remove_prefix(8);
  }
  if (!aud.empty() && aud.back() == '/') aud.remove_suffix(1);
  return aud;
}

}  // namespace

JwtStatus checkClaims(const Jwt& jwt, const JwtClaimRules& rules, int64_t now_seconds) {
  if (!rules.issuer.empty() && jwt.iss != rules.issuer) return JwtStatus::kJwtUnknownIssuer;
  const int64_t skew = rules.clock_skew_seconds;
  if (jwt.nbf && now_seconds + skew < *jwt.nbf) return JwtStatus::kJwtNotYetValid;
  if (jwt.exp && now_seconds - skew > *jwt.exp) return JwtStatus::kJwtExpired;
  if (!jwt.exp && rules.require_expiration) return JwtStatus::kJwtExpired;
  if (!rules.audiences.empty()) {
    const bool allowed =
        std::any_of(jwt.audiences.begin(), jwt.audiences.end(), [&](const std::string& token_aud) {
          return std::any_of(rules.audiences.begin(), rules.audiences.end(),
                             [&](const std::string& configured) {
                               return normalizeAudience(configured) == normalizeAudience(token_aud);
                             });
        });
    if (!allowed) return JwtStatus::kJwtAudienceNotAllowed;
  }
  return JwtStatus::kOk;
}

JwtStatus verifySignature(const Jwt& jwt, const Jwks& jwks) {
  bool key_fits = false;
  for (const Jwk& jwk : jwks.keys()) {
    if (!jwt.kid.empty() && !jwk.kid.empty() && jwt.kid != jwk.kid) continue;
    if (!jwk.accepts(jwt.alg)) continue;
    key_fits = true;
    if (verifyWithKey(jwt, jwk)) return JwtStatus::kOk;
  }
  return key_fits ? JwtStatus::kJwtVerificationFail : JwtStatus::kJwksKidAlgMismatch;
}

JwtStatus verifyJwt(const Jwt& jwt, const Jwks& jwks, const JwtClaimRules& rules,
                    int64_t now_seconds) {
  const JwtStatus claims = checkClaims(jwt, rules, now_seconds);
  if (claims != JwtStatus::kOk) return claims;
  return verifySignature(jwt, jwks);
}

}  // namespace sheave::jwt
