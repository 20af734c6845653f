#include "proxy/server/listener_manager.h"

#include <algorithm>

#include "common/logging.h"

namespace sheave::server {

Result<Address> ListenerManager::bindEverywhere(
    const std::shared_ptr<const ListenerConfig>& config) {
  Address bind_to = config->address;
  size_t bound_on = 0;
  for (auto& worker : workers_) {
    auto bound = worker->addListener(config, bind_to);
    if (!bound.ok()) {
      for (size_t i = 0; i < bound_on; ++i) workers_[i]->removeListener(config->name);
      return std::move(bound).error();
    }
    // Port 0 picks a port once; every other worker binds that port.
    bind_to = *bound;
    ++bound_on;
  }
  return bind_to;
}

Status ListenerManager::checkAddressFree(const ListenerConfig& config,
                                         std::string_view except) const {
  if (config.address.port() == 0) return okStatus();
  for (const auto& [name, entry] : listeners_) {
    // A bind_to_port: false listener owns its address only for hand-offs, so it may share it
    // with the listener that really binds it.
    if (name != except && entry.config->address == config.address &&
        entry.config->bind_to_port == config.bind_to_port) {
      return invalidArgument("address: " + config.address.asString() +
                             " is already used by listener '" + name + "'");
    }
  }
  return okStatus();
}

Status ListenerManager::addStatic(std::shared_ptr<const ListenerConfig> config) {
  if (listeners_.count(config->name) != 0) {
    return invalidArgument("name: duplicate listener name '" + config->name + "'");
  }
  SHEAVE_RETURN_IF_ERROR(checkAddressFree(*config, ""));
  SHEAVE_ASSIGN_OR_RETURN(Address bound, bindEverywhere(config));
  if (config->bind_to_port) {
    SHEAVE_LOG_INFO("listener '{}' bound to {} on {} worker(s)", config->name, bound.asString(),
                    workers_.size());
  } else {
    SHEAVE_LOG_INFO("listener '{}' for {} (bind_to_port: false, hand-off only)", config->name,
                    bound.asString());
  }
  const std::string name = config->name;
  order_.push_back(name);
  listeners_[name] = Entry{std::move(config), bound, false, "", std::chrono::system_clock::now()};
  return okStatus();
}

Result<bool> ListenerManager::addOrUpdate(std::shared_ptr<const ListenerConfig> config,
                                          const std::string& version_info) {
  const std::string name = config->name;
  auto it = listeners_.find(name);
  if (it != listeners_.end() && !it->second.dynamic) {
    return invalidArgument("listener '" + name +
                           "': a static listener of the same name exists and cannot be replaced");
  }
  if (it != listeners_.end() &&
      it->second.config->proto.SerializeAsString() == config->proto.SerializeAsString()) {
    return false;
  }
  SHEAVE_RETURN_IF_ERROR(checkAddressFree(*config, name));
  const auto now = std::chrono::system_clock::now();
  if (it != listeners_.end() && it->second.config->address == config->address &&
      it->second.config->bind_to_port == config->bind_to_port) {
    for (auto& worker : workers_) worker->updateListener(config);
    SHEAVE_LOG_INFO("lds: listener '{}' updated", name);
    it->second.config = std::move(config);
    it->second.version_info = version_info;
    it->second.last_updated = now;
    return true;
  }
  if (it != listeners_.end()) {
    // A new address: the old socket goes first (the new one may reuse the port).
    for (auto& worker : workers_) worker->removeListener(name);
    listeners_.erase(it);
    std::erase(order_, name);
  }
  SHEAVE_ASSIGN_OR_RETURN(Address bound, bindEverywhere(config));
  SHEAVE_LOG_INFO("lds: listener '{}' added on {}", name, bound.asString());
  order_.push_back(name);
  listeners_[name] = Entry{std::move(config), bound, true, version_info, now};
  return true;
}

bool ListenerManager::remove(std::string_view name) {
  auto it = listeners_.find(name);
  if (it == listeners_.end() || !it->second.dynamic) return false;
  for (auto& worker : workers_) worker->removeListener(it->first);
  SHEAVE_LOG_INFO("lds: listener '{}' removed", it->first);
  std::erase(order_, it->first);
  listeners_.erase(it);
  return true;
}

std::vector<std::string> ListenerManager::dynamicNames() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : listeners_) {
    if (entry.dynamic) out.push_back(name);
  }
  return out;
}

const ListenerManager::Entry* ListenerManager::find(std::string_view name) const {
  auto it = listeners_.find(name);
  return it == listeners_.end() ? nullptr : &it->second;
}

std::vector<const ListenerManager::Entry*> ListenerManager::entries() const {
  std::vector<const Entry*> out;
  out.reserve(order_.size());
  for (const auto& name : order_) out.push_back(&listeners_.find(name)->second);
  return out;
}

}  // namespace sheave::server
