#include "proxy/upstream/cluster_manager.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "common/logging.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"
#include "istio/proxy/tcp_metadata_exchange/config.pb.h"
#include "proxy/config/http2_options.h"
#include "proxy/config/proto_json.h"
#include "proxy/http/http2/protocol_options.h"
#include "proxy/network/tls/tls_socket_factory.h"
#include "proxy/upstream/http2_conn_pool.h"

namespace sheave::upstream {
namespace {

using ClusterProto = envoy::config::cluster::v3::Cluster;

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(google::protobuf::util::TimeUtil::DurationToMilliseconds(d));
}

constexpr std::string_view kHttpProtocolOptions =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

// A Struct's fields as comparable strings: a string value as itself, anything else in protobuf's
// text form, so {tlsMode: "istio"} and a match on it compare equal and 1 never equals "1".
std::map<std::string, std::string> structFields(const google::protobuf::Struct& s) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : s.fields()) {
    out[key] = value.kind_case() == google::protobuf::Value::kStringValue
                   ? value.string_value()
                   : "\x01" + value.ShortDebugString();
  }
  return out;
}

constexpr std::string_view kTransportSocketMatchKey = "envoy.transport_socket_match";

constexpr std::string_view kRawBufferName = "envoy.transport_sockets.raw_buffer";
constexpr std::string_view kRawBufferType =
    "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

// Null for plaintext (no transport_socket, or raw_buffer).
Result<std::shared_ptr<network::tls::TlsSocketFactory>> buildTransportSocket(
    const envoy::config::core::v3::TransportSocket& config, network::tls::SecretManager* secrets) {
  using network::tls::TlsSocketFactory;
  if (TlsSocketFactory::isTls(config)) {
    auto factory = TlsSocketFactory::fromTransportSocket(config, /*server=*/false, secrets);
    if (!factory.ok()) {
      return network::tls::underField(std::move(factory).error(), "transport_socket");
    }
    return std::move(factory).value();
  }
  std::string_view type = config.typed_config().type_url();
  type = type.substr(type.rfind('/') + 1);
  if ((config.name().empty() || config.name() == kRawBufferName || config.name() == "raw_buffer") &&
      (type.empty() || type == kRawBufferType)) {
    return std::shared_ptr<TlsSocketFactory>();
  }
  return invalidArgument(
      "transport_socket: unsupported transport socket '" +
      (config.name().empty() ? std::string(type) : config.name()) +
      "' (supported: envoy.transport_sockets.tls, envoy.transport_sockets.raw_buffer)");
}

// config.core.v3.Http2ProtocolOptions under `where` (the field that holds them).
Status parseHttp2Options(const envoy::config::core::v3::Http2ProtocolOptions& p,
                         http2::ProtocolOptions& o, const std::string& where) {
  Status status = config::parseHttp2ProtocolOptions(p, o);
  if (!status.ok()) return std::move(status).error().at(where);
  return okStatus();
}

// An HTTP/2 cluster offers ALPN "h2" when its UpstreamTlsContext names no
// protocols itself (Envoy does the same). A use_downstream_protocol_config
// cluster offers nothing by default: its HTTP/1.1 pool must not meet a
// server that picked h2.
envoy::config::core::v3::TransportSocket withDefaultAlpn(
    const envoy::config::core::v3::TransportSocket& config, UpstreamProtocolPolicy protocol) {
  if (protocol != UpstreamProtocolPolicy::kHttp2) return config;
  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
  if (!config.typed_config().UnpackTo(&tls)) return config;
  if (tls.common_tls_context().alpn_protocols_size() > 0) return config;
  auto* alpn = tls.mutable_common_tls_context()->mutable_alpn_protocols();
  alpn->Add("h2");
  envoy::config::core::v3::TransportSocket out = config;
  out.mutable_typed_config()->PackFrom(tls);
  return out;
}

