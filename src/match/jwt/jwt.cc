#include "match/jwt/jwt.h"

#include <cmath>

#include "match/jwt/base64url.h"

namespace sheave::jwt {

namespace {

struct AlgName {
  JwtAlg alg;
  std::string_view name;
};

constexpr AlgName kAlgs[] = {
    {JwtAlg::kRS256, "RS256"}, {JwtAlg::kRS384, "RS384"}, {JwtAlg::kRS512, "RS512"},
    {JwtAlg::kPS256, "PS256"}, {JwtAlg::kPS384, "PS384"}, {JwtAlg::kPS512, "PS512"},
    {JwtAlg::kES256, "ES256"}, {JwtAlg::kES384, "ES384"},
};

// Objects only; parse errors are values (no exceptions).
std::optional<nlohmann::json> parseObject(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// NumericDate (RFC 7519): a JSON number of seconds; fractions are dropped.
bool readNumericDate(const nlohmann::json& payload, const char* name, std::optional<int64_t>& out) {
  auto it = payload.find(name);
  if (it == payload.end()) return true;
  if (it->is_number_integer()) {
    out = it->get<int64_t>();
    return true;
  }
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    out = v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
    return true;
  }
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (!std::isfinite(d) || d >= 9.2e18 || d <= -9.2e18) return false;
    out = static_cast<int64_t>(std::floor(d));
    return true;
  }
  return false;
}

}  // namespace

std::optional<JwtAlg> parseJwtAlg(std::string_view alg) {
  for (const auto& a : kAlgs) {
    if (a.name == alg) return a.alg;
  }
  return std::nullopt;
}

std::string_view jwtAlgName(JwtAlg alg) {
  for (const auto& a : kAlgs) {
    if (a.alg == alg) return a.name;
  }
  return "";
}

JwtStatus Jwt::parse(std::string_view token, Jwt& out) {
  if (token.size() > kMaxJwtBytes) return JwtStatus::kJwtTooLarge;
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return JwtStatus::kJwtBadFormat;
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return JwtStatus::kJwtBadFormat;
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);
  // An unsigned token ("alg: none" style, "h.p.") is not a JWS we accept.
  if (header_b64.empty() || payload_b64.empty() || signature_b64.empty()) {
    return JwtStatus::kJwtBadFormat;
  }

  auto header_text = base64UrlDecode(header_b64);
  if (!header_text) return JwtStatus::kJwtHeaderParseErrorBadBase64;
  auto header = parseObject(*header_text);
  if (!header) return JwtStatus::kJwtHeaderParseErrorBadJson;
  auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string()) return JwtStatus::kJwtHeaderBadAlg;
  auto alg = parseJwtAlg(alg_it->get_ref<const std::string&>());
  if (!alg) return JwtStatus::kJwtHeaderNotImplementedAlg;
  std::string kid;
  if (auto kid_it = header->find("kid"); kid_it != header->end()) {
    if (!kid_it->is_string()) return JwtStatus::kJwtHeaderBadKid;
    kid = kid_it->get<std::string>();
  }

  auto payload_text = base64UrlDecode(payload_b64);
  if (!payload_text) return JwtStatus::kJwtPayloadParseErrorBadBase64;
  auto payload = parseObject(*payload_text);
  if (!payload) return JwtStatus::kJwtPayloadParseErrorBadJson;

  Jwt jwt;
  if (auto it = payload->find("iss"); it != payload->end()) {
    if (!it->is_string()) return JwtStatus::kJwtPayloadParseErrorIssNotString;
    jwt.iss = it->get<std::string>();
  }
  if (auto it = payload->find("sub"); it != payload->end()) {
    if (!it->is_string()) return JwtStatus::kJwtPayloadParseErrorSubNotString;
    jwt.sub = it->get<std::string>();
  }
  if (auto it = payload->find("aud"); it != payload->end()) {
    if (it->is_string()) {
      jwt.audiences.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const auto& a : *it) {
        if (!a.is_string()) return JwtStatus::kJwtPayloadParseErrorAudNotString;
        jwt.audiences.push_back(a.get<std::string>());
      }
    } else {
      return JwtStatus::kJwtPayloadParseErrorAudNotString;
    }
  }
  if (!readNumericDate(*payload, "exp", jwt.exp)) {
    return JwtStatus::kJwtPayloadParseErrorExpNotInteger;
  }
  if (!readNumericDate(*payload, "nbf", jwt.nbf)) {
    return JwtStatus::kJwtPayloadParseErrorNbfNotInteger;
  }
  if (!readNumericDate(*payload, "iat", jwt.iat)) {
    return JwtStatus::kJwtPayloadParseErrorIatNotInteger;
  }

  auto signature = base64UrlDecode(signature_b64);
  if (!signature || signature->empty()) return JwtStatus::kJwtSignatureParseErrorBadBase64;

  jwt.alg = *alg;
  jwt.kid = std::move(kid);
  jwt.header = std::move(*header);
  jwt.payload = std::move(*payload);
  jwt.signed_part = std::string(token.substr(0, dot2));
  jwt.payload_base64 = std::string(payload_b64);
  jwt.payload_json = std::move(*payload_text);
  jwt.signature = std::move(*signature);
  out = std::move(jwt);
  return JwtStatus::kOk;
}

}  // namespace sheave::jwt
