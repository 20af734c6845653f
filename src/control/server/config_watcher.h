#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "control/model/config_set.h"
#include "control/registry/local_registry.h"
#include "control/xds/resource_provider.h"

namespace sheave::control {

// One loaded state of the config directory and the push it calls for.
struct ConfigUpdate {
  std::shared_ptr<const ConfigSet> config;
  std::shared_ptr<const RegistrySnapshot> registry;
  xds::PushRequest push;
};

// Loads every YAML file below a directory into a ConfigSet and a
// LocalRegistry snapshot, and reloads on change (inotify, recursive).
// A reload classifies the change: when only WorkloadEntries changed and the
// registry reports endpoint changes alone, the push is endpoint-only
// (full=false, the changed services), otherwise full. Invalid documents are
// reported in ConfigSet::errors and everything valid still applies.
class ConfigWatcher {
 public:
  using Listener = std::function<void(const ConfigUpdate&)>;

  // Loads dir once. Fails when dir is not a readable directory or the
  // registry options are invalid.
  static Result<std::unique_ptr<ConfigWatcher>> create(std::filesystem::path dir,
                                                       RegistryOptions options);
  // Several directories read as one configuration (in this order; a resource
  // defined twice keeps its first definition). `sheave up` adds the
  // WorkloadEntries it generates this way, next to the user's directory.
  static Result<std::unique_ptr<ConfigWatcher>> create(std::vector<std::filesystem::path> dirs,
                                                       RegistryOptions options);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  std::shared_ptr<const ConfigSet> config() const;
  std::shared_ptr<const RegistrySnapshot> registry() const;
  const std::vector<std::filesystem::path>& directories() const { return dirs_; }
  uint64_t reloads() const { return reloads_.load(); }

  // Reads the directory again now. Returns the update when something
  // changed (and calls the listener, if any), nullopt when nothing did or
  // the directory cannot be read (the previous state stays).
  std::optional<ConfigUpdate> reload(std::string reason = "reload");

  // Watches the directory on a thread of its own and calls listener (on that
  // thread) after each reload that changed something. Events are coalesced:
  // a reload happens `quiet` after the last event, at most `max_delay`
  // after the first.
  Status start(Listener listener, std::chrono::milliseconds quiet = std::chrono::milliseconds(50),
               std::chrono::milliseconds max_delay = std::chrono::milliseconds(500));
  void stop();

  // A digest of every document except WorkloadEntries (formatting and
  // comments ignored), to tell endpoint-only changes from the rest.
  static uint64_t configFingerprint(const std::vector<std::filesystem::path>& dirs);

 private:
  ConfigWatcher(std::vector<std::filesystem::path> dirs, std::unique_ptr<LocalRegistry> registry);
  static Result<ConfigSet> loadAll(const std::vector<std::filesystem::path>& dirs);
  void run(std::chrono::milliseconds quiet, std::chrono::milliseconds max_delay);
  void addWatches(const std::filesystem::path& dir);

  const std::vector<std::filesystem::path> dirs_;
  std::string names_;  // for log lines
  std::unique_ptr<LocalRegistry> registry_;
  std::mutex reload_mu_;   // one reload at a time
  mutable std::mutex mu_;  // guards config_
  std::shared_ptr<const ConfigSet> config_;
  uint64_t fingerprint_ = 0;
  std::atomic<uint64_t> reloads_{0};
  Listener listener_;

  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  std::map<int, std::filesystem::path> watches_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace sheave::control