Result<std::shared_ptr<ClusterInfo>> buildInfo(const ClusterProto& proto, stats::Scope& root,
                                               network::tls::SecretManager* secrets) {
  auto info = std::make_shared<ClusterInfo>();
  info->name = proto.name();
  if (info->name.empty()) return invalidArgument("name: a cluster needs a name");
  info->type_name = ClusterProto::DiscoveryType_Name(proto.type());
  if (proto.has_connect_timeout()) {
    info->connect_timeout = toMs(proto.connect_timeout());
    if (info->connect_timeout.count() <= 0) {
      return invalidArgument("connect_timeout: must be greater than zero");
    }
  }
  switch (proto.lb_policy()) {
    case ClusterProto::ROUND_ROBIN:
      info->lb.policy = LbPolicy::kRoundRobin;
      break;
    case ClusterProto::LEAST_REQUEST:
      info->lb.policy = LbPolicy::kLeastRequest;
      break;
    case ClusterProto::RANDOM:
      info->lb.policy = LbPolicy::kRandom;
      break;
    case ClusterProto::CLUSTER_PROVIDED:
      info->lb.policy = LbPolicy::kClusterProvided;
      break;
    case ClusterProto::RING_HASH:
      info->lb.policy = LbPolicy::kRingHash;
      break;
    case ClusterProto::MAGLEV:
      info->lb.policy = LbPolicy::kMaglev;
      break;
    default:
      return invalidArgument("lb_policy: " + ClusterProto::LbPolicy_Name(proto.lb_policy()) +
                             " is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, "
                             "MAGLEV, CLUSTER_PROVIDED are)");
  }
  if (proto.has_ring_hash_lb_config()) {
    const auto& rh = proto.ring_hash_lb_config();
    if (rh.hash_function() != ClusterProto::RingHashLbConfig::XX_HASH) {
      return invalidArgument("ring_hash_lb_config.hash_function: only XX_HASH is supported");
    }
    constexpr uint64_t kMaxRing = 8 * 1024 * 1024;  // Envoy's bound on both sizes
    if (rh.has_minimum_ring_size()) info->lb.minimum_ring_size = rh.minimum_ring_size().value();
    if (rh.has_maximum_ring_size()) info->lb.maximum_ring_size = rh.maximum_ring_size().value();
    if (info->lb.minimum_ring_size < 1 || info->lb.minimum_ring_size > kMaxRing ||
        info->lb.maximum_ring_size < 1 || info->lb.maximum_ring_size > kMaxRing) {
      return invalidArgument("ring_hash_lb_config: ring sizes must be 1-8388608");
    }
    if (info->lb.minimum_ring_size > info->lb.maximum_ring_size) {
      return invalidArgument(
          "ring_hash_lb_config: minimum_ring_size must not exceed maximum_ring_size");
    }
  }
  if (proto.has_maglev_lb_config() && proto.maglev_lb_config().has_table_size()) {
    const uint64_t size = proto.maglev_lb_config().table_size().value();
    auto prime = [](uint64_t n) {
      if (n < 2) return false;
      for (uint64_t d = 2; d * d <= n; ++d) {
        if (n % d == 0) return false;
      }
      return true;
    };
    if (size > 5000011 || !prime(size)) {
      return invalidArgument("maglev_lb_config.table_size: must be a prime no larger than 5000011");
    }
    info->lb.maglev_table_size = size;
  }
  if (info->lb.policy == LbPolicy::kRingHash || info->lb.policy == LbPolicy::kMaglev) {
    info->hash_tables = std::make_unique<HashTableCache>();
    info->lb.hash_tables = info->hash_tables.get();
  }
  // Envoy's pairing: only an ORIGINAL_DST cluster provides its own hosts.
  if ((proto.type() == ClusterProto::ORIGINAL_DST) !=
      (info->lb.policy == LbPolicy::kClusterProvided)) {
    return invalidArgument(proto.type() == ClusterProto::ORIGINAL_DST
                               ? "lb_policy: an ORIGINAL_DST cluster needs CLUSTER_PROVIDED"
                               : "lb_policy: CLUSTER_PROVIDED is only valid for ORIGINAL_DST "
                                 "clusters");
  }
  if (proto.has_original_dst_lb_config()) {
    const auto& od = proto.original_dst_lb_config();
    if (od.use_http_header()) {
      return invalidArgument("original_dst_lb_config.use_http_header: not supported yet");
    }
    if (od.has_upstream_port_override()) {
      if (od.upstream_port_override().value() == 0 || od.upstream_port_override().value() > 65535) {
        return invalidArgument(
            "original_dst_lb_config.upstream_port_override: must be a port (1-65535)");
      }
      info->original_dst_port_override = static_cast<uint16_t>(od.upstream_port_override().value());
    }
  }
  if (proto.upstream_bind_config().has_source_address()) {
    const auto& sa = proto.upstream_bind_config().source_address();
    auto bind = Address::parse(sa.address(), static_cast<uint16_t>(sa.port_value()));
    if (!bind.ok()) {
      return invalidArgument("upstream_bind_config.source_address.address: '" + sa.address() +
                             "' is not an IP address");
    }
    info->upstream_bind_address = *bind;
  }
  if (proto.has_cleanup_interval()) {
    info->cleanup_interval = toMs(proto.cleanup_interval());
    if (info->cleanup_interval.count() < 1) {
      return invalidArgument("cleanup_interval: must be at least 1ms");
    }
  }
  if (proto.has_least_request_lb_config() && proto.least_request_lb_config().has_choice_count()) {
    info->lb.least_request_choice_count = proto.least_request_lb_config().choice_count().value();
    if (info->lb.least_request_choice_count < 2) {
      return invalidArgument("least_request_lb_config.choice_count: must be at least 2");
    }
  }
  const ClusterProto::SlowStartConfig* slow_start = nullptr;
  std::string slow_start_where;
  if (proto.round_robin_lb_config().has_slow_start_config()) {
    slow_start = &proto.round_robin_lb_config().slow_start_config();
    slow_start_where = "round_robin_lb_config.slow_start_config";
  } else if (proto.least_request_lb_config().has_slow_start_config()) {
    slow_start = &proto.least_request_lb_config().slow_start_config();
    slow_start_where = "least_request_lb_config.slow_start_config";
  }
  if (slow_start != nullptr) {
    SlowStart ss;
    ss.window = toMs(slow_start->slow_start_window());
    if (ss.window.count() < 0) {
      return invalidArgument(slow_start_where + ".slow_start_window: must not be negative");
    }
    if (slow_start->has_aggression()) {
      ss.aggression = slow_start->aggression().default_value();
      if (!(ss.aggression > 0.0)) {
        return invalidArgument(slow_start_where + ".aggression: must be greater than 0");
      }
    }
    if (slow_start->has_min_weight_percent()) {
      ss.min_weight_percent = slow_start->min_weight_percent().value();
      if (!(ss.min_weight_percent >= 0.0 && ss.min_weight_percent <= 100.0)) {
        return invalidArgument(slow_start_where + ".min_weight_percent: must be 0-100");
      }
    }
    if (ss.window.count() > 0) info->lb.slow_start = ss;
  }
  if (proto.common_lb_config().has_zone_aware_lb_config()) {
    return invalidArgument("common_lb_config.zone_aware_lb_config: is not supported yet");
  }
  info->lb.locality_weighted = proto.common_lb_config().has_locality_weighted_lb_config();
  if (proto.common_lb_config().has_healthy_panic_threshold()) {
    info->lb.panic_threshold_percent = proto.common_lb_config().healthy_panic_threshold().value();
  }
  if (proto.has_per_connection_buffer_limit_bytes()) {
    info->per_connection_buffer_limit_bytes = proto.per_connection_buffer_limit_bytes().value();
  }
  if (proto.has_max_requests_per_connection()) {
    info->max_requests_per_connection = proto.max_requests_per_connection().value();
  }
  if (proto.has_dns_refresh_rate()) {
    info->dns_refresh_rate = toMs(proto.dns_refresh_rate());
    if (info->dns_refresh_rate.count() < 1) {
      return invalidArgument("dns_refresh_rate: must be at least 1ms");
    }
  }
  switch (proto.dns_lookup_family()) {
    case ClusterProto::V4_ONLY:
      info->dns_lookup_family = DnsLookupFamily::kV4Only;
      break;
    case ClusterProto::V6_ONLY:
      info->dns_lookup_family = DnsLookupFamily::kV6Only;
      break;
    case ClusterProto::V4_PREFERRED:
      info->dns_lookup_family = DnsLookupFamily::kV4Preferred;
      break;
    case ClusterProto::ALL:
      info->dns_lookup_family = DnsLookupFamily::kAll;
      break;
    default:
      info->dns_lookup_family = DnsLookupFamily::kAuto;
      break;
  }
  for (int i = 0; i < proto.circuit_breakers().thresholds_size(); ++i) {
    const auto& t = proto.circuit_breakers().thresholds(i);
    // HIGH priority traffic does not exist in Sheave's routes yet; the
    // DEFAULT thresholds are the ones that apply.
    if (t.priority() != envoy::config::core::v3::DEFAULT) continue;
    if (t.has_max_connections()) info->limits.max_connections = t.max_connections().value();
    if (t.has_max_pending_requests()) {
      info->limits.max_pending_requests = t.max_pending_requests().value();
    }
    if (t.has_max_requests()) info->limits.max_requests = t.max_requests().value();
    if (t.has_max_retries()) info->limits.max_retries = t.max_retries().value();
    if (t.has_retry_budget()) {
      RetryBudget budget;
      const auto& rb = t.retry_budget();
      if (rb.has_budget_percent()) {
        budget.budget_percent = rb.budget_percent().value();
        if (!(budget.budget_percent >= 0.0 && budget.budget_percent <= 100.0)) {
          return invalidArgument(
              "circuit_breakers.thresholds.retry_budget.budget_percent: must be 0-100");
        }
      }
      if (rb.has_min_retry_concurrency()) {
        budget.min_retry_concurrency = rb.min_retry_concurrency().value();
      }
      info->limits.retry_budget = budget;
    }
  }
  for (const auto& [name, any] : proto.typed_extension_protocol_options()) {
    std::string_view type = any.type_url();
    type = type.substr(type.rfind('/') + 1);
    if (type != kHttpProtocolOptions) {
      return invalidArgument("typed_extension_protocol_options[" + name + "]: unsupported type " +
                             std::string(type));
    }
    envoy::extensions::upstreams::http::v3::HttpProtocolOptions options;
    if (!any.UnpackTo(&options)) {
      return invalidArgument("typed_extension_protocol_options[" + name + "]: cannot decode");
    }
    const std::string where = "typed_extension_protocol_options[" + name + "]";
    if (options.has_explicit_http_config()) {
      const auto& explicit_config = options.explicit_http_config();
      if (explicit_config.has_http2_protocol_options()) {
        info->protocol = UpstreamProtocolPolicy::kHttp2;
        SHEAVE_RETURN_IF_ERROR(parseHttp2Options(explicit_config.http2_protocol_options(),
                                                 info->http2_options, where));
      } else {
        info->protocol = UpstreamProtocolPolicy::kHttp1;
      }
    } else if (options.has_use_downstream_protocol_config()) {
      info->protocol = UpstreamProtocolPolicy::kUseDownstream;
      SHEAVE_RETURN_IF_ERROR(
          parseHttp2Options(options.use_downstream_protocol_config().http2_protocol_options(),
                            info->http2_options, where));
    } else if (options.has_auto_config()) {
      // ALPN-driven selection is not there yet; HTTP/1.1 works with every peer.
      SHEAVE_LOG_WARN("cluster '{}': {}.auto_config is treated as HTTP/1.1", info->name, where);
      info->protocol = UpstreamProtocolPolicy::kHttp1;
    }
    const auto& common = options.common_http_protocol_options();
    if (common.has_idle_timeout()) info->idle_timeout = toMs(common.idle_timeout());
    if (common.has_max_connection_duration()) {
      info->max_connection_duration = toMs(common.max_connection_duration());
    }
    if (common.has_max_requests_per_connection()) {
      info->max_requests_per_connection = common.max_requests_per_connection().value();
    }
  }
  if (proto.has_http2_protocol_options() && proto.typed_extension_protocol_options().empty()) {
    // The deprecated field still means "HTTP/2 upstream", as in Envoy.
    info->protocol = UpstreamProtocolPolicy::kHttp2;
    SHEAVE_RETURN_IF_ERROR(
        parseHttp2Options(proto.http2_protocol_options(), info->http2_options, "cluster"));
  }
  if (proto.has_transport_socket()) {
    SHEAVE_ASSIGN_OR_RETURN(
        info->transport_socket_factory,
        buildTransportSocket(withDefaultAlpn(proto.transport_socket(), info->protocol), secrets));
  }
  if (proto.transport_socket_matches_size() > 32767) {
    return invalidArgument("transport_socket_matches: at most 32767 entries");
  }
  for (int i = 0; i < proto.transport_socket_matches_size(); ++i) {
    const auto& m = proto.transport_socket_matches(i);
    ClusterInfo::TransportSocketMatch match;
    match.name = m.name();
    match.match = structFields(m.match());
    auto factory =
        buildTransportSocket(withDefaultAlpn(m.transport_socket(), info->protocol), secrets);
    if (!factory.ok()) {
      return std::move(factory).error().at("transport_socket_matches[" + std::to_string(i) + "]");
    }
    match.factory = std::move(factory).value();
    info->transport_socket_matches.push_back(std::move(match));
  }
  for (int i = 0; i < proto.filters_size(); ++i) {
    // Cluster network filters: Istio's TCP metadata exchange is the one there is.
    const std::string where = "filters[" + std::to_string(i) + "].typed_config";
    const auto& any = proto.filters(i).typed_config();
    if (any.type_url() !=
        "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange") {
      return invalidArgument(
                 "unsupported cluster filter '" + any.type_url() +
                 "' (istio.metadata_exchange, envoy.tcp.metadataexchange.config.MetadataExchange, "
                 "is the one supported)")
          .at(where);
    }
    auto mx = config::unpackTypedConfig<envoy::tcp::metadataexchange::config::MetadataExchange>(
        any, where);
    if (!mx.ok()) return std::move(mx).error();
    if (mx->protocol().empty()) return invalidArgument("must not be empty").at(where + ".protocol");
    info->metadata_exchange_protocol = mx->protocol();
  }
  if (proto.has_outlier_detection()) {
    info->outlier_detection = std::make_shared<const OutlierDetectionConfig>(
        OutlierDetectionConfig::fromProto(proto.outlier_detection()));
  }
  if (proto.health_checks_size() > 1) {
    return invalidArgument("health_checks: multiple health checks are not supported");
  }
  if (proto.health_checks_size() == 1) {
    auto hc = HealthCheckConfig::fromProto(proto.health_checks(0));
    if (!hc.ok()) return std::move(hc).error().at("health_checks[0]");
    info->health_check = std::make_unique<const HealthCheckConfig>(std::move(hc).value());
  }
  info->resources = std::make_unique<ResourceManager>(info->limits);
  info->scope = root.createScope("cluster." + info->name);
  info->stats = std::make_unique<ClusterStats>(*info->scope);
  return info;
}

