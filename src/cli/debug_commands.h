#pragma once

#include <filesystem>
#include <string>

#include "cli/debug/proxy_config.h"

namespace sheave::cli {

// `sheave proxy-status [PROXY]`: every proxy connected to the running
// mesh's sheave-control with the sync state of each xDS type; with PROXY,
// what differs between what sheave-control would send it and what it runs.
int runProxyStatus(const std::filesystem::path& state_dir, const std::string& proxy, bool as_json);

struct ProxyConfigOptions {
  std::string kind;   // clusters | listeners | routes | endpoints | secret | log | all
  std::string proxy;  // "productpage-v1-0", "productpage-v1-0.default", "istio-ingressgateway"
  ProxyConfigFilter filter;
  bool as_json = false;  // the admin API's JSON as it is
  std::string level;     // log: the new level ("debug"); empty shows the levels
};

// `sheave proxy-config KIND PROXY`: tables from the proxy's admin API.
int runProxyConfig(const std::filesystem::path& state_dir, const ProxyConfigOptions& options);

}  // namespace sheave::cli
