#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "control/model/workload_selector.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// security.istio.io PeerAuthentication, field for field with Istio's API.

enum class MutualTLSMode { kUnset, kDisable, kPermissive, kStrict };
template <>
struct EnumTraits<MutualTLSMode> {
  static constexpr std::array<std::pair<std::string_view, MutualTLSMode>, 4> kNames{{
      {"UNSET", MutualTLSMode::kUnset},
      {"DISABLE", MutualTLSMode::kDisable},
      {"PERMISSIVE", MutualTLSMode::kPermissive},
      {"STRICT", MutualTLSMode::kStrict},
  }};
};

struct PeerAuthenticationMutualTLS {
  MutualTLSMode mode = MutualTLSMode::kUnset;
};

struct PeerAuthentication {
  std::optional<WorkloadSelector> selector;
  std::optional<PeerAuthenticationMutualTLS> mtls;
  std::map<uint32_t, PeerAuthenticationMutualTLS> port_level_mtls;  // port -> mode
};

}  // namespace sheave::control
