#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace sheave::config {

// Converts one YAML document to JSON text, typing scalars the way Envoy's
// loader does: plain (unquoted) scalars become booleans (true/false), null
// (null, ~, empty) or numbers (integers, floats, 0x/0o integers) when they
// read as such; quoted scalars and everything else stay strings. Map keys are
// always strings. Aliases are expanded and `<<` merge keys are applied.
// A stream with several non-empty documents is an error, as are duplicate
// keys. An empty document gives "null". Errors carry "line L, column C"
// (1-based).
Result<std::string> yamlToJson(std::string_view yaml);

}  // namespace sheave::config
