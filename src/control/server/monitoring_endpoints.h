#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "control/server/http_server.h"
#include "control/server/mesh_provider.h"

namespace sheave::control {

namespace xds {
class XdsServer;
}

// sheave-control's monitoring port (Istio's 15014): /ready, /metrics
// (Prometheus, Istio's pilot_* names), /debug/syncz, /debug/config_dump and
// /debug/configz. Reads the provider and the ADS server; owns nothing.
class MonitoringEndpoints {
 public:
  // xds may be null (no ADS server: connection figures are zero).
  MonitoringEndpoints(MeshProvider& provider, const xds::XdsServer* xds);

  // Registers every endpoint on http.
  void install(HttpServer& http);

  // More Prometheus text for /metrics (the CA's citadel_server_*); before install().
  void addMetricsSource(std::function<std::string()> source) {
    metrics_sources_.push_back(std::move(source));
  }

  // /ready answers 200 once this is set (config loaded, ADS listening).
  void setReady(bool ready) { ready_.store(ready); }

  HttpResponse ready() const;
  HttpResponse metrics() const;
  HttpResponse syncz() const;
  HttpResponse configDump(const HttpRequest& request) const;
  HttpResponse configz() const;

 private:
  MeshProvider& provider_;
  const xds::XdsServer* xds_;
  std::atomic<bool> ready_{false};
  std::vector<std::function<std::string()>> metrics_sources_;
};

}  // namespace sheave::control
