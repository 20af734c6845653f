#include "proxy/server/server.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <malloc.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "common/json_string.h"
#include "common/logging.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/config/bootstrap_loader.h"
#include "proxy/config/local_node.h"
#include "proxy/config/proto_json.h"
#include "proxy/network/tls/tls_context.h"
#include "proxy/server/builtin_extensions.h"
#include "proxy/stats/stats_formatter.h"

namespace sheave::server {
namespace {

// The escaped contents of a JSON string, for text written between quotes.
std::string jsonEscape(std::string_view s) {
  std::string quoted = jsonString(s);
  return quoted.substr(1, quoted.size() - 2);
}

constexpr const char* kVersion = "sheave-proxy/0.1.0";

std::string plainJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

// A message as JSON with its "@type" first, as Envoy prints Any values.
std::string typedJson(const google::protobuf::Message& message) {
  std::string json = plainJson(message);
  const std::string type = "\"@type\":\"" + config::typeUrlOf(*message.GetDescriptor()) + "\"";
  if (json == "{}") return "{" + type + "}";
  return "{" + type + "," + json.substr(1);
}

std::string timestamp(std::chrono::system_clock::time_point t) {
  auto ts = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
  return google::protobuf::util::TimeUtil::ToString(ts);
}

namespace tlsv3 = envoy::extensions::transport_sockets::tls::v3;

// Private keys, key passwords and session ticket keys never leave the process through the admin
// interface: like Envoy, the config dump shows "[redacted]" in their place.
void redact(envoy::config::core::v3::DataSource& source) {
  using DS = envoy::config::core::v3::DataSource;
  switch (source.specifier_case()) {
    case DS::kFilename:
      source.set_filename("[redacted]");
      break;
    case DS::kInlineBytes:
      source.set_inline_bytes("[redacted]");
      break;
    case DS::kInlineString:
      source.set_inline_string("[redacted]");
      break;
    case DS::kEnvironmentVariable:
      source.set_environment_variable("[redacted]");
      break;
    default:
      break;
  }
}

void redact(tlsv3::TlsCertificate& cert) {
  if (cert.has_private_key()) redact(*cert.mutable_private_key());
  if (cert.has_password()) redact(*cert.mutable_password());
}

void redact(tlsv3::CommonTlsContext& common) {
  for (auto& cert : *common.mutable_tls_certificates()) redact(cert);
}

void redact(envoy::config::core::v3::TransportSocket& socket) {
  auto* any = socket.mutable_typed_config();
  if (tlsv3::DownstreamTlsContext tls;
      any->Is<tlsv3::DownstreamTlsContext>() && any->UnpackTo(&tls)) {
    redact(*tls.mutable_common_tls_context());
    if (tls.has_session_ticket_keys()) {
      for (auto& key : *tls.mutable_session_ticket_keys()->mutable_keys()) redact(key);
    }
    any->PackFrom(tls);
  } else if (tlsv3::UpstreamTlsContext up;
             any->Is<tlsv3::UpstreamTlsContext>() && any->UnpackTo(&up)) {
    redact(*up.mutable_common_tls_context());
    any->PackFrom(up);
  }
}

void redact(tlsv3::Secret& secret) {
  if (secret.has_tls_certificate()) redact(*secret.mutable_tls_certificate());
  if (secret.has_session_ticket_keys()) {
    for (auto& key : *secret.mutable_session_ticket_keys()->mutable_keys()) redact(key);
  }
}

void redact(envoy::config::listener::v3::Listener& listener) {
  for (auto& chain : *listener.mutable_filter_chains()) {
    if (chain.has_transport_socket()) redact(*chain.mutable_transport_socket());
  }
  if (listener.has_default_filter_chain() &&
      listener.default_filter_chain().has_transport_socket()) {
    redact(*listener.mutable_default_filter_chain()->mutable_transport_socket());
  }
}

void redact(envoy::config::cluster::v3::Cluster& cluster) {
  if (cluster.has_transport_socket()) redact(*cluster.mutable_transport_socket());
  for (auto& match : *cluster.mutable_transport_socket_matches()) {
    if (match.has_transport_socket()) redact(*match.mutable_transport_socket());
  }
}

envoy::config::bootstrap::v3::Bootstrap redacted(envoy::config::bootstrap::v3::Bootstrap b) {
  auto* sr = b.mutable_static_resources();
  for (auto& secret : *sr->mutable_secrets()) redact(secret);
  for (auto& listener : *sr->mutable_listeners()) redact(listener);
  for (auto& cluster : *sr->mutable_clusters()) redact(cluster);
  return b;
}

}  // namespace

Server::Server(Options options) : options_(std::move(options)) {}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  workers_.clear();
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

Status Server::load() {
  if (!options_.config_path.empty()) {
    auto loaded = config::loadBootstrapFile(options_.config_path);
    if (!loaded.ok()) return std::move(loaded).error();
    bootstrap_ = std::move(loaded).value();
  }
  if (!options_.config_yaml.empty()) {
    auto overlay = config::parseBootstrap(options_.config_yaml, config::ConfigFormat::kYaml);
    if (!overlay.ok()) return std::move(overlay).error().at("--config-yaml");
    bootstrap_.MergeFrom(*overlay);
  }
  if (!options_.service_node.empty()) bootstrap_.mutable_node()->set_id(options_.service_node);
  if (!options_.service_cluster.empty()) {
    bootstrap_.mutable_node()->set_cluster(options_.service_cluster);
  }
  // Filter factories (istio.metadata_exchange, istio.stats) read the node's metadata.
  config::setLocalNode(bootstrap_.node());
  const std::string where = options_.config_path.empty() ? "--config-yaml" : options_.config_path;

  auto store = stats::Store::create();
  if (!store.ok()) return std::move(store).error().at(where);
  store_ = std::move(store).value();
  server_scope_ = store_->createScope("server");
  server_stats_ = std::make_unique<ServerStats>(ServerStats{
      server_scope_->gauge("live"), server_scope_->gauge("state"),
      server_scope_->gauge("concurrency"), server_scope_->gauge("uptime"),
      server_scope_->gauge("memory_allocated"), server_scope_->gauge("memory_heap_size"),
      server_scope_->gauge("total_connections")});
  access_logs_ = std::make_unique<accesslog::AccessLogManager>(*store_);
  const auto& sr = bootstrap_.static_resources();
  // Secrets first: cluster and listener TLS contexts resolve their sds_config names here.
  secrets_ = std::make_unique<network::tls::SecretManager>();
  if (auto status = secrets_->addStaticSecrets(sr.secrets()); !status.ok()) {
    return network::tls::underField(std::move(status).error(), "static_resources.secrets")
        .at(where);
  }
  clusters_ = std::make_unique<upstream::ClusterManager>(main_loop_, *store_, secrets_.get());
  registerBuiltinHttpFilters(http_filters_);

  for (int i = 0; i < sr.clusters_size(); ++i) {
    auto status = clusters_->addCluster(sr.clusters(i));
    if (!status.ok()) {
      return std::move(status).error().at(where + ": static_resources.clusters[" +
                                          std::to_string(i) + "]");
    }
  }
  if (bootstrap_.has_dynamic_resources() && bootstrap_.dynamic_resources().ByteSizeLong() > 0) {
    if (auto status = XdsManager::validate(bootstrap_, *clusters_); !status.ok()) {
      return std::move(status).error().at(where);
    }
  }
  listener_context_ = std::make_unique<ListenerConfig::Context>(ListenerConfig::Context{
      *store_, http_filters_, *access_logs_,
      [this](const std::string& name) { return clusters_->has(name); }, secrets_.get()});
  if (bootstrap_.has_dynamic_resources() && bootstrap_.dynamic_resources().ByteSizeLong() > 0) {
    rds_ = std::make_unique<RdsManager>();
    listener_context_->rds = [this](const std::string& name) { return rds_->provider(name); };
  }
  for (int i = 0; i < sr.listeners_size(); ++i) {
    auto listener = ListenerConfig::create(sr.listeners(i), *listener_context_);
    if (!listener.ok()) {
      return std::move(listener).error().at(where + ": static_resources.listeners[" +
                                            std::to_string(i) + "]");
    }
    for (const auto& other : static_listeners_) {
      if (other->name == (*listener)->name) {
        return invalidArgument("static_resources.listeners[" + std::to_string(i) +
                               "].name: duplicate listener name '" + other->name + "'")
            .at(where);
      }
      // A bind_to_port: false listener shares its address with the one that binds it.
      if (other->address == (*listener)->address && (*listener)->address.port() != 0 &&
          other->bind_to_port == (*listener)->bind_to_port) {
        return invalidArgument("static_resources.listeners[" + std::to_string(i) +
                               "].address: " + other->address.asString() +
                               " is already used by listener '" + other->name + "'")
            .at(where);
      }
    }
    static_listeners_.push_back(std::move(listener).value());
  }
  if (bootstrap_.has_admin() && !bootstrap_.admin().address().has_socket_address()) {
    return invalidArgument("admin.address: a socket_address is required").at(where);
  }
  load_time_ = std::chrono::system_clock::now();
  return okStatus();
}

Status Server::bindListeners() {
  for (uint32_t i = 0; i < options_.concurrency; ++i) {
    workers_.push_back(std::make_unique<Worker>(i));
  }
  listener_manager_ = std::make_unique<ListenerManager>(workers_);
  for (auto& listener : static_listeners_) {
    SHEAVE_RETURN_IF_ERROR(listener_manager_->addStatic(std::move(listener)));
  }
  static_listeners_.clear();
  return okStatus();
}

Status Server::setupAdmin() {
  admin_ = std::make_unique<AdminServer>(main_loop_);
  admin_->addHandler("/ready", "print server state, return 200 if LIVE, otherwise return 503",
                     false, [this](const AdminRequest&) {
                       return AdminResponse{state_ == State::kLive ? 200 : 503,
                                            "text/plain; charset=UTF-8",
                                            stateName() + "\n",
                                            {}};
                     });
  admin_->addHandler("/server_info", "print server version/status information", false,
                     [this](const AdminRequest& r) { return handleServerInfo(r); });
  admin_->addHandler("/stats", "print server stats", false,
                     [this](const AdminRequest& r) { return handleStats(r, false); });
  admin_->addHandler("/stats/prometheus", "print server stats in prometheus format", false,
                     [this](const AdminRequest& r) { return handleStats(r, true); });
  admin_->addHandler("/clusters", "upstream cluster status", false,
                     [this](const AdminRequest& r) { return handleClusters(r); });
  admin_->addHandler("/listeners", "print listener info", false,
                     [this](const AdminRequest& r) { return handleListeners(r); });
  admin_->addHandler("/config_dump", "dump current Envoy configs", false,
                     [this](const AdminRequest& r) { return handleConfigDump(r); });
  admin_->addHandler("/logging", "query/change logging levels", true,
                     [this](const AdminRequest& r) { return handleLogging(r); });
  admin_->addHandler(
      "/memory", "print current allocation/heap usage", false, [](const AdminRequest&) {
        struct mallinfo2 mi = mallinfo2();
        std::string body = "{\"allocated\":\"" + std::to_string(mi.uordblks) +
                           "\",\"heap_size\":\"" + std::to_string(mi.arena) + "\"}\n";
        return AdminResponse{200, "application/json", body, {}};
      });
  admin_->addHandler("/quitquitquit", "exit the server", true, [this](const AdminRequest&) {
    SHEAVE_LOG_INFO("shutting down (admin /quitquitquit)");
    AdminResponse r{200, "text/plain; charset=UTF-8", "OK\n", {}};
    r.after_response = [this] { shutdown(); };
    return r;
  });
  admin_->addHandler("/drain_listeners", "drain listeners", true, [this](const AdminRequest&) {
    for (auto& w : workers_) w->drain();
    return AdminResponse{200, "text/plain; charset=UTF-8", "OK\n", {}};
  });
  if (!bootstrap_.has_admin()) return okStatus();
  const auto& sa = bootstrap_.admin().address().socket_address();
  auto address = Address::parse(sa.address(), static_cast<uint16_t>(sa.port_value()));
  if (!address.ok()) {
    return invalidArgument("admin.address.socket_address.address: '" + sa.address() +
                           "' is not an IP address");
  }
  auto bound = admin_->bind(*address);
  if (!bound.ok()) return std::move(bound).error();
  SHEAVE_LOG_INFO("admin address: {}", bound->asString());
  return okStatus();
}

void Server::installSignalHandler() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signal_event_ = main_loop_.createFileEvent(
      signal_fd_,
      [this](uint32_t) {
        signalfd_siginfo info;
        while (::read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
          SHEAVE_LOG_WARN("caught {}", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
          if (state_ == State::kDraining || !workers_started_) {
            shutdown();
          } else {
            startDrain();
          }
        }
      },
      network::kRead);
}

Status Server::createIdentityProvider() {
  if (xds_ == nullptr) {
    return invalidArgument("needs dynamic_resources.ads_config: the CA is the ADS server");
  }
  const std::string& name =
      bootstrap_.dynamic_resources().ads_config().grpc_services(0).envoy_grpc().cluster_name();
  const envoy::config::cluster::v3::Cluster* xds_cluster = nullptr;
  for (const auto& c : bootstrap_.static_resources().clusters()) {
    if (c.name() == name) xds_cluster = &c;
  }
  WorkloadCertificateProvider::Options o;
  if (xds_cluster == nullptr || !xds_cluster->has_transport_socket() ||
      !xds_cluster->transport_socket().typed_config().UnpackTo(&o.ca_tls)) {
    return invalidArgument("the ADS cluster '" + name +
                           "' must use TLS (an UpstreamTlsContext): the token and the "
                           "certificate travel on it");
  }
  o.token_file = options_.workload_token_file;
  o.ca_authority = name;
  o.requested_ttl = options_.secret_ttl;
  o.grace_ratio = options_.secret_grace_period_ratio;
  identity_ = std::make_unique<WorkloadCertificateProvider>(main_loop_, *secrets_, *store_, random_,
                                                            std::move(o));
  identity_cluster_ = name;
  return okStatus();
}

void Server::onClustersReady() {
  if (xds_ != nullptr) {
    auto start_xds = [this] {
      SHEAVE_LOG_INFO("static clusters initialized; fetching the dynamic config over ADS");
      xds_->start([this] { startWorkers(); });
    };
    if (identity_ != nullptr) {
      // The CA sits on the ADS server's address: the xds cluster's (static) host.
      const auto* cluster = clusters_->get(identity_cluster_);
      auto hosts = cluster != nullptr ? cluster->hosts() : nullptr;
      if (!hosts || hosts->empty()) {
        SHEAVE_LOG_ERROR("--workload-token-file: the ADS cluster '{}' has no address",
                         identity_cluster_);
        shutdown();
        return;
      }
      identity_->setCaAddress(hosts->front()->address());
      SHEAVE_LOG_INFO("requesting the workload certificate from the CA at {}",
                      hosts->front()->address().asString());
      identity_->start(start_xds);
      return;
    }
    start_xds();
    return;
  }
  startWorkers();
}

void Server::startWorkers() {
  if (state_ == State::kDraining) return;
  SHEAVE_LOG_INFO("all clusters initialized; starting {} worker(s)", workers_.size());
  for (auto& w : workers_) w->start(*clusters_);
  workers_started_ = true;
  state_ = State::kLive;
  flushStats();
  // The clusters' endpoint lists were freed once their hosts existed: give
  // those pages back too (about 100 bytes per endpoint).
  malloc_trim(0);
}

void Server::flushStats() {
  // Envoy's server.* gauges; server.state: 0 live, 1 draining, 2 pre-initializing.
  auto& s = *server_stats_;
  s.live.set(state_ == State::kLive ? 1 : 0);
  s.state.set(state_ == State::kLive ? 0 : state_ == State::kDraining ? 1 : 2);
  s.concurrency.set(options_.concurrency);
  s.uptime.set(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::steady_clock::now() - start_time_)
                                         .count()));
  struct mallinfo2 mi = mallinfo2();
  s.memory_allocated.set(mi.uordblks);
  s.memory_heap_size.set(mi.arena);
  size_t connections = 0;
  for (auto& w : workers_) connections += w->activeConnections();
  s.total_connections.set(connections);
  store_->mergeHistograms();
}

