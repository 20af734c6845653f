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
  // Workload identity (what istio-agent does for Envoy): with a bootstrap token the proxy asks
  // the ADS server's CA for its certificate (secret `default`) before it fetches any config.
  std::string workload_token_file;
  std::chrono::seconds secret_ttl{0};      // Istio's SECRET_TTL; 0: the CA's default (24 h)
  double secret_grace_period_ratio = 0.5;  // Istio's SECRET_GRACE_PERIOD_RATIO

  // Parses argv; on --help or --version, `exit_message` is set and the caller
  // prints it and exits 0.
  static Result<Options> parse(int argc, char** argv, std::string& exit_message);
};

}  // namespace sheave::server
