#include "match/jwt/jwt_verifier.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>

#include "match/jwt/base64url.h"
#include "match/jwt/jwks.h"
#include "match/jwt/jwt.h"

namespace sheave::jwt {
namespace {

constexpr int64_t kNow = 1'700'000'000;

using PkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

PkeyPtr rsaKey() { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})); }
PkeyPtr ecKey(const char* curve) {
  return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
}

std::string bnParam(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1);
  std::string out(BN_num_bytes(bn), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

nlohmann::json rsaJwk(EVP_PKEY* key, const std::string& kid, const char* alg = "RS256") {
  nlohmann::json j = {{"kty", "RSA"},
                      {"kid", kid},
                      {"n", base64UrlEncode(bnParam(key, OSSL_PKEY_PARAM_RSA_N))},
                      {"e", base64UrlEncode(bnParam(key, OSSL_PKEY_PARAM_RSA_E))}};
  if (alg != nullptr) j["alg"] = alg;
  return j;
}

nlohmann::json ecJwk(EVP_PKEY* key, const std::string& kid, const char* crv, size_t size) {
  unsigned char point[200];
  size_t len = 0;
  EXPECT_EQ(
      EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len), 1);
  EXPECT_EQ(len, 1 + 2 * size);
  std::string x(reinterpret_cast<char*>(point) + 1, size);
  std::string y(reinterpret_cast<char*>(point) + 1 + size, size);
  return {{"kty", "EC"},
          {"kid", kid},
          {"crv", crv},
          {"x", base64UrlEncode(x)},
          {"y", base64UrlEncode(y)}};
}

std::string sign(EVP_PKEY* key, std::string_view alg, const std::string& data) {
  const EVP_MD* md = alg.ends_with("256")   ? EVP_sha256()
                     : alg.ends_with("384") ? EVP_sha384()
                                            : EVP_sha512();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EXPECT_EQ(EVP_DigestSignInit(ctx, &pctx, md, nullptr, key), 1);
  if (alg.starts_with("PS")) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()),
            1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!alg.starts_with("ES")) return sig;
  const size_t size = alg == "ES256" ? 32 : 48;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(2 * size, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), size);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + size, size);
  ECDSA_SIG_free(es);
  return raw;
}

std::string token(EVP_PKEY* key, const std::string& alg, const nlohmann::json& payload,
                  const std::string& kid = "k1") {
  nlohmann::json header = {{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  const std::string signed_part =
      base64UrlEncode(header.dump()) + "." + base64UrlEncode(payload.dump());
  return signed_part + "." + base64UrlEncode(sign(key, alg, signed_part));
}

nlohmann::json claims() {
  return {{"iss", "https://issuer"}, {"sub", "alice"}, {"aud", "api"}, {"exp", kNow + 300}};
}

JwtClaimRules rules() {
  JwtClaimRules r;
  r.issuer = "https://issuer";
  r.audiences = {"api"};
  return r;
}

std::shared_ptr<const Jwks> jwksOf(const std::vector<nlohmann::json>& keys) {
  nlohmann::json doc = nlohmann::json::object();
  doc["keys"] = nlohmann::json(keys);
  auto parsed = Jwks::parse(doc.dump());
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message());
  return parsed.ok() ? *parsed : nullptr;
}

JwtStatus check(const std::string& t, const Jwks& jwks, const JwtClaimRules& r = rules()) {
  Jwt jwt;
  JwtStatus s = Jwt::parse(t, jwt);
  if (s != JwtStatus::kOk) return s;
  return verifyJwt(jwt, jwks, r, kNow);
}

class JwtVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = rsaKey().release();
    rsa2_ = rsaKey().release();
    p256_ = ecKey("P-256").release();
    p384_ = ecKey("P-384").release();
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(rsa2_);
    EVP_PKEY_free(p256_);
    EVP_PKEY_free(p384_);
  }
  static EVP_PKEY* rsa_;
  static EVP_PKEY* rsa2_;
  static EVP_PKEY* p256_;
  static EVP_PKEY* p384_;
};
EVP_PKEY* JwtVerifierTest::rsa_ = nullptr;
EVP_PKEY* JwtVerifierTest::rsa2_ = nullptr;
EVP_PKEY* JwtVerifierTest::p256_ = nullptr;
EVP_PKEY* JwtVerifierTest::p384_ = nullptr;

