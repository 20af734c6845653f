#include "match/header_matcher.h"

#include <charconv>

#include "match/field_path.h"

namespace sheave {

std::optional<std::string_view> joinedHeaderValue(const HeaderMap& headers, std::string_view name,
                                                  std::string& scratch) {
  std::optional<std::string_view> first;
  bool joined = false;
  for (const auto& e : headers) {
    if (e.name != name) continue;
    if (!first) {
      first = e.value;
    } else {
      if (!joined) {
        scratch.assign(first->data(), first->size());
        joined = true;
      }
      scratch.push_back(',');
      scratch.append(e.value);
    }
  }
  if (joined) return std::string_view(scratch);
  return first;
}

std::optional<int64_t> parseInt64Strict(std::string_view s) {
  if (!s.empty() && s[0] == '+') {
    s.remove_prefix(1);
    // "+-5" is not an integer.
    if (!s.empty() && s[0] == '-') return std::nullopt;
  }
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

Result<HeaderMatcher> HeaderMatcher::create(const envoy::config::route::v3::HeaderMatcher& config) {
  using Proto = envoy::config::route::v3::HeaderMatcher;
  if (config.name().empty()) return invalidArgument("must not be empty").at("name");
  HeaderMatcher m;
  m.name_ = asciiLower(config.name());
  m.invert_ = config.invert_match();
  m.treat_missing_as_empty_ = config.treat_missing_header_as_empty();
  auto literal = [&](StringMatcher::Kind kind, const std::string& v,
                     const char* field) -> Result<HeaderMatcher> {
    if (v.empty()) {
      return invalidArgument("must not be empty (use present_match to test presence)").at(field);
    }
    m.kind_ = Kind::kString;
    m.string_ = StringMatcher::literal(kind, v, false);
    return std::move(m);
  };
  switch (config.header_match_specifier_case()) {
    case Proto::kExactMatch:
      m.kind_ = Kind::kExactOrAny;
      m.exact_ = config.exact_match();
      return m;
    case Proto::kSafeRegexMatch: {
      auto regex = compileRegex(config.safe_regex_match());
      if (!regex.ok()) return std::move(regex).error().at("safe_regex_match.regex");
      m.kind_ = Kind::kString;
      m.string_ = StringMatcher::regex(std::move(regex).value());
      return m;
    }
    case Proto::kRangeMatch:
      m.kind_ = Kind::kRange;
      m.range_start_ = config.range_match().start();
      m.range_end_ = config.range_match().end();
      if (m.range_start_ >= m.range_end_) {
        return invalidArgument("start must be lower than end").at("range_match");
      }
      return m;
    case Proto::kPresentMatch:
      m.kind_ = Kind::kPresent;
      m.present_ = config.present_match();
      return m;
    case Proto::kPrefixMatch:
      return literal(StringMatcher::Kind::kPrefix, config.prefix_match(), "prefix_match");
    case Proto::kSuffixMatch:
      return literal(StringMatcher::Kind::kSuffix, config.suffix_match(), "suffix_match");
    case Proto::kContainsMatch:
      return literal(StringMatcher::Kind::kContains, config.contains_match(), "contains_match");
    case Proto::kStringMatch: {
      auto sm = StringMatcher::create(config.string_match());
      if (!sm.ok()) return nestError(std::move(sm).error(), "string_match");
      m.kind_ = Kind::kString;
      m.string_ = std::move(sm).value();
      return m;
    }
    default:
      m.kind_ = Kind::kPresent;
      m.present_ = true;
      return m;
  }
}

bool HeaderMatcher::matchValue(std::string_view value) const {
  switch (kind_) {
    case Kind::kPresent:
      return present_;
    case Kind::kExactOrAny:
      return exact_.empty() || value == exact_;
    case Kind::kRange: {
      auto v = parseInt64Strict(value);
      return v && *v >= range_start_ && *v < range_end_;
    }
    case Kind::kString:
      return string_->match(value);
  }
  return false;
}

bool HeaderMatcher::match(const HeaderMap& headers) const {
  std::string scratch;
  std::optional<std::string_view> value = joinedHeaderValue(headers, name_, scratch);
  if (!value && !treat_missing_as_empty_) {
    // Only a presence test can be satisfied by an absent header: present_match
    // false, or present_match true inverted.
    return kind_ == Kind::kPresent && (invert_ ? present_ : !present_);
  }
  return matchValue(value.value_or(std::string_view())) != invert_;
}

bool matchAllHeaders(const HeaderMap& headers, const std::vector<HeaderMatcher>& matchers) {
  for (const auto& m : matchers) {
    if (!m.match(headers)) return false;
  }
  return true;
}

QueryParameters QueryParameters::parse(std::string_view path) {
  QueryParameters out;
  size_t q = path.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view query = path.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      out.params_.emplace_back(param, std::string_view());
    } else {
      out.params_.emplace_back(param.substr(0, eq), param.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::optional<std::string_view> QueryParameters::first(std::string_view name) const {
  for (const auto& [k, v] : params_) {
    if (k == name) return v;
  }
  return std::nullopt;
}

Result<QueryParameterMatcher> QueryParameterMatcher::create(
    const envoy::config::route::v3::QueryParameterMatcher& config) {
  if (config.name().empty()) return invalidArgument("must not be empty").at("name");
  QueryParameterMatcher m;
  m.name_ = config.name();
  if (config.has_string_match()) {
    auto sm = StringMatcher::create(config.string_match());
    if (!sm.ok()) return nestError(std::move(sm).error(), "string_match");
    m.string_ = std::move(sm).value();
  }
  return m;
}

bool QueryParameterMatcher::match(const QueryParameters& params) const {
  auto value = params.first(name_);
  if (!value) return false;
  return !string_ || string_->match(*value);
}

}  // namespace sheave