constexpr uint32_t kMaxPriority = 127;  // Envoy's bound on priority levels

// An EDS host with its locality.
HostSharedPtr makeHost(const Address& addr, const EndpointConfig& e, int16_t match) {
  auto host = std::make_shared<Host>(addr, "", e.weight, match, e.priority);
  host->setLocality(e.locality, e.locality_weight);
  return host;
}

// ClusterLoadAssignment.policy.overprovisioning_factor (Envoy's default 140).
void setOverprovisioningFactor(const ClusterInfo& info,
                               const envoy::config::endpoint::v3::ClusterLoadAssignment& la) {
  const auto& policy = la.policy();
  info.overprovisioning_factor.store(
      policy.has_overprovisioning_factor() ? policy.overprovisioning_factor().value() : 140,
      std::memory_order_relaxed);
}

Result<std::vector<EndpointConfig>> buildEndpoints(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& la, bool dns,
    std::string_view cluster_type) {
  std::vector<EndpointConfig> out;
  for (int i = 0; i < la.endpoints_size(); ++i) {
    const auto& locality = la.endpoints(i);
    if (locality.priority() > kMaxPriority) {
      return invalidArgument("endpoints[" + std::to_string(i) + "].priority: at most " +
                             std::to_string(kMaxPriority));
    }
    std::shared_ptr<const Locality> where_is;
    if (locality.has_locality()) {
      where_is = std::make_shared<const Locality>(Locality{locality.locality().region(),
                                                           locality.locality().zone(),
                                                           locality.locality().sub_zone()});
    }
    const uint32_t locality_weight =
        locality.has_load_balancing_weight() ? locality.load_balancing_weight().value() : 0;
    for (int j = 0; j < locality.lb_endpoints_size(); ++j) {
      const auto& lb = locality.lb_endpoints(j);
      const std::string where =
          "endpoints[" + std::to_string(i) + "].lb_endpoints[" + std::to_string(j) + "]";
      if (!lb.endpoint().address().has_socket_address()) {
        return invalidArgument(where + ".endpoint.address: a socket_address is required");
      }
      const auto& sa = lb.endpoint().address().socket_address();
      EndpointConfig e;
      e.address = sa.address();
      if (sa.port_value() == 0 || sa.port_value() > 65535) {
        return invalidArgument(where +
                               ".endpoint.address.socket_address.port_value: must be 1-65535");
      }
      e.port = static_cast<uint16_t>(sa.port_value());
      e.priority = static_cast<uint8_t>(locality.priority());
      e.locality = where_is;
      e.locality_weight = locality_weight;
      if (lb.has_load_balancing_weight()) {
        e.weight = lb.load_balancing_weight().value();
        if (e.weight == 0) {
          return invalidArgument(where + ".load_balancing_weight: must be at least 1");
        }
      }
      if (auto md = lb.metadata().filter_metadata().find(std::string(kTransportSocketMatchKey));
          md != lb.metadata().filter_metadata().end()) {
        e.socket_match_metadata = structFields(md->second);
      }
      const auto hs = lb.health_status();
      e.healthy =
          !(hs == envoy::config::core::v3::UNHEALTHY || hs == envoy::config::core::v3::DRAINING ||
            hs == envoy::config::core::v3::TIMEOUT);
      if (!dns && !Address::parse(e.address, e.port).ok()) {
        return invalidArgument(where + ".endpoint.address.socket_address.address: '" + e.address +
                               "' is not an IP address (a " + std::string(cluster_type) +
                               " cluster needs IPs; use STRICT_DNS for names)");
      }
      out.push_back(std::move(e));
    }
  }
  return out;
}

