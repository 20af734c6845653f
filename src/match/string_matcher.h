#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "envoy/type/matcher/v3/regex.pb.h"
#include "envoy/type/matcher/v3/string.pb.h"

namespace re2 {
class RE2;
}

namespace sheave {

// A compiled RE2 program, shared because RE2 objects are immutable, thread-safe
// for matching, and not copyable.
using RegexPtr = std::shared_ptr<const re2::RE2>;

// Compiles `pattern` with Envoy's RE2 defaults. The error names the regex and
// carries RE2's own message, e.g. "invalid regex '(': missing ): (".
Result<RegexPtr> compileRegex(const std::string& pattern);
Result<RegexPtr> compileRegex(const envoy::type::matcher::v3::RegexMatcher& config);

// True when `regex` matches the whole of `value` (Envoy's safe_regex rule).
bool regexFullMatch(const re2::RE2& regex, std::string_view value);

// A compiled regex plus substitution (envoy.type.matcher.v3.RegexMatchAndSubstitute):
// every non-overlapping match is replaced; "\1" refers to capture groups.
class RegexSubstitution {
 public:
  static Result<RegexSubstitution> create(
      const envoy::type::matcher::v3::RegexMatchAndSubstitute& config);

  std::string replaceAll(std::string_view value) const;

 private:
  RegexPtr regex_;
  std::string substitution_;
};

// envoy.type.matcher.v3.StringMatcher compiled once. ignore_case applies to
// exact, prefix, suffix and contains; a regex decides its own case rules.
class StringMatcher {
 public:
  enum class Kind { kExact, kPrefix, kSuffix, kContains, kRegex };

  static Result<StringMatcher> create(const envoy::type::matcher::v3::StringMatcher& config);
  // Builders for the matchers other config messages express without a
  // StringMatcher proto (deprecated HeaderMatcher fields, route paths).
  static StringMatcher literal(Kind kind, std::string pattern, bool ignore_case);
  static StringMatcher regex(RegexPtr regex);

  bool match(std::string_view value) const;

  Kind kind() const { return kind_; }
  bool ignoreCase() const { return ignore_case_; }
  // The literal pattern (lower-cased when ignore_case), empty for a regex.
  const std::string& pattern() const { return pattern_; }

 private:
  StringMatcher(Kind kind, std::string pattern, bool ignore_case, RegexPtr regex);

  Kind kind_;
  bool ignore_case_;
  std::string pattern_;
  RegexPtr regex_;
};

// ASCII case-insensitive helpers; HTTP matching is defined over ASCII.
bool startsWithIgnoreCase(std::string_view value, std::string_view prefix);
bool endsWithIgnoreCase(std::string_view value, std::string_view suffix);
std::string asciiLower(std::string_view s);

}  // namespace sheave
