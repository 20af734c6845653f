#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace sheave::cli {

struct HttpReply {
  int status = 0;
  std::string body;
};

// A plain HTTP/1.0 GET to host:port as seen from inside network namespace
// `netns` (empty: this one): the socket is made by a thread that joined the
// namespace, so the caller never leaves its own. For the sidecars' admin
// ports, which listen on 127.0.0.1 inside their workload's namespace.
Result<HttpReply> httpGet(const std::string& netns, const std::string& host, uint16_t port,
                          const std::string& path,
                          std::chrono::milliseconds timeout = std::chrono::seconds(2));
// The same with another method and no body (the admin API's POST /logging?level=...).
Result<HttpReply> httpRequest(const std::string& method, const std::string& netns,
                              const std::string& host, uint16_t port, const std::string& path,
                              std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace sheave::cli
