#include "match/string_matcher.h"

#include <re2/re2.h>

#include "match/header_map.h"

namespace sheave {

namespace {

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsLowered(std::string_view value, std::string_view lowered_pattern) {
  if (value.size() != lowered_pattern.size()) return false;
  for (size_t i = 0; i < value.size(); ++i) {
    if (lowerAscii(value[i]) != lowered_pattern[i]) return false;
  }
  return true;
}

}  // namespace

std::string asciiLower(std::string_view s) {
  std::string out(s);
  asciiLowerInPlace(out);
  return out;
}

bool startsWithIgnoreCase(std::string_view value, std::string_view prefix) {
  return value.size() >= prefix.size() && equalsIgnoreCase(value.substr(0, prefix.size()), prefix);
}

bool endsWithIgnoreCase(std::string_view value, std::string_view suffix) {
  return value.size() >= suffix.size() &&
         equalsIgnoreCase(value.substr(value.size() - suffix.size()), suffix);
}

Result<RegexPtr> compileRegex(const std::string& pattern) {
  RE2::Options options;
  // Bad patterns come from configuration and are reported as Errors; RE2's
  // own logging would only duplicate them on stderr.
  options.set_log_errors(false);
  auto regex = std::make_shared<const RE2>(pattern, options);
  if (!regex->ok()) {
    return invalidArgument("invalid regex '" + pattern + "': " + regex->error());
  }
  return RegexPtr(std::move(regex));
}

Result<RegexPtr> compileRegex(const envoy::type::matcher::v3::RegexMatcher& config) {
  return compileRegex(config.regex());
}

bool regexFullMatch(const re2::RE2& regex, std::string_view value) {
  return RE2::FullMatch(re2::StringPiece(value.data(), value.size()), regex);
}

Result<RegexSubstitution> RegexSubstitution::create(
    const envoy::type::matcher::v3::RegexMatchAndSubstitute& config) {
  auto regex = compileRegex(config.pattern());
  if (!regex.ok()) return std::move(regex).error().at("pattern.regex");
  std::string why;
  if (!(*regex)->CheckRewriteString(config.substitution(), &why)) {
    return invalidArgument("invalid substitution '" + config.substitution() + "': " + why)
        .at("substitution");
  }
  RegexSubstitution out;
  out.regex_ = std::move(regex).value();
  out.substitution_ = config.substitution();
  return out;
}

std::string RegexSubstitution::replaceAll(std::string_view value) const {
  std::string out(value);
  RE2::GlobalReplace(&out, *regex_, substitution_);
  return out;
}

StringMatcher::StringMatcher(Kind kind, std::string pattern, bool ignore_case, RegexPtr regex)
    : kind_(kind),
      ignore_case_(ignore_case),
      pattern_(std::move(pattern)),
      regex_(std::move(regex)) {
  if (ignore_case_) asciiLowerInPlace(pattern_);
}

StringMatcher StringMatcher::literal(Kind kind, std::string pattern, bool ignore_case) {
  return StringMatcher(kind, std::move(pattern), ignore_case, nullptr);
}

StringMatcher StringMatcher::regex(RegexPtr regex) {
  return StringMatcher(Kind::kRegex, std::string(), false, std::move(regex));
}

Result<StringMatcher> StringMatcher::create(const envoy::type::matcher::v3::StringMatcher& config) {
  using Proto = envoy::type::matcher::v3::StringMatcher;
  const bool ic = config.ignore_case();
  switch (config.match_pattern_case()) {
    case Proto::kExact:
      return literal(Kind::kExact, config.exact(), ic);
    case Proto::kPrefix:
      if (config.prefix().empty()) return invalidArgument("must not be empty").at("prefix");
      return literal(Kind::kPrefix, config.prefix(), ic);
    case Proto::kSuffix:
      if (config.suffix().empty()) return invalidArgument("must not be empty").at("suffix");
      return literal(Kind::kSuffix, config.suffix(), ic);
    case Proto::kContains:
      if (config.contains().empty()) return invalidArgument("must not be empty").at("contains");
      return literal(Kind::kContains, config.contains(), ic);
    case Proto::kSafeRegex: {
      auto regex = compileRegex(config.safe_regex());
      if (!regex.ok()) return std::move(regex).error().at("safe_regex.regex");
      return StringMatcher::regex(std::move(regex).value());
    }
    default:
      return invalidArgument("one of exact, prefix, suffix, contains or safe_regex is required");
  }
}

bool StringMatcher::match(std::string_view value) const {
  switch (kind_) {
    case Kind::kExact:
      return ignore_case_ ? equalsLowered(value, pattern_) : value == pattern_;
    case Kind::kPrefix:
      return ignore_case_ ? startsWithIgnoreCase(value, pattern_) : value.starts_with(pattern_);
    case Kind::kSuffix:
      return ignore_case_ ? endsWithIgnoreCase(value, pattern_) : value.ends_with(pattern_);
    case Kind::kContains:
      if (!ignore_case_) return value.find(pattern_) != std::string_view::npos;
      if (pattern_.size() > value.size()) return false;
      for (size_t i = 0; i + pattern_.size() <= value.size(); ++i) {
        if (equalsLowered(value.substr(i, pattern_.size()), pattern_)) return true;
      }
      return false;
    case Kind::kRegex:
      return regexFullMatch(*regex_, value);
  }
  return false;
}

}  // namespace sheave