void Server::startDrain() {
  if (state_ == State::kDraining) return;
  state_ = State::kDraining;
  SHEAVE_LOG_INFO("draining: no new connections; waiting up to {}s for in-flight requests",
                  options_.drain_time.count());
  drain_deadline_ = main_loop_.now() + options_.drain_time;
  flushStats();
  for (auto& w : workers_) w->drain();
  drain_timer_ = main_loop_.createTimer([this] { checkDrained(); });
  drain_timer_->enable(std::chrono::milliseconds(50));
}

void Server::checkDrained() {
  size_t active = 0;
  for (auto& w : workers_) active += w->activeConnections();
  if (active == 0) {
    SHEAVE_LOG_INFO("drained; exiting");
    shutdown();
    return;
  }
  if (main_loop_.now() >= drain_deadline_) {
    SHEAVE_LOG_WARN("drain time over with {} connection(s) still open; exiting", active);
    shutdown();
    return;
  }
  drain_timer_->enable(std::chrono::milliseconds(50));
}

void Server::shutdown() {
  if (admin_) admin_->close();
  main_loop_.exit();
}

std::string Server::stateName() const {
  switch (state_) {
    case State::kPreInitializing:
      return "PRE_INITIALIZING";
    case State::kLive:
      return "LIVE";
    case State::kDraining:
      return "DRAINING";
  }
  return "UNKNOWN";
}

