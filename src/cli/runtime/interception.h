#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace sheave::cli {

// What istio-iptables is told, with its defaults.
struct InterceptionOptions {
  uint32_t proxy_uid = 1337;
  uint32_t proxy_gid = 1337;
  uint16_t outbound_port = 15001;                                       // istio-iptables -p
  uint16_t inbound_port = 15006;                                        // -z
  std::vector<uint16_t> exclude_inbound_ports = {15020, 15021, 15090};  // -d
  std::vector<uint16_t> exclude_outbound_ports;                         // -o
  std::vector<std::string> exclude_outbound_cidrs;                      // -x
};

// The nat table as istio-iptables writes it in REDIRECT mode, as
// iptables-restore input: inbound TCP to ISTIO_INBOUND -> 15006 (minus the
// excluded ports), outbound TCP to ISTIO_OUTPUT -> 15001, except the proxy's
// own traffic (uid/gid owner), loopback traffic of the application, traffic
// to 127.0.0.1, and the sidecar's calls to its own workload through lo, which
// go back inbound (ISTIO_IN_REDIRECT) unless they come from 127.0.0.6.
std::string interceptionRules(const InterceptionOptions& options);

// Loads the rules into the namespace's nat table (`ip netns exec <netns>
// iptables-restore`), replacing what was there.
Status applyInterception(const std::string& netns, const InterceptionOptions& options);

}  // namespace sheave::cli
