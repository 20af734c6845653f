#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/random.h"
#include "common/result.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "proxy/accesslog/access_log.h"
#include "proxy/http/filter_registry.h"
#include "proxy/network/event_loop.h"
#include "proxy/network/tls/secret_manager.h"
#include "proxy/server/admin.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/listener_manager.h"
#include "proxy/server/options.h"
#include "proxy/server/worker.h"
#include "proxy/server/workload_certificate_provider.h"
#include "proxy/server/xds_manager.h"
#include "proxy/stats/store.h"
#include "proxy/upstream/cluster_manager.h"

namespace sheave::server {

// The proxy process: loads and validates the bootstrap on the main thread,
// binds everything before it accepts anything, starts the workers once the
// clusters are resolved, serves the admin interface, and drains on SIGTERM.
class Server {
 public:
  explicit Server(Options options);
  ~Server();

  // Runs until shutdown; returns the process exit code.
  int run();

  enum class State { kPreInitializing, kLive, kDraining };

 private:
  Status load();
  Status bindListeners();
  Status setupAdmin();
  void installSignalHandler();
  void onClustersReady();
  // --workload-token-file: the certificate provider, on the ADS cluster's TLS settings.
  Status createIdentityProvider();
  void startWorkers();
  void startDrain();
  void flushStats();
  void checkDrained();
  void shutdown();
  std::string stateName() const;

  // Admin handlers.
  AdminResponse handleClusters(const AdminRequest& request) const;
  AdminResponse handleListeners(const AdminRequest& request) const;
  AdminResponse handleConfigDump(const AdminRequest& request) const;
  AdminResponse handleServerInfo(const AdminRequest& request) const;
  AdminResponse handleStats(const AdminRequest& request, bool prometheus);
  AdminResponse handleLogging(const AdminRequest& request);

  Options options_;
  // Parsed at load; after start-up only its serialized form is kept.
  envoy::config::bootstrap::v3::Bootstrap bootstrap_;
  std::string bootstrap_bytes_;
  envoy::config::core::v3::Node node_;
  network::EventLoop main_loop_;
  std::unique_ptr<stats::Store> store_;
  struct ServerStats {
    stats::Gauge& live;
    stats::Gauge& state;
    stats::Gauge& concurrency;
    stats::Gauge& uptime;
    stats::Gauge& memory_allocated;
    stats::Gauge& memory_heap_size;
    stats::Gauge& total_connections;
  };
  std::shared_ptr<stats::Scope> server_scope_;
  std::unique_ptr<ServerStats> server_stats_;
  std::unique_ptr<network::Timer> flush_timer_;
  std::unique_ptr<accesslog::AccessLogManager> access_logs_;
  // static_resources.secrets; before the clusters and listeners whose TLS contexts watch it.
  std::unique_ptr<network::tls::SecretManager> secrets_;
  http::FilterRegistry http_filters_;
  std::unique_ptr<upstream::ClusterManager> clusters_;
  // Built at load, bound (and then owned) by the listener manager at start.
  std::vector<std::shared_ptr<const ListenerConfig>> static_listeners_;
  std::unique_ptr<ListenerManager> listener_manager_;
  // What listeners are built with; dynamic (LDS) listeners too, so it lives on.
  std::unique_ptr<ListenerConfig::Context> listener_context_;
  RandomGenerator random_;
  // RDS route configurations (with dynamic_resources), before the listeners that name them.
  std::unique_ptr<RdsManager> rds_;
  // dynamic_resources: the ADS connection and what its updates do.
  std::unique_ptr<XdsManager> xds_;
  // With --workload-token-file: the workload certificate, before ADS starts.
  std::unique_ptr<WorkloadCertificateProvider> identity_;
  std::string identity_cluster_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<network::FileEvent> signal_event_;
  std::unique_ptr<network::Timer> drain_timer_;
  int signal_fd_ = -1;
  State state_ = State::kPreInitializing;
  std::chrono::steady_clock::time_point start_time_;
  std::chrono::system_clock::time_point load_time_;
  std::chrono::steady_clock::time_point drain_deadline_;
  bool workers_started_ = false;
  int exit_code_ = 0;
};

}  // namespace sheave::server
