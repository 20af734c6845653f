#include "control/compiler/cluster_generator.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <set>

#include "control/compiler/endpoint_generator.h"
#include "control/compiler/istio_tls_context.h"
#include "control/compiler/names.h"
#include "control/compiler/tcp_telemetry.h"
#include "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"

namespace sheave::control {
namespace {

namespace cluster = envoy::config::cluster::v3;
namespace core = envoy::config::core::v3;
namespace tls = envoy::extensions::transport_sockets::tls::v3;
using envoy::extensions::upstreams::http::v3::HttpProtocolOptions;

constexpr const char* kHttpProtocolOptionsKey =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
constexpr const char* kTlsSocketName = "envoy.transport_sockets.tls";
constexpr const char* kRawBufferSocketName = "envoy.transport_sockets.raw_buffer";
// Istio's source address for traffic the sidecar sends to its own workload,
// which its iptables rules exclude from capture.
constexpr const char* kInboundPassthroughBindIpv4 = "127.0.0.6";
// Istio leaves Envoy's circuit breakers effectively off unless a
// DestinationRule sets a limit.
constexpr uint32_t kUnlimited = std::numeric_limits<uint32_t>::max();

void setDuration(google::protobuf::Duration* out, std::chrono::nanoseconds d) {
  out->set_seconds(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  out->set_nanos(static_cast<int32_t>((d % std::chrono::seconds(1)).count()));
}

void setAdsSource(core::ConfigSource* source) { setAdsConfigSource(source); }

// What shapes one outbound cluster besides its policy.
struct ClusterTarget {
  const Service* service = nullptr;
  const ServicePortInfo* port = nullptr;
  const Subset* subset = nullptr;  // nullptr for the subset-less cluster
  const Resource<DestinationRule>* rule = nullptr;
  std::string name;
};

// Istio's SNI for in-mesh TLS: "outbound_.<port>_.<subset>_.<host>".
std::string istioSni(uint32_t port, std::string_view subset, std::string_view host) {
  return "outbound_." + std::to_string(port) + "_." + std::string(subset) + "_." +
         std::string(host);
}

// The identities a client accepts from a service's servers: every endpoint's
// SPIFFE ID plus the service's declared subject alt names.
std::vector<std::string> serviceIdentities(const RegistrySnapshot& registry,
                                           const Service& service) {
  std::set<std::string> ids(service.subject_alt_names.begin(), service.subject_alt_names.end());
  for (const Endpoint& e : registry.endpoints(service.hostname)) {
    if (!e.identity.empty()) ids.insert(e.identity);
  }
  return {ids.begin(), ids.end()};
}

tls::UpstreamTlsContext istioMutualContext(const std::vector<std::string>& sans, std::string sni,
                                           bool http2) {
  tls::UpstreamTlsContext context;
  auto* common = context.mutable_common_tls_context();
  auto* validation = setIstioSdsCertificates(common);
  for (const std::string& san : sans) validation->add_match_subject_alt_names()->set_exact(san);
  // Istio's in-mesh ALPN: the peer's inbound chain selects mTLS by "istio".
  common->add_alpn_protocols("istio-peer-exchange");
  common->add_alpn_protocols("istio");
  if (http2) common->add_alpn_protocols("h2");
  context.set_sni(std::move(sni));
  return context;
}

// SIMPLE / MUTUAL with files (or a credentialName fetched over SDS).
tls::UpstreamTlsContext fileContext(const ClientTLSSettings& settings, const Service& service,
                                    bool http2) {
  tls::UpstreamTlsContext context;
  auto* common = context.mutable_common_tls_context();
  if (!settings.credential_name.empty()) {
    auto* cert = common->add_tls_certificate_sds_secret_configs();
    cert->set_name("kubernetes://" + settings.credential_name);
    setAdsSource(cert->mutable_sds_config());
  }
  if (settings.mode == ClientTLSMode::kMutual && settings.credential_name.empty()) {
    auto* cert = common->add_tls_certificates();
    cert->mutable_certificate_chain()->set_filename(settings.client_certificate);
    cert->mutable_private_key()->set_filename(settings.private_key);
  }
  if (!settings.insecure_skip_verify.value_or(false)) {
    if (!settings.credential_name.empty()) {
      auto* combined = common->mutable_combined_validation_context();
      auto* validation = combined->mutable_default_validation_context();
      for (const std::string& san : settings.subject_alt_names) {
        validation->add_match_subject_alt_names()->set_exact(san);
      }
      auto* ca = combined->mutable_validation_context_sds_secret_config();
      ca->set_name("kubernetes://" + settings.credential_name + "-cacert");
      setAdsSource(ca->mutable_sds_config());
    } else if (!settings.ca_certificates.empty() || !settings.subject_alt_names.empty()) {
      auto* validation = common->mutable_validation_context();
      if (!settings.ca_certificates.empty()) {
        validation->mutable_trusted_ca()->set_filename(settings.ca_certificates);
      }
      if (!settings.ca_crl.empty()) validation->mutable_crl()->set_filename(settings.ca_crl);
      for (const std::string& san : settings.subject_alt_names) {
        validation->add_match_subject_alt_names()->set_exact(san);
      }
    }
  }
  if (http2) common->add_alpn_protocols("h2");
  if (!settings.sni.empty()) {
    context.set_sni(settings.sni);
  } else if (!isWildcardHostname(service.hostname)) {
    context.set_sni(service.hostname);
  }
  return context;
}

core::TransportSocket tlsSocket(const tls::UpstreamTlsContext& context) {
  core::TransportSocket socket;
  socket.set_name(kTlsSocketName);
  socket.mutable_typed_config()->PackFrom(context);
  return socket;
}

core::TransportSocket rawBufferSocket() {
  core::TransportSocket socket;
  socket.set_name(kRawBufferSocketName);
  socket.mutable_typed_config()->PackFrom(
      envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer());
  return socket;
}

void applyLoadBalancer(const std::optional<LoadBalancerSettings>& lb, cluster::Cluster* c) {
  // Istio's default since 1.14 is LEAST_REQUEST.
  c->set_lb_policy(cluster::Cluster::LEAST_REQUEST);
  if (!lb) return;
  if (lb->simple) {
    switch (*lb->simple) {
      case SimpleLB::kRoundRobin:
        c->set_lb_policy(cluster::Cluster::ROUND_ROBIN);
        break;
      case SimpleLB::kRandom:
        c->set_lb_policy(cluster::Cluster::RANDOM);
        break;
      case SimpleLB::kPassthrough:
        c->set_type(cluster::Cluster::ORIGINAL_DST);
        c->set_lb_policy(cluster::Cluster::CLUSTER_PROVIDED);
        c->clear_eds_cluster_config();
        c->clear_load_assignment();
        break;
      case SimpleLB::kUnspecified:
      case SimpleLB::kLeastConn:
      case SimpleLB::kLeastRequest:
        break;
    }
  } else if (lb->consistent_hash) {
    const ConsistentHashLB& hash = *lb->consistent_hash;
    if (hash.maglev) {
      c->set_lb_policy(cluster::Cluster::MAGLEV);
      if (hash.maglev->table_size > 0) {
        c->mutable_maglev_lb_config()->mutable_table_size()->set_value(hash.maglev->table_size);
      }
    } else {
      c->set_lb_policy(cluster::Cluster::RING_HASH);
      uint64_t ring = hash.ring_hash ? hash.ring_hash->minimum_ring_size : hash.minimum_ring_size;
      // Istio's default minimum ring size.
      if (ring == 0) ring = 1024;
      c->mutable_ring_hash_lb_config()->mutable_minimum_ring_size()->set_value(ring);
    }
  }
}

void applyOutlierDetection(const std::optional<OutlierDetection>& od, cluster::Cluster* c) {
  if (!od) return;
  auto* out = c->mutable_outlier_detection();
  // Istio's API has no success-rate settings, and Istio turns that detection off.
  out->mutable_enforcing_success_rate()->set_value(0);
  if (od->base_ejection_time)
    setDuration(out->mutable_base_ejection_time(), *od->base_ejection_time);
  if (od->consecutive_errors > 0) {
    // The deprecated field counts gateway errors only (istio/api#617).
    out->mutable_consecutive_gateway_failure()->set_value(od->consecutive_errors);
    out->mutable_enforcing_consecutive_gateway_failure()->set_value(100);
    out->mutable_enforcing_consecutive_5xx()->set_value(0);
  }
  if (od->consecutive_5xx_errors) {
    uint32_t v = *od->consecutive_5xx_errors;
    out->mutable_consecutive_5xx()->set_value(v);
    out->mutable_enforcing_consecutive_5xx()->set_value(v > 0 ? 100 : 0);
  }
  if (od->consecutive_gateway_errors) {
    uint32_t v = *od->consecutive_gateway_errors;
    out->mutable_consecutive_gateway_failure()->set_value(v);
    out->mutable_enforcing_consecutive_gateway_failure()->set_value(v > 0 ? 100 : 0);
  }
  if (od->interval) setDuration(out->mutable_interval(), *od->interval);
  if (od->max_ejection_percent > 0) {
    out->mutable_max_ejection_percent()->set_value(od->max_ejection_percent);
  }
  if (od->split_external_local_origin_errors) {
    out->set_split_external_local_origin_errors(true);
    if (od->consecutive_local_origin_failures.value_or(0) > 0) {
      out->mutable_consecutive_local_origin_failure()->set_value(
          *od->consecutive_local_origin_failures);
      out->mutable_enforcing_consecutive_local_origin_failure()->set_value(100);
    }
    out->mutable_enforcing_local_origin_success_rate()->set_value(0);
  }
  // Istio sets the panic threshold whenever outlier detection is on (0
  // unless minHealthPercent says otherwise), so few-endpoint services do not
  // send traffic to ejected hosts in panic mode.
  if (od->min_health_percent >= 0) {
    c->mutable_common_lb_config()->mutable_healthy_panic_threshold()->set_value(
        od->min_health_percent);
  }
}

cluster::CircuitBreakers::Thresholds defaultThresholds() {
  cluster::CircuitBreakers::Thresholds t;
  t.mutable_max_connections()->set_value(kUnlimited);
  t.mutable_max_pending_requests()->set_value(kUnlimited);
  t.mutable_max_requests()->set_value(kUnlimited);
  t.mutable_max_retries()->set_value(kUnlimited);
  // Sheave bounds retries by default where Istio leaves them unlimited: at
  // most 20% of the cluster's active requests may be retries (at least 3 at
  // a time), so a failing upstream cannot be hit by a retry storm. A
  // DestinationRule's connectionPool.http.maxRetries replaces the budget.
  auto* budget = t.mutable_retry_budget();
  budget->mutable_budget_percent()->set_value(20.0);
  budget->mutable_min_retry_concurrency()->set_value(3);
  t.set_track_remaining(true);
  return t;
}

// Connection pool settings, the HTTP protocol options and upstream protocol.
void applyConnectionPool(const std::optional<ConnectionPoolSettings>& pool, Protocol protocol,
                         const MeshConfig& mesh, cluster::Cluster* c) {
  cluster::CircuitBreakers::Thresholds thresholds = defaultThresholds();
  setDuration(c->mutable_connect_timeout(), mesh.connect_timeout);
  HttpProtocolOptions options;
  bool has_options = false;
  enum class Upstream { kConfigured, kHttp2, kDownstream } upstream = Upstream::kConfigured;
  if (isHttp2(protocol)) {
    upstream = Upstream::kHttp2;
  } else if (protocol == Protocol::kUnsupported) {
    // A sniffed port: speak upstream whatever the client spoke.
    upstream = Upstream::kDownstream;
  }
  uint32_t max_concurrent_streams = 0;
  if (pool && pool->http) {
    const auto& http = *pool->http;
    if (http.http2_max_requests > 0)
      thresholds.mutable_max_requests()->set_value(http.http2_max_requests);
    if (http.http1_max_pending_requests > 0) {
      thresholds.mutable_max_pending_requests()->set_value(http.http1_max_pending_requests);
    }
    if (http.max_retries > 0) {
      thresholds.mutable_max_retries()->set_value(http.max_retries);
      thresholds.clear_retry_budget();
    }
    if (http.max_requests_per_connection > 0) {
      options.mutable_common_http_protocol_options()
          ->mutable_max_requests_per_connection()
          ->set_value(http.max_requests_per_connection);
      has_options = true;
    }
    if (http.idle_timeout) {
      setDuration(options.mutable_common_http_protocol_options()->mutable_idle_timeout(),
                  *http.idle_timeout);
      has_options = true;
    }
    if (http.h2_upgrade_policy == H2UpgradePolicy::kUpgrade && protocol == Protocol::kHttp) {
      upstream = Upstream::kHttp2;
    }
    if (http.use_client_protocol) upstream = Upstream::kDownstream;
    if (http.max_concurrent_streams > 0) max_concurrent_streams = http.max_concurrent_streams;
  }
  if (pool && pool->tcp) {
    const auto& tcp = *pool->tcp;
    if (tcp.connect_timeout) setDuration(c->mutable_connect_timeout(), *tcp.connect_timeout);
    if (tcp.max_connections > 0)
      thresholds.mutable_max_connections()->set_value(tcp.max_connections);
    if (tcp.max_connection_duration) {
      setDuration(options.mutable_common_http_protocol_options()->mutable_max_connection_duration(),
                  *tcp.max_connection_duration);
      has_options = true;
    }
    if (tcp.tcp_keepalive) {
      auto* keepalive = c->mutable_upstream_connection_options()->mutable_tcp_keepalive();
      if (tcp.tcp_keepalive->probes > 0) {
        keepalive->mutable_keepalive_probes()->set_value(tcp.tcp_keepalive->probes);
      }
      if (tcp.tcp_keepalive->time) {
        keepalive->mutable_keepalive_time()->set_value(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::seconds>(*tcp.tcp_keepalive->time).count()));
      }
      if (tcp.tcp_keepalive->interval) {
        keepalive->mutable_keepalive_interval()->set_value(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::seconds>(*tcp.tcp_keepalive->interval)
                .count()));
      }
    }
  }
  *c->mutable_circuit_breakers()->add_thresholds() = thresholds;

