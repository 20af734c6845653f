#include "control/xds/push_debouncer.h"

#include <algorithm>

namespace sheave::control::xds {

void PushDebouncer::add(const PushRequest& request, Clock::time_point now) {
  if (!request.full) {
    if (endpoints_) {
      endpoints_->merge(request);
    } else {
      endpoints_ = request;
    }
    return;
  }
  if (full_) {
    full_->merge(request);
  } else {
    full_ = request;
    first_full_ = now;
  }
  last_full_ = now;
}

std::optional<PushDebouncer::Clock::time_point> PushDebouncer::nextDeadline() const {
  if (endpoints_) {
    return Clock::time_point::min();
  }
  if (full_) {
    return std::min(last_full_ + after_, first_full_ + max_);
  }
  return std::nullopt;
}

std::optional<PushRequest> PushDebouncer::take(Clock::time_point now) {
  if (full_ && (now >= last_full_ + after_ || now >= first_full_ + max_)) {
    PushRequest out = std::move(*full_);
    full_.reset();
    if (endpoints_) {
      out.merge(*endpoints_);
      endpoints_.reset();
    }
    return out;
  }
  if (endpoints_) {
    PushRequest out = std::move(*endpoints_);
    endpoints_.reset();
    return out;
  }
  return std::nullopt;
}

}  // namespace sheave::control::xds
