#include "proxy/filters/jwt_authn/jwt_authn_filter.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "../fake_filter_callbacks.h"
#include "match/jwt/base64url.h"
#include "proxy/stats/store.h"

namespace sheave::jwt_authn {
namespace {

using JwtAuthentication = envoy::extensions::filters::http::jwt_authn::v3::JwtAuthentication;
using jwt::base64UrlEncode;
using testing::CollectingChainBuilder;
using testing::FakeFilterCallbacks;

constexpr int64_t kNow = 1'700'000'000;

template <typename T>
T fromJson(const std::string& json) {
  T out;
  auto status = google::protobuf::util::JsonStringToMessage(json, &out);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return out;
}

// One P-256 key for the whole suite: ES256 is the cheapest algorithm to sign with.
class Signer {
 public:
  Signer() : key_(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")) {}
  ~Signer() { EVP_PKEY_free(key_); }

  std::string jwks(const std::string& kid) const {
    unsigned char point[65];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(key_, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len);
    nlohmann::json k = {
        {"kty", "EC"},
        {"crv", "P-256"},
        {"kid", kid},
        {"x", base64UrlEncode(std::string(reinterpret_cast<char*>(point) + 1, 32))},
        {"y", base64UrlEncode(std::string(reinterpret_cast<char*>(point) + 33, 32))}};
    nlohmann::json doc = nlohmann::json::object();
    doc["keys"] = nlohmann::json::array({k});
    return doc.dump();
  }

  std::string token(const nlohmann::json& payload) const {
    const std::string signed_part =
        base64UrlEncode(R"({"alg":"ES256","kid":"k1"})") + "." + base64UrlEncode(payload.dump());
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_);
    size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(signed_part.data()),
                   signed_part.size());
    std::string der(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                   reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size());
    EVP_MD_CTX_free(ctx);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(sig);
    return signed_part + "." + base64UrlEncode(raw);
  }

 private:
  EVP_PKEY* key_;
};

nlohmann::json claims(const std::string& iss = "https://a") {
  return {{"iss", iss}, {"sub", "alice"}, {"aud", "api"}, {"exp", kNow + 100}};
}

HeaderMap request(const std::string& path,
                  std::vector<std::pair<std::string, std::string>> extra = {}) {
  HeaderMap h;
  h.add(":method", "GET");
  h.add(":path", path);
  h.add(":authority", "example.com");
  h.add(":scheme", "http");
  for (auto& [k, v] : extra) h.add(k, v);
  return h;
}

constexpr const char* kRoutes = R"({
  "virtualHosts": [{
    "name": "vh", "domains": ["*"],
    "routes": [
      {"match": {"prefix": "/off"}, "route": {"cluster": "c"},
       "typedPerFilterConfig": {"envoy.filters.http.jwt_authn": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
         "disabled": true}}},
      {"match": {"prefix": "/named"}, "route": {"cluster": "c"},
       "typedPerFilterConfig": {"envoy.filters.http.jwt_authn": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
         "requirementName": "only_b"}}},
      {"match": {"prefix": "/"}, "route": {"cluster": "c"}}
    ]
  }]
})";

class JwtAuthnFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registerJwtAuthnFilter(registry_);
    store_ = std::move(stats::Store::create()).value();
    scope_ = store_->createScope("http.test.");
    auto table =
        RouteTable::create(fromJson<envoy::config::route::v3::RouteConfiguration>(kRoutes));
    ASSERT_TRUE(table.ok()) << table.error().message();
    table_ = std::move(table).value();
  }

  // Providers "a" (issuer https://a, Authorization bearer, payload forwarded
  // and stored) and "b" (issuer https://b, header x-b, forward: true).
  std::string configJson(const std::string& rules, const std::string& extra = "") {
    const std::string jwks = nlohmann::json(signer().jwks("k1")).dump();
    return R"({"providers": {
      "a": {"issuer": "https://a", "audiences": ["api"], "localJwks": {"inlineString": )" +
           jwks +
           R"(}, "forwardPayloadHeader": "x-payload", "payloadInMetadata": "a_payload"},
      "b": {"issuer": "https://b", "localJwks": {"inlineString": )" +
           jwks +
           R"(}, "fromHeaders": [{"name": "x-b"}], "forward": true}},
      "requirementMap": {"only_b": {"providerName": "b"}},
      "rules": )" +
           rules + extra + "}";
  }

  std::shared_ptr<const JwtAuthnConfig> make(const std::string& json) {
    auto c =
        JwtAuthnConfig::create(fromJson<JwtAuthentication>(json), *scope_, [] { return kNow; });
    EXPECT_TRUE(c.ok()) << c.error().message();
    return c.ok() ? *c : nullptr;
  }

  http::FilterHeadersStatus run(const std::shared_ptr<const JwtAuthnConfig>& config,
                                HeaderMap& headers) {
    cb_ = std::make_unique<FakeFilterCallbacks>(loop_);
    cb_->routeWith(*table_, headers);
    filter_ = std::make_unique<JwtAuthnFilter>(config);
    filter_->setDecoderFilterCallbacks(*cb_);
    return filter_->decodeHeaders(headers, true);
  }

  std::string responseHeader(const std::string& name) {
    if (!cb_->response) return "";
    const std::string* v = cb_->response->get(name);
    return v ? *v : "";
  }

  uint64_t counter(const std::string& name) { return scope_->counter("jwt_authn." + name).value(); }

  static const Signer& signer() {
    static Signer s;
    return s;
  }

  http::FilterRegistry registry_;
  std::unique_ptr<stats::Store> store_;
  std::shared_ptr<stats::Scope> scope_;
  std::shared_ptr<const RouteTable> table_;
  network::EventLoop loop_;
  std::unique_ptr<FakeFilterCallbacks> cb_;
  std::unique_ptr<JwtAuthnFilter> filter_;
};

constexpr const char* kRequireA =
    R"([{"match": {"prefix": "/"}, "requires": {"providerName": "a"}}])";

