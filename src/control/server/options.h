#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"
#include "control/model/sidecar.h"

namespace sheave::control {

// sheave-control's command line.
struct ControlOptions {
  // Read as one configuration, in order; --config may be repeated.
  std::vector<std::string> config_dirs;
  std::string xds_address = "127.0.0.1:15010";
  std::string http_address = "127.0.0.1:15014";
  std::string domain_suffix = "cluster.local";
  std::string trust_domain = "cluster.local";
  std::string root_namespace = "sheave-system";
  OutboundTrafficPolicyMode outbound_traffic_policy = OutboundTrafficPolicyMode::kAllowAny;
  std::string log_level = "info";
  // The CA (Istio's): with --ca-dir, xDS is served only over TLS on secure_xds_address (Istio's
  // 15012) together with the IstioCertificateService, and every stream must present a workload
  // certificate the CA issued.
  std::string ca_dir;
  std::string secure_xds_address = "127.0.0.1:15012";
  std::string token_dir;  // bootstrap token per WorkloadEntry: <dir>/<namespace>/<name>
  std::chrono::seconds workload_cert_ttl{24 * 3600};  // Istio's DEFAULT_WORKLOAD_CERT_TTL
  // Istio's PILOT_DEBOUNCE_AFTER and PILOT_DEBOUNCE_MAX.
  std::chrono::milliseconds debounce_after{100};
  std::chrono::milliseconds debounce_max{1000};

  // Parses argv. --help and --version put their text in exit_message (the
  // caller prints it and exits 0); a bad flag is an error with one line.
  static Result<ControlOptions> parse(int argc, char** argv, std::string& exit_message);
};

}  // namespace sheave::control
