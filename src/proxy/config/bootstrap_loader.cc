#include "proxy/config/bootstrap_loader.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "proxy/config/proto_json.h"
#include "proxy/config/yaml_json.h"

namespace sheave::config {

ConfigFormat formatForPath(std::string_view path) {
  constexpr std::string_view kJson = ".json";
  if (path.size() >= kJson.size() && path.substr(path.size() - kJson.size()) == kJson) {
    return ConfigFormat::kJson;
  }
  return ConfigFormat::kYaml;
}

Result<envoy::config::bootstrap::v3::Bootstrap> parseBootstrap(std::string_view text,
                                                               ConfigFormat format) {
  std::string json;
  if (format == ConfigFormat::kYaml) {
    SHEAVE_ASSIGN_OR_RETURN(json, yamlToJson(text));
    if (json == "null") {
      return invalidArgument("the configuration is empty");
    }
  } else {
    json.assign(text);
  }
  envoy::config::bootstrap::v3::Bootstrap bootstrap;
  SHEAVE_RETURN_IF_ERROR(jsonToMessage(json, bootstrap));
  return bootstrap;
}

Result<envoy::config::bootstrap::v3::Bootstrap> loadBootstrapFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    Error e = err == ENOENT ? notFound("no such file") : ioError(std::strerror(err));
    return std::move(e).at(path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return ioError("read failed").at(path);
  }
  auto bootstrap = parseBootstrap(text.str(), formatForPath(path));
  if (!bootstrap.ok()) {
    return std::move(bootstrap).error().at(path);
  }
  return bootstrap;
}

}  // namespace sheave::config
