#include "control/server/options.h"

#include <CLI/CLI.hpp>

#include "control/model/duration.h"

namespace sheave::control {
namespace {

Result<std::chrono::milliseconds> parseMillis(const std::string& flag, const std::string& text) {
  Result<Duration> d = parseDuration(text);
  if (!d.ok()) return invalidArgument(flag + ": " + d.error().message());
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

}  // namespace

Result<ControlOptions> ControlOptions::parse(int argc, char** argv, std::string& exit_message) {
  ControlOptions o;
  CLI::App app{
      "sheave-control: compiles Istio configuration into Envoy v3 xDS and serves it over ADS"};
  app.set_version_flag("--version", "sheave-control 0.1.0");
  app.add_option("--config", o.config_dirs,
                 "directory of Istio / Kubernetes YAML (watched; may be repeated)")
      ->required();
  app.add_option("--xds-address", o.xds_address, "ADS (gRPC) listen address");
  app.add_option("--http-address", o.http_address, "monitoring and debug HTTP listen address");
  app.add_option("--domain-suffix", o.domain_suffix, "Kubernetes cluster domain");
  app.add_option("--trust-domain", o.trust_domain, "SPIFFE trust domain");
  app.add_option("--root-namespace", o.root_namespace, "namespace of mesh-wide defaults");
  app.add_option("--ca-dir", o.ca_dir,
                 "certificate authority directory (created; Istio's plug-in CA files are used when "
                 "present); enables the CA and TLS-only, authenticated xDS");
  app.add_option("--secure-xds-address", o.secure_xds_address,
                 "xDS and CA over TLS listen address (with --ca-dir)");
  app.add_option(
      "--token-dir", o.token_dir,
      "write a bootstrap token per WorkloadEntry to DIR/<namespace>/<name> (with --ca-dir)");
  std::string cert_ttl = "24h";
  app.add_option("--workload-cert-ttl", cert_ttl, "lifetime of workload certificates (e.g. 24h)");
  std::string policy = "ALLOW_ANY";
  app.add_option("--outbound-traffic-policy", policy, "ALLOW_ANY or REGISTRY_ONLY")
      ->check(CLI::IsMember({"ALLOW_ANY", "REGISTRY_ONLY"}));
  app.add_option("-l,--log-level", o.log_level,
                 "trace, debug, info, warning, error, critical or off");
  std::string debounce_after = "100ms";
  std::string debounce_max = "1s";
  app.add_option("--debounce-after", debounce_after,
                 "quiet time before a configuration push (e.g. 100ms)");
  app.add_option("--debounce-max", debounce_max, "longest a configuration push waits (e.g. 1s)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    exit_message = app.help();
    return o;
  } catch (const CLI::CallForVersion&) {
    exit_message = "sheave-control 0.1.0\n";
    return o;
  } catch (const CLI::ParseError& e) {
    return invalidArgument(e.what());
  }
  o.outbound_traffic_policy = policy == "REGISTRY_ONLY" ? OutboundTrafficPolicyMode::kRegistryOnly
                                                        : OutboundTrafficPolicyMode::kAllowAny;
  SHEAVE_ASSIGN_OR_RETURN(o.debounce_after, parseMillis("--debounce-after", debounce_after));
  SHEAVE_ASSIGN_OR_RETURN(o.debounce_max, parseMillis("--debounce-max", debounce_max));
  if (o.debounce_max < o.debounce_after) {
    return invalidArgument("--debounce-max must not be shorter than --debounce-after");
  }
  if (o.domain_suffix.empty()) return invalidArgument("--domain-suffix: must not be empty");
  if (o.trust_domain.empty()) return invalidArgument("--trust-domain: must not be empty");
  SHEAVE_ASSIGN_OR_RETURN(auto ttl, parseMillis("--workload-cert-ttl", cert_ttl));
  if (ttl < std::chrono::seconds(60)) {
    return invalidArgument("--workload-cert-ttl: must be at least 1m");
  }
  o.workload_cert_ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
  if (!o.token_dir.empty() && o.ca_dir.empty()) {
    return invalidArgument("--token-dir needs --ca-dir");
  }
  return o;
}

}  // namespace sheave::control