network::DnsLookupFamily toNetworkFamily(DnsLookupFamily f) {
  switch (f) {
    case DnsLookupFamily::kV4Only:
      return network::DnsLookupFamily::kV4Only;
    case DnsLookupFamily::kV6Only:
      return network::DnsLookupFamily::kV6Only;
    case DnsLookupFamily::kAll:
      return network::DnsLookupFamily::kAll;
    case DnsLookupFamily::kV4Preferred:
      return network::DnsLookupFamily::kV4Preferred;
    case DnsLookupFamily::kAuto:
      return network::DnsLookupFamily::kAuto;
  }
  return network::DnsLookupFamily::kAuto;
}

}  // namespace

Result<std::unique_ptr<Cluster>> Cluster::create(const ClusterProto& proto, stats::Scope& root,
                                                 network::EventLoop& main_loop,
                                                 network::DnsResolver& resolver,
                                                 network::tls::SecretManager* secrets) {
  bool dns = false, logical = false;
  switch (proto.type()) {
    case ClusterProto::STATIC:
    case ClusterProto::EDS:
      break;
    case ClusterProto::ORIGINAL_DST:
      // Hosts come from the downstream connections, never from configuration.
      if (proto.load_assignment().endpoints_size() > 0) {
        return invalidArgument(
            "load_assignment: an ORIGINAL_DST cluster takes its hosts from the connections' "
            "original destinations and must not list endpoints");
      }
      break;
    case ClusterProto::STRICT_DNS:
      dns = true;
      break;
    case ClusterProto::LOGICAL_DNS:
      dns = logical = true;
      break;
    default:
      return invalidArgument("type: " + ClusterProto::DiscoveryType_Name(proto.type()) +
                             " clusters are not supported yet");
  }
  auto info = buildInfo(proto, root, secrets);
  if (!info.ok()) return std::move(info).error();
  auto endpoints =
      buildEndpoints(proto.load_assignment(), dns, ClusterProto::DiscoveryType_Name(proto.type()));
  if (!endpoints.ok()) return std::move(endpoints).error().at("load_assignment");
  setOverprovisioningFactor(**info, proto.load_assignment());
  auto cluster = std::unique_ptr<Cluster>(new Cluster(
      std::move(info).value(), std::move(endpoints).value(), dns, logical, main_loop, resolver));
  // An EDS cluster with an eds_config gets its hosts from EDS; one without
  // (a bootstrap convenience) uses its inline load_assignment like STATIC.
  if (proto.type() == ClusterProto::EDS && proto.eds_cluster_config().has_eds_config()) {
    const auto& service = proto.eds_cluster_config().service_name();
    cluster->eds_service_name_ = service.empty() ? proto.name() : service;
  }
  return cluster;
}

