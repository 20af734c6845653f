#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "control/model/sidecar.h"

namespace sheave::control {

// sheave-control's command line.
struct ControlOptions {
  std::string config_dir;
  std::string xds_address = "127.0.0.1:15010";
  std::string http_address = "127.0.0.1:15014";
  std::string domain_suffix = "cluster.local";
  std::string trust_domain = "cluster.local";
  std::string root_namespace = "sheave-system";
  OutboundTrafficPolicyMode outbound_traffic_policy = OutboundTrafficPolicyMode::kAllowAny;
  std::string log_level = "info";
  // Istio's PILOT_DEBOUNCE_AFTER and PILOT_DEBOUNCE_MAX.
  std::chrono::milliseconds debounce_after{100};
  std::chrono::milliseconds debounce_max{1000};

  // Parses argv. --help and --version put their text in exit_message (the
  // caller prints it and exits 0); a bad flag is an error with one line.
  static Result<ControlOptions> parse(int argc, char** argv, std::string& exit_message);
};

}  // namespace sheave::control