int Server::run() {
  start_time_ = std::chrono::steady_clock::now();
  if (auto status = load(); !status.ok()) {
    fprintf(stderr, "error: %s\n", status.error().message().c_str());
    return 1;
  }
  // Parsing a large bootstrap (YAML tree, JSON text) leaves freed heap
  // behind; give it back so the resident size reflects the running config.
  malloc_trim(0);
  if (options_.mode == Options::Mode::kValidate) {
    printf("configuration '%s' OK\n",
           options_.config_path.empty() ? "--config-yaml" : options_.config_path.c_str());
    return 0;
  }
  if (auto status = bindListeners(); !status.ok()) {
    fprintf(stderr, "error: %s\n", status.error().message().c_str());
    return 1;
  }
  if (auto status = setupAdmin(); !status.ok()) {
    fprintf(stderr, "error: %s\n", status.error().message().c_str());
    return 1;
  }
  installSignalHandler();
  // Envoy's stats_flush_interval: gauges refresh and histograms merge.
  std::chrono::milliseconds flush_interval(5000);
  if (bootstrap_.has_stats_flush_interval()) {
    flush_interval =
        std::chrono::milliseconds(google::protobuf::util::TimeUtil::DurationToMilliseconds(
            bootstrap_.stats_flush_interval()));
  }
  flush_timer_ = main_loop_.createTimer([this, flush_interval] {
    flushStats();
    flush_timer_->enable(flush_interval);
  });
  flush_timer_->enable(flush_interval);
  flushStats();
  // The parsed bootstrap is only needed again by /config_dump: keep its wire
  // form (a fraction of the in-memory protobuf) and free the rest.
  node_ = bootstrap_.node();
  if (bootstrap_.has_dynamic_resources() && bootstrap_.dynamic_resources().ByteSizeLong() > 0) {
    xds_ = std::make_unique<XdsManager>(
        XdsManager::Context{main_loop_, *store_, *clusters_, *listener_manager_, *listener_context_,
                            random_, *rds_, *secrets_},
        bootstrap_);
  }
  if (!options_.workload_token_file.empty()) {
    if (auto status = createIdentityProvider(); !status.ok()) {
      SHEAVE_LOG_ERROR("--workload-token-file: {}", status.error().message());
      return 1;
    }
  }
  bootstrap_bytes_ = bootstrap_.SerializeAsString();
  bootstrap_.Clear();
  malloc_trim(0);
  clusters_->initialize([this] { onClustersReady(); });
  main_loop_.run();
  for (auto& w : workers_) w->stop();
  return exit_code_;
}