TEST_F(JwtVerifierTest, EveryAlgorithmVerifies) {
  auto rsa_any = jwksOf({rsaJwk(rsa_, "k1", nullptr)});
  for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}) {
    EXPECT_EQ(check(token(rsa_, alg, claims()), *rsa_any), JwtStatus::kOk) << alg;
  }
  auto ec = jwksOf({ecJwk(p256_, "k1", "P-256", 32), ecJwk(p384_, "k2", "P-384", 48)});
  EXPECT_EQ(check(token(p256_, "ES256", claims(), "k1"), *ec), JwtStatus::kOk);
  EXPECT_EQ(check(token(p384_, "ES384", claims(), "k2"), *ec), JwtStatus::kOk);
  // No kid: every key of the right type is tried.
  EXPECT_EQ(check(token(p384_, "ES384", claims(), ""), *ec), JwtStatus::kOk);
}

TEST_F(JwtVerifierTest, WrongKeyOrTamperingFails) {
  auto jwks = jwksOf({rsaJwk(rsa_, "k1")});
  EXPECT_EQ(check(token(rsa2_, "RS256", claims()), *jwks), JwtStatus::kJwtVerificationFail);
  std::string t = token(rsa_, "RS256", claims());
  const size_t dot = t.find('.');
  auto evil = claims();
  evil["sub"] = "admin";
  std::string tampered =
      t.substr(0, dot + 1) + base64UrlEncode(evil.dump()) + t.substr(t.rfind('.'));
  EXPECT_EQ(check(tampered, *jwks), JwtStatus::kJwtVerificationFail);
  // A shorter signature.
  auto sig = base64UrlDecode(t.substr(t.rfind('.') + 1));
  ASSERT_TRUE(sig.has_value());
  EXPECT_EQ(check(t.substr(0, t.rfind('.') + 1) + base64UrlEncode(sig->substr(0, sig->size() - 3)),
                  *jwks),
            JwtStatus::kJwtVerificationFail);
  // Non-canonical trailing bits in the signature's last character.
  std::string odd = t;
  odd.back() = odd.back() == 'A' ? 'B' : 'A';
  EXPECT_NE(check(odd, *jwks), JwtStatus::kOk);
}

TEST_F(JwtVerifierTest, KidAndAlgSelectKeys) {
  auto jwks = jwksOf({rsaJwk(rsa_, "k1"), ecJwk(p256_, "e1", "P-256", 32)});
  EXPECT_EQ(check(token(rsa_, "RS256", claims(), "other"), *jwks), JwtStatus::kJwksKidAlgMismatch);
  // The key is bound to RS256.
  EXPECT_EQ(check(token(rsa_, "RS384", claims()), *jwks), JwtStatus::kJwksKidAlgMismatch);
  // An EC key never checks an RSA algorithm and vice versa.
  EXPECT_EQ(check(token(p256_, "ES256", claims(), "k1"), *jwks), JwtStatus::kJwksKidAlgMismatch);
  EXPECT_EQ(check(token(p384_, "ES384", claims(), "e1"), *jwks), JwtStatus::kJwksKidAlgMismatch);
}

TEST_F(JwtVerifierTest, RefusesUnsignedAndUnsupportedAlgorithms) {
  auto jwks = jwksOf({rsaJwk(rsa_, "k1")});
  const std::string payload = base64UrlEncode(claims().dump());
  const std::string none = base64UrlEncode(R"({"alg":"none"})");
  EXPECT_EQ(check(none + "." + payload + ".", *jwks), JwtStatus::kJwtBadFormat);
  EXPECT_EQ(check(none + "." + payload + ".AAAA", *jwks), JwtStatus::kJwtHeaderNotImplementedAlg);
  const std::string hs = base64UrlEncode(R"({"alg":"HS256","kid":"k1"})");
  EXPECT_EQ(check(hs + "." + payload + ".AAAA", *jwks), JwtStatus::kJwtHeaderNotImplementedAlg);
  const std::string no_alg = base64UrlEncode(R"({"kid":"k1"})");
  EXPECT_EQ(check(no_alg + "." + payload + ".AAAA", *jwks), JwtStatus::kJwtHeaderBadAlg);
}

