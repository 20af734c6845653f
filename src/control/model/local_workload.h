#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sheave::control {

// sheave.io/v1alpha1 LocalWorkload: what only the local launcher (`sheave up`)
// needs to run a workload on this machine -- the command, its environment and
// how many replicas. Everything the mesh reads about a workload (labels, ports,
// service account) is a WorkloadEntry's: `sheave up` expands each replica into
// the WorkloadEntry "<name>-<index>" with the address it gave it. The control
// plane itself ignores this kind.
struct LocalWorkload {
  std::vector<std::string> command;           // required; argv, no shell
  std::map<std::string, std::string> env;     // added to the launcher's PATH/HOME
  uint32_t replicas = 1;                      // 0..64
  std::string service_account;                // default "default"
  std::map<std::string, std::string> labels;  // WorkloadEntry.labels
  std::map<std::string, uint32_t> ports;      // WorkloadEntry.ports (port name -> port)
  // Istio's proxy.istio.io/config holdApplicationUntilProxyStarts; on by
  // default here: the application starts once its sidecar is ready.
  bool hold_application_until_proxy_starts = true;
};

}  // namespace sheave::control
