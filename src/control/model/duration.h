#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sheave::control {

// Istio writes durations as Go/protobuf duration strings ("10s", "1.5s",
// "100ms", "1h30m"); they are kept at nanosecond precision.
using Duration = std::chrono::nanoseconds;

// Parses a non-negative duration: one or more <decimal number><unit> parts,
// units ns, us (or µs), ms, s, m, h; "0" alone is zero. The error names what
// is wrong ("missing unit", "unknown unit \"sec\"").
Result<Duration> parseDuration(std::string_view text);

// The shortest exact Go-style spelling: "10s", "1.5s", "100ms", "1h0m0s" is
// written "3600s" so it parses back with both Go and protobuf.
std::string formatDuration(Duration d);

}  // namespace sheave::control