TEST_F(JwtAuthnFilterTest, MissingTokenIs401WithChallenge) {
  auto config = make(configJson(kRequireA));
  auto h = request("/x?q=1");
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(cb_->response->status(), "401");
  EXPECT_EQ(responseHeader("www-authenticate"), R"(Bearer realm="http://example.com/x")");
  EXPECT_EQ(cb_->info.response_code_details, "jwt_authn_access_denied{Jwt_is_missing}");
  EXPECT_EQ(counter("denied"), 1u);
}

TEST_F(JwtAuthnFilterTest, ValidTokenForwardsPayloadAndStripsHeader) {
  auto config = make(configJson(kRequireA));
  const std::string token = signer().token(claims());
  auto h = request("/x", {{"authorization", "Bearer " + token}, {"x-payload", "forged"}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(h.has("authorization"));
  EXPECT_EQ(*h.get("x-payload"),
            token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1));
  auto it = cb_->info.dynamic_metadata.find(kJwtAuthnFilterName);
  ASSERT_NE(it, cb_->info.dynamic_metadata.end());
  EXPECT_EQ((*it->second)["a_payload"]["sub"], "alice");
  EXPECT_EQ(counter("allowed"), 1u);
}

TEST_F(JwtAuthnFilterTest, ForgedPayloadHeaderIsRemovedWithoutToken) {
  auto config = make(configJson(R"([{"match": {"prefix": "/"}}])"));
  auto h = request("/x", {{"x-payload", "forged"}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(h.has("x-payload"));
}

TEST_F(JwtAuthnFilterTest, FailuresAndTheirStatus) {
  auto config = make(configJson(kRequireA));
  auto bad = [&](const std::string& token) {
    auto h = request("/x", {{"authorization", "Bearer " + token}});
    EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kStopIteration);
    return std::string(cb_->response->status());
  };
  auto c = claims();
  c["exp"] = kNow - 100;
  EXPECT_EQ(bad(signer().token(c)), "401");
  EXPECT_EQ(cb_->info.response_code_details, "jwt_authn_access_denied{Jwt_is_expired}");
  EXPECT_EQ(responseHeader("www-authenticate"),
            R"(Bearer realm="http://example.com/x", error="invalid_token")");
  EXPECT_EQ(bad(signer().token(claims("https://b"))), "401");  // b's token is not a's
  c = claims();
  c["aud"] = "other";
  EXPECT_EQ(bad(signer().token(c)), "403");
  EXPECT_EQ(bad(std::string(9000, 'a')), "401");
}

TEST_F(JwtAuthnFilterTest, AllowMissingAndAllowMissingOrFailed) {
  auto config = make(configJson(R"([
    {"match": {"prefix": "/opt"}, "requires": {"requiresAny": {"requirements": [
      {"providerName": "a"}, {"allowMissing": {}}]}}},
    {"match": {"prefix": "/lenient"}, "requires": {"allowMissingOrFailed": {}}}])"));
  auto h = request("/opt");
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  h = request("/opt", {{"authorization", "Bearer x.y.z"}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kStopIteration);
  h = request("/lenient", {{"authorization", "Bearer x.y.z"}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  EXPECT_TRUE(cb_->info.dynamic_metadata.empty());
  // allow_missing_or_failed still verifies, and a good token's payload is kept.
  h = request("/lenient", {{"authorization", "Bearer " + signer().token(claims())}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(cb_->info.dynamic_metadata.empty());
  // An issuer no provider has under allow_missing is a failure, not "missing".
  h = request("/opt", {{"authorization", "Bearer " + signer().token(claims("https://z"))}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(cb_->info.response_code_details,
            "jwt_authn_access_denied{Jwt_issuer_is_not_configured}");
}

TEST_F(JwtAuthnFilterTest, RequiresAllAndCustomHeader) {
  auto config = make(configJson(R"([{"match": {"prefix": "/"}, "requires": {"requiresAll":
    {"requirements": [{"providerName": "a"}, {"providerName": "b"}]}}}])"));
  const std::string ta = signer().token(claims());
  const std::string tb = signer().token(claims("https://b"));
  auto h = request("/x", {{"authorization", "Bearer " + ta}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kStopIteration);
  h = request("/x", {{"authorization", "Bearer " + ta}, {"x-b", tb}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  EXPECT_TRUE(h.has("x-b"));  // b forwards its token
  EXPECT_FALSE(h.has("authorization"));
}

TEST_F(JwtAuthnFilterTest, PerRouteConfig) {
  auto config = make(configJson(kRequireA));
  auto h = request("/off");
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  h = request("/named", {{"authorization", "Bearer " + signer().token(claims())}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kStopIteration);  // needs b's token
  h = request("/named", {{"x-b", signer().token(claims("https://b"))}});
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
}

TEST_F(JwtAuthnFilterTest, RulesAndCorsPreflight) {
  auto config = make(configJson(R"([{"match": {"prefix": "/health"}},
    {"match": {"prefix": "/"}, "requires": {"providerName": "a"}}])",
                                R"(, "bypassCorsPreflight": true)"));
  auto h = request("/health");
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  h = request("/x", {{"origin", "https://o"}, {"access-control-request-method", "GET"}});
  h.set(":method", "OPTIONS");
  EXPECT_EQ(run(config, h), http::FilterHeadersStatus::kContinue);
  EXPECT_EQ(counter("cors_preflight_bypassed"), 1u);
}

TEST_F(JwtAuthnFilterTest, ConfigErrors) {
  auto err = [&](const std::string& json) {
    auto c = JwtAuthnConfig::create(fromJson<JwtAuthentication>(json), *scope_);
    return c.ok() ? std::string() : c.error().message();
  };
  EXPECT_NE(
      err(R"({"providers": {"r": {"remoteJwks": {"httpUri": {"uri": "https://x", "cluster": "c"}}}}})")
          .find("remote_jwks"),
      std::string::npos);
  EXPECT_NE(err(R"({"providers": {"r": {"localJwks": {"inlineString": "{}"}}}})").find("keys"),
            std::string::npos);
  EXPECT_NE(err(configJson(R"([{"match": {"prefix": "/"}, "requires": {"providerName": "zz"}}])"))
                .find("unknown provider"),
            std::string::npos);
  EXPECT_NE(err(configJson(R"([{"match": {"prefix": "/"}, "requirementName": "nope"}])"))
                .find("requirement_map"),
            std::string::npos);
}

TEST_F(JwtAuthnFilterTest, RegisteredUnderTypeUrl) {
  google::protobuf::Any any;
  any.PackFrom(fromJson<JwtAuthentication>(configJson(kRequireA)));
  http::FilterFactoryContext context{*scope_, "test", *scope_};
  const auto* f = registry_.find("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication");
  ASSERT_NE(f, nullptr);
  auto cb = (*f)(any, context);
  ASSERT_TRUE(cb.ok()) << cb.error().message();
  CollectingChainBuilder builder;
  (*cb)(builder);
  EXPECT_EQ(builder.decoders.size(), 1u);
}

}  // namespace
}  // namespace sheave::jwt_authn
