#include "cli/runtime/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "cli/runtime/command.h"

namespace sheave::cli {

namespace {

// Everything the child needs, prepared before fork(): after it, only system
// calls (the launcher may have other threads).
struct ChildPlan {
  std::string program;
  std::vector<std::string> args, envs;
  std::vector<char*> argv, envp;
  std::string netns_path;
  std::vector<std::pair<std::string, std::string>> mounts;  // /etc/netns/x/f -> /etc/f
  std::string log_path, working_dir;
};

// What a child that could not exec reports back; plain bytes so the child
// needs nothing but write(2) (strerror and snprintf are not safe after fork).
struct ChildFailure {
  int err = 0;
  char step[60] = {};
};

[[noreturn]] void childFail(int pipe_fd, int err, const char* step) {
  ChildFailure f;
  f.err = err;
  for (size_t i = 0; i + 1 < sizeof(f.step) && step[i] != '\0'; ++i) f.step[i] = step[i];
  (void)!::write(pipe_fd, &f, sizeof(f));
  ::_exit(127);
}

[[noreturn]] void runChild(const ChildPlan& p, const ProcessSpec& spec, int pipe_fd) {
  ::setsid();
  if (spec.parent_death_signal) ::prctl(PR_SET_PDEATHSIG, *spec.parent_death_signal);
  if (!p.netns_path.empty()) {
    int ns = ::open(p.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) childFail(pipe_fd, errno, "open network namespace");
    if (::setns(ns, CLONE_NEWNET) != 0) childFail(pipe_fd, errno, "join network namespace");
    ::close(ns);
    if (!p.mounts.empty()) {
      if (::unshare(CLONE_NEWNS) != 0) childFail(pipe_fd, errno, "unshare mount namespace");
      // Our bind mounts must not propagate back to the host's /etc.
      if (::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
        childFail(pipe_fd, errno, "make / a slave mount");
      }
      for (const auto& [from, to] : p.mounts) {
        if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0) {
          childFail(pipe_fd, errno, "bind-mount the namespace's /etc file");
        }
      }
    }
  }
  int in = ::open("/dev/null", O_RDONLY);
  int out = p.log_path.empty() ? ::open("/dev/null", O_WRONLY)
                               : ::open(p.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0) childFail(pipe_fd, errno, "open the log file");
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  if (::chdir(p.working_dir.c_str()) != 0) childFail(pipe_fd, errno, "chdir");
  if (spec.gid || spec.uid) {
    if (::setgroups(0, nullptr) != 0) childFail(pipe_fd, errno, "setgroups");
  }
  if (spec.gid && ::setresgid(*spec.gid, *spec.gid, *spec.gid) != 0) {
    childFail(pipe_fd, errno, "setgid");
  }
  if (spec.uid && ::setresuid(*spec.uid, *spec.uid, *spec.uid) != 0) {
    childFail(pipe_fd, errno, "setuid");
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(p.program.c_str(), p.argv.data(), p.envp.data());
  childFail(pipe_fd, errno, "exec");
}

}  // namespace

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_status_(other.exit_status_) {}

Process& Process::operator=(Process&& other) noexcept {
  pid_ = std::exchange(other.pid_, -1);
  exit_status_ = other.exit_status_;
  return *this;
}

Result<Process> Process::spawn(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return invalidArgument("no command to run");
  ChildPlan p;
  std::optional<std::string> program;
  if (spec.argv[0].find('/') != std::string::npos) {
    program = spec.argv[0];
  } else {
    for (const auto& [k, v] : spec.env) {
      if (k != "PATH") continue;
      size_t start = 0;
      while (!program && start <= v.size()) {
        size_t end = v.find(':', start);
        if (end == std::string::npos) end = v.size();
        std::string candidate = v.substr(start, end - start) + "/" + spec.argv[0];
        if (end > start && ::access(candidate.c_str(), X_OK) == 0) program = candidate;
        start = end + 1;
      }
    }
    if (!program) program = findExecutable(spec.argv[0]);
  }
  if (!program || ::access(program->c_str(), X_OK) != 0) {
    return notFound(spec.argv[0] + " is not an executable program (not found in PATH)");
  }
  p.program = *program;
  p.args = spec.argv;
  for (const auto& [k, v] : spec.env) p.envs.push_back(k + "=" + v);
  for (auto& a : p.args) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : p.envs) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.log_path = spec.log_path;
  p.working_dir = spec.working_dir.empty() ? "/" : spec.working_dir;
  if (!spec.netns.empty()) {
    p.netns_path = "/run/netns/" + spec.netns;
    if (::access(p.netns_path.c_str(), F_OK) != 0) {
      return notFound("network namespace " + spec.netns + " does not exist");
    }
    const std::string etc = "/etc/netns/" + spec.netns;
    if (DIR* dir = ::opendir(etc.c_str())) {
      while (dirent* e = ::readdir(dir)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        p.mounts.emplace_back(etc + "/" + name, "/etc/" + name);
      }
      ::closedir(dir);
    }
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    return ioError(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return ioError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(pipe_fds[0]);
    runChild(p, spec, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  // The pipe closes on a successful exec (CLOEXEC); anything read is why it failed.
  ChildFailure failure;
  ssize_t n;
  do {
    n = ::read(pipe_fds[0], &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  if (n > 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    failure.step[sizeof(failure.step) - 1] = '\0';
    std::string where = spec.netns.empty() ? "" : " in network namespace " + spec.netns;
    return ioError("cannot start " + spec.argv[0] + where + " (" + failure.step + " failed: " +
                   std::strerror(failure.err) + "); check the program and " + "its permissions");
  }
  return Process(pid);
}

bool Process::running() {
  if (pid_ <= 0 || exit_status_) return false;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return true;
  if (r == pid_) {
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else {
    exit_status_ = -1;  // not our child any more
  }
  return false;
}

void Process::signal(int sig) {
  if (pid_ > 0 && !exit_status_) ::kill(-pid_, sig);
}

Result<int> Process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return ioError("process " + std::to_string(pid_) + " still running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return *exit_status_;
}

int Process::stop(std::chrono::milliseconds grace) {
  if (!running()) return exit_status_.value_or(-1);
  int status = -1;
  signal(SIGTERM);
  if (auto r = wait(grace); r.ok()) {
    status = *r;
  } else {
    signal(SIGKILL);
    auto k = wait(std::chrono::seconds(5));
    status = k.ok() ? *k : -1;
  }
  // Members of the group that outlived the leader (a shell's children). The
  // leader was reaped just now, and pids are handed out again only after the
  // whole pid range has gone round, so this reaches our own group only.
  ::kill(-pid_, SIGKILL);
  return status;
}

}  // namespace sheave::cli
