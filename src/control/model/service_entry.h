#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/model/workload_entry.h"
#include "control/model/workload_selector.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// networking.istio.io ServiceEntry, field for field with Istio's API.

struct ServicePort {
  uint32_t number = 0;
  std::string protocol;  // HTTP|HTTPS|GRPC|HTTP2|MONGO|TCP|TLS
  std::string name;
  uint32_t target_port = 0;
};

enum class ServiceEntryLocation { kMeshExternal, kMeshInternal };
template <>
struct EnumTraits<ServiceEntryLocation> {
  static constexpr std::array<std::pair<std::string_view, ServiceEntryLocation>, 2> kNames{{
      {"MESH_EXTERNAL", ServiceEntryLocation::kMeshExternal},
      {"MESH_INTERNAL", ServiceEntryLocation::kMeshInternal},
  }};
};

enum class ServiceEntryResolution { kNone, kStatic, kDns, kDnsRoundRobin };
template <>
struct EnumTraits<ServiceEntryResolution> {
  static constexpr std::array<std::pair<std::string_view, ServiceEntryResolution>, 4> kNames{{
      {"NONE", ServiceEntryResolution::kNone},
      {"STATIC", ServiceEntryResolution::kStatic},
      {"DNS", ServiceEntryResolution::kDns},
      {"DNS_ROUND_ROBIN", ServiceEntryResolution::kDnsRoundRobin},
  }};
};

struct ServiceEntry {
  std::vector<std::string> hosts;
  std::vector<std::string> addresses;
  std::vector<ServicePort> ports;
  ServiceEntryLocation location = ServiceEntryLocation::kMeshExternal;
  ServiceEntryResolution resolution = ServiceEntryResolution::kNone;
  std::vector<WorkloadEntry> endpoints;
  std::optional<NetworkingWorkloadSelector> workload_selector;
  std::vector<std::string> export_to;
  std::vector<std::string> subject_alt_names;
};

}  // namespace sheave::control
