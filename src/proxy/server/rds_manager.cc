#include "proxy/server/rds_manager.h"

#include "common/logging.h"

namespace sheave::server {

std::shared_ptr<http::RouteConfigProvider> RdsManager::provider(const std::string& name) {
  auto& weak = providers_[name];
  auto shared = weak.lock();
  if (shared == nullptr) {
    shared = std::make_shared<http::RouteConfigProvider>(name);
    // A configuration that arrived before (a listener came back) applies at once.
    if (auto it = applied_.find(name); it != applied_.end()) {
      if (auto table = RouteTable::create(it->second.config); table.ok()) {
        shared->update(std::move(table).value());
      }
    }
    weak = shared;
  }
  return shared;
}

std::vector<std::string> RdsManager::names() {
  std::vector<std::string> out;
  for (auto it = providers_.begin(); it != providers_.end();) {
    if (it->second.expired()) {
      applied_.erase(it->first);
      it = providers_.erase(it);
      continue;
    }
    out.push_back(it->first);
    ++it;
  }
  return out;
}

bool RdsManager::ready(const std::vector<std::string>& names) const {
  for (const auto& name : names) {
    auto it = providers_.find(name);
    if (it == providers_.end()) return false;
    auto shared = it->second.lock();
    if (shared == nullptr || !shared->ready()) return false;
  }
  return true;
}

Status RdsManager::onUpdate(const std::vector<const google::protobuf::Any*>& resources,
                            const std::string& version_info) {
  std::string errors;
  for (size_t i = 0; i < resources.size(); ++i) {
    envoy::config::route::v3::RouteConfiguration config;
    if (!resources[i]->UnpackTo(&config)) {
      return invalidArgument("resources[" + std::to_string(i) + "]: not a RouteConfiguration");
    }
    auto table = RouteTable::create(config);
    if (!table.ok()) {
      if (!errors.empty()) errors += "; ";
      errors += "route configuration '" + config.name() + "': " + table.error().message();
      continue;
    }
    auto it = providers_.find(config.name());
    auto provider = it == providers_.end() ? nullptr : it->second.lock();
    if (provider == nullptr) continue;  // nobody asked for it (any more)
    provider->update(std::move(table).value());
    SHEAVE_LOG_INFO("rds: route configuration '{}' applied (version {})", config.name(),
                    version_info);
    const std::string name = config.name();
    applied_[name] = Applied{version_info, std::chrono::system_clock::now(), std::move(config)};
  }
  if (!errors.empty()) return invalidArgument(errors);
  return okStatus();
}

}  // namespace sheave::server