Cluster::Cluster(std::shared_ptr<const ClusterInfo> info, std::vector<EndpointConfig> endpoints,
                 bool dns, bool logical, network::EventLoop& loop, network::DnsResolver& resolver)
    : info_(std::move(info)),
      endpoints_(std::move(endpoints)),
      dns_(dns),
      logical_(logical),
      loop_(loop),
      resolver_(resolver) {}

Cluster::~Cluster() {
  health_checker_.reset();
  outlier_detector_.reset();
}

void Cluster::startHealthChecking() {
  if (!info_->health_check || health_checker_) return;
  health_checker_ = std::make_unique<HealthChecker>(
      *info_->health_check, info_->name, *info_->scope, [this] { return hosts_; },
      [this] { return info_->stats->upstream_rq_total.value() > 0; },
      [this] {
        // Same hosts, new health: the workers rebuild their load balancers.
        if (on_hosts_changed_) on_hosts_changed_();
      });
  health_checker_->start(loop_);
}

void Cluster::startOutlierDetection() {
  if (!info_->outlier_detection || outlier_detector_) return;
  outlier_detector_ = std::make_unique<OutlierDetector>(
      info_->outlier_detection, *info_->scope, [this] { return hosts_; },
      [this] {
        // Same hosts, new ejections: the workers rebuild their load balancers.
        if (on_hosts_changed_) on_hosts_changed_();
      });
  outlier_detector_->start(loop_);
}

void Cluster::initialize(std::function<void()> on_ready) {
  on_ready_ = std::move(on_ready);
  startOutlierDetection();
  startHealthChecking();
  if (!eds_service_name_.empty()) {
    // Ready with the first assignment (updateLoadAssignment).
    if (eds_ready_) publish(HostVector(*hosts_));
    return;
  }
  if (!dns_) {
    HostVector hosts;
    hosts.reserve(endpoints_.size());
    for (const auto& e : endpoints_) {
      HostSharedPtr host =
          makeHost(Address::parse(e.address, e.port).value(), e,
                   static_cast<int16_t>(info_->transportSocketMatchFor(e.socket_match_metadata)));
      host->setHealthy(e.healthy);
      hosts.push_back(std::move(host));
    }
    // IP endpoints live on as hosts; only DNS clusters need the names again.
    std::vector<EndpointConfig>().swap(endpoints_);
    publish(std::move(hosts));
    return;
  }
  resolved_.assign(endpoints_.size(), {});
  refresh_timer_ = loop_.createTimer([this] { resolve(); });
  resolve();
}

Status Cluster::updateLoadAssignment(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla) {
  auto endpoints = buildEndpoints(cla, /*dns=*/false, "EDS");
  if (!endpoints.ok()) return std::move(endpoints).error();
  setOverprovisioningFactor(*info_, cla);
  const HostVector& current = *hosts_;
  HostVector hosts;
  hosts.reserve(endpoints->size());
  for (const auto& e : *endpoints) {
    auto addr = Address::parse(e.address, e.port).value();
    const auto match =
        static_cast<int16_t>(info_->transportSocketMatchFor(e.socket_match_metadata));
    auto it = std::find_if(current.begin(), current.end(), [&](const HostSharedPtr& h) {
      return h->address() == addr && h->weight() == e.weight &&
             h->transportSocketMatch() == match && h->priority() == e.priority &&
             h->localityWeight() == e.locality_weight &&
             h->locality() == (e.locality ? *e.locality : Locality{});
    });
    HostSharedPtr host = it != current.end() ? *it : makeHost(addr, e, match);
    host->setHealthy(e.healthy);
    hosts.push_back(std::move(host));
  }
  eds_ready_ = true;
  info_->stats->update_success.inc();
  publish(std::move(hosts));
  return okStatus();
}