TEST_F(JwtVerifierTest, MalformedTokens) {
  Jwt jwt;
  EXPECT_EQ(Jwt::parse("abc", jwt), JwtStatus::kJwtBadFormat);
  EXPECT_EQ(Jwt::parse("a.b", jwt), JwtStatus::kJwtBadFormat);
  EXPECT_EQ(Jwt::parse("a.b.c.d", jwt), JwtStatus::kJwtBadFormat);
  EXPECT_EQ(Jwt::parse("a=.b.c", jwt), JwtStatus::kJwtHeaderParseErrorBadBase64);
  EXPECT_EQ(Jwt::parse(base64UrlEncode("[1]") + ".b.c", jwt),
            JwtStatus::kJwtHeaderParseErrorBadJson);
  const std::string h = base64UrlEncode(R"({"alg":"RS256"})");
  EXPECT_EQ(Jwt::parse(h + "." + base64UrlEncode("nope") + ".AAAA", jwt),
            JwtStatus::kJwtPayloadParseErrorBadJson);
  EXPECT_EQ(Jwt::parse(h + "." + base64UrlEncode(R"({"exp":"soon"})") + ".AAAA", jwt),
            JwtStatus::kJwtPayloadParseErrorExpNotInteger);
  EXPECT_EQ(Jwt::parse(h + "." + base64UrlEncode(R"({"aud":[1]})") + ".AAAA", jwt),
            JwtStatus::kJwtPayloadParseErrorAudNotString);
  EXPECT_EQ(Jwt::parse(h + "." + base64UrlEncode("{}") + ".A+AA", jwt),
            JwtStatus::kJwtSignatureParseErrorBadBase64);
  EXPECT_EQ(Jwt::parse(std::string(kMaxJwtBytes + 1, 'a'), jwt), JwtStatus::kJwtTooLarge);
  ASSERT_EQ(Jwt::parse(h + "." + base64UrlEncode(R"({"aud":["a","b"],"exp":1.5})") + ".AAAA", jwt),
            JwtStatus::kOk);
  EXPECT_EQ(jwt.audiences.size(), 2u);
  EXPECT_EQ(jwt.exp, 1);
}

TEST_F(JwtVerifierTest, TimeIssuerAndAudience) {
  auto jwks = jwksOf({rsaJwk(rsa_, "k1")});
  auto c = claims();
  c["exp"] = kNow - 61;
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks), JwtStatus::kJwtExpired);
  c["exp"] = kNow - 59;  // within the default skew
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks), JwtStatus::kOk);
  auto r = rules();
  r.clock_skew_seconds = 10;
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks, r), JwtStatus::kJwtExpired);
  c = claims();
  c["nbf"] = kNow + 61;
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks), JwtStatus::kJwtNotYetValid);
  c = claims();
  c["iss"] = "https://evil";
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks), JwtStatus::kJwtUnknownIssuer);
  c = claims();
  c["aud"] = {"x", "y"};
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks), JwtStatus::kJwtAudienceNotAllowed);
  c["aud"] = {"x", "https://api/"};  // scheme and trailing slash do not count
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks), JwtStatus::kOk);
  c.erase("aud");
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks), JwtStatus::kJwtAudienceNotAllowed);
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks, JwtClaimRules{}), JwtStatus::kOk);
  r = JwtClaimRules{};
  r.require_expiration = true;
  c.erase("exp");
  EXPECT_EQ(check(token(rsa_, "RS256", c), *jwks, r), JwtStatus::kJwtExpired);
}

TEST_F(JwtVerifierTest, JwksParsing) {
  EXPECT_FALSE(Jwks::parse("not json").ok());
  EXPECT_FALSE(Jwks::parse("{}").ok());
  EXPECT_FALSE(Jwks::parse(R"({"keys":{}})").ok());
  EXPECT_FALSE(Jwks::parse(R"({"keys":[]})").ok());
  EXPECT_FALSE(Jwks::parse(R"({"keys":[{"kty":"oct","k":"AAAA"}]})").ok());
  auto bad_point = ecJwk(p256_, "e", "P-256", 32);
  bad_point["y"] = base64UrlEncode(std::string(32, '\x01'));
  nlohmann::json only_bad = nlohmann::json::object();
  only_bad["keys"] = nlohmann::json::array({bad_point});
  EXPECT_FALSE(Jwks::parse(only_bad.dump()).ok());
  auto enc = rsaJwk(rsa_, "enc");
  enc["use"] = "enc";
  // Unusable keys are skipped when a usable one remains.
  nlohmann::json mixed = nlohmann::json::object();
  mixed["keys"] = nlohmann::json::array({enc, bad_point, {{"kty", "oct"}}, rsaJwk(rsa_, "k1")});
  auto parsed = Jwks::parse(mixed.dump());
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ((*parsed)->keys().size(), 1u);
  EXPECT_EQ((*parsed)->keys()[0].kid, "k1");
}

TEST(JwtStatusTest, EnvoyMessages) {
  EXPECT_EQ(jwtStatusMessage(JwtStatus::kJwtMissed), "Jwt is missing");
  EXPECT_EQ(jwtStatusMessage(JwtStatus::kJwtVerificationFail), "Jwt verification fails");
  EXPECT_EQ(jwtStatusMessage(JwtStatus::kJwksKidAlgMismatch),
            "Jwks doesn't have key to match kid or alg from Jwt");
}

}  // namespace
}  // namespace sheave::jwt
