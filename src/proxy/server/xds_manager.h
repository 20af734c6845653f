#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/random.h"
#include "common/result.h"
#include "common/xds_type_urls.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "proxy/config/ads_client.h"
#include "proxy/network/tls/secret_manager.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/listener_manager.h"
#include "proxy/server/rds_manager.h"
#include "proxy/stats/scope.h"
#include "proxy/upstream/cluster_manager.h"

namespace sheave::server {

using xds::kClusterType;
using xds::kEndpointType;
using xds::kListenerType;
using xds::kRouteType;
using xds::kSecretType;

// Envoy's `cluster_manager.cds.*` / `listener_manager.lds.*` /
// `cluster_manager.eds.*`-style update counters for one xDS type.
struct XdsUpdateStats {
  XdsUpdateStats(stats::Scope& scope);
  stats::Counter& update_attempt;
  stats::Counter& update_success;
  stats::Counter& update_rejected;
  stats::Gauge& version;  // low 64 bits of a hash of version_info, as Envoy
};

// Drives the proxy from a management server: the ADS stream of
// dynamic_resources.ads_config, and what each type's update does to the
// cluster and listener managers. Initial fetch in Envoy's order: clusters
// (and their endpoints) warm first, then listeners; `on_initialized` runs
// once both first updates are applied, or when the initial fetch timeout
// passes without them (then the proxy serves what it has and keeps trying).
class XdsManager {
 public:
  struct Context {
    network::EventLoop& main_loop;
    stats::Scope& stats_root;
    upstream::ClusterManager& clusters;
    ListenerManager& listeners;
    ListenerConfig::Context& listener_context;
    RandomGenerator& random;
    RdsManager& rds;
    // Secrets that TLS contexts reference over SDS are fetched on the ADS stream into this.
    network::tls::SecretManager& secrets;
  };
  // Checks dynamic_resources: ADS over gRPC to a static cluster, lds/cds over ADS.
  static Status validate(const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
                         const upstream::ClusterManager& clusters);

  XdsManager(Context context, const envoy::config::bootstrap::v3::Bootstrap& bootstrap);
  ~XdsManager();

  void start(std::function<void()> on_initialized);
  const config::AdsClient& ads() const { return *ads_; }

 private:
  class TypeWatcher;
  Status onClusters(const std::vector<const google::protobuf::Any*>& resources,
                    const std::string& version_info);
  Status onEndpoints(const std::vector<const google::protobuf::Any*>& resources);
  Status onListeners(const std::vector<const google::protobuf::Any*>& resources,
                     const std::string& version_info);
  Status onRoutes(const std::vector<const google::protobuf::Any*>& resources,
                  const std::string& version_info);
  Status onSecrets(const std::vector<const google::protobuf::Any*>& resources);
  // Subscribes a named type on first need, then keeps its names current.
  void watchNames(std::string_view type_url, std::vector<std::string> names);
  // Listeners whose routes have all arrived leave warming for the manager.
  void activateWarmListeners();
  void initDone();

  // A listener waiting for its RDS route configurations (Envoy's warming).
  struct WarmingListener {
    std::shared_ptr<const ListenerConfig> config;
    std::vector<std::string> route_names;
    std::string version_info;
  };
  std::map<std::string, WarmingListener> warming_listeners_;
  bool lds_received_ = false;

  Context context_;
  bool cds_ = false;
  bool lds_ = false;
  std::string xds_cluster_;
  std::unique_ptr<config::AdsClient> ads_;
  std::vector<std::unique_ptr<TypeWatcher>> watchers_;
  std::shared_ptr<stats::Scope> cds_scope_, lds_scope_, eds_scope_, rds_scope_, sds_scope_;
  std::unique_ptr<XdsUpdateStats> cds_stats_, lds_stats_, eds_stats_, rds_stats_, sds_stats_;
  std::unique_ptr<network::Timer> init_timer_;
  std::function<void()> on_initialized_;
  bool cds_done_ = false;
  bool lds_requested_ = false;
};

}  // namespace sheave::server