void Cluster::resolve() {
  info_->stats->update_attempt.inc();
  queries_.clear();
  queries_.resize(endpoints_.size());
  outstanding_ = endpoints_.size();
  if (outstanding_ == 0) {
    publish({});
    return;
  }
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    queries_[i] = resolver_.resolve(
        loop_, endpoints_[i].address, toNetworkFamily(info_->dns_lookup_family),
        [this, i](Result<std::vector<Address>> r) { onResolved(i, std::move(r)); });
  }
}

void Cluster::onResolved(size_t endpoint, Result<std::vector<Address>> result) {
  if (result.ok()) {
    std::vector<Address> addrs;
    for (auto a : *result) {
      auto with_port = Address::parse(a.ip(), endpoints_[endpoint].port);
      if (with_port.ok()) addrs.push_back(std::move(with_port).value());
      if (logical_) break;
    }
    resolved_[endpoint] = std::move(addrs);
  } else {
    // Keep the last good answer: a DNS hiccup must not empty the cluster.
    info_->stats->update_failure.inc();
    SHEAVE_LOG_WARN("cluster '{}': DNS resolution of '{}' failed: {}", info_->name,
                    endpoints_[endpoint].address, result.error().message());
  }
  if (--outstanding_ > 0) return;
  HostVector hosts;
  const HostVector& current = *hosts_;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    for (const auto& addr : resolved_[i]) {
      // Reuse the Host object when the address is unchanged, so its stats
      // and pooled connections survive the refresh.
      auto it = std::find_if(current.begin(), current.end(), [&](const HostSharedPtr& h) {
        return h->address() == addr && h->hostname() == endpoints_[i].address;
      });
      if (it != current.end()) {
        hosts.push_back(*it);
      } else {
        auto host = std::make_shared<Host>(addr, endpoints_[i].address, endpoints_[i].weight,
                                           static_cast<int16_t>(info_->transportSocketMatchFor(
                                               endpoints_[i].socket_match_metadata)),
                                           endpoints_[i].priority);
        host->setLocality(endpoints_[i].locality, endpoints_[i].locality_weight);
        hosts.push_back(std::move(host));
      }
    }
  }
  info_->stats->update_success.inc();
  publish(std::move(hosts));
  refresh_timer_->enable(info_->dns_refresh_rate);
}

void Cluster::publish(HostVector hosts) {
  const bool changed = hosts != *hosts_;
  if (info_->lb.slow_start && !on_ready_) {
    // Hosts that join a running cluster ramp up (slow_start_config); the
    // first host list is the cluster's own and starts at full weight.
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    for (const auto& h : hosts) {
      if (std::find(hosts_->begin(), hosts_->end(), h) == hosts_->end()) h->setSlowStartSince(now);
    }
  }
  info_->stats->membership_total.set(hosts.size());
  info_->stats->membership_healthy.set(static_cast<uint64_t>(std::count_if(
      hosts.begin(), hosts.end(), [](const HostSharedPtr& h) { return h->healthy(); })));
  hosts_ = std::make_shared<const HostVector>(std::move(hosts));
  // New hosts are marked unchecked before the workers see them.
  if (health_checker_) health_checker_->onHostsChanged();
  if (on_ready_) {
    auto cb = std::move(on_ready_);
    on_ready_ = nullptr;
    cb();
  } else if (changed && on_hosts_changed_) {
    on_hosts_changed_();
  }
}

ThreadLocalCluster::ThreadLocalCluster(network::EventLoop& loop,
                                       std::shared_ptr<const ClusterInfo> info,
                                       std::shared_ptr<const HostVector> hosts,
                                       RandomGenerator& random)
    : loop_(loop), info_(std::move(info)), random_(random) {
  updateHosts(std::move(hosts));
  if (info_->lb.policy == LbPolicy::kClusterProvided) {
    cleanup_timer_ = loop_.createTimer([this] { cleanupOriginalDstHosts(); });
    cleanup_timer_->enable(info_->cleanup_interval);
  }
}

void ThreadLocalCluster::cleanupOriginalDstHosts() {
  auto* lb = static_cast<OriginalDstLoadBalancer*>(lb_.get());
  lb->cleanup();
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (!lb->has(it->first)) {
      it->second.drain();
      if (it->second.idle()) {
        it = pools_.erase(it);
        continue;
      }
    }
    ++it;
  }
  cleanup_timer_->enable(info_->cleanup_interval);
}

ThreadLocalCluster::DetachedRequests::iterator ThreadLocalCluster::adoptDetached(
    std::unique_ptr<network::DeferredDeletable> request) {
  detached_.push_back(std::move(request));
  return std::prev(detached_.end());
}

void ThreadLocalCluster::finishDetached(DetachedRequests::iterator request) {
  loop_.deferredDelete(std::move(*request));
  detached_.erase(request);
}

void ThreadLocalCluster::updateHosts(std::shared_ptr<const HostVector> hosts) {
  if (info_->lb.policy == LbPolicy::kClusterProvided) {
    // The hosts are the connections' destinations, not a list: keep them.
    hosts_ = std::move(hosts);
    if (!lb_) lb_ = std::make_unique<OriginalDstLoadBalancer>(info_->original_dst_port_override);
    return;
  }
  hosts_ = std::move(hosts);
  LbConfig config = info_->lb;
  config.overprovisioning_factor = info_->overprovisioning_factor.load(std::memory_order_relaxed);
  lb_ = LoadBalancer::create(config, hosts_, random_);
  // Pools of hosts that left drain and go once idle.
  for (auto it = pools_.begin(); it != pools_.end();) {
    const bool present = std::any_of(hosts_->begin(), hosts_->end(),
                                     [&](const HostSharedPtr& h) { return h.get() == it->first; });
    if (!present) {
      it->second.drain();
      if (it->second.idle()) {
        it = pools_.erase(it);
        continue;
      }
    }
    ++it;
  }
}

