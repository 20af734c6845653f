#pragma once

#include <functional>
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

namespace envoy::config::cluster::v3 {
class Cluster;
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
  bool healthy = true;  // EDS health_status
};

// A configured cluster, owned by the main thread: its immutable info and its
// current host list, which DNS refreshes replace as a whole.
class Cluster {
 public:
  // `secrets` resolves the TLS secrets a transport_socket names; may be null.
  static Result<std::unique_ptr<Cluster>> create(const envoy::config::cluster::v3::Cluster& proto,
                                                 stats::Scope& root, network::EventLoop& main_loop,
                                                 network::DnsResolver& resolver,
                                                 network::tls::SecretManager* secrets = nullptr);
  ~Cluster();

  const std::shared_ptr<const ClusterInfo>& info() const { return info_; }
  std::shared_ptr<const HostVector> hosts() const { return hosts_; }

  // Resolves names (DNS clusters) and calls on_ready once the first host
  // list exists, or resolution failed; STATIC clusters are ready at once.
  void initialize(std::function<void()> on_ready);
  // Called on the main thread with each new host list.
  void setHostsChangedCallback(std::function<void()> cb) { on_hosts_changed_ = std::move(cb); }

 private:
  Cluster(std::shared_ptr<const ClusterInfo> info, std::vector<EndpointConfig> endpoints, bool dns,
          bool logical, network::EventLoop& loop, network::DnsResolver& resolver);
  void resolve();
  void onResolved(size_t endpoint, Result<std::vector<Address>> result);
  void publish(HostVector hosts);

  std::shared_ptr<const ClusterInfo> info_;
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
};

// A cluster as one worker sees it: the host list snapshot, this worker's
// load balancer and this worker's connection pools.
class ThreadLocalCluster {
 public:
  ThreadLocalCluster(network::EventLoop& loop, std::shared_ptr<const ClusterInfo> info,
                     std::shared_ptr<const HostVector> hosts, RandomGenerator& random);

  const std::shared_ptr<const ClusterInfo>& info() const { return info_; }
  HostSharedPtr chooseHost(const LbContext* context) { return lb_->chooseHost(context); }
  Http1ConnPool& httpPool(const HostSharedPtr& host);
  void updateHosts(std::shared_ptr<const HostVector> hosts);

 private:
  network::EventLoop& loop_;
  std::shared_ptr<const ClusterInfo> info_;
  std::shared_ptr<const HostVector> hosts_;
  RandomGenerator& random_;
  std::unique_ptr<LoadBalancer> lb_;
  std::unordered_map<const Host*, std::unique_ptr<Http1ConnPool>> pools_;
};

// Each worker's view of all clusters. Only touched on its worker's thread;
// updates arrive through the worker loop's post().
class ThreadLocalClusterManager {
 public:
  ThreadLocalClusterManager(network::EventLoop& loop, RandomGenerator& random)
      : loop_(loop), random_(random) {}

  ThreadLocalCluster* get(std::string_view name);
  // The manager of the worker running on this thread (set by the worker).
  static ThreadLocalClusterManager* current();
  static void setCurrent(ThreadLocalClusterManager* manager);
  void addOrUpdate(std::shared_ptr<const ClusterInfo> info,
                   std::shared_ptr<const HostVector> hosts);
  network::EventLoop& loop() { return loop_; }

 private:
  network::EventLoop& loop_;
  RandomGenerator& random_;
  std::map<std::string, std::unique_ptr<ThreadLocalCluster>, std::less<>> clusters_;
};

// All clusters, owned by the main thread; pushes host list changes to the
// workers' thread-local views.
class ClusterManager {
 public:
  // `secrets` (may be null) must outlive the manager: cluster TLS contexts watch it.
  ClusterManager(network::EventLoop& main_loop, stats::Scope& root,
                 network::tls::SecretManager* secrets = nullptr);
  ~ClusterManager();

  Status addCluster(const envoy::config::cluster::v3::Cluster& proto);
  bool has(std::string_view name) const { return clusters_.find(name) != clusters_.end(); }
  const Cluster* get(std::string_view name) const;
  const std::map<std::string, std::unique_ptr<Cluster>, std::less<>>& clusters() const {
    return clusters_;
  }

  // Resolves every cluster; on_ready runs on the main thread when all are.
  void initialize(std::function<void()> on_ready);
  // A worker's view; it receives every cluster now and every change later.
  void registerWorker(ThreadLocalClusterManager& worker);

 private:
  void onHostsChanged(const Cluster& cluster);

  network::EventLoop& main_loop_;
  stats::Scope& root_;
  network::tls::SecretManager* secrets_;
  network::DnsResolver resolver_;
  std::map<std::string, std::unique_ptr<Cluster>, std::less<>> clusters_;
  std::vector<ThreadLocalClusterManager*> workers_;
  size_t initializing_ = 0;
};

}  // namespace sheave::upstream
