#include "proxy/server/xds_manager.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "common/logging.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace sheave::server {
namespace {

// Envoy's initial_fetch_timeout default.
constexpr std::chrono::milliseconds kInitialFetchTimeout{15000};

// The route_config_names a listener's HTTP connection managers take over RDS.
std::vector<std::string> rdsNames(const envoy::config::listener::v3::Listener& listener) {
  std::vector<std::string> out;
  auto scan = [&out](const envoy::config::listener::v3::FilterChain& chain) {
    for (const auto& filter : chain.filters()) {
      envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
      if (filter.typed_config().UnpackTo(&hcm) && hcm.has_rds()) {
        out.push_back(hcm.rds().route_config_name());
      }
    }
  };
  for (const auto& chain : listener.filter_chains()) scan(chain);
  if (listener.has_default_filter_chain()) scan(listener.default_filter_chain());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

uint64_t versionHash(const std::string& version) { return std::hash<std::string>{}(version); }

}  // namespace

XdsUpdateStats::XdsUpdateStats(stats::Scope& scope)
    : update_attempt(scope.counter("update_attempt")),
      update_success(scope.counter("update_success")),
      update_rejected(scope.counter("update_rejected")),
      version(scope.gauge("version", stats::Gauge::ImportMode::kNeverImport)) {}

class XdsManager::TypeWatcher : public config::AdsClient::Watcher {
 public:
  using Handler =
      std::function<Status(const std::vector<const google::protobuf::Any*>&, const std::string&)>;
  TypeWatcher(Handler handler, XdsUpdateStats& stats)
      : handler_(std::move(handler)), stats_(stats) {}
  Status onConfigUpdate(const std::vector<const google::protobuf::Any*>& resources,
                        const std::string& version_info) override {
    stats_.update_attempt.inc();
    auto status = handler_(resources, version_info);
    if (status.ok()) {
      stats_.update_success.inc();
      stats_.version.set(versionHash(version_info));
    } else {
      stats_.update_rejected.inc();
    }
    return status;
  }

