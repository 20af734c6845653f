#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "cli/runtime/mesh_network.h"
#include "common/result.h"

namespace sheave::cli {

// What a mesh that did not stop cleanly left on the machine.
struct Leftovers {
  std::vector<std::string> namespaces;  // with the plan's prefix
  std::vector<std::string> links;       // the bridge, its "shv*" veths, orphaned ones
  std::vector<pid_t> pids;              // processes inside those namespaces
  bool empty() const { return namespaces.empty() && links.empty() && pids.empty(); }
};

Leftovers findLeftovers(const NetworkPlan& plan);
// SIGKILLs the processes, deletes the namespaces (and /etc/netns/<ns>) and links.
Status removeLeftovers(const Leftovers& leftovers);

}  // namespace sheave::cli