void ThreadLocalCluster::drain() {
  for (auto& [host, pools] : pools_) pools.drain();
}

bool ThreadLocalCluster::idle() const {
  return detached_.empty() &&
         std::all_of(pools_.begin(), pools_.end(), [](const auto& p) { return p.second.idle(); });
}

HttpConnPool& ThreadLocalCluster::httpPool(const HostSharedPtr& host, bool downstream_http2,
                                           bool upgrade) {
  auto& pools = pools_[host.get()];
  const bool http2 =
      !upgrade && (info_->protocol == UpstreamProtocolPolicy::kHttp2 ||
                   (info_->protocol == UpstreamProtocolPolicy::kUseDownstream && downstream_http2));
  if (http2) {
    if (!pools.http2) pools.http2 = std::make_unique<Http2ConnPool>(loop_, host, info_);
    return *pools.http2;
  }
  if (!pools.http1) pools.http1 = std::make_unique<Http1ConnPool>(loop_, host, info_);
  return *pools.http1;
}

namespace {
thread_local ThreadLocalClusterManager* tls_cluster_manager = nullptr;
}

ThreadLocalClusterManager* ThreadLocalClusterManager::current() { return tls_cluster_manager; }
void ThreadLocalClusterManager::setCurrent(ThreadLocalClusterManager* manager) {
  tls_cluster_manager = manager;
}

const std::shared_ptr<ThreadLocalCluster>& ThreadLocalClusterManager::get(std::string_view name) {
  static const std::shared_ptr<ThreadLocalCluster> kNone;
  auto it = clusters_.find(name);
  return it == clusters_.end() ? kNone : it->second;
}

void ThreadLocalClusterManager::addOrUpdate(std::shared_ptr<const ClusterInfo> info,
                                            std::shared_ptr<const HostVector> hosts) {
  auto it = clusters_.find(info->name);
  if (it != clusters_.end() && it->second->info() == info) {
    it->second->updateHosts(std::move(hosts));
    return;
  }
  std::string name = info->name;
  auto fresh =
      std::make_shared<ThreadLocalCluster>(loop_, std::move(info), std::move(hosts), random_);
  if (it != clusters_.end()) {
    retire(std::move(it->second));
    it->second = std::move(fresh);
  } else {
    clusters_.emplace(std::move(name), std::move(fresh));
  }
}

void ThreadLocalClusterManager::remove(std::string_view name) {
  auto it = clusters_.find(name);
  if (it == clusters_.end()) return;
  retire(std::move(it->second));
  clusters_.erase(it);
}

void ThreadLocalClusterManager::retire(std::shared_ptr<ThreadLocalCluster> cluster) {
  cluster->drain();
  draining_.push_back(std::move(cluster));
  sweepDraining();
  if (!draining_.empty()) {
    if (!sweep_timer_) sweep_timer_ = loop_.createTimer([this] { sweepDraining(); });
    if (!sweep_timer_->enabled()) sweep_timer_->enable(std::chrono::seconds(1));
  }
}

void ThreadLocalClusterManager::sweepDraining() {
  // Gone once no request holds it and its last connection has closed.
  std::erase_if(draining_, [](const std::shared_ptr<ThreadLocalCluster>& c) {
    return c.use_count() == 1 && c->idle();
  });
  if (!draining_.empty() && sweep_timer_) sweep_timer_->enable(std::chrono::seconds(1));
}

ClusterManager::ClusterManager(network::EventLoop& main_loop, stats::Scope& root,
                               network::tls::SecretManager* secrets)
    : main_loop_(main_loop), root_(root), secrets_(secrets) {}

ClusterManager::~ClusterManager() = default;

Status ClusterManager::addCluster(const ClusterProto& proto) {
  if (has(proto.name())) {
    return invalidArgument("duplicate cluster name '" + proto.name() + "'");
  }
  auto cluster = Cluster::create(proto, root_, main_loop_, resolver_, secrets_);
  if (!cluster.ok()) return std::move(cluster).error();
  Cluster* raw = cluster->get();
  raw->setHostsChangedCallback([this, raw] { onHostsChanged(*raw); });
  clusters_[proto.name()] = std::move(cluster).value();
  return okStatus();
}

