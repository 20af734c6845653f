#pragma once

#include <chrono>
#include <optional>

#include "control/xds/resource_provider.h"

namespace sheave::control::xds {

// Istio's push debounce, as a clock-free state machine the push thread drives.
// Configuration pushes (full) wait until `after` has passed with no new
// request, or `max` since the first one, so a burst of file saves becomes one
// push and a namespace that never stops changing still gets pushed at least
// every `max`. Endpoint-only requests are ready at once: they never wait
// behind a configuration debounce. Requests merge while they wait.
class PushDebouncer {
 public:
  using Clock = std::chrono::steady_clock;

  PushDebouncer(Clock::duration after, Clock::duration max) : after_(after), max_(max) {}

  void add(const PushRequest& request, Clock::time_point now);

  // When take() may next return something, if anything waits.
  std::optional<Clock::time_point> nextDeadline() const;

  // The merged request that is due at `now`, if any. A due configuration push
  // absorbs waiting endpoint-only requests.
  std::optional<PushRequest> take(Clock::time_point now);

  bool idle() const { return !full_ && !endpoints_; }

 private:
  Clock::duration after_;
  Clock::duration max_;
  std::optional<PushRequest> full_;
  Clock::time_point first_full_{};
  Clock::time_point last_full_{};
  std::optional<PushRequest> endpoints_;
};

}  // namespace sheave::control::xds
