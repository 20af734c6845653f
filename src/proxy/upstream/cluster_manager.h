#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/random.h"
#include "common/result.h"
#include "proxy/network/dns_resolver.h"
#include "proxy/network/event_loop.h"
#include "proxy/upstream/cluster_info.h"
#include "proxy/upstream/conn_pool.h"
#include "proxy/upstream/host.h"
#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/outlier_detector.h"

namespace envoy::config::cluster::v3 {
class Cluster;
}
namespace envoy::config::endpoint::v3 {
class ClusterLoadAssignment;
}

namespace sheave::network::tls {
class SecretManager;
}

namespace sheave::upstream {

// An endpoint as configured, before DNS: an IP or a name to resolve.
struct EndpointConfig {
  std::string address;  // IP literal or DNS name
  uint16_t port = 0;
  uint32_t weight = 1;
  bool healthy = true;   // EDS health_status
  uint8_t priority = 0;  // LocalityLbEndpoints.priority
  // LocalityLbEndpoints.locality and load_balancing_weight (0: unset).
  std::shared_ptr<const Locality> locality;
  uint32_t locality_weight = 0;
  // The lb_endpoint's `envoy.transport_socket_match` metadata, for transport_socket_matches.
  std::map<std::string, std::string> socket_match_metadata;
};

// A configured cluster, owned by the main thread: its immutable info and its
// current host list, which DNS refreshes replace as a whole.
class Cluster : public network::DeferredDeletable {
 public:
  // `secrets` resolves the TLS secrets a transport_socket names; may be null.
  static Result<std::unique_ptr<Cluster>> create(const envoy::config::cluster::v3::Cluster& proto,
                                                 stats::Scope& root, network::EventLoop& main_loop,
                                                 network::DnsResolver& resolver,
                                                 network::tls::SecretManager* secrets = nullptr);
  ~Cluster() override;

  const std::shared_ptr<const ClusterInfo>& info() const { return info_; }
  std::shared_ptr<const HostVector> hosts() const { return hosts_; }
  // EDS clusters: the name their ClusterLoadAssignment comes under
  // (eds_cluster_config.service_name, else the cluster's name); empty otherwise.
  const std::string& edsServiceName() const { return eds_service_name_; }

  // EDS: replaces the host list from a ClusterLoadAssignment (main thread).
  // Hosts whose address and weight are unchanged are kept, with their stats
  // and pooled connections. A bad assignment changes nothing.
  Status updateLoadAssignment(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla);

  // Resolves names (DNS clusters) and calls on_ready once the first host
  // list exists, or resolution failed; STATIC clusters are ready at once.
  void initialize(std::function<void()> on_ready);
  // Called on the main thread with each new host list.
  void setHostsChangedCallback(std::function<void()> cb) { on_hosts_changed_ = std::move(cb); }

 private:
  Cluster(std::shared_ptr<const ClusterInfo> info, std::vector<EndpointConfig> endpoints, bool dns,
          bool logical, network::EventLoop& loop, network::DnsResolver& resolver);
  void resolve();
  void startOutlierDetection();
  void startHealthChecking();
  void onResolved(size_t endpoint, Result<std::vector<Address>> result);
  void publish(HostVector hosts);

  std::shared_ptr<const ClusterInfo> info_;
  std::string eds_service_name_;
  bool eds_ready_ = false;  // an EDS cluster waits for its first assignment
  std::vector<EndpointConfig> endpoints_;
  const bool dns_;
  const bool logical_;  // LOGICAL_DNS: only the first address of the name
  network::EventLoop& loop_;
  network::DnsResolver& resolver_;
  std::shared_ptr<const HostVector> hosts_ = std::make_shared<HostVector>();
  std::vector<std::vector<Address>> resolved_;
  std::vector<std::unique_ptr<network::ActiveDnsQuery>> queries_;
  size_t outstanding_ = 0;
  std::unique_ptr<network::Timer> refresh_timer_;
  std::function<void()> on_ready_;
  std::function<void()> on_hosts_changed_;
  std::unique_ptr<OutlierDetector> outlier_detector_;  // with Cluster.outlier_detection
  std::unique_ptr<HealthChecker> health_checker_;      // with Cluster.health_checks
};

// A cluster as one worker sees it: the host list snapshot, this worker's
// load balancer and this worker's connection pools.
class ThreadLocalCluster {
 public:
  ThreadLocalCluster(network::EventLoop& loop, std::shared_ptr<const ClusterInfo> info,
                     std::shared_ptr<const HostVector> hosts, RandomGenerator& random);

