#pragma once

#include <chrono>
#include <functional>

#include "proxy/network/event_loop.h"

namespace sheave::network::testing {

// Runs the loop until done() holds (checked every millisecond) or the timeout passes. Returns
// done(). Keeps tests bounded in time whatever goes wrong.
inline bool runUntil(EventLoop& loop, const std::function<bool()>& done,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_ptr<Timer> poll;
  poll = loop.createTimer([&] {
    if (done() || std::chrono::steady_clock::now() >= deadline) {
      loop.exit();
    } else {
      poll->enable(std::chrono::milliseconds(1));
    }
  });
  poll->enable(std::chrono::milliseconds(0));
  loop.run();
  return done();
}

}  // namespace sheave::network::testing
