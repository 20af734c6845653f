#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.h"
#include "common/result.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/worker.h"

namespace sheave::server {

// Every listener of the process, static (bootstrap) and dynamic (LDS), on
// the main thread. A listener is bound on every worker (one SO_REUSEPORT
// socket each) before it counts as added; an update with the same address
// swaps the config on the workers' sockets without closing them, so no
// connection attempt is refused, and the old config's HTTP connections
// drain; a removed listener's socket closes and its connections drain.
// A bind_to_port: false listener is registered on every worker without a
// socket: it only takes connections a use_original_dst listener hands over.
class ListenerManager {
 public:
  explicit ListenerManager(std::vector<std::unique_ptr<Worker>>& workers) : workers_(workers) {}

  struct Entry {
    std::shared_ptr<const ListenerConfig> config;
    Address bound;  // the address as bound (port 0 resolved)
    bool dynamic = false;
    std::string version_info;
    std::chrono::system_clock::time_point last_updated;
  };

  // A bootstrap listener: a name or an address already in use is an error.
  Status addStatic(std::shared_ptr<const ListenerConfig> config);
  // LDS: adds a listener or replaces the one with the same name; false when
  // its config is unchanged. On error nothing changed.
  Result<bool> addOrUpdate(std::shared_ptr<const ListenerConfig> config,
                           const std::string& version_info);
  // LDS: removes a dynamic listener; false when there is none of that name.
  bool remove(std::string_view name);

  std::vector<std::string> dynamicNames() const;
  const Entry* find(std::string_view name) const;
  // In the order they were added.
  std::vector<const Entry*> entries() const;

 private:
  Result<Address> bindEverywhere(const std::shared_ptr<const ListenerConfig>& config);
  Status checkAddressFree(const ListenerConfig& config, std::string_view except) const;

  std::vector<std::unique_ptr<Worker>>& workers_;
  std::map<std::string, Entry, std::less<>> listeners_;
  std::vector<std::string> order_;
};

}  // namespace sheave::server
