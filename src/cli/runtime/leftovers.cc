#include "cli/runtime/leftovers.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "cli/runtime/command.h"

namespace sheave::cli {

Leftovers findLeftovers(const NetworkPlan& plan) {
  Leftovers out;
  if (auto list = runChecked({"ip", "netns", "list"}); list.ok()) {
    std::istringstream in(*list);
    for (std::string line; std::getline(in, line);) {
      std::string name = line.substr(0, line.find(' '));
      if (!name.starts_with(plan.netns_prefix)) continue;
      out.namespaces.push_back(name);
      if (auto pids = runChecked({"ip", "netns", "pids", name}); pids.ok()) {
        std::istringstream p(*pids);
        for (pid_t pid; p >> pid;) out.pids.push_back(pid);
      }
    }
  }
  if (auto links = runChecked({"ip", "-o", "link", "show"}); links.ok()) {
    std::istringstream in(*links);
    for (std::string line; std::getline(in, line);) {
      // "12: shv1a2b3c4d@if11: <...> mtu 1500 master sheave0 state UP ..."
      size_t colon = line.find(": ");
      if (colon == std::string::npos) continue;
      std::string name = line.substr(colon + 2);
      name = name.substr(0, name.find_first_of(":@"));
      if (name == plan.bridge) {
        out.links.push_back(name);
        continue;
      }
      bool ours = (name.starts_with("shv") || name.starts_with("shp")) && name.size() == 11;
      if (!ours) continue;
      // A veth on another bridge belongs to another mesh (a test's, say); one
      // on no bridge was left half-made.
      std::string master;
      if (size_t m = line.find(" master "); m != std::string::npos) {
        std::istringstream words(line.substr(m + 8));
        words >> master;
      }
      if (master.empty() || master == plan.bridge) out.links.push_back(name);
    }
  }
  return out;
}

namespace {

// Gone, or a zombie: either way it holds no namespace any more.
bool exited(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren == std::string::npos || (paren + 2 < text.size() && text[paren + 2] == 'Z');
}

}  // namespace

Status removeLeftovers(const Leftovers& l) {
  for (pid_t pid : l.pids) ::kill(pid, SIGKILL);
  // A namespace (and the veth in it) lives until its last process is gone.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline &&
         !std::all_of(l.pids.begin(), l.pids.end(), exited)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Status first = okStatus();
  for (const std::string& ns : l.namespaces) {
    Status s = runStep({"ip", "netns", "del", ns});
    if (!s.ok() && first.ok()) first = s;
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path("/etc/netns") / ns, ec);
  }
  for (const std::string& link : l.links) {
    // A veth may already be gone with its namespace.
    (void)runCommand({"ip", "link", "del", link});
  }
  return first;
}

}  // namespace sheave::cli
