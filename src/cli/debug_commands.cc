#include "cli/debug_commands.h"

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/debug/proxy_status.h"
#include "cli/netns_http.h"

namespace sheave::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint16_t kSidecarAdminPort = 15000;

int fail(const std::string& sentence) {
  std::cerr << "sheave: " << sentence << "\n";
  return 1;
}

Result<json> readStatus(const fs::path& state_dir) {
  std::ifstream in(state_dir / "status.json");
  if (!in) {
    return invalidArgument("no mesh is running (" + (state_dir / "status.json").string() +
                           " does not exist); start one with `sheave up DIR`");
  }
  json status = json::parse(in, nullptr, false);
  if (status.is_discarded()) {
    return invalidArgument((state_dir / "status.json").string() + " is not valid JSON");
  }
  return status;
}

// "host:port" -> (host, port).
Result<std::pair<std::string, uint16_t>> splitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return invalidArgument("bad address " + address);
  int port = std::atoi(address.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return invalidArgument("bad address " + address);
  return std::make_pair(address.substr(0, colon), static_cast<uint16_t>(port));
}

Result<std::string> get(const std::string& netns, const std::string& host, uint16_t port,
                        const std::string& path, const std::string& method = "GET") {
  SHEAVE_ASSIGN_OR_RETURN(HttpReply reply,
                          httpRequest(method, netns, host, port, path, std::chrono::seconds(5)));
  if (reply.status != 200) {
    return ioError(path + " answered " + std::to_string(reply.status) + ": " + reply.body);
  }
  return reply.body;
}

struct AdminEndpoint {
  std::string name;   // "productpage-v1-0.default"
  std::string netns;  // empty: the host (the gateway)
  std::string host = "127.0.0.1";
  uint16_t port = kSidecarAdminPort;
};

std::string available(const json& status) {
  std::string out;
  if (status.contains("workloads")) {
    for (const auto& w : status["workloads"]) {
      out += (out.empty() ? "" : ", ") + w.value("name", "") + "." + w.value("namespace", "");
    }
  }
  if (status.contains("gateway"))
    out += (out.empty() ? "" : ", ") + std::string("istio-ingressgateway");
  return out;
}

Result<AdminEndpoint> findProxy(const json& status, const std::string& wanted) {
  if (status.contains("workloads")) {
    for (const auto& w : status["workloads"]) {
      const std::string name = w.value("name", "");
      const std::string full = name + "." + w.value("namespace", "");
      if (wanted == name || wanted == full) {
        return AdminEndpoint{full, w.value("netns", "")};
      }
    }
  }
  if ((wanted == "istio-ingressgateway" || wanted == "istio-ingressgateway.istio-system") &&
      status.contains("gateway")) {
    AdminEndpoint gw{"istio-ingressgateway.istio-system", ""};
    SHEAVE_ASSIGN_OR_RETURN(auto address, splitAddress(status["gateway"].value("admin", "")));
    gw.host = address.first;
    gw.port = address.second;
    return gw;
  }
  return notFound("no proxy named " + wanted +
                  " in the running mesh; there are: " + available(status));
}

}  // namespace

int runProxyStatus(const fs::path& state_dir, const std::string& proxy, bool as_json) {
  auto status = readStatus(state_dir);
  if (!status.ok()) return fail(status.error().message());
  const std::string control = (*status)["control"].value("http", "");
  auto address = splitAddress(control);
  if (!address.ok()) return fail("status.json names no sheave-control address");
  auto syncz = get("", address->first, address->second, "/debug/syncz");
  if (!syncz.ok()) return fail("sheave-control at " + control + ": " + syncz.error().message());
  auto proxies = parseSyncz(*syncz);
  if (!proxies.ok()) return fail(proxies.error().message());
  if (proxy.empty()) {
    if (as_json) {
      std::cout << *syncz << "\n";
    } else {
      std::cout << formatProxyStatus(*proxies, "sheave-control@" + control);
    }
    return 0;
  }
  const ProxySyncStatus* found = nullptr;
  for (const auto& p : *proxies) {
    if (p.name == proxy || p.name.rfind(proxy + ".", 0) == 0) found = &p;
  }
  if (found == nullptr) return fail(proxy + " is not connected to sheave-control");
  auto admin = findProxy(*status, found->name);
  if (!admin.ok()) return fail(admin.error().message());
  auto want =
      get("", address->first, address->second, "/debug/config_dump?proxyID=" + found->node_id);
  if (!want.ok()) return fail("sheave-control: " + want.error().message());
  auto have = get(admin->netns, admin->host, admin->port, "/config_dump");
  if (!have.ok()) return fail(found->name + ": " + have.error().message());
  auto diff = diffConfigDumps(*want, *have);
  if (!diff.ok()) return fail(diff.error().message());
  bool match = true;
  for (const auto& line : *diff) {
    std::cout << line << "\n";
    match = match && line.find("Don't Match") == std::string::npos;
  }
  return match ? 0 : 1;
}

int runProxyConfig(const fs::path& state_dir, const ProxyConfigOptions& options) {
  auto status = readStatus(state_dir);
  if (!status.ok()) return fail(status.error().message());
  auto admin = findProxy(*status, options.proxy);
  if (!admin.ok()) return fail(admin.error().message());
  auto fetch = [&](const std::string& path) {
    return get(admin->netns, admin->host, admin->port, path);
  };
  if (options.kind == "log") {
    const std::string path = options.level.empty() ? "/logging" : "/logging?level=" + options.level;
    auto reply = get(admin->netns, admin->host, admin->port, path, "POST");
    if (!reply.ok()) return fail(admin->name + ": " + reply.error().message());
    std::cout << *reply;
    return 0;
  }
  const bool endpoints = options.kind == "endpoints";
  auto doc = fetch(endpoints ? "/clusters?format=json" : "/config_dump");
  if (!doc.ok()) return fail(admin->name + ": " + doc.error().message());
  if (options.as_json) {
    std::cout << *doc << "\n";
    return 0;
  }
  Result<std::string> table = std::string();
  if (options.kind == "clusters")
    table = clustersTable(*doc, options.filter);
  else if (options.kind == "listeners")
    table = listenersTable(*doc, options.filter);
  else if (options.kind == "routes")
    table = routesTable(*doc, options.filter);
  else if (endpoints)
    table = endpointsTable(*doc, options.filter);
  else if (options.kind == "secret")
    table = secretsTable(*doc, std::chrono::system_clock::now());
  if (!table.ok()) return fail(table.error().message());
  std::cout << *table;
  return 0;
}

}  // namespace sheave::cli
