#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace sheave::server {

// sheave-proxy's command line, with Envoy's flag names.
struct Options {
  enum class Mode { kServe, kValidate };
  std::string config_path;
  std::string config_yaml;   // --config-yaml: merged over the file, as Envoy does
  uint32_t concurrency = 0;  // 0: one worker per core
  std::string log_level = "info";
  Mode mode = Mode::kServe;
  std::chrono::seconds drain_time{600};
  std::string service_node;
  std::string service_cluster;

  // Parses argv; on --help or --version, `exit_message` is set and the caller
  // prints it and exits 0.
  static Result<Options> parse(int argc, char** argv, std::string& exit_message);
};

}  // namespace sheave::server
