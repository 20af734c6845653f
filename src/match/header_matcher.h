#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "match/header_map.h"
#include "match/string_matcher.h"

namespace sheave {

// envoy.config.route.v3.HeaderMatcher with Envoy's semantics:
//  - several fields of the same name are matched as one value joined with ",";
//  - a missing header never matches (even inverted), except for present_match,
//    unless treat_missing_header_as_empty makes it an empty value;
//  - no specifier at all means "the header is present";
//  - the deprecated exact_match with an empty value matches any value.
// Envoy keeps HTTP/1 Host as ":authority"; match on that name for the host.
class HeaderMatcher {
 public:
  static Result<HeaderMatcher> create(const envoy::config::route::v3::HeaderMatcher& config);

  bool match(const HeaderMap& headers) const;
  const std::string& name() const { return name_; }

 private:
  enum class Kind { kPresent, kExactOrAny, kRange, kString };

  HeaderMatcher() = default;
  bool matchValue(std::string_view value) const;

  std::string name_;
  Kind kind_ = Kind::kPresent;
  bool present_ = true;
  std::string exact_;
  int64_t range_start_ = 0;
  int64_t range_end_ = 0;
  std::optional<StringMatcher> string_;
  bool invert_ = false;
  bool treat_missing_as_empty_ = false;
};

// True when every matcher matches (an empty list matches).
bool matchAllHeaders(const HeaderMap& headers, const std::vector<HeaderMatcher>& matchers);

// Every value of `name` joined with "," (Envoy's view of a repeated header), or
// nullopt when absent. `scratch` holds the joined string when there are several.
std::optional<std::string_view> joinedHeaderValue(const HeaderMap& headers, std::string_view name,
                                                  std::string& scratch);

// Parses an integer as HeaderMatcher.range_match wants it: optional sign, then
// base-10 digits, nothing else.
std::optional<int64_t> parseInt64Strict(std::string_view s);

// The query string of a :path split into key/value pairs, as Envoy's route
// matching sees it: split on '&', then on the first '='; values are NOT
// percent-decoded (Envoy compares the raw query text). Views point into the
// path, which must outlive this object. The query ends at '#' if any.
class QueryParameters {
 public:
  static QueryParameters parse(std::string_view path);

  // The first value of `name`; Envoy ignores later repetitions when matching.
  std::optional<std::string_view> first(std::string_view name) const;
  const std::vector<std::pair<std::string_view, std::string_view>>& all() const { return params_; }

 private:
  std::vector<std::pair<std::string_view, std::string_view>> params_;
};

// envoy.config.route.v3.QueryParameterMatcher: the named key must be present;
// with string_match its first value must also match. present_match (true or
// false) is a plain presence check, as in Envoy.
class QueryParameterMatcher {
 public:
  static Result<QueryParameterMatcher> create(
      const envoy::config::route::v3::QueryParameterMatcher& config);

  bool match(const QueryParameters& params) const;
  const std::string& name() const { return name_; }

 private:
  QueryParameterMatcher() = default;

  std::string name_;
  std::optional<StringMatcher> string_;
};

}  // namespace sheave
