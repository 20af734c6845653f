#include "control/server/mesh_provider.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <re2/re2.h>

#include <algorithm>
#include <set>

#include "common/logging.h"
#include "control/compiler/cluster_generator.h"
#include "control/compiler/endpoint_generator.h"
#include "control/compiler/gateway_generator.h"
#include "control/compiler/listener_generator.h"
#include "control/compiler/proxy_resources.h"
#include "control/compiler/route_generator.h"
#include "control/compiler/secret_generator.h"
#include "control/registry/protocol.h"
#include "control/xds/type_urls.h"

namespace sheave::control {
namespace {

template <typename T>
void addNamed(std::vector<xds::NamedResource>& out, const std::vector<T>& resources,
              const std::set<std::string, std::less<>>& wanted) {
  for (const T& r : resources) {
    if (!wanted.empty() && wanted.count(r.name()) == 0) continue;
    out.push_back({r.name(), packDeterministic(r)});
  }
}

// Whether what the registry says about the proxy's workload differs, which
// changes its inbound listeners, clusters and label-based routes.
bool sameWorkload(const ProxyContext& a, const ProxyContext& b) {
  if (a.workload_name != b.workload_name || a.labels != b.labels ||
      a.service_account != b.service_account ||
      a.service_instances.size() != b.service_instances.size()) {
    return false;
  }
  for (size_t i = 0; i < a.service_instances.size(); ++i) {
    const auto& x = a.service_instances[i];
    const auto& y = b.service_instances[i];
    if (x.service_port != y.service_port || x.target_port != y.target_port ||
        x.protocol != y.protocol || x.port_name != y.port_name ||
        (x.service == nullptr) != (y.service == nullptr) ||
        (x.service != nullptr && x.service->hostname != y.service->hostname)) {
      return false;
    }
  }
  return true;
}

}  // namespace

google::protobuf::Any packDeterministic(const google::protobuf::Message& msg) {
  google::protobuf::Any any;
  any.set_type_url("type.googleapis.com/" + msg.GetDescriptor()->full_name());
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    msg.SerializeToCodedStream(&coded);
  }
  any.set_value(std::move(bytes));
  return any;
}

// The provider's per-stream state: the proxy as it introduced itself, and
// as attached to the registry of the PushContext it was last compiled for.
class MeshProvider::Handle final : public xds::ProxyHandle {
 public:
  ProxyContext base;
  ProxyContext proxy;
  std::shared_ptr<const PushContext> push;  // keeps proxy's Service pointers alive
  const PushContext* workload_changed_at = nullptr;
  // The SPIFFE ID the stream authenticated as; empty when authentication is off.
  std::string authenticated_identity;
};

MeshProvider::MeshProvider(MeshConfig mesh) : mesh_(std::move(mesh)) {
  config_ = std::make_shared<const ConfigSet>();
  registry_ = std::make_shared<const RegistrySnapshot>();
  dirty_ = true;
}

void MeshProvider::update(std::shared_ptr<const ConfigSet> config,
                          std::shared_ptr<const RegistrySnapshot> registry) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = std::move(config);
  registry_ = std::move(registry);
  latest_.reset();
  dirty_ = true;
  errors_.clear();
  error_index_.clear();
}

std::shared_ptr<const PushContext> MeshProvider::latestLocked() {
  if (!latest_) latest_ = PushContext::build(config_, registry_, mesh_);
  return latest_;
}

std::shared_ptr<const PushContext> MeshProvider::latestPushContext() {
  std::lock_guard<std::mutex> lock(mu_);
  return latestLocked();
}

std::shared_ptr<const PushContext> MeshProvider::current() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!current_) {
    current_ = latestLocked();
    dirty_ = false;
  }
  return current_;
}

void MeshProvider::beginPush(const xds::PushRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dirty_ || !current_) {
    current_ = latestLocked();
    dirty_ = false;
    SHEAVE_LOG_DEBUG("control: new push context ({})", request.reason);
  }
}

bool MeshProvider::refresh(Handle& handle, const std::shared_ptr<const PushContext>& push) {
  if (handle.push == push) return handle.workload_changed_at == push.get();
  ProxyContext next = handle.base;
  next.attachWorkload(push->registry(), mesh_.trust_domain);
  bool changed = handle.push != nullptr && !sameWorkload(handle.proxy, next);
  handle.proxy = std::move(next);
  handle.push = push;
  handle.workload_changed_at = changed ? push.get() : nullptr;
  return changed;
}

Result<std::shared_ptr<xds::ProxyHandle>> MeshProvider::connect(
    const envoy::config::core::v3::Node& node, const xds::PeerCredentials& peer) {
  SHEAVE_ASSIGN_OR_RETURN(ProxyContext proxy, ProxyContext::fromNode(node, mesh_.trust_domain));
  auto handle = std::make_shared<Handle>();
  handle->base = std::move(proxy);
  refresh(*handle, current());
  if (authenticator_) {
    SHEAVE_ASSIGN_OR_RETURN(handle->authenticated_identity, authenticator_(peer));
    SHEAVE_RETURN_IF_ERROR(checkIdentity(*handle));
  }
  SHEAVE_LOG_INFO("control: proxy {} connected from {} (workload: {}{})", node.id(), peer.address,
                  handle->proxy.workload_name.empty() ? "none" : handle->proxy.workload_name,
                  handle->authenticated_identity.empty()
                      ? ""
                      : ", authenticated as " + handle->authenticated_identity);
  return std::shared_ptr<xds::ProxyHandle>(std::move(handle));
}

