#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli/config_commands.h"
#include "cli/debug_commands.h"
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

  auto* describe_cmd = app.add_subcommand(
      "describe",
      "the configuration that applies to a workload (pod) or a service, with file:line");
  std::string describe_kind, describe_name;
  std::vector<std::string> describe_paths;
  describe_cmd->add_option("KIND", describe_kind, "pod or service")
      ->required()
      ->check(CLI::IsMember({"pod", "service", "svc"}));
  describe_cmd
      ->add_option("NAME", describe_name,
                   "productpage-v1-0[.default], productpage-v1, or reviews[.default]")
      ->required();
  describe_cmd->add_option("PATHS", describe_paths,
                           "YAML files or directories (default: the running mesh's)");
  std::string describe_output = "text";
  describe_cmd->add_option("-o,--output", describe_output, "text, json or yaml")
      ->check(CLI::IsMember({"text", "json", "yaml"}));

  auto* explain_cmd = app.add_subcommand(
      "explain",
      "walk a request through the compiled configuration: route, cluster, endpoints, "
      "mTLS, authorization, verdict");
  std::string explain_from, explain_url, explain_method = "GET";
  std::vector<std::string> explain_headers, explain_paths;
  explain_cmd->add_option("--from", explain_from, "the calling workload (productpage-v1[-0])")
      ->required();
  explain_cmd->add_option("URL", explain_url, "http://reviews:9080/reviews/1")->required();
  explain_cmd->add_option("-X,--request", explain_method, "the method");
  explain_cmd->add_option("-H,--header", explain_headers, "a header, \"name: value\"");
  explain_cmd->add_option("--config", explain_paths,
                          "YAML files or directories (default: the running mesh's)");
  std::string explain_output = "text";
  explain_cmd->add_option("-o,--output", explain_output, "text, json or yaml")
      ->check(CLI::IsMember({"text", "json", "yaml"}));

  auto* diff_cmd = app.add_subcommand(
      "diff",
      "which proxies' configuration a change alters and which requests it reroutes or "
      "denies (NEW against --base, default the running mesh's directory)");
  std::vector<std::string> diff_new, diff_base, diff_requests;
  diff_cmd->add_option("NEW", diff_new, "the changed YAML files or directories")->required();
  diff_cmd->add_option("--base", diff_base, "the current configuration (default: running mesh)");
  diff_cmd->add_option("--request", diff_requests,
                       "a sample request, \"FROM METHOD URL [name=value]...\"");
  std::string diff_output = "text";
  diff_cmd->add_option("-o,--output", diff_output, "text, json or yaml")
      ->check(CLI::IsMember({"text", "json", "yaml"}));

  auto* ps_cmd =
      app.add_subcommand("proxy-status",
                         "each proxy's xDS sync state; with PROXY, how its config differs from "
                         "what sheave-control would send");
  std::string ps_proxy;
  bool ps_json = false;
  ps_cmd->add_option("PROXY", ps_proxy, "a proxy name (productpage-v1-0[.default])");
  ps_cmd->add_flag("--json", ps_json, "sheave-control's /debug/syncz as it is");

  sheave::cli::ProxyConfigOptions pc;
  auto* pc_cmd = app.add_subcommand(
      "proxy-config", "a proxy's clusters, listeners, routes, endpoints, secrets, or log level");
  pc_cmd->add_option("KIND", pc.kind, "clusters|listeners|routes|endpoints|secret|log")
      ->required()
      ->check(CLI::IsMember({"clusters", "listeners", "routes", "endpoints", "secret", "log"}));
  pc_cmd->add_option("PROXY", pc.proxy, "productpage-v1-0[.default] or istio-ingressgateway")
      ->required();
  std::string pc_output = "table";
  pc_cmd->add_option("-o,--output", pc_output, "table or json (the admin API's JSON)")
      ->check(CLI::IsMember({"table", "json"}));
  pc_cmd->add_option("--fqdn", pc.filter.fqdn, "clusters: service hostname contains");
  pc_cmd->add_option("--port", pc.filter.port, "clusters, listeners, endpoints: port");
  pc_cmd->add_option("--subset", pc.filter.subset, "clusters: subset");
  pc_cmd->add_option("--direction", pc.filter.direction, "clusters: inbound or outbound")
      ->check(CLI::IsMember({"inbound", "outbound"}));
  pc_cmd->add_option("--name", pc.filter.name, "routes: route configuration name");
  pc_cmd->add_option("--cluster", pc.filter.cluster, "endpoints: cluster name");
  pc_cmd->add_option("--address", pc.filter.address, "listeners, endpoints: address");
  pc_cmd->add_option("--level", pc.level, "log: the new level (trace|debug|info|warning|error)");

  CLI11_PARSE(app, argc, argv);
  if (describe_cmd->parsed()) {
    sheave::cli::AnalyzeCommandOptions d;
    for (const auto& p : describe_paths) d.paths.emplace_back(p);
    d.state_dir = state_dir;
    d.output = describe_output;
    return sheave::cli::runDescribe(describe_kind == "pod" ? "pod" : "service", describe_name, d);
  }
  if (explain_cmd->parsed()) {
    sheave::cli::AnalyzeCommandOptions e;
    for (const auto& p : explain_paths) e.paths.emplace_back(p);
    e.state_dir = state_dir;
    e.output = explain_output;
    return sheave::cli::runExplain(explain_from, explain_url, explain_method, explain_headers, e);
  }
  if (diff_cmd->parsed()) {
    sheave::cli::AnalyzeCommandOptions o;
    o.state_dir = state_dir;
    o.output = diff_output;
    std::vector<std::filesystem::path> base(diff_base.begin(), diff_base.end());
    std::vector<std::filesystem::path> changed(diff_new.begin(), diff_new.end());
    return sheave::cli::runDiff(base, changed, diff_requests, o);
  }
  if (ps_cmd->parsed()) return sheave::cli::runProxyStatus(state_dir, ps_proxy, ps_json);
  if (pc_cmd->parsed()) {
    pc.as_json = pc_output == "json";
    return sheave::cli::runProxyConfig(state_dir, pc);
  }
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
