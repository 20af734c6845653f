#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace sheave::logging {

Status setLevel(std::string_view level) {
  std::string l(level);
  if (l == "warning") l = "warn";
  if (l == "error") l = "err";
  auto parsed = spdlog::level::from_str(l);
  if (parsed == spdlog::level::off && l != "off") {
    return invalidArgument("unknown log level '" + std::string(level) +
                           "' (use trace, debug, info, warning, error, critical or off)");
  }
  spdlog::set_level(parsed);
  return okStatus();
}

std::string_view levelName() {
  auto sv = spdlog::level::to_string_view(spdlog::get_level());
  std::string_view name(sv.data(), sv.size());
  if (name == "warning") return "warning";
  if (name == "error") return "error";
  return name;
}

void init(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("sheave");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e][%t][%l] %v");
  spdlog::set_default_logger(logger);
  (void)setLevel(level);
}

}  // namespace sheave::logging