Status MeshProvider::checkIdentity(const Handle& handle) const {
  if (handle.authenticated_identity.empty()) return okStatus();
  // The node id only says which workload the proxy means; it gets config only when that
  // workload's identity is the one its credential proves.
  if (handle.proxy.workload_name.empty()) {
    return permissionDenied("node '" + handle.base.id +
                            "' names no registered workload; authenticated as " +
                            handle.authenticated_identity);
  }
  if (handle.proxy.identity != handle.authenticated_identity) {
    return permissionDenied("node '" + handle.base.id + "' claims workload " +
                            handle.proxy.workload_name + " (" + handle.proxy.identity +
                            ") but authenticated as " + handle.authenticated_identity);
  }
  return okStatus();
}

void MeshProvider::setAuthenticator(
    std::function<Result<std::string>(const xds::PeerCredentials&)> authenticator) {
  authenticator_ = std::move(authenticator);
}

bool MeshProvider::affects(xds::ProxyHandle& proxy, std::string_view type_url,
                           const xds::PushRequest& request) {
  auto& handle = static_cast<Handle&>(proxy);
  auto push = current();
  bool workload_changed = refresh(handle, push);
  if (request.full || workload_changed) return true;
  if (type_url != xds::kEndpointType) return false;
  if (request.services.empty()) return true;
  auto scope = push->scopeFor(handle.proxy);
  for (const Service* service : scope->services()) {
    if (request.services.count(service->hostname) != 0) return true;
  }
  return false;
}

Result<std::vector<xds::NamedResource>> MeshProvider::generate(
    xds::ProxyHandle& proxy, std::string_view type_url, const std::vector<std::string>& names,
    const xds::PushRequest&) {
  auto& handle = static_cast<Handle&>(proxy);
  auto push = current();
  refresh(handle, push);
  // A registry change may have moved the workload to another identity: then nothing more.
  SHEAVE_RETURN_IF_ERROR(checkIdentity(handle));
  return generateFor(handle.proxy, *push, type_url, names);
}

std::vector<xds::NamedResource> MeshProvider::generateFor(const ProxyContext& proxy,
                                                          const PushContext& push,
                                                          std::string_view type_url,
                                                          const std::vector<std::string>& names) {
  std::vector<xds::NamedResource> out;
  std::set<std::string, std::less<>> wanted(names.begin(), names.end());
  std::vector<ResourceError> errors;
  if (type_url == xds::kClusterType) {
    addNamed(out, generateClusters(proxy, push), wanted);
  } else if (type_url == xds::kEndpointType) {
    for (auto& assignment : generateEndpoints(proxy, push, names)) {
      out.push_back({assignment.cluster_name(), packDeterministic(assignment)});
    }
  } else if (type_url == xds::kListenerType) {
    addNamed(out, generateListeners(proxy, push, &errors), wanted);
  } else if (type_url == xds::kRouteType) {
    for (const auto& config : generateRoutes(proxy, push, names, &errors)) {
      out.push_back({config.name(), packDeterministic(config)});
    }
  } else if (type_url == xds::kSecretType) {
    std::string bundle;
    {
      std::lock_guard<std::mutex> lock(mu_);
      bundle = trust_bundle_;
    }
    for (const auto& secret : generateSecrets(names, bundle)) {
      out.push_back({secret.name(), packDeterministic(secret)});
    }
  }
  // Unknown types get nothing.
  if (!errors.empty()) noteErrors(push, errors);
  return out;
}

void MeshProvider::setTrustBundle(std::string pem) {
  std::lock_guard<std::mutex> lock(mu_);
  trust_bundle_ = std::move(pem);
}

void MeshProvider::noteErrors(const PushContext& push, std::vector<ResourceError>& errors) {
  std::lock_guard<std::mutex> lock(mu_);
  if (latest_.get() != &push) return;  // compiled from an older configuration
  for (ResourceError& e : errors) {
    std::string key = e.source.toString() + "\n" + e.toString();
    if (error_index_.count(key) != 0 || errors_.size() >= kMaxCompilerErrors) continue;
    error_index_.emplace(std::move(key), errors_.size());
    errors_.push_back(std::move(e));
  }
}

std::vector<ResourceError> MeshProvider::compilerErrors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

Result<ProxyResources> MeshProvider::resourcesFor(const std::string& proxy_id) {
  envoy::config::core::v3::Node node;
  node.set_id(proxy_id);
  SHEAVE_ASSIGN_OR_RETURN(ProxyContext proxy, ProxyContext::fromNode(node, mesh_.trust_domain));
  auto push = latestPushContext();
  proxy.attachWorkload(push->registry(), mesh_.trust_domain);
  ProxyResources out;
  out.attached = !proxy.workload_name.empty();
  auto unpack = [&](std::string_view type, auto& into) {
    for (const xds::NamedResource& r : generateFor(proxy, *push, type, {})) {
      into.emplace_back();
      r.resource.UnpackTo(&into.back());
    }
  };
  unpack(xds::kClusterType, out.clusters);
  unpack(xds::kEndpointType, out.endpoints);
  unpack(xds::kListenerType, out.listeners);
  unpack(xds::kRouteType, out.routes);
  return out;
}

}  // namespace sheave::control
