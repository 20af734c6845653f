#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "common/logging.h"
#include "control/server/ca_server.h"
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
  std::vector<std::filesystem::path> config_dirs(options.config_dirs.begin(),
                                                 options.config_dirs.end());
  auto watcher = ConfigWatcher::create(std::move(config_dirs), registry_options);
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
                    fmt::join(options.config_dirs, ", "), config->errors.size());
    for (const ResourceError& e : config->errors) SHEAVE_LOG_WARN("config: {}", e.toString());
  }

  std::unique_ptr<CaServer> ca;
  if (!options.ca_dir.empty()) {
    CaServerOptions ca_options;
    ca_options.ca_dir = options.ca_dir;
    ca_options.trust_domain = options.trust_domain;
    ca_options.token_dir = options.token_dir;
    ca_options.workload_cert_ttl = options.workload_cert_ttl;
    auto created = CaServer::create(ca_options);
    if (!created.ok()) return fail("--ca-dir: " + created.error().message());
    ca = std::move(created).value();
    provider.setTrustBundle(ca->trustBundle());
    provider.setAuthenticator([&ca](const sheave::control::xds::PeerCredentials& peer) {
      return ca->authenticateStream(peer);
    });
    ca->syncTokens(*(*watcher)->config());
  }

  sheave::control::xds::XdsOptions xds_options;
  xds_options.debounce_after = options.debounce_after;
  xds_options.debounce_max = options.debounce_max;
  sheave::control::xds::XdsServer xds(provider, xds_options);
  if (ca) {
    // Istio's 15012: the CA and xDS on one TLS port; no plaintext xDS (every stream must prove
    // its identity with a certificate).
    xds.addService(ca->service());
    if (auto status = xds.start(options.secure_xds_address, ca->xdsCredentials()); !status.ok()) {
      return fail("--secure-xds-address: " + status.error().message());
    }
  } else if (auto status = xds.start(options.xds_address); !status.ok()) {
    return fail("--xds-address: " + status.error().message());
  }
  HttpServer http;
  MonitoringEndpoints endpoints(provider, &xds);
  if (ca) endpoints.addMetricsSource([&ca] { return ca->metrics(); });
  endpoints.install(http);
  if (auto status = http.start(options.http_address); !status.ok()) {
    xds.stop();
    return fail("--http-address: " + status.error().message());
  }
  auto on_change = [&provider, &xds, &ca](const ConfigUpdate& update) {
    if (ca) ca->syncTokens(*update.config);
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
  SHEAVE_LOG_INFO("sheave-control ready: ADS{} on port {}, HTTP on port {}",
                  ca ? " and CA over TLS" : "", xds.port(), http.port());

  int sig = 0;
  if (ca) {
    // The root is checked hourly; a rotation pushes the new trust bundle (old and new roots) to
    // every proxy.
    timespec hourly{3600, 0};
    for (;;) {
      sig = sigtimedwait(&mask, nullptr, &hourly);
      if (sig > 0) break;
      if (ca->maybeRotate()) {
        provider.setTrustBundle(ca->trustBundle());
        sheave::control::xds::PushRequest push;
        push.reason = "ca-root-rotation";
        xds.push(push);
      }
    }
  } else {
    sigwait(&mask, &sig);
  }
  SHEAVE_LOG_INFO("sheave-control: signal {}, shutting down", sig);
  endpoints.setReady(false);
  (*watcher)->stop();
  http.stop();
  xds.stop();
  return 0;
}
