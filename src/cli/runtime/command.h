#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sheave::cli {

struct CommandResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// Runs a program without a shell and waits for it (killed after `timeout`).
// Fails only when it cannot be started or does not finish in time.
Result<CommandResult> runCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Ok(stdout) when the program exits 0, else an Error naming argv[0..1] and
// its trimmed stderr.
Result<std::string> runChecked(const std::vector<std::string>& argv);
// runChecked when only success matters.
Status runStep(const std::vector<std::string>& argv);

// `name` in PATH, /usr/sbin or /sbin.
std::optional<std::string> findExecutable(std::string_view name);

}  // namespace sheave::cli