  const std::shared_ptr<const ClusterInfo>& info() const { return info_; }
  HostSharedPtr chooseHost(const LbContext* context) { return lb_->chooseHost(context); }
  // The pool for requests to `host`: HTTP/1.1 or HTTP/2 as the cluster's
  // protocol options say; with use_downstream_protocol_config, the protocol
  // of the client's request (`downstream_http2`).
  // `upgrade`: the request switches protocols (WebSocket, CONNECT), which this proxy carries
  // over HTTP/1.1 only, so it gets the HTTP/1.1 pool whatever the cluster's protocol.
  HttpConnPool& httpPool(const HostSharedPtr& host, bool downstream_http2 = false,
                         bool upgrade = false);
  void updateHosts(std::shared_ptr<const HostVector> hosts);
  // Requests that outlive the stream that started them (request mirroring)
  // are owned by their cluster, so they end with it, before its pools.
  using DetachedRequests = std::list<std::unique_ptr<network::DeferredDeletable>>;
  DetachedRequests::iterator adoptDetached(std::unique_ptr<network::DeferredDeletable> request);
  // Destroys the request once the current event has been handled.
  void finishDetached(DetachedRequests::iterator request);
  size_t detachedCount() const { return detached_.size(); }
  network::EventLoop& eventLoop() { return loop_; }
  // The cluster was replaced or removed: close idle connections, let busy ones finish.
  void drain();
  bool idle() const;

 private:
  // ORIGINAL_DST: drops the hosts unused for a cleanup_interval, and their idle pools.
  void cleanupOriginalDstHosts();

  network::EventLoop& loop_;
  std::shared_ptr<const ClusterInfo> info_;
  std::shared_ptr<const HostVector> hosts_;
  RandomGenerator& random_;
  std::unique_ptr<LoadBalancer> lb_;
  // One pool per host and protocol (both only with use_downstream_protocol_config).
  struct HostPools {
    std::unique_ptr<HttpConnPool> http1;
    std::unique_ptr<HttpConnPool> http2;
    void drain() {
      if (http1) http1->drainConnections();
      if (http2) http2->drainConnections();
    }
    bool idle() const { return (!http1 || http1->idle()) && (!http2 || http2->idle()); }
  };
  std::unordered_map<const Host*, HostPools> pools_;
  std::unique_ptr<network::Timer> cleanup_timer_;  // ORIGINAL_DST only
  DetachedRequests detached_;                      // after pools_: destroyed before them
};

// Each worker's view of all clusters. Only touched on its worker's thread;
// updates arrive through the worker loop's post().
class ThreadLocalClusterManager {
 public:
  ThreadLocalClusterManager(network::EventLoop& loop, RandomGenerator& random)
      : loop_(loop), random_(random) {}

  // Shared so that a request keeps its cluster (and the pools its connections
  // live in) while a CDS update replaces or removes it.
  const std::shared_ptr<ThreadLocalCluster>& get(std::string_view name);
  // The manager of the worker running on this thread (set by the worker).
  static ThreadLocalClusterManager* current();
  static void setCurrent(ThreadLocalClusterManager* manager);
  void addOrUpdate(std::shared_ptr<const ClusterInfo> info,
                   std::shared_ptr<const HostVector> hosts);
  void remove(std::string_view name);
  network::EventLoop& loop() { return loop_; }
  // Replaced or removed clusters still in use by a request or a connection.
  size_t drainingCount() const { return draining_.size(); }

 private:
  void retire(std::shared_ptr<ThreadLocalCluster> cluster);
  void sweepDraining();

