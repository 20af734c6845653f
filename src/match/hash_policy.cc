#include "match/hash_policy.h"

#include <xxhash.h>

#include "match/field_path.h"
#include "match/header_matcher.h"

namespace sheave {
namespace {

uint64_t xxHash64(std::string_view s) { return XXH64(s.data(), s.size(), 0); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool validToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= ' ' || c >= 127 || c == ';' || c == ',' || c == '=' || c == '"') return false;
  }
  return true;
}

}  // namespace

Result<HashPolicy> HashPolicy::create(const Proto& config, const std::string& where) {
  using HP = envoy::config::route::v3::RouteAction::HashPolicy;
  HashPolicy out;
  for (int i = 0; i < config.size(); ++i) {
    const HP& p = config[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    HashPolicyEntry e;
    e.terminal = p.terminal();
    switch (p.policy_specifier_case()) {
      case HP::kHeader:
        e.kind = HashPolicyEntry::Kind::kHeader;
        e.name = asciiLower(p.header().header_name());
        if (e.name.empty())
          return invalidArgument("must not be empty").at(at + ".header.header_name");
        if (p.header().has_regex_rewrite()) {
          auto rr = RegexSubstitution::create(p.header().regex_rewrite());
          if (!rr.ok()) return nestError(std::move(rr).error(), at + ".header.regex_rewrite");
          e.regex_rewrite = std::move(rr).value();
        }
        break;
      case HP::kCookie:
        e.kind = HashPolicyEntry::Kind::kCookie;
        e.name = p.cookie().name();
        if (!validToken(e.name)) {
          return invalidArgument("must be a cookie name").at(at + ".cookie.name");
        }
        if (p.cookie().has_ttl()) {
          if (p.cookie().ttl().seconds() < 0 || p.cookie().ttl().nanos() < 0) {
            return invalidArgument("must not be negative").at(at + ".cookie.ttl");
          }
          e.cookie_ttl = std::chrono::seconds(p.cookie().ttl().seconds());
        }
        e.cookie_path = p.cookie().path();
        for (const auto& a : p.cookie().attributes()) {
          if (!validToken(a.name())) {
            return invalidArgument("must be a cookie attribute name").at(at + ".cookie.attributes");
          }
          e.cookie_attributes.emplace_back(a.name(), a.value());
        }
        break;
      case HP::kConnectionProperties:
        if (!p.connection_properties().source_ip()) continue;  // hashes nothing
        e.kind = HashPolicyEntry::Kind::kSourceIp;
        break;
      case HP::kQueryParameter:
        e.kind = HashPolicyEntry::Kind::kQueryParameter;
        e.name = p.query_parameter().name();
        if (e.name.empty())
          return invalidArgument("must not be empty").at(at + ".query_parameter.name");
        break;
      case HP::kFilterState:
        return invalidArgument("is not supported").at(at + ".filter_state");
      default:
        return invalidArgument(
                   "one of header, cookie, connection_properties, query_parameter "
                   "is required")
            .at(at);
    }
    out.entries_.push_back(std::move(e));
  }
  return out;
}

std::optional<uint64_t> HashPolicy::generateHash(const HeaderMap& headers,
                                                 const Address* downstream_remote,
                                                 const AddCookie& add_cookie) const {
  std::optional<uint64_t> hash;
  std::optional<QueryParameters> query;
  for (const HashPolicyEntry& e : entries_) {
    std::optional<uint64_t> value;
    switch (e.kind) {
      case HashPolicyEntry::Kind::kHeader:
        if (const std::string* v = headers.get(e.name)) {
          value = xxHash64(e.regex_rewrite ? e.regex_rewrite->replaceAll(*v) : *v);
        }
        break;
      case HashPolicyEntry::Kind::kCookie: {
        std::optional<std::string> cookie = cookieValue(headers, e.name);
        if (!cookie && e.cookie_ttl && add_cookie) cookie = add_cookie(e);
        if (cookie && !cookie->empty()) value = xxHash64(*cookie);
        break;
      }
      case HashPolicyEntry::Kind::kSourceIp:
        if (downstream_remote != nullptr && !downstream_remote->empty()) {
          value = xxHash64(downstream_remote->ip());
        }
        break;
      case HashPolicyEntry::Kind::kQueryParameter: {
        if (!query) {
          const std::string* path = headers.get(":path");
          query = QueryParameters::parse(path ? std::string_view(*path) : std::string_view());
        }
        if (auto v = query->first(e.name)) value = xxHash64(*v);
        break;
      }
    }
    if (value) {
      // Rotating the previous hash keeps two identical policies from cancelling out.
      const uint64_t previous = hash ? ((*hash << 1) | (*hash >> 63)) : 0;
      hash = previous ^ *value;
    }
    if (e.terminal && hash) break;
  }
  return hash;
}

std::optional<std::string> cookieValue(const HeaderMap& headers, std::string_view name) {
  for (std::string_view header : headers.getAll("cookie")) {
    while (!header.empty()) {
      const size_t semi = header.find(';');
      std::string_view pair = trim(header.substr(0, semi));
      header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return std::string(value);
    }
  }
  return std::nullopt;
}

std::string makeSetCookieValue(const HashPolicyEntry& cookie, std::string_view value) {
  std::string out = cookie.name + "=\"" + std::string(value) + "\"";
  if (cookie.cookie_ttl && cookie.cookie_ttl->count() > 0) {
    out += "; Max-Age=" + std::to_string(cookie.cookie_ttl->count());
  }
  if (!cookie.cookie_path.empty()) out += "; Path=" + cookie.cookie_path;
  for (const auto& [name, attr] : cookie.cookie_attributes) {
    out += "; " + name;
    if (!attr.empty()) out += "=" + attr;
  }
  out += "; HttpOnly";
  return out;
}

}  // namespace sheave
