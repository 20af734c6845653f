#pragma once

#include <string>

#include "proxy/network/event_loop.h"

namespace sheave::http {

// The IMF-fixdate for the Date response header. Formatting a date per
// response is measurable, so each thread caches the string for the current
// second.
class DateProvider {
 public:
  static const std::string& current(network::EventLoop& loop);
};

}  // namespace sheave::http
