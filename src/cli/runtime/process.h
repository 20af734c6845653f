#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace sheave::cli {

struct ProcessSpec {
  std::vector<std::string> argv;                         // argv[0]: a path, or a name found in PATH
  std::vector<std::pair<std::string, std::string>> env;  // the whole environment
  std::string netns;                                     // empty: stay in this network namespace
  std::optional<uint32_t> uid, gid;  // dropped to (supplementary groups cleared)
  std::string log_path;              // stdout+stderr appended; empty: /dev/null
  std::string working_dir;           // empty: "/"
  // Off by default: the launcher stops its children in order itself, and the
  // kernel would send this when the *thread* that forked exits, not the
  // process. Set it (e.g. SIGTERM) for children that leftovers cleanup cannot
  // find, such as ones in the host namespace.
  std::optional<int> parent_death_signal;
};

// A child process in its own process group. Joining a network namespace
// works as `ip netns exec` does: the files of /etc/netns/<netns>/ are bind
// mounted over /etc/ in a mount namespace of the child's own. Movable; the
// destructor does not kill.
class Process {
 public:
  static Result<Process> spawn(const ProcessSpec& spec);

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() = default;

  pid_t pid() const { return pid_; }
  // Reaps the child if it exited.
  bool running();
  // Once reaped: the exit code, or 128 + the signal.
  std::optional<int> exitStatus() const { return exit_status_; }
  // To the whole process group.
  void signal(int sig);
  // SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL;
  // whatever is left of the group is SIGKILLed too. The leader's exit status.
  int stop(std::chrono::milliseconds grace);
  Result<int> wait(std::chrono::milliseconds timeout);

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

}  // namespace sheave::cli