  switch (upstream) {
    case Upstream::kConfigured:
      break;
    case Upstream::kHttp2: {
      auto* h2 = options.mutable_explicit_http_config()->mutable_http2_protocol_options();
      if (max_concurrent_streams > 0)
        h2->mutable_max_concurrent_streams()->set_value(max_concurrent_streams);
      has_options = true;
      break;
    }
    case Upstream::kDownstream: {
      auto* both = options.mutable_use_downstream_protocol_config();
      both->mutable_http_protocol_options();
      auto* h2 = both->mutable_http2_protocol_options();
      if (max_concurrent_streams > 0)
        h2->mutable_max_concurrent_streams()->set_value(max_concurrent_streams);
      has_options = true;
      break;
    }
  }
  if (has_options) {
    (*c->mutable_typed_extension_protocol_options())[kHttpProtocolOptionsKey].PackFrom(options);
  }
}

bool upstreamIsHttp2(const cluster::Cluster& c) {
  auto it = c.typed_extension_protocol_options().find(kHttpProtocolOptionsKey);
  if (it == c.typed_extension_protocol_options().end()) return false;
  HttpProtocolOptions options;
  return it->second.UnpackTo(&options) && options.has_explicit_http_config() &&
         options.explicit_http_config().has_http2_protocol_options();
}

void applyTls(const std::optional<ClientTLSSettings>& settings, const ClusterTarget& target,
              const PushContext& push, cluster::Cluster* c) {
  bool http2 = upstreamIsHttp2(*c);
  std::string_view subset = target.subset == nullptr ? std::string_view() : target.subset->name;
  auto istioMutual = [&](const ClientTLSSettings* overrides) {
    std::vector<std::string> sans = overrides != nullptr && !overrides->subject_alt_names.empty()
                                        ? overrides->subject_alt_names
                                        : serviceIdentities(push.registry(), *target.service);
    std::string sni = overrides != nullptr && !overrides->sni.empty()
                          ? overrides->sni
                          : istioSni(target.port->port, subset, target.service->hostname);
    return istioMutualContext(sans, std::move(sni), http2);
  };
  if (settings) {
    switch (settings->mode) {
      case ClientTLSMode::kDisable:
        return;
      case ClientTLSMode::kIstioMutual:
        *c->mutable_transport_socket() = tlsSocket(istioMutual(&*settings));
        return;
      case ClientTLSMode::kSimple:
      case ClientTLSMode::kMutual:
        *c->mutable_transport_socket() = tlsSocket(fileContext(*settings, *target.service, http2));
        return;
    }
  }
  // Auto mTLS: the endpoint metadata (tlsMode: istio) decides per host.
  if (!push.mesh().enable_auto_mtls || target.service->mesh_external) return;
  auto* istio = c->add_transport_socket_matches();
  istio->set_name("tlsMode-istio");
  (*istio->mutable_match()->mutable_fields())["tlsMode"].set_string_value("istio");
  *istio->mutable_transport_socket() = tlsSocket(istioMutual(nullptr));
  auto* plain = c->add_transport_socket_matches();
  plain->set_name("tlsMode-disabled");
  plain->mutable_match();
  *plain->mutable_transport_socket() = rawBufferSocket();
}

// Istio's cluster metadata, which its debugging tools read.
void applyMetadata(const ClusterTarget& target, cluster::Cluster* c) {
  auto& istio = (*c->mutable_metadata()->mutable_filter_metadata())["istio"];
  if (target.rule != nullptr) {
    (*istio.mutable_fields())["config"].set_string_value(
        "/apis/networking.istio.io/v1/namespaces/" + target.rule->metadata.namespace_name +
        "/destination-rule/" + target.rule->metadata.name);
  }
  if (target.subset != nullptr)
    (*istio.mutable_fields())["subset"].set_string_value(target.subset->name);
  (*istio.mutable_fields())["default_original_port"].set_number_value(target.port->port);
  auto* services = (*istio.mutable_fields())["services"].mutable_list_value();
  auto* entry = services->add_values()->mutable_struct_value();
  (*entry->mutable_fields())["host"].set_string_value(target.service->hostname);
  (*entry->mutable_fields())["name"].set_string_value(target.service->resource_name);
  (*entry->mutable_fields())["namespace"].set_string_value(target.service->namespace_name);
}

cluster::Cluster buildOutbound(const ClusterTarget& target, const PushContext& push) {
  cluster::Cluster c;
  c.set_name(target.name);
  const Service& service = *target.service;
  switch (service.resolution) {
    case Resolution::kClientSideLb:
      c.set_type(cluster::Cluster::EDS);
      setAdsSource(c.mutable_eds_cluster_config()->mutable_eds_config());
      c.mutable_eds_cluster_config()->set_service_name(target.name);
      break;
    case Resolution::kDnsLb:
    case Resolution::kDnsRoundRobin:
      c.set_type(service.resolution == Resolution::kDnsLb ? cluster::Cluster::STRICT_DNS
                                                          : cluster::Cluster::LOGICAL_DNS);
      c.set_dns_lookup_family(cluster::Cluster::V4_ONLY);
      c.set_respect_dns_ttl(true);
      setDuration(c.mutable_dns_refresh_rate(), std::chrono::seconds(60));
      *c.mutable_load_assignment() = buildLoadAssignment(
          target.name, push.registry(), service, target.port->port,
          target.subset == nullptr ? std::map<std::string, std::string>() : target.subset->labels);
      break;
    case Resolution::kPassthrough:
      c.set_type(cluster::Cluster::ORIGINAL_DST);
      break;
  }
  EffectiveTrafficPolicy policy = effectiveTrafficPolicy(
      target.rule == nullptr ? nullptr : &target.rule->spec, target.port->port, target.subset);
  applyConnectionPool(policy.connection_pool, target.port->protocol, push.mesh(), &c);
  applyLoadBalancer(policy.load_balancer, &c);
  if (c.type() == cluster::Cluster::ORIGINAL_DST) {
    // The destination is the caller's; no balancing choice is left.
    c.set_lb_policy(cluster::Cluster::CLUSTER_PROVIDED);
    c.clear_lb_config();
  }
  applyOutlierDetection(policy.outlier_detection, &c);
  applyTls(policy.tls, target, push, &c);
  applyMetadata(target, &c);
  if (push.mesh().enable_istio_metrics) addClusterMetadataExchange(c);
  return c;
}

// `endpoint` is a Sidecar ingress defaultEndpoint ("127.0.0.1:8080"; Istio also allows
// "0.0.0.0:8080", the workload's address, which on loopback is 127.0.0.1 as well). Empty: the
// instance's port on loopback.
cluster::Cluster buildInbound(const ProxyContext::ServiceInstance& instance, const MeshConfig& mesh,
                              std::string_view endpoint = {}) {
  cluster::Cluster c;
  c.set_name(inboundClusterName(instance.target_port));
  // Istio uses ORIGINAL_DST here when it captures with TPROXY; a STATIC
  // cluster to loopback is the same thing for the usual REDIRECT capture.
  c.set_type(cluster::Cluster::STATIC);
  c.set_lb_policy(cluster::Cluster::ROUND_ROBIN);
  setDuration(c.mutable_connect_timeout(), mesh.connect_timeout);
  auto* assignment = c.mutable_load_assignment();
  assignment->set_cluster_name(c.name());
  auto* socket = assignment->add_endpoints()
                     ->add_lb_endpoints()
                     ->mutable_endpoint()
                     ->mutable_address()
                     ->mutable_socket_address();
  socket->set_address("127.0.0.1");
  socket->set_port_value(instance.target_port);
  if (auto colon = endpoint.rfind(':'); colon != std::string_view::npos) {
    std::string_view host = endpoint.substr(0, colon);
    std::string_view digits = endpoint.substr(colon + 1);
    uint32_t port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec == std::errc() && end == digits.data() + digits.size() && port > 0 && port <= 65535) {
      socket->set_port_value(port);
      if (!host.empty() && host != "0.0.0.0") socket->set_address(std::string(host));
    }
  }
  *c.mutable_circuit_breakers()->add_thresholds() = defaultThresholds();
  if (isHttp2(instance.protocol)) {
    HttpProtocolOptions options;
    options.mutable_explicit_http_config()->mutable_http2_protocol_options();
    (*c.mutable_typed_extension_protocol_options())[kHttpProtocolOptionsKey].PackFrom(options);
  } else if (instance.protocol == Protocol::kUnsupported) {
    HttpProtocolOptions options;
    options.mutable_use_downstream_protocol_config()->mutable_http_protocol_options();
    options.mutable_use_downstream_protocol_config()->mutable_http2_protocol_options();
    (*c.mutable_typed_extension_protocol_options())[kHttpProtocolOptionsKey].PackFrom(options);
  }
  return c;
}

