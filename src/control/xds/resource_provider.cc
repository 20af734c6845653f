#include "control/xds/resource_provider.h"

namespace sheave::control::xds {

void PushRequest::merge(const PushRequest& other) {
  full = full || other.full;
  services.insert(other.services.begin(), other.services.end());
  if (!other.reason.empty() && reason.find(other.reason) == std::string::npos) {
    // Reasons repeat when a file is saved many times; keep each once.
    reason = reason.empty() ? other.reason : reason + "," + other.reason;
  }
  using Clock = std::chrono::steady_clock;
  if (start == Clock::time_point{} || (other.start != Clock::time_point{} && other.start < start)) {
    start = other.start;
  }
}

}  // namespace sheave::control::xds
