#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/compiler/mesh_config.h"
#include "control/compiler/proxy_context.h"
#include "control/compiler/push_context.h"
#include "control/model/config_set.h"
#include "control/registry/registry_snapshot.h"
#include "control/xds/resource_provider.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"

namespace sheave::control {

// Everything one proxy would get, for /debug/config_dump.
struct ProxyResources {
  std::vector<envoy::config::cluster::v3::Cluster> clusters;
  std::vector<envoy::config::endpoint::v3::ClusterLoadAssignment> endpoints;
  std::vector<envoy::config::listener::v3::Listener> listeners;
  std::vector<envoy::config::route::v3::RouteConfiguration> routes;
  bool attached = false;  // the id matched a registered workload
};

// Packs msg into an Any with deterministic serialization, so that equal
// resources hash equal in the ADS server.
google::protobuf::Any packDeterministic(const google::protobuf::Message& msg);

// The compiler behind the ADS server (Istio's generators keyed by type URL):
// it holds the current configuration, registry snapshot and PushContext and
// turns them into each proxy's resources. Thread-safety: update() may be
// called from any thread; the ResourceProvider methods run on the xDS push
// thread; resourcesFor() and compilerErrors() may run on any thread.
class MeshProvider final : public xds::ResourceProvider {
 public:
  explicit MeshProvider(MeshConfig mesh);

  // Installs a new configuration; the next beginPush() compiles from it.
  void update(std::shared_ptr<const ConfigSet> config,
              std::shared_ptr<const RegistrySnapshot> registry);

  Result<std::shared_ptr<xds::ProxyHandle>> connect(const envoy::config::core::v3::Node& node,
                                                    const xds::PeerCredentials& peer) override;

  // When set (before the xDS server starts), every stream must authenticate: it returns the
  // caller's SPIFFE ID, and the workload the node names must have that identity.
  void setAuthenticator(
      std::function<Result<std::string>(const xds::PeerCredentials&)> authenticator);
  Result<std::vector<xds::NamedResource>> generate(xds::ProxyHandle& proxy,
                                                   std::string_view type_url,
                                                   const std::vector<std::string>& names,
                                                   const xds::PushRequest& request) override;
  bool affects(xds::ProxyHandle& proxy, std::string_view type_url,
               const xds::PushRequest& request) override;
  void beginPush(const xds::PushRequest& request) override;

  // What the proxy with this node id would get from the latest update (even
  // one no push has picked up yet). An id that does not parse is an error.
  Result<ProxyResources> resourcesFor(const std::string& proxy_id);

  // The PushContext of the latest update.
  std::shared_ptr<const PushContext> latestPushContext();

  // Problems the generators reported for the current PushContext (a
  // VirtualService naming an unknown subset, a listener conflict), each
  // once, in first-seen order, at most kMaxCompilerErrors.
  std::vector<ResourceError> compilerErrors() const;
  static constexpr size_t kMaxCompilerErrors = 1000;

  const MeshConfig& mesh() const { return mesh_; }

  // The CA's trust bundle (PEM), served as SDS secret ROOTCA; empty: no CA, no secrets. Any
  // thread; the caller pushes afterwards so proxies get the new bundle.
  void setTrustBundle(std::string pem);

 private:
  class Handle;
  Status checkIdentity(const Handle& handle) const;
  std::shared_ptr<const PushContext> current();
  std::shared_ptr<const PushContext> latestLocked();
  // Re-attaches the proxy to push's registry when it was attached to an
  // older one; true when its workload (labels, ports, identity) changed.
  bool refresh(Handle& handle, const std::shared_ptr<const PushContext>& push);
  std::vector<xds::NamedResource> generateFor(const ProxyContext& proxy, const PushContext& push,
                                              std::string_view type_url,
                                              const std::vector<std::string>& names);
  void noteErrors(const PushContext& push, std::vector<ResourceError>& errors);

  const MeshConfig mesh_;
  mutable std::mutex mu_;
  std::shared_ptr<const ConfigSet> config_;
  std::shared_ptr<const RegistrySnapshot> registry_;
  // Built from config_/registry_ on first use after an update.
  std::shared_ptr<const PushContext> latest_;
  std::string trust_bundle_;  // guarded by mu_
  std::function<Result<std::string>(const xds::PeerCredentials&)> authenticator_;
  bool dirty_ = false;  // config_/registry_ are newer than current_
  // What pushes compile from; replaced by latest_ in beginPush().
  std::shared_ptr<const PushContext> current_;
  // Generator errors seen for latest_ (indexed by their text, to drop repeats).
  std::vector<ResourceError> errors_;
  std::map<std::string, size_t, std::less<>> error_index_;
};

}  // namespace sheave::control
