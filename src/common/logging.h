#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/result.h"

namespace sheave {

// Process-wide logging through spdlog. Components log with the SHEAVE_LOG_*
// macros; the request path never logs above debug level.
namespace logging {

// Sets the level from Envoy's names: trace, debug, info, warning|warn, error,
// critical, off.
Status setLevel(std::string_view level);
std::string_view levelName();
void init(std::string_view level);

}  // namespace logging
}  // namespace sheave

#define SHEAVE_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define SHEAVE_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define SHEAVE_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define SHEAVE_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define SHEAVE_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
