#include "control/server/config_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/logging.h"

namespace sheave::control {
namespace {

using Clock = std::chrono::steady_clock;

bool isConfigFile(const std::filesystem::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

// FNV-1a, folded over the canonical text of each document.
void mix(uint64_t& h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= 0xff;
  h *= 1099511628211ULL;
}

constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                IN_CREATE | IN_DELETE_SELF | IN_ONLYDIR;

}  // namespace

uint64_t ConfigWatcher::configFingerprint(const std::vector<std::filesystem::path>& dirs) {
  std::vector<std::filesystem::path> files;
  for (const auto& dir : dirs) {
    std::vector<std::filesystem::path> found;
    std::error_code ec;
    auto it = std::filesystem::recursive_directory_iterator(
        dir, std::filesystem::directory_options::skip_permission_denied, ec);
    for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (isConfigFile(it->path()) && it->is_regular_file(ec)) found.push_back(it->path());
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  uint64_t h = 14695981039346656037ULL;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    try {
      for (const YAML::Node& doc : YAML::LoadAll(text.str())) {
        if (doc.IsMap() && doc["kind"] && doc["kind"].IsScalar() &&
            doc["kind"].Scalar() == "WorkloadEntry") {
          continue;
        }
        mix(h, YAML::Dump(doc));
      }
    } catch (const std::exception&) {
      mix(h, text.str());  // not YAML: any edit counts as a change
    }
  }
  return h;
}

ConfigWatcher::ConfigWatcher(std::vector<std::filesystem::path> dirs,
                             std::unique_ptr<LocalRegistry> registry)
    : dirs_(std::move(dirs)), registry_(std::move(registry)) {
  for (const auto& d : dirs_) names_ += (names_.empty() ? "" : ", ") + d.string();
}

Result<ConfigSet> ConfigWatcher::loadAll(const std::vector<std::filesystem::path>& dirs) {
  ConfigSet all;
  for (const auto& dir : dirs) {
    SHEAVE_ASSIGN_OR_RETURN(ConfigSet config, loadDirectory(dir));
    all.merge(std::move(config));
  }
  return all;
}

Result<std::unique_ptr<ConfigWatcher>> ConfigWatcher::create(std::filesystem::path dir,
                                                             RegistryOptions options) {
  return create(std::vector<std::filesystem::path>{std::move(dir)}, std::move(options));
}

Result<std::unique_ptr<ConfigWatcher>> ConfigWatcher::create(
    std::vector<std::filesystem::path> dirs, RegistryOptions options) {
  if (dirs.empty()) return invalidArgument("--config: at least one directory is needed");
  for (const auto& dir : dirs) {
    if (::access(dir.c_str(), R_OK | X_OK) != 0) {
      return ioError("--config " + dir.string() + ": " + std::strerror(errno));
    }
  }
  SHEAVE_ASSIGN_OR_RETURN(std::unique_ptr<LocalRegistry> registry,
                          LocalRegistry::create(std::move(options)));
  SHEAVE_ASSIGN_OR_RETURN(ConfigSet config, loadAll(dirs));
  registry->update(config);
  uint64_t fingerprint = configFingerprint(dirs);
  std::unique_ptr<ConfigWatcher> watcher(new ConfigWatcher(std::move(dirs), std::move(registry)));
  watcher->fingerprint_ = fingerprint;
  watcher->config_ = std::make_shared<const ConfigSet>(std::move(config));
  return watcher;
}

ConfigWatcher::~ConfigWatcher() { stop(); }

std::shared_ptr<const ConfigSet> ConfigWatcher::config() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_;
}

std::shared_ptr<const RegistrySnapshot> ConfigWatcher::registry() const {
  return registry_->snapshot();
}

std::optional<ConfigUpdate> ConfigWatcher::reload(std::string reason) {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  auto start = Clock::now();
  Result<ConfigSet> loaded = loadAll(dirs_);
  if (!loaded.ok()) {
    SHEAVE_LOG_ERROR("config: reload of {} failed, keeping the previous configuration: {}", names_,
                     loaded.error().message());
    return std::nullopt;
  }
  uint64_t fingerprint = configFingerprint(dirs_);
  auto config = std::make_shared<const ConfigSet>(std::move(loaded).value());
  RegistryChange change = registry_->update(*config);
  bool config_changed = fingerprint != fingerprint_;
  fingerprint_ = fingerprint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config_ = config;
  }
  reloads_++;
  if (!config_changed && change.empty()) {
    SHEAVE_LOG_DEBUG("config: {} reloaded, nothing changed", names_);
    return std::nullopt;
  }
  ConfigUpdate update;
  update.config = config;
  update.registry = registry_->snapshot();
  update.push.start = start;
  if (!config_changed && change.added.empty() && change.removed.empty() && change.updated.empty()) {
    update.push.full = false;
    update.push.services.insert(change.endpoints_changed.begin(), change.endpoints_changed.end());
    update.push.reason = reason + ": endpoints of " +
                         std::to_string(change.endpoints_changed.size()) + " service(s)";
  } else {
    update.push.full = true;
    update.push.reason = reason + ": configuration";
  }
  SHEAVE_LOG_INFO("config: {} reloaded: {} resources, {} errors, {} push", names_,
                  config->resourceCount(), config->errors.size(),
                  update.push.full ? "full" : "endpoint-only");
  for (const ResourceError& e : config->errors) {
    SHEAVE_LOG_WARN("config: {}", e.toString());
  }
  if (listener_) listener_(update);
  return update;
}