const Cluster* ClusterManager::get(std::string_view name) const {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

Result<bool> ClusterManager::addOrUpdateCluster(const ClusterProto& proto,
                                                const std::string& version_info) {
  const std::string& name = proto.name();
  auto active = dynamic_active_.find(name);
  if (clusters_.count(name) != 0 && active == dynamic_active_.end()) {
    return invalidArgument("cluster '" + name +
                           "': a static cluster of the same name exists and cannot be replaced");
  }
  // Unchanged config: nothing to do (Envoy compares the message the same way).
  auto warming = dynamic_warming_.find(name);
  const DynamicInfo* latest = warming != dynamic_warming_.end() ? &warming->second
                              : active != dynamic_active_.end() ? &active->second
                                                                : nullptr;
  if (latest != nullptr && latest->proto->SerializeAsString() == proto.SerializeAsString()) {
    return false;
  }
  auto cluster = Cluster::create(proto, root_, main_loop_, resolver_, secrets_);
  if (!cluster.ok()) return std::move(cluster).error().at("cluster '" + name + "'");
  if (auto previous = warming_.find(name); previous != warming_.end()) {
    main_loop_.deferredDelete(std::move(previous->second));
  }
  warming_[name] = std::move(cluster).value();
  dynamic_warming_[name] = DynamicInfo{version_info, std::chrono::system_clock::now(),
                                       std::make_shared<const ClusterProto>(proto)};
  if (!initialized_) return true;  // initialize() starts it with the static ones
  Cluster& raw = *warming_[name];
  raw.initialize([this, name] { activate(name); });
  if (!raw.edsServiceName().empty() && warming_.count(name) != 0) {
    auto cached = assignments_.find(raw.edsServiceName());
    if (cached != assignments_.end()) (void)raw.updateLoadAssignment(*cached->second);
  }
  return true;
}

void ClusterManager::activate(std::string name) {
  auto it = warming_.find(name);
  if (it == warming_.end()) return;
  std::unique_ptr<Cluster> cluster = std::move(it->second);
  warming_.erase(it);
  auto info = dynamic_warming_.extract(name);
  dynamic_active_[name] = std::move(info.mapped());
  Cluster* raw = cluster.get();
  raw->setHostsChangedCallback([this, raw] { onHostsChanged(*raw); });
  // The old cluster's object may still be referenced by a pending main-thread
  // callback (a DNS answer): destroy it after this one.
  auto old = clusters_.find(name);
  if (old != clusters_.end()) {
    main_loop_.deferredDelete(std::move(old->second));
    old->second = std::move(cluster);
  } else {
    clusters_.emplace(name, std::move(cluster));
  }
  SHEAVE_LOG_INFO("cds: cluster '{}' {}", name, old != clusters_.end() ? "updated" : "added");
  onHostsChanged(*raw);
  checkWarm();
}

bool ClusterManager::removeCluster(std::string_view name) {
  bool removed = false;
  if (auto w = warming_.find(name); w != warming_.end()) {
    main_loop_.deferredDelete(std::move(w->second));
    warming_.erase(w);
    dynamic_warming_.erase(dynamic_warming_.find(name));
    removed = true;
  }
  if (auto a = dynamic_active_.find(name); a != dynamic_active_.end()) {
    dynamic_active_.erase(a);
    auto c = clusters_.find(name);
    main_loop_.deferredDelete(std::move(c->second));
    clusters_.erase(c);
    const std::string key(name);
    for (auto* worker : workers_) {
      worker->loop().post([worker, key] { worker->remove(key); });
    }
    SHEAVE_LOG_INFO("cds: cluster '{}' removed", key);
    removed = true;
  }
  checkWarm();
  return removed;
}

std::vector<std::string> ClusterManager::dynamicClusterNames() const {
  std::vector<std::string> out;
  for (const auto& [name, info] : dynamic_active_) out.push_back(name);
  for (const auto& [name, info] : dynamic_warming_) {
    if (dynamic_active_.count(name) == 0) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status ClusterManager::updateEndpoints(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla) {
  const std::string& service = cla.cluster_name();
  if (service.empty()) return invalidArgument("cluster_name: an assignment needs a cluster name");
  // Validate once before anything changes.
  if (auto parsed = buildEndpoints(cla, false, "EDS"); !parsed.ok()) {
    return std::move(parsed).error().at("ClusterLoadAssignment '" + service + "'");
  }
  assignments_[service] =
      std::make_shared<const envoy::config::endpoint::v3::ClusterLoadAssignment>(cla);
  // Collected first: a warming cluster that gets its hosts moves to the
  // active ones while this runs (replaced ones are deleted only later).
  std::vector<Cluster*> targets;
  for (auto* map : {&clusters_, &warming_}) {
    for (auto& [name, cluster] : *map) {
      if (cluster->edsServiceName() == service) targets.push_back(cluster.get());
    }
  }
  for (Cluster* cluster : targets) SHEAVE_RETURN_IF_ERROR(cluster->updateLoadAssignment(cla));
  return okStatus();
}

std::vector<std::string> ClusterManager::edsServiceNames() const {
  std::vector<std::string> out;
  for (const auto* map : {&clusters_, &warming_}) {
    for (const auto& [name, cluster] : *map) {
      if (!cluster->edsServiceName().empty()) out.push_back(cluster->edsServiceName());
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void ClusterManager::whenWarm(std::function<void()> cb) {
  when_warm_.push_back(std::move(cb));
  checkWarm();
}

void ClusterManager::checkWarm() {
  if (!warming_.empty() || when_warm_.empty()) return;
  auto callbacks = std::move(when_warm_);
  when_warm_.clear();
  for (auto& cb : callbacks) cb();
}

void ClusterManager::initialize(std::function<void()> on_ready) {
  initialized_ = true;
  // Dynamic clusters that arrived before start-up warm now, on their own.
  std::vector<std::string> pending;
  for (const auto& [name, cluster] : warming_) pending.push_back(name);
  for (const auto& name : pending) {
    warming_[name]->initialize([this, name] { activate(name); });
  }
  initializing_ = clusters_.size();
  if (initializing_ == 0) {
    on_ready();
    return;
  }
  auto shared_ready = std::make_shared<std::function<void()>>(std::move(on_ready));
  for (auto& [name, cluster] : clusters_) {
    if (!cluster->edsServiceName().empty()) {
      // A static cluster fed by EDS: its endpoints come over the xDS
      // connection, which starts after this; it begins empty.
      cluster->initialize(nullptr);
      if (--initializing_ == 0) (*shared_ready)();
      continue;
    }
    cluster->initialize([this, shared_ready] {
      if (--initializing_ == 0) (*shared_ready)();
    });
  }
}

void ClusterManager::registerWorker(ThreadLocalClusterManager& worker) {
  workers_.push_back(&worker);
  for (auto& [name, cluster] : clusters_) {
    worker.loop().post([&worker, info = cluster->info(), hosts = cluster->hosts()] {
      worker.addOrUpdate(info, hosts);
    });
  }
}

void ClusterManager::onHostsChanged(const Cluster& cluster) {
  for (auto* worker : workers_) {
    worker->loop().post([worker, info = cluster.info(), hosts = cluster.hosts()] {
      worker->addOrUpdate(info, hosts);
    });
  }
}

}  // namespace sheave::upstream
