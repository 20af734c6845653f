#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli/analyze_command.h"
#include "cli/local_mesh.h"

namespace {

// Where the other Sheave binaries are: next to this one.
std::filesystem::path binDir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : self.parent_path();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sheave: a service mesh on one machine, and the tools to see why a request failed"};
  app.set_version_flag("--version", "sheave 0.1.0");
  app.require_subcommand(1);
  std::string state_dir = "/run/sheave";
  app.add_option("--state-dir", state_dir, "where a running mesh keeps its state and logs");

  sheave::cli::UpOptions up;
  auto* up_cmd = app.add_subcommand(
      "up", "run the mesh described by DIR (Istio YAML + LocalWorkloads) until Ctrl-C");
  std::string config_dir;
  up_cmd->add_option("DIR", config_dir, "directory of YAML")->required();
  int64_t startup = 60;
  up_cmd->add_option("--startup-timeout", startup, "seconds each process may take to be ready");
  up_cmd->add_option("--gateway-admin-port", up.gateway_admin_port,
                     "admin port of the ingress gateway on 127.0.0.1");
  up_cmd->add_option("--control-http-address", up.control_http_address,
                     "sheave-control's monitoring and debug address");
  up_cmd->add_flag("--quiet", up.quiet, "print no events after the table");

  auto* down_cmd = app.add_subcommand("down", "stop the running mesh and remove what it made");
  int64_t down_timeout = 60;
  down_cmd->add_option("--timeout", down_timeout, "seconds to wait for the mesh to stop");

  auto* status_cmd = app.add_subcommand("status", "the running mesh's workloads and their state");
  std::string output = "table";
  status_cmd->add_option("-o,--output", output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));

  sheave::cli::AnalyzeCommandOptions analyze;
  auto* analyze_cmd = app.add_subcommand(
      "analyze",
      "check Istio YAML (files, directories, or the running mesh's) for mistakes; exit code 79 "
      "when an issue at or above --failure-threshold is found");
  std::vector<std::string> analyze_paths;
  analyze_cmd->add_option("PATHS", analyze_paths, "YAML files or directories");
  analyze_cmd->add_option("-o,--output", analyze.output, "log, json or yaml")
      ->check(CLI::IsMember({"log", "json", "yaml"}));
  std::string output_threshold = "Info";
  std::string failure_threshold = "Error";
  const auto levels = CLI::IsMember({"Info", "Warning", "Error"}, CLI::ignore_case);
  analyze_cmd->add_option("--output-threshold", output_threshold, "lowest level shown")
      ->check(levels);
  analyze_cmd
      ->add_option("--failure-threshold", failure_threshold,
                   "lowest level that makes the exit code non-zero")
      ->check(levels);
  analyze_cmd->add_option("--root-namespace", analyze.root_namespace,
                          "the namespace of mesh-wide policy");
  analyze_cmd->add_flag("-L,--list-analyzers", analyze.list_analyzers,
                        "list the message codes and exit");

  CLI11_PARSE(app, argc, argv);
  if (analyze_cmd->parsed()) {
    for (const auto& p : analyze_paths) analyze.paths.emplace_back(p);
    analyze.state_dir = state_dir;
    analyze.output_threshold = *sheave::cli::parseLevel(output_threshold);
    analyze.failure_threshold = *sheave::cli::parseLevel(failure_threshold);
    return sheave::cli::runAnalyze(analyze);
  }
  if (up_cmd->parsed()) {
    up.config_dir = config_dir;
    up.state_dir = state_dir;
    up.bin_dir = binDir();
    up.startup_timeout = std::chrono::seconds(startup);
    if (!std::filesystem::is_directory(up.config_dir)) {
      std::cerr << "sheave: " << config_dir << " is not a directory of YAML files\n";
      return 2;
    }
    return sheave::cli::runUp(up);
  }
  if (down_cmd->parsed())
    return sheave::cli::runDown(state_dir, std::chrono::seconds(down_timeout));
  return sheave::cli::runStatus(state_dir, output == "json");
}
