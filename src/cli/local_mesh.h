#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "cli/runtime/mesh_network.h"

namespace sheave::cli {

// `sheave up DIR`: the whole mesh on this machine. See docs/local-mesh.md.
struct UpOptions {
  std::filesystem::path config_dir;
  std::filesystem::path state_dir = "/run/sheave";
  std::filesystem::path bin_dir;  // sheave-control, sheave-proxy, sheave-demo-app
  NetworkPlan network;
  uint16_t gateway_admin_port = 15000;
  std::string control_http_address = "127.0.0.1:15014";
  std::chrono::seconds startup_timeout{60};
  bool quiet = false;  // no event lines after the table
};

// Each returns the process exit code and prints what happened; errors are
// one sentence on stderr.
int runUp(const UpOptions& options);
int runDown(const std::filesystem::path& state_dir, std::chrono::seconds timeout);
int runStatus(const std::filesystem::path& state_dir, bool json);

}  // namespace sheave::cli