  network::EventLoop& loop_;
  RandomGenerator& random_;
  std::map<std::string, std::shared_ptr<ThreadLocalCluster>, std::less<>> clusters_;
  std::vector<std::shared_ptr<ThreadLocalCluster>> draining_;
  std::unique_ptr<network::Timer> sweep_timer_;
};

// All clusters, owned by the main thread; pushes host list changes to the
// workers' thread-local views.
class ClusterManager {
 public:
  // `secrets` (may be null) must outlive the manager: cluster TLS contexts watch it.
  ClusterManager(network::EventLoop& main_loop, stats::Scope& root,
                 network::tls::SecretManager* secrets = nullptr);
  ~ClusterManager();

  // A static cluster (bootstrap static_resources), before initialize().
  Status addCluster(const envoy::config::cluster::v3::Cluster& proto);
  bool has(std::string_view name) const { return clusters_.find(name) != clusters_.end(); }
  const Cluster* get(std::string_view name) const;
  const std::map<std::string, std::unique_ptr<Cluster>, std::less<>>& clusters() const {
    return clusters_;
  }

  // CDS. Adds a cluster or replaces one with a different config; returns
  // false when the config is unchanged. The new cluster warms (DNS
  // resolution, or its first EDS assignment unless one is already known)
  // while the old one keeps serving; then it replaces it on every worker.
  // Static clusters cannot be replaced.
  Result<bool> addOrUpdateCluster(const envoy::config::cluster::v3::Cluster& proto,
                                  const std::string& version_info);
  // CDS: removes a dynamic cluster (active or warming); false if there was none.
  bool removeCluster(std::string_view name);
  // The dynamic clusters' names (what a SotW CDS update replaces).
  std::vector<std::string> dynamicClusterNames() const;
  // EDS: applies an assignment to the clusters whose service name it names,
  // and remembers it for clusters that arrive later.
  Status updateEndpoints(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla);
  // The EDS service names of every active and warming cluster, sorted.
  std::vector<std::string> edsServiceNames() const;
  size_t warmingCount() const { return warming_.size(); }
  // Runs (once per call) when no cluster is warming any more.
  void whenWarm(std::function<void()> cb);

  struct DynamicInfo {
    std::string version_info;
    std::chrono::system_clock::time_point last_updated;
    std::shared_ptr<const envoy::config::cluster::v3::Cluster> proto;
  };
  // Dynamic clusters' config as applied (for /config_dump), active and warming.
  const std::map<std::string, DynamicInfo, std::less<>>& dynamicActive() const {
    return dynamic_active_;
  }
  const std::map<std::string, DynamicInfo, std::less<>>& dynamicWarming() const {
    return dynamic_warming_;
  }

  // Resolves every cluster; on_ready runs on the main thread when all are.
  void initialize(std::function<void()> on_ready);
  // A worker's view; it receives every cluster now and every change later.
  void registerWorker(ThreadLocalClusterManager& worker);

 private:
  void onHostsChanged(const Cluster& cluster);
  void activate(std::string name);
  void checkWarm();

  network::EventLoop& main_loop_;
  stats::Scope& root_;
  network::tls::SecretManager* secrets_;
  network::DnsResolver resolver_;
  std::map<std::string, std::unique_ptr<Cluster>, std::less<>> clusters_;
  std::vector<ThreadLocalClusterManager*> workers_;
  size_t initializing_ = 0;
  bool initialized_ = false;  // initialize() ran: dynamic clusters activate as they warm
  // Dynamic clusters waiting for DNS or their first EDS assignment.
  std::map<std::string, std::unique_ptr<Cluster>, std::less<>> warming_;
  std::map<std::string, DynamicInfo, std::less<>> dynamic_active_;
  std::map<std::string, DynamicInfo, std::less<>> dynamic_warming_;
  // The last assignment per EDS service name: a replaced cluster, or one
  // that arrives after its endpoints, starts from it.
  std::map<std::string, std::shared_ptr<const envoy::config::endpoint::v3::ClusterLoadAssignment>,
           std::less<>>
      assignments_;
  std::vector<std::function<void()>> when_warm_;
};

}  // namespace sheave::upstream
