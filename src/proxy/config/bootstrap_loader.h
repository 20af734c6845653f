#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"

namespace sheave::config {

enum class ConfigFormat { kYaml, kJson };

// How Envoy picks the format of a bootstrap file: ".json" means JSON,
// anything else (.yaml, .yml, no extension, ...) is read as YAML.
ConfigFormat formatForPath(std::string_view path);

// Reads an Envoy v3 bootstrap file. Errors read "<path>: <field path>: <what
// is wrong>", or "<path>: line L, column C: <what>" for YAML syntax errors.
Result<envoy::config::bootstrap::v3::Bootstrap> loadBootstrapFile(const std::string& path);

// The same from text already in memory; errors carry no file name.
Result<envoy::config::bootstrap::v3::Bootstrap> parseBootstrap(std::string_view text,
                                                               ConfigFormat format);

}  // namespace sheave::config
