#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sheave {

// gRPC's status code names, indexed by code (0 OK ... 16 UNAUTHENTICATED),
// spelled as gRPC prints them and as Istio's config writes them.
inline constexpr std::array<std::string_view, 17> kGrpcStatusNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

// The code of a name ("UNAVAILABLE" -> 14), or nullopt.
inline std::optional<uint32_t> grpcStatusCodeOf(std::string_view name) {
  for (size_t i = 0; i < kGrpcStatusNames.size(); ++i) {
    if (kGrpcStatusNames[i] == name) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
}

}  // namespace sheave
