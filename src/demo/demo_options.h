#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace sheave::demo {

struct Fault {
  double fail_fraction = 0;  // answered with fail_status
  int fail_status = 503;
  std::chrono::milliseconds latency{0};
};

// One --upstream URL, and where to connect for it.
struct Upstream {
  std::string url;           // as given: http://reviews:9080/reviews/0
  std::string host_header;   // reviews:9080
  std::string path;          // /reviews/0
  std::string connect_host;  // reviews, or $REVIEWS_SERVICE_HOST
  int connect_port = 80;     // 9080, or $REVIEWS_SERVICE_PORT
};

struct DemoOptions {
  std::string name;
  std::string version = "v1";
  std::string host = "0.0.0.0";
  int port = 9080;
  size_t threads = 8;
  std::vector<Upstream> upstreams;
  std::vector<std::string> forward_headers;
  std::chrono::milliseconds upstream_timeout{15000};
  bool tolerate_upstream_errors = false;
  Fault fault;
  uint64_t crash_after = 0;  // 0: never
  bool help = false;         // --help was printed
};

// Looks an environment variable up (getenv in the program; a map in tests).
using EnvLookup = std::function<const char*(const char*)>;

// Flags, each also settable as DEMO_<FLAG> in the environment (flags win).
// Errors are one sentence.
Result<DemoOptions> parseDemoOptions(int argc, const char* const* argv, EnvLookup env = nullptr);

// "http://reviews:9080/path" -> Upstream; the Kubernetes-style
// <HOST>_SERVICE_HOST / _SERVICE_PORT variables, when set, say where to connect.
Result<Upstream> parseUpstream(const std::string& url, const EnvLookup& env);

// "100ms", "2s", "1m" -> milliseconds.
Result<std::chrono::milliseconds> parseDuration(const std::string& text);

}  // namespace sheave::demo