cluster::Cluster originalDst(std::string_view name, const MeshConfig& mesh) {
  cluster::Cluster c;
  c.set_name(std::string(name));
  c.set_type(cluster::Cluster::ORIGINAL_DST);
  c.set_lb_policy(cluster::Cluster::CLUSTER_PROVIDED);
  setDuration(c.mutable_connect_timeout(), mesh.connect_timeout);
  *c.mutable_circuit_breakers()->add_thresholds() = defaultThresholds();
  HttpProtocolOptions options;
  options.mutable_use_downstream_protocol_config()->mutable_http_protocol_options();
  options.mutable_use_downstream_protocol_config()->mutable_http2_protocol_options();
  (*c.mutable_typed_extension_protocol_options())[kHttpProtocolOptionsKey].PackFrom(options);
  return c;
}

// Every outbound cluster target the proxy gets, in no particular order.
std::vector<ClusterTarget> outboundTargets(const SidecarScope& scope) {
  std::vector<ClusterTarget> targets;
  for (const Service* service : scope.services()) {
    const Resource<DestinationRule>* rule = scope.destinationRule(service->hostname);
    for (const ServicePortInfo& port : service->ports) {
      // Envoy clusters carry TCP; UDP ports have no sidecar cluster in Istio.
      if (port.protocol == Protocol::kUdp) continue;
      targets.push_back(
          {service, &port, nullptr, rule, outboundClusterName(port.port, "", service->hostname)});
      if (rule == nullptr) continue;
      for (const Subset& subset : rule->spec.subsets) {
        targets.push_back({service, &port, &subset, rule,
                           outboundClusterName(port.port, subset.name, service->hostname)});
      }
    }
  }
  return targets;
}

}  // namespace

