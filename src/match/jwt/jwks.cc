#include "match/jwt/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "match/jwt/base64url.h"

namespace sheave::jwt {

namespace {

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::shared_ptr<EVP_PKEY> keyFromParams(const char* type, OSSL_PARAM* params) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0) return nullptr;
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) return nullptr;
  std::shared_ptr<EVP_PKEY> out(key, EvpPkeyDeleter());
  // Rejects points off the curve and degenerate RSA values up front.
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) <= 0) return nullptr;
  return out;
}

std::optional<std::string> stringField(const nlohmann::json& key, const char* name) {
  auto it = key.find(name);
  if (it == key.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

Result<std::shared_ptr<EVP_PKEY>> rsaKey(const nlohmann::json& key, const std::string& where) {
  auto n64 = stringField(key, "n");
  auto e64 = stringField(key, "e");
  if (!n64 || !e64) return invalidArgument("RSA key needs string fields n and e").at(where);
  auto n = base64UrlDecode(*n64);
  auto e = base64UrlDecode(*e64);
  if (!n || !e || n->empty() || e->empty()) {
    return invalidArgument("RSA n or e is not valid base64url").at(where);
  }
  std::unique_ptr<BIGNUM, BnDeleter> bn_n(BN_bin2bn(
      reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  std::unique_ptr<BIGNUM, BnDeleter> bn_e(BN_bin2bn(
      reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return invalidArgument("RSA key could not be built").at(where);
  }
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld.get()));
  auto pkey = params ? keyFromParams("RSA", params.get()) : nullptr;
  if (!pkey) return invalidArgument("RSA key is not a valid public key").at(where);
  return pkey;
}

Result<std::shared_ptr<EVP_PKEY>> ecKey(const nlohmann::json& key, Jwk::Type type,
                                        const std::string& where) {
  const size_t size = type == Jwk::Type::kEcP256 ? 32 : 48;
  auto x64 = stringField(key, "x");
  auto y64 = stringField(key, "y");
  if (!x64 || !y64) return invalidArgument("EC key needs string fields x and y").at(where);
  auto x = base64UrlDecode(*x64);
  auto y = base64UrlDecode(*y64);
  // RFC 7518 6.2.1.2: coordinates are exactly the field size, zero-padded.
  if (!x || !y || x->size() != size || y->size() != size) {
    return invalidArgument("EC x or y is not " + std::to_string(size) + " bytes of base64url")
        .at(where);
  }
  std::string point;
  point.reserve(1 + 2 * size);
  point.push_back('\x04');  // uncompressed
  point += *x;
  point += *y;
  const char* group = type == Jwk::Type::kEcP256 ? "prime256v1" : "secp384r1";
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return invalidArgument("EC key could not be built").at(where);
  }
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld.get()));
  auto pkey = params ? keyFromParams("EC", params.get()) : nullptr;
  if (!pkey) return invalidArgument("EC key is not a point on its curve").at(where);
  return pkey;
}

}  // namespace

bool Jwk::accepts(JwtAlg token_alg) const {
  if (alg && *alg != token_alg) return false;
  switch (token_alg) {
    case JwtAlg::kRS256:
    case JwtAlg::kRS384:
    case JwtAlg::kRS512:
    case JwtAlg::kPS256:
    case JwtAlg::kPS384:
    case JwtAlg::kPS512:
      return type == Type::kRsa;
    case JwtAlg::kES256:
      return type == Type::kEcP256;
    case JwtAlg::kES384:
      return type == Type::kEcP384;
  }
  return false;
}

Result<std::shared_ptr<const Jwks>> Jwks::parse(std::string_view json) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return invalidArgument("Jwks is an invalid JSON");
  auto keys_it = doc.find("keys");
  if (keys_it == doc.end()) return invalidArgument("Jwks does not have [keys] field");
  if (!keys_it->is_array()) return invalidArgument("[keys] in Jwks is not an array");
  auto jwks = std::make_shared<Jwks>();
  std::string first_problem;
  for (size_t i = 0; i < keys_it->size(); ++i) {
    const auto& k = (*keys_it)[i];
    const std::string where = "keys[" + std::to_string(i) + "]";
    if (!k.is_object()) {
      if (first_problem.empty()) first_problem = where + ": not an object";
      continue;
    }
    auto kty = stringField(k, "kty");
    if (!kty) {
      if (first_problem.empty()) first_problem = where + ": [kty] is missing";
      continue;
    }
    if (auto use = stringField(k, "use"); use && *use != "sig") continue;  // an encryption key
    Jwk jwk;
    if (auto kid = stringField(k, "kid")) jwk.kid = *kid;
    std::optional<std::string> alg_name = stringField(k, "alg");
    Result<std::shared_ptr<EVP_PKEY>> key = invalidArgument("unsupported key");
    if (*kty == "RSA") {
      jwk.type = Jwk::Type::kRsa;
      if (alg_name && alg_name->rfind("RS", 0) != 0 && alg_name->rfind("PS", 0) != 0) {
        if (first_problem.empty())
          first_problem = where + ": [alg] is not RS* or PS* for an RSA key";
        continue;
      }
      key = rsaKey(k, where);
    } else if (*kty == "EC") {
      auto crv = stringField(k, "crv");
      if (crv && *crv == "P-256") {
        jwk.type = Jwk::Type::kEcP256;
      } else if (crv && *crv == "P-384") {
        jwk.type = Jwk::Type::kEcP384;
      } else {
        continue;  // P-521 and other curves are not supported: the key is skipped
      }
      key = ecKey(k, jwk.type, where);
    } else {
      continue;  // oct, OKP...: not a key type this verifier uses
    }
    if (!key.ok()) {
      if (first_problem.empty()) first_problem = key.error().message();
      continue;
    }
    if (alg_name) {
      // A key bound to an algorithm we do not implement can never verify.
      jwk.alg = parseJwtAlg(*alg_name);
      if (!jwk.alg) continue;
    }
    jwk.key = std::move(key).value();
    jwks->keys_.push_back(std::move(jwk));
  }
  if (jwks->keys_.empty()) {
    return invalidArgument("Jwks doesn't have any valid public key" +
                           (first_problem.empty() ? std::string() : " (" + first_problem + ")"));
  }
  return std::shared_ptr<const Jwks>(std::move(jwks));
}

}  // namespace sheave::jwt
