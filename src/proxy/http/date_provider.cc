#include "proxy/http/date_provider.h"

#include <ctime>

namespace sheave::http {

const std::string& DateProvider::current(network::EventLoop& loop) {
  thread_local std::string cached;
  thread_local std::time_t cached_second = 0;
  const std::time_t now = std::chrono::system_clock::to_time_t(loop.systemNow());
  if (now != cached_second) {
    cached_second = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
  }
  return cached;
}

}  // namespace sheave::http
