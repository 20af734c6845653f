#pragma once

#include <atomic>
#include <string>

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
};

}  // namespace sheave::control
