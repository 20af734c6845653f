#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sheave::cli {

// Filters of `sheave proxy-config`, istioctl's flags; empty/0 means any.
struct ProxyConfigFilter {
  std::string fqdn;       // clusters: the service hostname (substring match)
  uint32_t port = 0;      // clusters, listeners, endpoints
  std::string subset;     // clusters
  std::string direction;  // clusters: inbound | outbound
  std::string name;       // routes: the route configuration's name
  std::string cluster;    // endpoints: the cluster name (exact)
  std::string address;    // listeners, endpoints
};

// Tables in the style of istioctl proxy-config, from an Envoy admin API
// document: `config_dump` is /config_dump, `clusters_json` is
// /clusters?format=json. Each fails only when the document is not what the
// admin API returns.
Result<std::string> clustersTable(std::string_view config_dump, const ProxyConfigFilter& filter);
Result<std::string> listenersTable(std::string_view config_dump, const ProxyConfigFilter& filter);
Result<std::string> routesTable(std::string_view config_dump, const ProxyConfigFilter& filter);
Result<std::string> endpointsTable(std::string_view clusters_json, const ProxyConfigFilter& filter);
// Every certificate the proxy holds (SDS `default` and `ROOTCA`, static
// secrets): its SPIFFE ID, serial, validity window and time to expiry at `now`.
Result<std::string> secretsTable(std::string_view config_dump,
                                 std::chrono::system_clock::time_point now);

}  // namespace sheave::cli
