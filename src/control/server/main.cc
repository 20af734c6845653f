#include <signal.h>

#include <cstdio>

#include "common/logging.h"
#include "control/server/config_watcher.h"
#include "control/server/http_server.h"
#include "control/server/mesh_provider.h"
#include "control/server/monitoring_endpoints.h"
#include "control/server/options.h"
#include "control/xds/xds_server.h"

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "sheave-control: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sheave::control;
  // Every thread started below inherits this mask, so only sigwait() sees the signals.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string exit_message;
  auto parsed = ControlOptions::parse(argc, argv, exit_message);
  if (!parsed.ok()) return fail(parsed.error().message());
  if (!exit_message.empty()) {
    std::fputs(exit_message.c_str(), stdout);
    return 0;
  }
  ControlOptions options = std::move(parsed).value();
  sheave::logging::init(options.log_level);
  if (auto status = sheave::logging::setLevel(options.log_level); !status.ok()) {
    return fail("--log-level: " + status.error().message());
  }

  RegistryOptions registry_options;
  registry_options.domain_suffix = options.domain_suffix;
  registry_options.trust_domain = options.trust_domain;
  auto watcher = ConfigWatcher::create(options.config_dir, registry_options);
  if (!watcher.ok()) return fail(watcher.error().message());

  MeshConfig mesh;
  mesh.root_namespace = options.root_namespace;
  mesh.trust_domain = options.trust_domain;
  mesh.domain_suffix = options.domain_suffix;
  mesh.outbound_traffic_policy = options.outbound_traffic_policy;
  MeshProvider provider(mesh);
  provider.update((*watcher)->config(), (*watcher)->registry());
  {
    auto config = (*watcher)->config();
    SHEAVE_LOG_INFO("config: loaded {} resources from {} ({} errors)", config->resourceCount(),
                    options.config_dir, config->errors.size());
    for (const ResourceError& e : config->errors) SHEAVE_LOG_WARN("config: {}", e.toString());
  }

  sheave::control::xds::XdsOptions xds_options;
  xds_options.debounce_after = options.debounce_after;
  xds_options.debounce_max = options.debounce_max;
  sheave::control::xds::XdsServer xds(provider, xds_options);
  if (auto status = xds.start(options.xds_address); !status.ok()) {
    return fail("--xds-address: " + status.error().message());
  }
  HttpServer http;
  MonitoringEndpoints endpoints(provider, &xds);
  endpoints.install(http);
  if (auto status = http.start(options.http_address); !status.ok()) {
    xds.stop();
    return fail("--http-address: " + status.error().message());
  }
  auto on_change = [&provider, &xds](const ConfigUpdate& update) {
    provider.update(update.config, update.registry);
    xds.push(update.push);
  };
  if (auto status = (*watcher)->start(on_change); !status.ok()) {
    http.stop();
    xds.stop();
    return fail(status.error().message());
  }
  // A file written between the first load and the first watch is caught here.
  (*watcher)->reload("startup");
  endpoints.setReady(true);
  SHEAVE_LOG_INFO("sheave-control ready: ADS on port {}, HTTP on port {}", xds.port(), http.port());

  int sig = 0;
  sigwait(&mask, &sig);
  SHEAVE_LOG_INFO("sheave-control: signal {}, shutting down", sig);
  endpoints.setReady(false);
  (*watcher)->stop();
  http.stop();
  xds.stop();
  return 0;
}