AdminResponse Server::handleServerInfo(const AdminRequest&) const {
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 start_time_);
  std::ostringstream o;
  o << "{\n \"version\": \"" << kVersion << "\",\n \"state\": \"" << stateName()
    << "\",\n \"hot_restart_version\": \"disabled\",\n \"command_line_options\": {\n"
    << "  \"concurrency\": " << options_.concurrency << ",\n  \"log_level\": \""
    << jsonEscape(options_.log_level) << "\",\n  \"config_path\": \""
    << jsonEscape(options_.config_path) << "\",\n  \"mode\": \""
    << (options_.mode == Options::Mode::kServe ? "Serve" : "Validate")
    << "\",\n  \"drain_time\": \"" << options_.drain_time.count()
    << "s\"\n },\n \"node\": " << typedJson(node_) << ",\n \"uptime_current_epoch\": \""
    << uptime.count() << "s\",\n \"uptime_all_epochs\": \"" << uptime.count() << "s\"\n}\n";
  return AdminResponse{200, "application/json", o.str(), {}};
}

AdminResponse Server::handleStats(const AdminRequest& request, bool prometheus) {
  auto params = stats::StatsParams::parseQuery(request.query);
  if (!params.ok()) return AdminResponse{400, "text/plain", params.error().message() + "\n", {}};
  if (prometheus) params->format = stats::StatsParams::Format::kPrometheus;
  auto formatter = stats::StatsFormatter::create(*params);
  if (!formatter.ok()) {
    return AdminResponse{400, "text/plain", formatter.error().message() + "\n", {}};
  }
  flushStats();
  AdminResponse r;
  r.body = formatter->format(*store_);
  switch (params->format) {
    case stats::StatsParams::Format::kJson:
      r.content_type = "application/json";
      break;
    case stats::StatsParams::Format::kPrometheus:
      r.content_type = std::string(stats::kPrometheusContentType);
      break;
    case stats::StatsParams::Format::kText:
      break;
  }
  return r;
}

