#pragma once

#include <string>
#include <vector>

#include <google/protobuf/repeated_field.h>

#include "common/result.h"
#include "envoy/config/core/v3/base.pb.h"
#include "match/header_map.h"

namespace sheave {

// One level's request_headers_to_add/remove (or response_...), as Envoy's
// HeaderParser applies them: first every header in the remove list is removed,
// then the additions are evaluated against the map as it is at that point and
// applied, overwrites before appends.
class HeaderMutations {
 public:
  enum class AppendAction {
    kAppendIfExistsOrAdd,     // add another field (the default)
    kAddIfAbsent,             // add only if no field of that name exists
    kOverwriteIfExistsOrAdd,  // replace every field of that name, or add
    kOverwriteIfExists,       // replace only if it exists
  };

  struct Addition {
    std::string name;  // lower-case
    // Taken literally for now. Envoy expands %VAR% commands here (request and
    // connection properties); a formatter compiled at load time will replace
    // this string, and value() below is the one place that evaluates it.
    std::string value;
    AppendAction action = AppendAction::kAppendIfExistsOrAdd;
    bool keep_empty_value = false;
  };

  // Validates as Envoy does: names must be non-empty, and pseudo-headers
  // (":path" ...) and "host" may be neither added nor removed; `append` and a
  // non-default `append_action` together are an error. Error paths are
  // relative, e.g. "request_headers_to_add[1].header.key".
  static Result<HeaderMutations> create(
      const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& add,
      const google::protobuf::RepeatedPtrField<std::string>& remove, std::string_view add_field,
      std::string_view remove_field);

  void apply(HeaderMap& headers) const;
  bool empty() const { return additions_.empty() && removals_.empty(); }

  const std::vector<Addition>& additions() const { return additions_; }
  const std::vector<std::string>& removals() const { return removals_; }

 private:
  static const std::string& value(const Addition& a) { return a.value; }

  std::vector<Addition> additions_;
  std::vector<std::string> removals_;
};

}  // namespace sheave