EffectiveTrafficPolicy effectiveTrafficPolicy(const DestinationRule* rule, uint32_t port,
                                              const Subset* subset) {
  EffectiveTrafficPolicy out;
  if (rule == nullptr) return out;
  // Port-level settings replace the policy's fields as a whole; per Istio's
  // docs they do not inherit from the level above.
  auto applyPortLevel = [&](const TrafficPolicy& policy) {
    for (const PortTrafficPolicy& level : policy.port_level_settings) {
      if (level.port && level.port->number == port) {
        out.load_balancer = level.load_balancer;
        out.connection_pool = level.connection_pool;
        out.outlier_detection = level.outlier_detection;
        out.tls = level.tls;
        return;
      }
    }
  };
  if (rule->traffic_policy) {
    const TrafficPolicy& top = *rule->traffic_policy;
    out.load_balancer = top.load_balancer;
    out.connection_pool = top.connection_pool;
    out.outlier_detection = top.outlier_detection;
    out.tls = top.tls;
    applyPortLevel(top);
  }
  if (subset != nullptr && subset->traffic_policy) {
    const TrafficPolicy& sub = *subset->traffic_policy;
    if (sub.load_balancer) out.load_balancer = sub.load_balancer;
    if (sub.connection_pool) out.connection_pool = sub.connection_pool;
    if (sub.outlier_detection) out.outlier_detection = sub.outlier_detection;
    if (sub.tls) out.tls = sub.tls;
    applyPortLevel(sub);
  }
  return out;
}