 private:
  Handler handler_;
  XdsUpdateStats& stats_;
};

Status XdsManager::validate(const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
                            const upstream::ClusterManager& clusters) {
  using envoy::config::core::v3::ApiConfigSource;
  const auto& dr = bootstrap.dynamic_resources();
  if (!dr.has_ads_config()) {
    return invalidArgument(
        "dynamic_resources.ads_config: required (sheave-proxy takes xDS over ADS only)");
  }
  const auto& ads = dr.ads_config();
  if (ads.api_type() != ApiConfigSource::GRPC &&
      ads.api_type() != ApiConfigSource::AGGREGATED_GRPC) {
    return invalidArgument(
        "dynamic_resources.ads_config.api_type: " + ApiConfigSource::ApiType_Name(ads.api_type()) +
        " is not supported (GRPC is)");
  }
  if (ads.grpc_services_size() != 1 || !ads.grpc_services(0).has_envoy_grpc()) {
    return invalidArgument(
        "dynamic_resources.ads_config.grpc_services: exactly one envoy_grpc service is required");
  }
  const auto& name = ads.grpc_services(0).envoy_grpc().cluster_name();
  if (!clusters.has(name)) {
    return invalidArgument(
        "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: "
        "unknown static cluster '" +
        name + "'");
  }
  for (const auto& [field, source] :
       {std::pair{"lds_config", &dr.lds_config()}, std::pair{"cds_config", &dr.cds_config()}}) {
    const bool set =
        field == std::string_view("lds_config") ? dr.has_lds_config() : dr.has_cds_config();
    if (set && !source->has_ads()) {
      return invalidArgument(std::string("dynamic_resources.") + field +
                             ": only `ads: {}` is supported");
    }
  }
  return okStatus();
}

XdsManager::XdsManager(Context context, const envoy::config::bootstrap::v3::Bootstrap& bootstrap)
    : context_(context) {
  const auto& dr = bootstrap.dynamic_resources();
  cds_ = dr.has_cds_config();
  lds_ = dr.has_lds_config();
  xds_cluster_ = dr.ads_config().grpc_services(0).envoy_grpc().cluster_name();
  config::AdsClient::Options options;
  options.grpc.authority = xds_cluster_;
  // ADS over TLS when the xds cluster has a TLS transport_socket (Istio's 15012), with the
  // cluster's context: it follows its secrets, so a renewed client certificate is used by the
  // next connection.
  if (const auto* cluster = context_.clusters.get(xds_cluster_);
      cluster != nullptr && cluster->info()->transport_socket_factory != nullptr) {
    std::shared_ptr<network::tls::TlsSocketFactory> tls = cluster->info()->transport_socket_factory;
    options.grpc.transport_socket_factory = [tls] { return tls->createTransportSocket(); };
  }
  auto pick = [this]() -> std::optional<Address> {
    const auto* cluster = context_.clusters.get(xds_cluster_);
    if (cluster == nullptr) return std::nullopt;
    auto hosts = cluster->hosts();
    if (hosts->empty()) return std::nullopt;
    // The first healthy host; the list is small (one control plane address).
    for (const auto& h : *hosts) {
      if (h->healthy()) return h->address();
    }
    return hosts->front()->address();
  };
  ads_ = std::make_unique<config::AdsClient>(context_.main_loop, bootstrap.node(), pick,
                                             context_.random, options);
  cds_scope_ = context_.stats_root.createScope("cluster_manager.cds");
  eds_scope_ = context_.stats_root.createScope("cluster_manager.eds");
  lds_scope_ = context_.stats_root.createScope("listener_manager.lds");
  rds_scope_ = context_.stats_root.createScope("listener_manager.rds");
  sds_scope_ = context_.stats_root.createScope("sds");
  sds_stats_ = std::make_unique<XdsUpdateStats>(*sds_scope_);
  rds_stats_ = std::make_unique<XdsUpdateStats>(*rds_scope_);
  cds_stats_ = std::make_unique<XdsUpdateStats>(*cds_scope_);
  eds_stats_ = std::make_unique<XdsUpdateStats>(*eds_scope_);
  lds_stats_ = std::make_unique<XdsUpdateStats>(*lds_scope_);
}

XdsManager::~XdsManager() = default;

void XdsManager::start(std::function<void()> on_initialized) {
  on_initialized_ = std::move(on_initialized);
  init_timer_ = context_.main_loop.createTimer([this] {
    SHEAVE_LOG_WARN("xds: no complete initial config after {} ms; serving what is there",
                    kInitialFetchTimeout.count());
    initDone();
  });
  init_timer_->enable(kInitialFetchTimeout);
  auto add = [this](std::string_view type, XdsUpdateStats& stats, TypeWatcher::Handler handler,
                    std::vector<std::string> names) {
    watchers_.push_back(std::make_unique<TypeWatcher>(std::move(handler), stats));
    ads_->subscribe(std::string(type), *watchers_.back(), std::move(names));
  };
  if (cds_) {
    add(kClusterType, *cds_stats_,
        [this](const auto& r, const std::string& v) { return onClusters(r, v); }, {});
  }
  // EDS: named by the clusters that need it; the static EDS clusters' names
  // go out with the first requests.
  watchNames(kEndpointType, context_.clusters.edsServiceNames());
  watchNames(kSecretType, context_.secrets.subscribedNames());
  if (!cds_) {
    cds_done_ = true;
  }
  ads_->start();
  if (!cds_ && lds_) {
    lds_requested_ = true;
    add(kListenerType, *lds_stats_,
        [this](const auto& r, const std::string& v) { return onListeners(r, v); }, {});
  }
  if (!cds_ && !lds_) initDone();
}

Status XdsManager::onClusters(const std::vector<const google::protobuf::Any*>& resources,
                              const std::string& version_info) {
  std::vector<envoy::config::cluster::v3::Cluster> clusters(resources.size());
  std::set<std::string> names;
  for (size_t i = 0; i < resources.size(); ++i) {
    if (!resources[i]->UnpackTo(&clusters[i])) {
      return invalidArgument("resources[" + std::to_string(i) + "]: not a Cluster");
    }
    if (!names.insert(clusters[i].name()).second) {
      return invalidArgument("duplicate cluster '" + clusters[i].name() + "' in the response");
    }
  }
  // Envoy applies the clusters it can and reports the others in the NACK.
  std::string errors;
  for (const auto& cluster : clusters) {
    auto changed = context_.clusters.addOrUpdateCluster(cluster, version_info);
    if (!changed.ok()) {
      if (!errors.empty()) errors += "; ";
      errors += changed.error().message();
    }
  }
  for (const auto& name : context_.clusters.dynamicClusterNames()) {
    if (names.count(name) == 0) context_.clusters.removeCluster(name);
  }
  watchNames(kEndpointType, context_.clusters.edsServiceNames());
  watchNames(kSecretType, context_.secrets.subscribedNames());
  if (!cds_done_) {
    cds_done_ = true;
    context_.clusters.whenWarm([this] {
      if (lds_ && !lds_requested_) {
        lds_requested_ = true;
        watchers_.push_back(std::make_unique<TypeWatcher>(
            [this](const auto& r, const std::string& v) { return onListeners(r, v); },
            *lds_stats_));
        ads_->subscribe(std::string(kListenerType), *watchers_.back(), {});
      } else if (!lds_) {
        initDone();
      }
    });
  }
  if (!errors.empty()) return invalidArgument(errors);
  return okStatus();
}

Status XdsManager::onEndpoints(const std::vector<const google::protobuf::Any*>& resources) {
  std::string errors;
  for (size_t i = 0; i < resources.size(); ++i) {
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    if (!resources[i]->UnpackTo(&cla)) {
      return invalidArgument("resources[" + std::to_string(i) + "]: not a ClusterLoadAssignment");
    }
    if (auto status = context_.clusters.updateEndpoints(cla); !status.ok()) {
      if (!errors.empty()) errors += "; ";
      errors += status.error().message();
    }
  }
  if (!errors.empty()) return invalidArgument(errors);
  return okStatus();
}

Status XdsManager::onListeners(const std::vector<const google::protobuf::Any*>& resources,
                               const std::string& version_info) {
  std::vector<envoy::config::listener::v3::Listener> listeners(resources.size());
  std::set<std::string> names;
  for (size_t i = 0; i < resources.size(); ++i) {
    if (!resources[i]->UnpackTo(&listeners[i])) {
      return invalidArgument("resources[" + std::to_string(i) + "]: not a Listener");
    }
    if (!names.insert(listeners[i].name()).second) {
      return invalidArgument("duplicate listener '" + listeners[i].name() + "' in the response");
    }
  }
  std::string errors;
  auto fail = [&errors](const std::string& name, const Error& error) {
    if (!errors.empty()) errors += "; ";
    errors += "listener '" + name + "': " + error.message();
  };
  for (const auto& proto : listeners) {
    if (const auto* entry = context_.listeners.find(proto.name());
        entry != nullptr && entry->config->proto.SerializeAsString() == proto.SerializeAsString()) {
      warming_listeners_.erase(proto.name());  // back to the config in force
      continue;
    }
    auto config = ListenerConfig::create(proto, context_.listener_context);
    if (!config.ok()) {
      fail(proto.name(), config.error());
      continue;
    }
    // Envoy warms a listener until the route configurations it names are
    // there, so its first connection never meets an empty route table.
    auto routes = rdsNames(proto);
    if (!routes.empty()) {
      SHEAVE_LOG_DEBUG("lds: listener '{}' warming until its routes arrive", proto.name());
    }
    warming_listeners_[proto.name()] =
        WarmingListener{std::move(config).value(), std::move(routes), version_info};
  }
  for (auto it = warming_listeners_.begin(); it != warming_listeners_.end();) {
    it = names.count(it->first) == 0 ? warming_listeners_.erase(it) : std::next(it);
  }
  for (const auto& name : context_.listeners.dynamicNames()) {
    if (names.count(name) == 0) context_.listeners.remove(name);
  }
  lds_received_ = true;
  activateWarmListeners();
  watchNames(kRouteType, context_.rds.names());
  watchNames(kSecretType, context_.secrets.subscribedNames());
  if (!errors.empty()) return invalidArgument(errors);
  return okStatus();
}

Status XdsManager::onRoutes(const std::vector<const google::protobuf::Any*>& resources,
                            const std::string& version_info) {
  auto status = context_.rds.onUpdate(resources, version_info);
  activateWarmListeners();
  return status;
}

Status XdsManager::onSecrets(const std::vector<const google::protobuf::Any*>& resources) {
  std::string errors;
  for (size_t i = 0; i < resources.size(); ++i) {
    envoy::extensions::transport_sockets::tls::v3::Secret secret;
    if (!resources[i]->UnpackTo(&secret)) {
      return invalidArgument("resources[" + std::to_string(i) + "]: not a Secret");
    }
    // A rejected secret leaves the previous one in force (and the NACK says why).
    if (auto status = context_.secrets.setSecret(secret); !status.ok()) {
      if (!errors.empty()) errors += "; ";
      errors += status.error().message();
    }
  }
  if (!errors.empty()) return invalidArgument(errors);
  return okStatus();
}

void XdsManager::activateWarmListeners() {
  for (auto it = warming_listeners_.begin(); it != warming_listeners_.end();) {
    if (!context_.rds.ready(it->second.route_names)) {
      ++it;
      continue;
    }
    auto changed = context_.listeners.addOrUpdate(it->second.config, it->second.version_info);
    if (!changed.ok()) {
      // Validated before; a bind failure (port taken) is all that is left.
      SHEAVE_LOG_WARN("lds: listener '{}' cannot start: {}", it->first, changed.error().message());
    }
    it = warming_listeners_.erase(it);
  }
  if (lds_received_ && warming_listeners_.empty()) initDone();
}

void XdsManager::watchNames(std::string_view type_url, std::vector<std::string> names) {
  const std::string type(type_url);
  if (ads_->typeStatus(type) != nullptr) {
    ads_->updateResourceNames(type, std::move(names));
    return;
  }
  // An empty first request would mean "everything" (a legacy wildcard).
  if (names.empty()) return;
  XdsUpdateStats& stats = type_url == kRouteType    ? *rds_stats_
                          : type_url == kSecretType ? *sds_stats_
                                                    : *eds_stats_;
  TypeWatcher::Handler handler;
  if (type_url == kRouteType) {
    handler = [this](const auto& r, const std::string& v) { return onRoutes(r, v); };
  } else if (type_url == kSecretType) {
    handler = [this](const auto& r, const std::string&) { return onSecrets(r); };
  } else {
    handler = [this](const auto& r, const std::string&) { return onEndpoints(r); };
  }
  watchers_.push_back(std::make_unique<TypeWatcher>(std::move(handler), stats));
  ads_->subscribe(type, *watchers_.back(), std::move(names));
}

void XdsManager::initDone() {
  if (!on_initialized_) return;
  init_timer_->disable();
  auto cb = std::move(on_initialized_);
  on_initialized_ = nullptr;
  cb();
}

}  // namespace sheave::server
