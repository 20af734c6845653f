#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace sheave {

// Config errors carry the path of the offending field. Builders report paths
// relative to the message they validate ("safe_regex.regex: invalid regex
// ..."); their callers prepend where that message sits, so the user finally
// reads "virtual_hosts[0].routes[2].match.safe_regex.regex: invalid regex ...".
inline Error nestError(Error e, std::string_view prefix) {
  const std::string& msg = e.message();
  const size_t colon = msg.find(": ");
  // A relative path is a leading run without blanks or quotes.
  const bool has_path =
      colon != std::string::npos && colon > 0 && msg.find_first_of(" '\"") > colon;
  if (!has_path) return std::move(e).at(prefix);
  std::string joined(prefix);
  if (msg[0] != '[') joined.push_back('.');
  joined.append(msg);
  return Error(e.code(), std::move(joined));
}

inline std::string indexedField(std::string_view field, int index) {
  return std::string(field) + "[" + std::to_string(index) + "]";
}

}  // namespace sheave