void ConfigWatcher::addWatches(const std::filesystem::path& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> dirs{dir};
  auto it = std::filesystem::recursive_directory_iterator(
      dir, std::filesystem::directory_options::skip_permission_denied, ec);
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) dirs.push_back(it->path());
  }
  for (const auto& d : dirs) {
    int wd = ::inotify_add_watch(inotify_fd_, d.c_str(), kWatchMask);
    if (wd < 0) {
      SHEAVE_LOG_WARN("config: cannot watch {}: {}", d.string(), std::strerror(errno));
      continue;
    }
    watches_[wd] = d;
  }
}

Status ConfigWatcher::start(Listener listener, std::chrono::milliseconds quiet,
                            std::chrono::milliseconds max_delay) {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return ioError(std::string("inotify_init1: ") + std::strerror(errno));
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return ioError(std::string("eventfd: ") + std::strerror(errno));
  for (const auto& dir : dirs_) addWatches(dir);
  if (watches_.empty()) return ioError("--config " + names_ + ": cannot be watched");
  listener_ = std::move(listener);
  thread_ = std::thread([this, quiet, max_delay] { run(quiet, max_delay); });
  return okStatus();
}

void ConfigWatcher::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

void ConfigWatcher::run(std::chrono::milliseconds quiet, std::chrono::milliseconds max_delay) {
  bool pending = false;
  Clock::time_point first_event{};
  Clock::time_point due{};
  alignas(inotify_event) char buf[16 * 1024];
  while (!stopping_.load()) {
    int timeout = -1;
    if (pending) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(left.count(), 0));
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (stopping_.load()) break;
    if (n < 0 && errno != EINTR) {
      SHEAVE_LOG_ERROR("config: poll: {}", std::strerror(errno));
      break;
    }
    bool relevant = false;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      for (;;) {
        ssize_t got = ::read(inotify_fd_, buf, sizeof(buf));
        if (got <= 0) break;
        for (char* p = buf; p < buf + got;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          if (ev->mask & IN_Q_OVERFLOW) {
            relevant = true;  // events lost: reload to be safe
            continue;
          }
          auto dir = watches_.find(ev->wd);
          if (ev->mask & IN_IGNORED) {
            if (dir != watches_.end()) watches_.erase(dir);
            continue;
          }
          if (dir == watches_.end()) continue;
          std::filesystem::path path = dir->second;
          if (ev->len > 0) path /= ev->name;
          if (ev->mask & IN_ISDIR) {
            // A new (or moved-in) subdirectory may already hold files.
            if (ev->mask & (IN_CREATE | IN_MOVED_TO)) addWatches(path);
            relevant = true;
          } else if ((ev->mask & IN_DELETE_SELF) || isConfigFile(path)) {
            relevant = true;
          }
        }
      }
    }
    auto now = Clock::now();
    if (relevant) {
      if (!pending) first_event = now;
      pending = true;
      due = std::min(now + quiet, first_event + max_delay);
    }
    if (pending && now >= due) {
      pending = false;
      reload("file change");
    }
  }
}

}  // namespace sheave::control
