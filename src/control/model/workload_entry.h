#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace sheave::control {

// networking.istio.io WorkloadEntry: a non-Kubernetes workload (a VM, a
// process on this machine) that Services and ServiceEntries select by label.
// Also the element type of ServiceEntry.endpoints.
struct WorkloadEntry {
  std::string address;
  std::map<std::string, uint32_t> ports;  // service port name -> workload port
  std::map<std::string, std::string> labels;
  std::string network;
  std::string locality;
  uint32_t weight = 0;
  std::string service_account;
};

}  // namespace sheave::control
