#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "envoy/config/route/v3/route.pb.h"
#include "proxy/http/route_config_provider.h"

namespace google::protobuf {
class Any;
}

namespace sheave::server {

// The RDS route configurations the HTTP connection managers of dynamic
// listeners name: one provider per route_config_name, shared by every
// listener that names it and alive while one does. The names with a live
// provider are what the ADS client subscribes to.
class RdsManager {
 public:
  // The provider for a name, made on first use (main thread).
  std::shared_ptr<http::RouteConfigProvider> provider(const std::string& name);
  // Names that some listener still uses, sorted.
  std::vector<std::string> names();
  // Whether every one of names has received a configuration.
  bool ready(const std::vector<std::string>& names) const;

  // An RDS response: each RouteConfiguration replaces its provider's table.
  // An invalid one is reported and leaves that name's table as it was.
  Status onUpdate(const std::vector<const google::protobuf::Any*>& resources,
                  const std::string& version_info);

  struct Applied {
    std::string version_info;
    std::chrono::system_clock::time_point last_updated;
    envoy::config::route::v3::RouteConfiguration config;
  };
  // For /config_dump: the configurations in force, by name.
  const std::map<std::string, Applied>& applied() const { return applied_; }

 private:
  std::map<std::string, std::weak_ptr<http::RouteConfigProvider>> providers_;
  std::map<std::string, Applied> applied_;
};

}  // namespace sheave::server