namespace {

// Envoy's JSON for a host's locality: only the fields that are set.
std::string localityJson(const upstream::Locality& l) {
  std::string out;
  auto field = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += ",";
    out += std::string("\"") + name + "\":\"" + jsonEscape(value) + "\"";
  };
  field("region", l.region);
  field("zone", l.zone);
  field("sub_zone", l.sub_zone);
  return out;
}

}  // namespace

AdminResponse Server::handleClusters(const AdminRequest& request) const {
  const bool json = request.param("format") == "json";
  std::ostringstream o;
  if (json) o << "{\"cluster_statuses\":[";
  bool first_cluster = true;
  for (const auto& [name, cluster] : clusters_->clusters()) {
    const auto& info = *cluster->info();
    const auto hosts = cluster->hosts();
    if (json) {
      if (!first_cluster) o << ",";
      first_cluster = false;
      o << "{\"name\":\"" << jsonEscape(name) << "\",\"added_via_api\":"
        << (clusters_->dynamicActive().count(name) != 0 ? "true" : "false") << ","
        << "\"observability_name\":\"" << jsonEscape(name) << "\",\"host_statuses\":[";
      bool first_host = true;
      for (const auto& h : *hosts) {
        if (!first_host) o << ",";
        first_host = false;
        const auto& s = h->stats();
        auto counter = [&](const char* n, const std::atomic<uint64_t>& v) {
          return std::string("{\"name\":\"") + n + "\",\"value\":\"" +
                 std::to_string(v.load(std::memory_order_relaxed)) + "\"}";
        };
        auto gauge = [&](const char* n, const std::atomic<uint64_t>& v) {
          return std::string("{\"type\":\"GAUGE\",\"name\":\"") + n + "\",\"value\":\"" +
                 std::to_string(v.load(std::memory_order_relaxed)) + "\"}";
        };
        o << "{\"address\":{\"socket_address\":{\"address\":\"" << h->address().ip()
          << "\",\"port_value\":" << h->address().port() << "}},\"stats\":["
          << counter("cx_connect_fail", s.cx_connect_fail) << "," << counter("cx_total", s.cx_total)
          << "," << counter("rq_error", s.rq_error) << "," << counter("rq_success", s.rq_success)
          << "," << counter("rq_timeout", s.rq_timeout) << "," << counter("rq_total", s.rq_total)
          << "," << gauge("cx_active", s.cx_active) << "," << gauge("rq_active", s.rq_active)
          << "],\"health_status\":{\"eds_health_status\":\""
          << (h->healthy() ? "HEALTHY" : "UNHEALTHY") << "\""
          << (h->ejected() ? ",\"failed_outlier_check\":true" : "")
          << (h->failedActiveHealthCheck() ? ",\"failed_active_health_check\":true" : "")
          << "},\"weight\":" << h->weight()
          << (h->priority() > 0 ? ",\"priority\":" + std::to_string(h->priority()) : "")
          << ",\"hostname\":\"" << jsonEscape(h->hostname()) << "\",\"locality\":{"
          << localityJson(h->locality()) << "}}";
      }
      o << "]}";
      continue;
    }
    o << name << "::observability_name::" << name << "\n";
    const char* priorities[] = {"default_priority", "high_priority"};
    for (const char* p : priorities) {
      const bool def = std::string_view(p) == "default_priority";
      const upstream::ResourceLimits defaults;
      const upstream::ResourceLimits& l = def ? info.limits : defaults;
      // Under a retry budget the limit follows the load, as Envoy prints it.
      const uint64_t max_retries = def ? info.resources->retries.max() : l.max_retries;
      o << name << "::" << p << "::max_connections::" << l.max_connections << "\n"
        << name << "::" << p << "::max_pending_requests::" << l.max_pending_requests << "\n"
        << name << "::" << p << "::max_requests::" << l.max_requests << "\n"
        << name << "::" << p << "::max_retries::" << max_retries << "\n";
    }
    o << name
      << "::added_via_api::" << (clusters_->dynamicActive().count(name) != 0 ? "true" : "false")
      << "\n";
    for (const auto& h : *hosts) {
      const std::string prefix = name + "::" + h->address().asString() + "::";
      const auto& s = h->stats();
      auto v = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
      o << prefix << "cx_active::" << v(s.cx_active) << "\n"
        << prefix << "cx_connect_fail::" << v(s.cx_connect_fail) << "\n"
        << prefix << "cx_total::" << v(s.cx_total) << "\n"
        << prefix << "rq_active::" << v(s.rq_active) << "\n"
        << prefix << "rq_error::" << v(s.rq_error) << "\n"
        << prefix << "rq_success::" << v(s.rq_success) << "\n"
        << prefix << "rq_timeout::" << v(s.rq_timeout) << "\n"
        << prefix << "rq_total::" << v(s.rq_total) << "\n"
        << prefix << "hostname::" << h->hostname() << "\n"
        << prefix << "health_flags::"
        << (h->available() ? std::string("healthy")
                           : std::string(h->failedActiveHealthCheck() ? "/failed_active_hc" : "") +
                                 (h->healthy() ? "" : "/eds_health_status") +
                                 (h->ejected() ? "/failed_outlier_check" : ""))
        << "\n"
        << prefix << "weight::" << h->weight() << "\n"
        << prefix << "region::" << h->locality().region << "\n"
        << prefix << "zone::" << h->locality().zone << "\n"
        << prefix << "sub_zone::" << h->locality().sub_zone << "\n"
        << prefix << "canary::false\n"
        << prefix << "priority::" << h->priority() << "\n"
        << prefix << "success_rate::-1\n"
        << prefix << "local_origin_success_rate::-1\n";
    }
  }
  if (json) {
    o << "]}\n";
    return AdminResponse{200, "application/json", o.str(), {}};
  }
  return AdminResponse{200, "text/plain; charset=UTF-8", o.str(), {}};
}

