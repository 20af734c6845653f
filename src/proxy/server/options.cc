#include "proxy/server/options.h"

#include <CLI/CLI.hpp>

#include <thread>

namespace sheave::server {

Result<Options> Options::parse(int argc, char** argv, std::string& exit_message) {
  Options o;
  CLI::App app{
      "sheave-proxy: the Sheave service mesh sidecar, configured by an Envoy v3 bootstrap"};
  app.set_version_flag("--version", "sheave-proxy 0.1.0");
  app.add_option("-c,--config-path", o.config_path, "Envoy v3 bootstrap file (YAML or JSON)");
  app.add_option("--config-yaml", o.config_yaml, "YAML merged over the bootstrap file");
  app.add_option("--concurrency", o.concurrency, "worker threads (default: number of cores)");
  app.add_option("-l,--log-level", o.log_level,
                 "trace, debug, info, warning, error, critical or off");
  std::string mode = "serve";
  app.add_option("--mode", mode, "serve, or validate: check the configuration and exit")
      ->check(CLI::IsMember({"serve", "validate"}));
  int64_t drain = 600;
  app.add_option("--drain-time-s", drain,
                 "seconds in-flight requests may take to finish after SIGTERM");
  app.add_option("--service-node", o.service_node, "node.id");
  app.add_option("--service-cluster", o.service_cluster, "node.cluster");
  app.add_option("--workload-token-file", o.workload_token_file,
                 "bootstrap token that buys this workload's first certificate from the CA on the "
                 "ADS server (which must be reached over TLS)");
  int64_t ttl = 0;
  app.add_option("--secret-ttl", ttl, "requested certificate lifetime in seconds (0: the CA's)");
  app.add_option("--secret-grace-period-ratio", o.secret_grace_period_ratio,
                 "renew the certificate after this fraction of its lifetime (default 0.5)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    exit_message = app.help();
    return o;
  } catch (const CLI::CallForVersion&) {
    exit_message = "sheave-proxy 0.1.0\n";
    return o;
  } catch (const CLI::ParseError& e) {
    return invalidArgument(e.what());
  }
  if (o.config_path.empty() && o.config_yaml.empty()) {
    return invalidArgument("a bootstrap is required: -c FILE (or --config-yaml)");
  }
  if (drain < 0) return invalidArgument("--drain-time-s: must not be negative");
  if (ttl < 0) return invalidArgument("--secret-ttl: must not be negative");
  o.secret_ttl = std::chrono::seconds(ttl);
  if (!(o.secret_grace_period_ratio > 0.0 && o.secret_grace_period_ratio < 1.0)) {
    return invalidArgument("--secret-grace-period-ratio: must be between 0 and 1");
  }
  o.drain_time = std::chrono::seconds(drain);
  o.mode = mode == "validate" ? Mode::kValidate : Mode::kServe;
  if (o.concurrency == 0) o.concurrency = std::max(1u, std::thread::hardware_concurrency());
  return o;
}

}  // namespace sheave::server