std::vector<cluster::Cluster> generateClusters(const ProxyContext& proxy, const PushContext& push) {
  std::shared_ptr<const SidecarScope> scope = push.scopeFor(proxy);
  std::vector<cluster::Cluster> clusters;
  std::set<std::string> names;
  for (const ClusterTarget& target : outboundTargets(*scope)) {
    if (!names.insert(target.name).second) continue;
    clusters.push_back(buildOutbound(target, push));
  }
  const Resource<Sidecar>* sidecar = scope->sidecar();
  if (sidecar != nullptr && !sidecar->spec.ingress.empty()) {
    // Sidecar ingress listeners replace the service instances, each with its defaultEndpoint.
    for (const auto& ingress : sidecar->spec.ingress) {
      if (!ingress.port.has_value() || ingress.port->number == 0) continue;
      ProxyContext::ServiceInstance instance;
      instance.target_port = ingress.port->number;
      instance.protocol = parseProtocol(ingress.port->protocol);
      if (!names.insert(inboundClusterName(instance.target_port)).second) continue;
      clusters.push_back(buildInbound(instance, push.mesh(), ingress.default_endpoint));
    }
  } else {
    for (const ProxyContext::ServiceInstance& instance : proxy.service_instances) {
      if (instance.target_port == 0) continue;
      std::string name = inboundClusterName(instance.target_port);
      if (!names.insert(name).second) continue;
      clusters.push_back(buildInbound(instance, push.mesh()));
    }
  }

  cluster::Cluster black_hole;
  black_hole.set_name(std::string(kBlackHoleClusterName));
  black_hole.set_type(cluster::Cluster::STATIC);
  setDuration(black_hole.mutable_connect_timeout(), push.mesh().connect_timeout);
  clusters.push_back(std::move(black_hole));
  clusters.push_back(originalDst(kPassthroughClusterName, push.mesh()));
  cluster::Cluster inbound_passthrough = originalDst(kInboundPassthroughClusterIpv4, push.mesh());
  auto* source = inbound_passthrough.mutable_upstream_bind_config()->mutable_source_address();
  source->set_address(kInboundPassthroughBindIpv4);
  source->set_port_value(0);
  clusters.push_back(std::move(inbound_passthrough));

  std::sort(
      clusters.begin(), clusters.end(),
      [](const cluster::Cluster& a, const cluster::Cluster& b) { return a.name() < b.name(); });
  return clusters;
}

std::vector<std::string> edsClusterNames(const ProxyContext& proxy, const PushContext& push) {
  std::shared_ptr<const SidecarScope> scope = push.scopeFor(proxy);
  std::set<std::string> names;
  for (const ClusterTarget& target : outboundTargets(*scope)) {
    if (target.service->resolution != Resolution::kClientSideLb) continue;
    // A PASSTHROUGH load balancer turns the cluster into ORIGINAL_DST.
    EffectiveTrafficPolicy policy = effectiveTrafficPolicy(
        target.rule == nullptr ? nullptr : &target.rule->spec, target.port->port, target.subset);
    if (policy.load_balancer && policy.load_balancer->simple == SimpleLB::kPassthrough) continue;
    names.insert(target.name);
  }
  return {names.begin(), names.end()};
}

}  // namespace sheave::control