AdminResponse Server::handleListeners(const AdminRequest& request) const {
  std::ostringstream o;
  if (request.param("format") == "json") {
    o << "{\"listener_statuses\":[";
    bool first = true;
    for (const auto* entry : listener_manager_->entries()) {
      const Address& a = entry->bound;
      if (!first) o << ",";
      first = false;
      o << "{\"name\":\"" << jsonEscape(entry->config->name)
        << "\",\"local_address\":{\"socket_address\":{\"address\":\"" << a.ip()
        << "\",\"port_value\":" << a.port() << "}}}";
    }
    o << "]}\n";
    return AdminResponse{200, "application/json", o.str(), {}};
  }
  for (const auto* entry : listener_manager_->entries()) {
    o << entry->config->name << "::" << entry->bound.asString() << "\n";
  }
  return AdminResponse{200, "text/plain; charset=UTF-8", o.str(), {}};
}

AdminResponse Server::handleConfigDump(const AdminRequest&) const {
  const std::string updated = "\"last_updated\":\"" + timestamp(load_time_) + "\"";
  std::ostringstream o;
  o << "{\"configs\":[";
  // Bootstrap.
  envoy::config::bootstrap::v3::Bootstrap bootstrap;
  (void)bootstrap.ParseFromString(bootstrap_bytes_);
  const auto dumped = redacted(bootstrap);
  o << "{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\"bootstrap\":"
    << plainJson(dumped) << "," << updated << "}";
  // Clusters.
  o << ",{\"@type\":\"type.googleapis.com/"
       "envoy.admin.v3.ClustersConfigDump\",\"static_clusters\":[";
  const auto& sr = dumped.static_resources();
  for (int i = 0; i < sr.clusters_size(); ++i) {
    if (i) o << ",";
    o << "{\"cluster\":" << typedJson(sr.clusters(i)) << "," << updated << "}";
  }
  o << "]";
  // CDS: what is in force, and what is still warming.
  auto dynamicClusters = [&](const char* field, const auto& map) {
    o << ",\"" << field << "\":[";
    bool first = true;
    for (const auto& [name, info] : map) {
      if (!first) o << ",";
      first = false;
      o << "{\"version_info\":\"" << jsonEscape(info.version_info)
        << "\",\"cluster\":" << typedJson(*info.proto) << ",\"last_updated\":\""
        << timestamp(info.last_updated) << "\"}";
    }
    o << "]";
  };
  dynamicClusters("dynamic_active_clusters", clusters_->dynamicActive());
  dynamicClusters("dynamic_warming_clusters", clusters_->dynamicWarming());
  o << "}";
  // Listeners.
  o << ",{\"@type\":\"type.googleapis.com/"
       "envoy.admin.v3.ListenersConfigDump\",\"static_listeners\":[";
  for (int i = 0; i < sr.listeners_size(); ++i) {
    if (i) o << ",";
    o << "{\"listener\":" << typedJson(sr.listeners(i)) << "," << updated << "}";
  }
  o << "],\"dynamic_listeners\":[";
  bool first = true;
  for (const auto* entry : listener_manager_->entries()) {
    if (!entry->dynamic) continue;
    if (!first) o << ",";
    first = false;
    o << "{\"name\":\"" << jsonEscape(entry->config->name)
      << "\",\"active_state\":{\"version_info\":\"" << jsonEscape(entry->version_info)
      << "\",\"listener\":" << typedJson(entry->config->proto) << ",\"last_updated\":\""
      << timestamp(entry->last_updated) << "\"}}";
  }
  o << "]}";
  // Routes: the inline route configurations of the HTTP connection managers,
  // in every filter chain, and the ones RDS delivered.
  o << ",{\"@type\":\"type.googleapis.com/"
       "envoy.admin.v3.RoutesConfigDump\",\"static_route_configs\":[";
  first = true;
  for (const auto* entry : listener_manager_->entries()) {
    const auto& proto = entry->config->proto;
    auto dumpChain = [&](const envoy::config::listener::v3::FilterChain& chain) {
      for (const auto& filter : chain.filters()) {
        envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
        if (!filter.typed_config().UnpackTo(&hcm) || !hcm.has_route_config()) continue;
        if (!first) o << ",";
        first = false;
        o << "{\"route_config\":" << typedJson(hcm.route_config()) << ",\"last_updated\":\""
          << timestamp(entry->last_updated) << "\"}";
      }
    };
    for (const auto& chain : proto.filter_chains()) dumpChain(chain);
    if (proto.has_default_filter_chain()) dumpChain(proto.default_filter_chain());
  }
  o << "],\"dynamic_route_configs\":[";
  if (rds_ != nullptr) {
    first = true;
    for (const auto& [name, applied] : rds_->applied()) {
      if (!first) o << ",";
      first = false;
      o << "{\"version_info\":\"" << jsonEscape(applied.version_info)
        << "\",\"route_config\":" << typedJson(applied.config) << ",\"last_updated\":\""
        << timestamp(applied.last_updated) << "\"}";
    }
  }
  o << "]}";
  // Secrets, as static_resources gave them (redacted).
  o << ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.SecretsConfigDump\",\"static_secrets\":[";
  for (int i = 0; i < sr.secrets_size(); ++i) {
    if (i) o << ",";
    o << "{\"name\":\"" << jsonEscape(sr.secrets(i).name()) << "\"," << updated
      << ",\"secret\":" << typedJson(sr.secrets(i)) << "}";
  }
  // SDS and the workload certificate agent (`default`, `ROOTCA`), private keys redacted.
  o << "],\"dynamic_active_secrets\":[";
  first = true;
  for (const auto& stored : secrets_->dynamicSecrets()) {
    tlsv3::Secret secret = *stored;
    redact(secret);
    if (!first) o << ",";
    first = false;
    o << "{\"name\":\"" << jsonEscape(secret.name()) << "\"," << updated
      << ",\"secret\":" << typedJson(secret) << "}";
  }
  o << "]}";
  o << "]}\n";
  return AdminResponse{200, "application/json", o.str(), {}};
}

AdminResponse Server::handleLogging(const AdminRequest& request) {
  if (request.hasParam("level")) {
    auto status = logging::setLevel(request.param("level"));
    if (!status.ok()) return AdminResponse{400, "text/plain", status.error().message() + "\n", {}};
  }
  return AdminResponse{200,
                       "text/plain; charset=UTF-8",
                       "active loggers:\n  sheave: " + std::string(logging::levelName()) + "\n",
                       {}};
}

}  // namespace sheave::server
