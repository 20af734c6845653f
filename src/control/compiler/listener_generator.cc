#include "control/compiler/listener_generator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "control/compiler/authorization_policy_builder.h"
#include "control/compiler/deterministic_any.h"
#include "control/compiler/istio_tls_context.h"
#include "control/compiler/names.h"
#include "control/compiler/tcp_telemetry.h"
#include "control/registry/protocol.h"
#include "envoy/config/core/v3/address.pb.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/listener/http_inspector/v3/http_inspector.pb.h"
#include "envoy/extensions/filters/listener/original_dst/v3/original_dst.pb.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "istio/proxy/peer_metadata/config.pb.h"
#include "istio/proxy/stats/config.pb.h"

namespace sheave::control {
namespace {

using envoy::config::listener::v3::Filter;
using envoy::config::listener::v3::FilterChain;
using envoy::config::listener::v3::Listener;
using envoy::config::listener::v3::ListenerFilter;
using envoy::config::listener::v3::ListenerFilterChainMatchPredicate;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

// Envoy's well-known extension names, as Istio writes them.
constexpr std::string_view kHttpConnectionManagerName =
    "envoy.filters.network.http_connection_manager";
constexpr std::string_view kTcpProxyName = "envoy.filters.network.tcp_proxy";
constexpr std::string_view kOriginalDstName = "envoy.filters.listener.original_dst";
constexpr std::string_view kTlsInspectorName = "envoy.filters.listener.tls_inspector";
constexpr std::string_view kHttpInspectorName = "envoy.filters.listener.http_inspector";
constexpr std::string_view kFaultName = "envoy.filters.http.fault";
constexpr std::string_view kCorsName = "envoy.filters.http.cors";
constexpr std::string_view kRouterName = "envoy.filters.http.router";
// Referenced by type URL only: the fault and cors configs on the listener are
// empty (their settings live per route), so no generated class is needed.
constexpr std::string_view kFaultTypeUrl =
    "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
constexpr std::string_view kCorsTypeUrl =
    "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";

// Istio's filter chain names.
constexpr std::string_view kPassthroughFilterChainName = "PassthroughFilterChain";
constexpr std::string_view kVirtualOutboundBlackholeChainName = "virtualOutbound-blackhole";
constexpr std::string_view kVirtualOutboundCatchAllTcpChainName = "virtualOutbound-catchall-tcp";
constexpr std::string_view kVirtualInboundBlackholeChainName = "virtualInbound-blackhole";
constexpr std::string_view kVirtualInboundCatchAllHttpChainName = "virtualInbound-catchall-http";

constexpr std::string_view kRawBufferTransport = "raw_buffer";
constexpr std::string_view kTlsTransport = "tls";
constexpr std::string_view kIstioServerName = "istio-envoy";
// What the http_inspector reports for plaintext HTTP/1.1 and HTTP/2
// (HTTP/1.0 is left to the TCP chain, as Istio does by default).
const std::vector<std::string>& plaintextHttpAlpns() {
  static const std::vector<std::string> kAlpns{"http/1.1", "h2c"};
  return kAlpns;
}

constexpr std::string_view kWildcardIpv4 = "0.0.0.0";
constexpr std::string_view kWildcardIpv6 = "::";
constexpr std::string_view kLocalhostIpv4 = "127.0.0.1";

// How a listener treats a port, Istio's ListenerProtocol.
enum class ListenerProtocol { kHttp, kTcp, kAuto, kNone };

ListenerProtocol listenerProtocolOf(Protocol protocol) {
  if (protocol == Protocol::kUnsupported) return ListenerProtocol::kAuto;
  if (isHttp(protocol)) return ListenerProtocol::kHttp;
  if (isTcp(protocol)) return ListenerProtocol::kTcp;
  return ListenerProtocol::kNone;  // UDP: no listener
}

bool isIpv6(std::string_view address) { return address.find(':') != std::string_view::npos; }

// SMTP, DNS, MySQL and MongoDB servers speak first: an http_inspector on
// their port would wait for client bytes that never come.
bool isServerFirst(uint32_t port, Protocol protocol) {
  return protocol == Protocol::kMySql || protocol == Protocol::kMongo || port == 25 || port == 53 ||
         port == 3306 || port == 27017;
}

google::protobuf::Duration toDuration(std::chrono::milliseconds ms) {
  google::protobuf::Duration d;
  d.set_seconds(ms.count() / 1000);
  d.set_nanos(static_cast<int32_t>((ms.count() % 1000) * 1000000));
  return d;
}

void setAddress(envoy::config::core::v3::Address* out, std::string_view ip, uint32_t port) {
  auto* sa = out->mutable_socket_address();
  sa->set_address(std::string(ip));
  sa->set_port_value(port);
}

void addCidr(envoy::config::listener::v3::FilterChainMatch* match, std::string_view cidr) {
  auto* range = match->add_prefix_ranges();
  auto slash = cidr.find('/');
  range->set_address_prefix(std::string(cidr.substr(0, slash)));
  uint32_t len = isIpv6(cidr) ? 128 : 32;
  if (slash != std::string_view::npos) {
    len = static_cast<uint32_t>(std::stoul(std::string(cidr.substr(slash + 1))));
  }
  range->mutable_prefix_len()->set_value(len);
}

template <typename Message>
ListenerFilter listenerFilter(std::string_view name) {
  ListenerFilter filter;
  filter.set_name(std::string(name));
  filter.mutable_typed_config()->PackFrom(Message());
  return filter;
}

Filter tcpProxyFilter(std::string_view stat_prefix, std::string_view cluster) {
  TcpProxy tcp;
  tcp.set_stat_prefix(std::string(stat_prefix));
  tcp.set_cluster(std::string(cluster));
  Filter filter;
  filter.set_name(std::string(kTcpProxyName));
  filter.mutable_typed_config()->PackFrom(tcp);
  return filter;
}

// The HCM settings every sidecar HCM shares (Istio's
// buildHTTPConnectionManager): codec, normalization, websocket upgrades, no
// stream idle timeout, and the HTTP filters in Istio's order. Telemetry
// filters (metadata exchange, stats) and access logs come with the telemetry
// issue; authn/authz filters with the security one.
HttpConnectionManager baseConnectionManager(std::string stat_prefix, bool http2) {
  HttpConnectionManager hcm;
  hcm.set_codec_type(HttpConnectionManager::AUTO);
  hcm.set_stat_prefix(std::move(stat_prefix));
  hcm.set_path_with_escaped_slashes_action(HttpConnectionManager::KEEP_UNCHANGED);
  hcm.mutable_normalize_path()->set_value(true);
  hcm.mutable_use_remote_address()->set_value(false);
  hcm.add_upgrade_configs()->set_upgrade_type("websocket");
  hcm.mutable_stream_idle_timeout();  // 0s: disabled, as Istio
  hcm.set_server_name(std::string(kIstioServerName));
  if (http2) hcm.mutable_http2_protocol_options();
  auto* fault = hcm.add_http_filters();
  fault->set_name(std::string(kFaultName));
  fault->mutable_typed_config()->set_type_url(std::string(kFaultTypeUrl));
  auto* cors = hcm.add_http_filters();
  cors->set_name(std::string(kCorsName));
  cors->mutable_typed_config()->set_type_url(std::string(kCorsTypeUrl));
  auto* router = hcm.add_http_filters();
  router->set_name(std::string(kRouterName));
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
  return hcm;
}

// Istio's telemetry filters: istio.metadata_exchange first (before authn,
// so even a denied request's peer is known) and istio.stats just before the
// router, as istiod emits them. Inbound discovers the downstream peer and
// answers it; outbound tells the upstream who calls and learns who answered,
// without the Host header as a fallback for destination_service (traffic to
// services outside the registry stays "unknown", bounded cardinality).
void addTelemetryFilters(HttpConnectionManager& hcm, bool inbound, const MeshConfig& mesh) {
  if (!mesh.enable_istio_metrics) return;
  io::istio::http::peer_metadata::Config mx;
  if (inbound) {
    mx.add_downstream_discovery()->mutable_istio_headers();
    mx.add_downstream_discovery()->mutable_workload_discovery();
    mx.add_downstream_propagation()->mutable_istio_headers();
  } else {
    mx.add_upstream_discovery()->mutable_istio_headers();
    mx.add_upstream_discovery()->mutable_workload_discovery();
    mx.add_upstream_propagation()->mutable_istio_headers()->set_skip_external_clusters(true);
  }
  ::stats::PluginConfig stats;
  if (!inbound) stats.set_disable_host_header_fallback(true);

  auto* filters = hcm.mutable_http_filters();
  std::vector<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter> rest(
      filters->begin(), filters->end());
  filters->Clear();
  auto* mx_filter = filters->Add();
  mx_filter->set_name("istio.metadata_exchange");
  packDeterministicInto(mx, mx_filter->mutable_typed_config());
  for (size_t i = 0; i < rest.size(); ++i) {
    if (i + 1 == rest.size()) {
      auto* stats_filter = filters->Add();
      stats_filter->set_name("istio.stats");
      packDeterministicInto(stats, stats_filter->mutable_typed_config());
    }
    *filters->Add() = std::move(rest[i]);
  }
}

Filter hcmFilter(const HttpConnectionManager& hcm) {
  Filter filter;
  filter.set_name(std::string(kHttpConnectionManagerName));
  filter.mutable_typed_config()->PackFrom(hcm);
  return filter;
}

std::string errorKind(const Service& service) {
  return service.origin == ServiceOrigin::kServiceEntry ? "ServiceEntry" : "Service";
}

void report(std::vector<ResourceError>* errors, const Service* service, std::string message) {
  if (errors == nullptr) return;
  std::string where = service != nullptr ? service->source.toString() : "";
  if (!where.empty()) message = where + ": " + message;
  ResourceError error{SourceLocation{}, "", "", "", invalidArgument(std::move(message))};
  if (service != nullptr) {
    error.source = service->source;
    error.kind = errorKind(*service);
    error.namespace_name = service->namespace_name;
    error.name = service->resource_name;
  }
  errors->push_back(std::move(error));
}

// ---------------------------------------------------------------------------
// Outbound

// One filter chain of an outbound listener before it becomes protobuf.
struct OutboundChain {
  bool http = false;
  bool http2 = false;  // HTTP chain: a service on the port speaks HTTP/2 (h2c, gRPC)
  // Match.
  std::string cidr;
  std::vector<std::string> server_names;
  std::vector<std::string> application_protocols;
  std::string transport_protocol;
  // TCP chain target.
  std::string cluster;
  const Service* service = nullptr;

  bool matchAll() const {
    return cidr.empty() && server_names.empty() && application_protocols.empty() &&
           transport_protocol.empty();
  }
  bool sameMatch(const OutboundChain& other) const {
    return cidr == other.cidr && server_names == other.server_names &&
           application_protocols == other.application_protocols &&
           transport_protocol == other.transport_protocol;
  }
};

struct Binding {
  std::string address;  // empty: decided per service (VIP or wildcard)
  bool bind_to_port = false;
};

struct OutboundEntry {
  std::string address;
  uint32_t port = 0;
  bool bind_to_port = false;
  bool locked = false;  // made for a Sidecar egress port: a catch-all egress listener adds nothing
  ListenerProtocol protocol = ListenerProtocol::kNone;
  Protocol first_protocol = Protocol::kUnsupported;
  const Service* first_service = nullptr;
  std::vector<OutboundChain> chains;
};

class OutboundBuilder {
 public:
  OutboundBuilder(const ListenerInputs& inputs, std::vector<ResourceError>* errors)
      : inputs_(inputs), errors_(errors) {
    wildcard_ =
        std::string(isIpv6(inputs.proxy ? inputs.proxy->ip() : "") ? kWildcardIpv6 : kWildcardIpv4);
  }

  // One Sidecar egress listener (or the mesh default when egress is null).
  void addEgressListener(const IstioEgressListener* egress,
                         const std::vector<const Service*>& services) {
    Binding bind;
    if (egress != nullptr) {
      if (egress->bind.rfind("unix://", 0) == 0) {
        report(errors_, nullptr,
               "Sidecar egress bind '" + egress->bind +
                   "': unix domain socket listeners are not supported yet; skipped");
        return;
      }
      bind.bind_to_port = egress->capture_mode == CaptureMode::kNone;
      if (!egress->bind.empty()) {
        bind.address = egress->bind;
      } else if (bind.bind_to_port) {
        bind.address = std::string(kLocalhostIpv4);
      }
    }
    if (egress != nullptr && egress->port.has_value()) {
      const SidecarPort& port = *egress->port;
      Protocol protocol = parseProtocol(port.protocol);
      for (const Service* service : services) {
        // A port the service does not declare still reaches a single-port
        // service on its only port; multi-port services need a VirtualService.
        const ServicePortInfo* service_port = service->findPort(port.number);
        if (service_port == nullptr && service->ports.size() == 1) {
          service_port = &service->ports.front();
        }
        uint32_t cluster_port = service_port != nullptr ? service_port->port : port.number;
        add(*service, port.number, protocol, cluster_port, bind);
      }
      return;
    }
    // A catch-all egress listener: ports already claimed by an egress
    // listener with a port stay as the user wrote them.
    for (auto& [key, entry] : entries_) entry.locked = true;
    for (const Service* service : services) {
      for (const ServicePortInfo& port : service->ports) {
        add(*service, port.port, port.protocol, port.port, bind);
      }
    }
  }

  std::vector<Listener> finish() const {
    std::vector<Listener> out;
    out.reserve(entries_.size());
    for (const auto& [key, entry] : entries_) out.push_back(build(entry));
    return out;
  }

 private:
  std::vector<OutboundChain> tcpChains(const Service& service, uint32_t cluster_port,
                                       Protocol protocol, const std::string& address,
                                       const std::string& cidr) const {
    OutboundChain chain;
    chain.cluster = outboundClusterName(cluster_port, "", service.hostname);
    chain.service = &service;
    chain.cidr = cidr;
    // TLS to a service without an address (an external TLS host) can only
    // be told apart by SNI on the shared wildcard listener.
    if (isTls(protocol) && address == wildcard_ && cidr.empty()) {
      chain.server_names.push_back(service.hostname);
    }
    return {chain};
  }

  OutboundChain httpChain(Protocol protocol, bool sniffed) const {
    OutboundChain chain;
    chain.http = true;
    chain.http2 = isHttp2(protocol);
    if (sniffed) {
      chain.application_protocols = plaintextHttpAlpns();
      chain.transport_protocol = std::string(kRawBufferTransport);
    }
    return chain;
  }

  void add(const Service& service, uint32_t port, Protocol protocol, uint32_t cluster_port,
           const Binding& bind) {
    ListenerProtocol lp = listenerProtocolOf(protocol);
    if (lp == ListenerProtocol::kNone || port == 0) return;

    std::string address = bind.address;
    std::string cidr;
    if (address.empty()) {
      if (lp == ListenerProtocol::kHttp || service.vip.empty()) {
        address = wildcard_;
      } else if (service.vip.find('/') != std::string::npos) {
        // A CIDR: the wildcard listener, told apart by destination prefix.
        address = wildcard_;
        cidr = service.vip;
      } else {
        address = service.vip;
      }
    }
    auto key = std::make_pair(address, port);
    auto it = entries_.find(key);
    OutboundEntry* current = it == entries_.end() ? nullptr : &it->second;
    if (current != nullptr && current->locked) return;

    std::vector<OutboundChain> chains;
    ListenerProtocol entry_protocol = lp;
    bool merge = false;
    switch (lp) {
      case ListenerProtocol::kHttp: {
        if (current != nullptr) {
          if (current->protocol != ListenerProtocol::kTcp) {
            // Another HTTP service on the port: its virtual host is in the
            // same RDS route config; only the HTTP/2 settings may widen.
            for (auto& chain : current->chains) {
              if (chain.http) chain.http2 = chain.http2 || isHttp2(protocol);
            }
            return;
          }
          merge = true;
        }
        // On the wildcard address the HTTP chain only takes what the
        // http_inspector recognised; everything else falls through to the
        // passthrough chain, so non-HTTP traffic to unknown hosts on this
        // port still flows (Istio marks such listeners as sniffed).
        bool sniffed = address == wildcard_;
        chains.push_back(httpChain(protocol, sniffed));
        if (sniffed) entry_protocol = ListenerProtocol::kAuto;
        break;
      }
      case ListenerProtocol::kTcp:
        chains = tcpChains(service, cluster_port, protocol, address, cidr);
        merge = current != nullptr;
        break;
      case ListenerProtocol::kAuto:
        if (current != nullptr) {
          // Already sniffed: HTTP to this service is in the route config,
          // the rest passes through. A plain HTTP listener is replaced
          // (Istio's AutoOverHTTP); a TCP one gains the HTTP chain.
          if (current->protocol == ListenerProtocol::kAuto) return;
          merge = current->protocol == ListenerProtocol::kTcp;
        }
        chains = tcpChains(service, cluster_port, protocol, address, cidr);
        chains.push_back(httpChain(protocol, /*sniffed=*/true));
        break;
      case ListenerProtocol::kNone:
        return;
    }

    if (current != nullptr && merge) {
      bool incoming_http =
          std::any_of(chains.begin(), chains.end(), [](const OutboundChain& c) { return c.http; });
      bool incoming_tcp =
          std::any_of(chains.begin(), chains.end(), [](const OutboundChain& c) { return !c.http; });
      bool had_both = hasHttpChain(*current) && hasTcpChain(*current);
      bool will_have_both =
          (hasHttpChain(*current) || incoming_http) && (hasTcpChain(*current) || incoming_tcp);
      if (!had_both && will_have_both &&
          (isServerFirst(port, protocol) || isServerFirst(port, current->first_protocol))) {
        report(errors_, &service,
               "outbound listener " + listenerName(address, port) + ": " + service.hostname + " (" +
                   std::string(protocolName(protocol)) + ") conflicts with " +
                   current->first_service->hostname + " (" +
                   std::string(protocolName(current->first_protocol)) +
                   ") on a port whose server speaks first, where protocol sniffing cannot "
                   "work; kept " +
                   current->first_service->hostname);
        return;
      }
      mergeChains(*current, std::move(chains), service, port, protocol);
      if (lp != current->protocol) current->protocol = ListenerProtocol::kAuto;
      return;
    }

    OutboundEntry entry;
    entry.address = address;
    entry.port = port;
    entry.bind_to_port = bind.bind_to_port;
    entry.locked = false;
    entry.protocol = entry_protocol;
    entry.first_protocol = protocol;
    entry.first_service = &service;
    entry.chains = std::move(chains);
    if (current != nullptr) {
      // Replacing an HTTP-only sniffed entry: keep its HTTP/2 knowledge.
      for (const auto& old : current->chains) {
        for (auto& chain : entry.chains) {
          if (chain.http && old.http) chain.http2 = chain.http2 || old.http2;
        }
      }
    }
    entries_[key] = std::move(entry);
  }

  static bool hasHttpChain(const OutboundEntry& entry) {
    return std::any_of(entry.chains.begin(), entry.chains.end(),
                       [](const OutboundChain& c) { return c.http; });
  }
  static bool hasTcpChain(const OutboundEntry& entry) {
    return std::any_of(entry.chains.begin(), entry.chains.end(),
                       [](const OutboundChain& c) { return !c.http; });
  }

  void mergeChains(OutboundEntry& entry, std::vector<OutboundChain> incoming,
                   const Service& service, uint32_t port, Protocol protocol) {
    for (auto& chain : incoming) {
      auto same = std::find_if(entry.chains.begin(), entry.chains.end(),
                               [&](const OutboundChain& c) { return c.sameMatch(chain); });
      if (same == entry.chains.end()) {
        entry.chains.push_back(std::move(chain));
        continue;
      }
      if (chain.http && same->http) {
        same->http2 = same->http2 || chain.http2;
        continue;
      }
      if (!chain.http && !same->http && same->cluster == chain.cluster) continue;
      std::string existing =
          same->service != nullptr ? same->service->hostname : entry.first_service->hostname;
      report(errors_, &service,
             "outbound listener " + listenerName(entry.address, port) + ": " + service.hostname +
                 " (" + std::string(protocolName(protocol)) + ") cannot be told apart from " +
                 existing + " on this port (neither has an address to match on); kept " + existing);
    }
  }

  Listener build(const OutboundEntry& entry) const {
    Listener l;
    l.set_name(listenerName(entry.address, entry.port));
    setAddress(l.mutable_address(), entry.address, entry.port);
    l.set_traffic_direction(envoy::config::core::v3::OUTBOUND);
    l.set_continue_on_listener_filters_timeout(true);
    if (!entry.bind_to_port) l.mutable_bind_to_port()->set_value(false);

    bool need_tls = false;
    bool need_http = false;
    for (const auto& chain : entry.chains) {
      need_tls = need_tls || !chain.server_names.empty();
      need_http = need_http || !chain.application_protocols.empty();
    }
    // With an ALPN match but no transport_protocol Envoy would inject a
    // tls_inspector on its own; Istio adds it explicitly, and so do we.
    if (need_tls || need_http) {
      *l.add_listener_filters() =
          listenerFilter<envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector>(
              kTlsInspectorName);
    }
    if (need_http) {
      *l.add_listener_filters() =
          listenerFilter<envoy::extensions::filters::listener::http_inspector::v3::HttpInspector>(
              kHttpInspectorName);
      *l.mutable_listener_filters_timeout() = toDuration(inputs_.mesh->protocol_detection_timeout);
    } else {
      l.mutable_listener_filters_timeout();  // 0s: no listener filter waits
    }

    std::optional<FilterChain> default_chain;
    for (const auto& spec : entry.chains) {
      FilterChain chain;
      if (spec.http) {
        auto hcm = baseConnectionManager("outbound_" + l.name(), spec.http2);
        addTelemetryFilters(hcm, /*inbound=*/false, *inputs_.mesh);
        auto* rds = hcm.mutable_rds();
        auto* source = rds->mutable_config_source();
        source->mutable_ads();
        source->mutable_initial_fetch_timeout();
        source->set_resource_api_version(envoy::config::core::v3::V3);
        rds->set_route_config_name(outboundRouteName(entry.port));
        *chain.add_filters() = hcmFilter(hcm);
      } else {
        if (inputs_.mesh->enable_istio_metrics) *chain.add_filters() = tcpStatsFilter(true);
        *chain.add_filters() = tcpProxyFilter(spec.cluster, spec.cluster);
      }
      if (spec.matchAll()) {
        default_chain = std::move(chain);
        continue;
      }
      auto* match = chain.mutable_filter_chain_match();
      if (!spec.cidr.empty()) addCidr(match, spec.cidr);
      for (const auto& sni : spec.server_names) match->add_server_names(sni);
      match->set_transport_protocol(spec.transport_protocol);
      for (const auto& alpn : spec.application_protocols) match->add_application_protocols(alpn);
      *l.add_filter_chains() = std::move(chain);
    }
    if (default_chain.has_value() && l.filter_chains_size() == 0) {
      *l.add_filter_chains() = std::move(*default_chain);
    } else if (default_chain.has_value()) {
      *l.mutable_default_filter_chain() = std::move(*default_chain);
    } else {
      auto* chain = l.mutable_default_filter_chain();
      chain->set_name(std::string(kPassthroughFilterChainName));
      chain->mutable_filter_chain_match();
      addCatchAllFilters(*chain);
    }
    return l;
  }

 public:
  // Where traffic no listener claims goes: the passthrough (or an egress
  // proxy's cluster) under ALLOW_ANY, the black hole under REGISTRY_ONLY.
  std::string egressCluster() const {
    if (inputs_.outbound_policy != OutboundTrafficPolicyMode::kAllowAny) {
      return std::string(kBlackHoleClusterName);
    }
    if (inputs_.sidecar != nullptr && inputs_.sidecar->outbound_traffic_policy.has_value() &&
        inputs_.sidecar->outbound_traffic_policy->egress_proxy.has_value()) {
      const Destination& proxy = *inputs_.sidecar->outbound_traffic_policy->egress_proxy;
      uint32_t port = proxy.port.has_value() ? proxy.port->number : 0;
      return outboundClusterName(port, proxy.subset, proxy.host);
    }
    return std::string(kPassthroughClusterName);
  }
  // The catch-all chain's filters: Istio's TCP metrics (passthrough traffic
  // is counted too), then the proxy to the egress cluster.
  void addCatchAllFilters(FilterChain& chain) const {
    std::string cluster = egressCluster();
    if (inputs_.mesh->enable_istio_metrics) *chain.add_filters() = tcpStatsFilter(true);
    *chain.add_filters() = tcpProxyFilter(cluster, cluster);
  }
  const std::string& wildcard() const { return wildcard_; }

 private:
  const ListenerInputs& inputs_;
  std::vector<ResourceError>* errors_;
  std::string wildcard_;
  std::map<std::pair<std::string, uint32_t>, OutboundEntry> entries_;
};

Listener buildVirtualOutbound(const ListenerInputs& inputs, const OutboundBuilder& outbound) {
  Listener l;
  l.set_name(std::string(kVirtualOutboundListenerName));
  setAddress(l.mutable_address(), outbound.wildcard(), inputs.mesh->proxy_listen_port);
  l.mutable_use_original_dst()->set_value(true);
  l.set_traffic_direction(envoy::config::core::v3::OUTBOUND);
  *l.add_listener_filters() =
      listenerFilter<envoy::extensions::filters::listener::original_dst::v3::OriginalDst>(
          kOriginalDstName);
  // Connections addressed to 15001 itself were not redirected: passing them
  // through would loop back into this listener.
  auto* blackhole = l.add_filter_chains();
  blackhole->set_name(std::string(kVirtualOutboundBlackholeChainName));
  blackhole->mutable_filter_chain_match()->mutable_destination_port()->set_value(
      inputs.mesh->proxy_listen_port);
  *blackhole->add_filters() = tcpProxyFilter(kBlackHoleClusterName, kBlackHoleClusterName);
  auto* catch_all = l.mutable_default_filter_chain();
  catch_all->set_name(std::string(kVirtualOutboundCatchAllTcpChainName));
  outbound.addCatchAllFilters(*catch_all);
  return l;
}

// ---------------------------------------------------------------------------
// Inbound

// One inbound port (Istio's inboundChainConfig).
struct InboundChainConfig {
  uint32_t service_port = 0;
  uint32_t target_port = 0;  // 0 for the passthrough chains: any port
  Protocol protocol = Protocol::kUnsupported;
  std::string hostname;  // for the route decorator and conflict messages
  const Service* service = nullptr;
  std::string cluster;
  std::string bind;
  bool bind_to_port = false;
  bool passthrough = false;

  std::string name(ListenerProtocol lp) const {
    if (passthrough) {
      return std::string(lp == ListenerProtocol::kHttp ? kVirtualInboundCatchAllHttpChainName
                                                       : kVirtualInboundListenerName);
    }
    return listenerName(bind, target_port);
  }
  std::string httpStatPrefix() const {
    return passthrough ? cluster : "inbound_" + name(ListenerProtocol::kHttp);
  }
};

// One filter chain match variant for an inbound port (Istio's
// FilterChainMatchOptions): which bytes it accepts and whether it
// terminates the mesh's mTLS.
struct InboundMatchOption {
  ListenerProtocol protocol = ListenerProtocol::kTcp;  // kHttp or kTcp
  std::vector<std::string> application_protocols;
  std::string transport_protocol;
  bool mtls = false;
};

// The ALPNs Istio's clients offer inside mTLS: HTTP detected by the client
// sidecar, and everything a sidecar sends (TCP, or HTTP without the ALPN
// override).
const std::vector<std::string>& mtlsHttpAlpns() {
  static const std::vector<std::string> kAlpns{"istio-http/1.0", "istio-http/1.1", "istio-h2"};
  return kAlpns;
}
const std::vector<std::string>& mtlsTcpAlpns() {
  static const std::vector<std::string> kAlpns{"istio-peer-exchange", "istio"};
  return kAlpns;
}
const std::vector<std::string>& allMtlsAlpns() {
  static const std::vector<std::string> kAlpns{"istio", "istio-peer-exchange", "istio-http/1.0",
                                               "istio-http/1.1", "istio-h2"};
  return kAlpns;
}

// Istio's getFilterChainMatchOptions. STRICT has no raw_buffer option at
// all, so a plaintext client finds no chain and is closed. In PERMISSIVE,
// TLS that is not the mesh's (no istio ALPN: an application's own TLS) goes
// to a TCP chain untouched, so it is never terminated twice; inside mTLS,
// TLS/HTTPS ports are TCP chains and forward the application's TLS as bytes.
std::vector<InboundMatchOption> matchOptions(ListenerProtocol lp, MutualTLSMode mode) {
  std::string raw(kRawBufferTransport);
  std::string tls(kTlsTransport);
  constexpr auto kHttp = ListenerProtocol::kHttp;
  constexpr auto kTcp = ListenerProtocol::kTcp;
  switch (mode) {
    case MutualTLSMode::kStrict:
      switch (lp) {
        case kHttp:
          return {{kHttp, {}, tls, true}};
        case ListenerProtocol::kAuto:
          return {{kHttp, mtlsHttpAlpns(), tls, true}, {kTcp, {}, tls, true}};
        default:
          return {{kTcp, {}, tls, true}};
      }
    case MutualTLSMode::kPermissive:
      switch (lp) {
        case kHttp:
          return {{kHttp, allMtlsAlpns(), tls, true}, {kHttp, {}, raw, false}};
        case ListenerProtocol::kAuto:
          return {{kHttp, mtlsHttpAlpns(), tls, true},
                  {kHttp, plaintextHttpAlpns(), raw, false},
                  {kTcp, mtlsTcpAlpns(), tls, true},
                  {kTcp, {}, raw, false},
                  {kTcp, {}, tls, false}};
        default:
          return {
              {kTcp, allMtlsAlpns(), tls, true}, {kTcp, {}, tls, false}, {kTcp, {}, raw, false}};
      }
    default:
      switch (lp) {
        case kHttp:
          return {{kHttp, {}, raw, false}};
        case ListenerProtocol::kAuto:
          return {{kHttp, plaintextHttpAlpns(), raw, false}, {kTcp, {}, raw, false}};
        default:
          return {{kTcp, {}, raw, false}};
      }
  }
}

// The inline route config of an inbound HCM: everything to the local
// workload's cluster. (The routes generator has the public
// buildInboundRouteConfiguration(); this private copy keeps the listener
// builder independent of it until both land.)
envoy::config::route::v3::RouteConfiguration inboundRouteConfig(const InboundChainConfig& cc) {
  envoy::config::route::v3::RouteConfiguration rc;
  rc.set_name(cc.cluster);
  rc.mutable_validate_clusters()->set_value(false);
  auto* vh = rc.add_virtual_hosts();
  vh->set_name("inbound|http|" + std::to_string(cc.service_port));
  vh->add_domains("*");
  auto* route = vh->add_routes();
  route->set_name("default");
  route->mutable_match()->set_prefix("/");
  auto* action = route->mutable_route();
  action->set_cluster(cc.cluster);
  action->mutable_timeout();  // 0s: no timeout on the inbound side
  auto* msd = action->mutable_max_stream_duration();
  msd->mutable_max_stream_duration();
  msd->mutable_grpc_timeout_header_max();
  route->mutable_decorator()->set_operation(cc.hostname + ":" + std::to_string(cc.service_port) +
                                            "/*");
  return rc;
}

void setInboundPathNormalization(HttpConnectionManager& hcm,
                                 MeshConfig::PathNormalization normalization) {
  using PathNormalization = MeshConfig::PathNormalization;
  hcm.mutable_normalize_path()->set_value(normalization != PathNormalization::kNone);
  hcm.set_merge_slashes(normalization == PathNormalization::kMergeSlashes ||
                        normalization == PathNormalization::kDecodeAndMergeSlashes);
  if (normalization == PathNormalization::kDecodeAndMergeSlashes) {
    hcm.set_path_with_escaped_slashes_action(HttpConnectionManager::UNESCAPE_AND_FORWARD);
  }
}

std::vector<Filter> inboundFilters(const ListenerInputs& inputs, const InboundChainConfig& cc,
                                   ListenerProtocol lp) {
  if (lp == ListenerProtocol::kHttp) {
    auto hcm = baseConnectionManager(cc.httpStatPrefix(), isHttp2(cc.protocol));
    // Authentication and authorization run first, so that a denied request
    // never reaches fault injection or the router.
    if (!inputs.inbound_http_filters.empty()) {
      auto* filters = hcm.mutable_http_filters();
      std::vector<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter>
          rest(filters->begin(), filters->end());
      filters->Clear();
      for (const auto& f : inputs.inbound_http_filters) *filters->Add() = f;
      for (auto& f : rest) *filters->Add() = std::move(f);
    }
    addTelemetryFilters(hcm, /*inbound=*/true, *inputs.mesh);
    setInboundPathNormalization(hcm, inputs.mesh->path_normalization);
    // The workload learns who called it from x-forwarded-client-cert once
    // mTLS is on.
    hcm.set_forward_client_cert_details(HttpConnectionManager::APPEND_FORWARD);
    auto* details = hcm.mutable_set_current_client_cert_details();
    details->mutable_subject()->set_value(true);
    details->set_uri(true);
    details->set_dns(true);
    *hcm.mutable_route_config() = inboundRouteConfig(cc);
    return {hcmFilter(hcm)};
  }
  // Istio's order: the metadata exchange first (even a denied caller is known), then the
  // authorization filters, then istio.stats just before the proxy.
  std::vector<Filter> out;
  if (inputs.mesh->enable_istio_metrics) out.push_back(tcpMetadataExchangeFilter());
  out.insert(out.end(), inputs.inbound_network_filters.begin(),
             inputs.inbound_network_filters.end());
  if (inputs.mesh->enable_istio_metrics) out.push_back(tcpStatsFilter(false));
  out.push_back(tcpProxyFilter(cc.cluster, cc.cluster));
  return out;
}

// The passthrough chains follow the workload-wide mode; a workload port
// follows its portLevelMtls, if any.
MutualTLSMode inboundMode(const ListenerInputs& inputs, const InboundChainConfig& cc) {
  if (!inputs.peer_authentication.has_value()) return MutualTLSMode::kDisable;
  return cc.passthrough ? inputs.peer_authentication->mode()
                        : inputs.peer_authentication->modeFor(cc.target_port);
}

std::vector<FilterChain> inboundChains(const ListenerInputs& inputs, const InboundChainConfig& cc) {
  std::vector<FilterChain> out;
  for (const auto& option :
       matchOptions(listenerProtocolOf(cc.protocol), inboundMode(inputs, cc))) {
    FilterChain chain;
    chain.set_name(cc.name(option.protocol));
    auto* match = chain.mutable_filter_chain_match();
    if (cc.target_port > 0) match->mutable_destination_port()->set_value(cc.target_port);
    match->set_transport_protocol(option.transport_protocol);
    for (const auto& alpn : option.application_protocols) match->add_application_protocols(alpn);
    if (option.mtls) {
      auto* socket = chain.mutable_transport_socket();
      socket->set_name("envoy.transport_sockets.tls");
      socket->mutable_typed_config()->PackFrom(istioInboundTlsContext(
          inputs.mesh->trust_domain, option.protocol == ListenerProtocol::kHttp));
    }
    for (auto& filter : inboundFilters(inputs, cc, option.protocol)) {
      *chain.add_filters() = std::move(filter);
    }
    out.push_back(std::move(chain));
  }
  return out;
}

ListenerFilterChainMatchPredicate excludePorts(const std::vector<uint32_t>& ports) {
  std::vector<ListenerFilterChainMatchPredicate> ranges;
  for (uint32_t port : ports) {
    ListenerFilterChainMatchPredicate range;
    // [start, end)
    range.mutable_destination_port_range()->set_start(static_cast<int32_t>(port));
    range.mutable_destination_port_range()->set_end(static_cast<int32_t>(port + 1));
    ranges.push_back(std::move(range));
  }
  if (ranges.size() == 1) return ranges.front();
  ListenerFilterChainMatchPredicate any;
  for (auto& range : ranges) *any.mutable_or_match()->add_rules() = std::move(range);
  return any;
}

// Istio's populateListenerFilters: original_dst for redirected listeners,
// then a tls_inspector and an http_inspector only where some chain matches
// on what they detect, disabled on the other ports so that server-first and
// declared ports are never sniffed.
void setInboundListenerFilters(Listener& l, bool bind_to_port) {
  if (!bind_to_port) {
    *l.add_listener_filters() =
        listenerFilter<envoy::extensions::filters::listener::original_dst::v3::OriginalDst>(
            kOriginalDstName);
  }
  struct Inspectors {
    bool tls = false;
    bool http = false;
  };
  std::map<uint32_t, Inspectors> by_port;
  for (const auto& chain : l.filter_chains()) {
    const auto& match = chain.filter_chain_match();
    auto& inspectors = by_port[match.has_destination_port() ? match.destination_port().value() : 0];
    inspectors.tls = inspectors.tls || match.transport_protocol() == kTlsTransport;
    for (const auto& alpn : match.application_protocols()) {
      if (alpn == "http/1.1" || alpn == "h2c") inspectors.http = true;
    }
  }
  bool any_tls = false;
  bool any_http = false;
  for (const auto& [port, inspectors] : by_port) {
    any_tls = any_tls || inspectors.tls;
    any_http = any_http || inspectors.http;
  }
  if (any_tls) {
    auto filter =
        listenerFilter<envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector>(
            kTlsInspectorName);
    auto any_port = by_port.find(0);
    bool default_enabled = any_port != by_port.end() && any_port->second.tls;
    std::vector<uint32_t> ports;
    for (const auto& [port, inspectors] : by_port) {
      if (port != 0 && inspectors.tls != default_enabled) ports.push_back(port);
    }
    if (!ports.empty()) {
      if (default_enabled) {
        *filter.mutable_filter_disabled() = excludePorts(ports);
      } else {
        *filter.mutable_filter_disabled()->mutable_not_match() = excludePorts(ports);
      }
    }
    *l.add_listener_filters() = std::move(filter);
  }
  if (any_http) {
    auto filter =
        listenerFilter<envoy::extensions::filters::listener::http_inspector::v3::HttpInspector>(
            kHttpInspectorName);
    std::vector<uint32_t> ports;
    for (const auto& [port, inspectors] : by_port) {
      if (!inspectors.http) ports.push_back(port);
    }
    if (!ports.empty()) *filter.mutable_filter_disabled() = excludePorts(ports);
    *l.add_listener_filters() = std::move(filter);
  }
}

Listener inboundListener(const ListenerInputs& inputs, std::string name, std::string_view address,
                         uint32_t port, bool bind_to_port, std::vector<FilterChain> chains) {
  Listener l;
  l.set_name(std::move(name));
  setAddress(l.mutable_address(), address, port);
  l.set_traffic_direction(envoy::config::core::v3::INBOUND);
  l.set_continue_on_listener_filters_timeout(true);
  for (auto& chain : chains) *l.add_filter_chains() = std::move(chain);
  setInboundListenerFilters(l, bind_to_port);
  *l.mutable_listener_filters_timeout() = toDuration(inputs.mesh->protocol_detection_timeout);
  return l;
}

bool isGlobalUnicast(std::string_view ip) {
  if (ip.empty() || ip == kWildcardIpv4 || ip == kWildcardIpv6 || ip == "::1") return false;
  if (ip.rfind("127.", 0) == 0 || ip.rfind("169.254.", 0) == 0) return false;
  if (ip.rfind("fe80:", 0) == 0) return false;
  return true;
}

std::vector<InboundChainConfig> inboundChainConfigs(const ListenerInputs& inputs,
                                                    const std::string& wildcard,
                                                    std::vector<ResourceError>* errors) {
  std::map<uint32_t, InboundChainConfig> by_target_port;
  const ProxyContext& proxy = *inputs.proxy;
  bool sidecar_ingress = inputs.sidecar != nullptr && !inputs.sidecar->ingress.empty();
  if (!sidecar_ingress) {
    for (const auto& instance : proxy.service_instances) {
      InboundChainConfig cc;
      cc.service_port = instance.service_port;
      cc.target_port = instance.target_port != 0 ? instance.target_port : instance.service_port;
      cc.protocol = instance.protocol;
      cc.service = instance.service;
      cc.hostname = instance.service != nullptr ? instance.service->hostname : "";
      cc.cluster = inboundClusterName(cc.target_port);
      cc.bind = wildcard;
      if (listenerProtocolOf(cc.protocol) == ListenerProtocol::kNone || cc.target_port == 0) {
        continue;
      }
      auto [it, inserted] = by_target_port.emplace(cc.target_port, cc);
      if (!inserted && it->second.protocol != cc.protocol && it->second.hostname != cc.hostname) {
        report(errors, cc.service,
               "inbound port " + std::to_string(cc.target_port) + ": " + cc.hostname + " (" +
                   std::string(protocolName(cc.protocol)) + ") conflicts with " +
                   it->second.hostname + " (" + std::string(protocolName(it->second.protocol)) +
                   ") on the same workload port; kept " + it->second.hostname);
      }
    }
  } else {
    std::string default_bind = isGlobalUnicast(proxy.ip()) ? proxy.ip() : wildcard;
    std::string synthetic_host =
        inputs.sidecar_namespace.empty()
            ? ""
            : (inputs.sidecar_name.empty() ? ""
                                           : inputs.sidecar_name + "." + inputs.sidecar_namespace);
    for (const auto& ingress : inputs.sidecar->ingress) {
      if (!ingress.port.has_value() || ingress.port->number == 0) {
        report(errors, nullptr, "Sidecar ingress listener without a port number; skipped");
        continue;
      }
      InboundChainConfig cc;
      cc.service_port = ingress.port->number;
      cc.target_port = ingress.port->number;  // the API has no separate target port here
      cc.protocol = parseProtocol(ingress.port->protocol);
      cc.hostname = synthetic_host;
      cc.cluster = inboundClusterName(cc.target_port);
      cc.bind = ingress.bind.empty() ? default_bind : ingress.bind;
      cc.bind_to_port = ingress.capture_mode == CaptureMode::kNone;
      if (listenerProtocolOf(cc.protocol) == ListenerProtocol::kNone) continue;
      auto [it, inserted] = by_target_port.emplace(cc.target_port, cc);
      if (!inserted) {
        report(errors, nullptr,
               "Sidecar ingress port " + std::to_string(cc.target_port) +
                   " is declared twice; kept the first");
      }
    }
  }
  std::vector<InboundChainConfig> out;
  out.reserve(by_target_port.size());
  for (auto& [port, cc] : by_target_port) out.push_back(std::move(cc));
  return out;
}

std::vector<Listener> buildInbound(const ListenerInputs& inputs, const std::string& wildcard,
                                   std::vector<ResourceError>* errors) {
  std::vector<Listener> out;
  std::vector<FilterChain> virtual_chains;

  // Connections addressed to 15006 itself were not redirected.
  FilterChain blackhole;
  blackhole.set_name(std::string(kVirtualInboundBlackholeChainName));
  blackhole.mutable_filter_chain_match()->mutable_destination_port()->set_value(
      inputs.mesh->proxy_inbound_listen_port);
  *blackhole.add_filters() = tcpProxyFilter(kBlackHoleClusterName, kBlackHoleClusterName);
  virtual_chains.push_back(std::move(blackhole));

  // Ports no Service declares still reach the workload, sniffed.
  InboundChainConfig passthrough;
  passthrough.passthrough = true;
  passthrough.protocol = Protocol::kUnsupported;
  passthrough.cluster = std::string(isIpv6(wildcard) ? kInboundPassthroughClusterIpv6
                                                     : kInboundPassthroughClusterIpv4);
  passthrough.bind = wildcard;
  for (auto& chain : inboundChains(inputs, passthrough)) virtual_chains.push_back(std::move(chain));

  for (const auto& cc : inboundChainConfigs(inputs, wildcard, errors)) {
    auto chains = inboundChains(inputs, cc);
    if (cc.bind_to_port) {
      out.push_back(inboundListener(inputs, cc.name(ListenerProtocol::kTcp), cc.bind,
                                    cc.target_port, /*bind_to_port=*/true, std::move(chains)));
    } else {
      for (auto& chain : chains) virtual_chains.push_back(std::move(chain));
    }
  }
  out.push_back(inboundListener(inputs, std::string(kVirtualInboundListenerName), wildcard,
                                inputs.mesh->proxy_inbound_listen_port, /*bind_to_port=*/false,
                                std::move(virtual_chains)));
  return out;
}

}  // namespace

bool egressHostMatches(std::string_view host_entry, const Service& service,
                       std::string_view sidecar_namespace) {
  auto slash = host_entry.find('/');
  std::string_view ns = slash == std::string_view::npos ? "*" : host_entry.substr(0, slash);
  std::string_view dns =
      slash == std::string_view::npos ? host_entry : host_entry.substr(slash + 1);
  if (ns == "~") return false;
  if (ns == ".") ns = sidecar_namespace;
  if (ns != "*" && ns != service.namespace_name) return false;
  if (dns == "*") return true;
  if (dns.size() > 1 && dns[0] == '*' && dns[1] == '.') {
    std::string_view suffix = dns.substr(1);  // ".example.com"
    return service.hostname.size() > suffix.size() &&
           std::string_view(service.hostname).substr(service.hostname.size() - suffix.size()) ==
               suffix;
  }
  return service.hostname == dns;
}

void setInboundSecurity(ListenerInputs* inputs, const ConfigSet& config,
                        const JwksResolver& jwks_resolver, std::vector<ResourceError>* errors) {
  if (inputs == nullptr || inputs->proxy == nullptr || inputs->mesh == nullptr) return;
  const ProxyContext& proxy = *inputs->proxy;
  const MeshConfig& mesh = *inputs->mesh;
  inputs->peer_authentication = PeerAuthenticationPolicy::forWorkload(
      config.peer_authentications, mesh.root_namespace, proxy.namespace_name, proxy.labels);

  JwtAuthnInputs jwt;
  jwt.root_namespace = mesh.root_namespace;
  jwt.workload_namespace = proxy.namespace_name;
  jwt.labels = proxy.labels;
  jwt.jwks_resolver = jwks_resolver;
  auto request_authentications = requestAuthenticationsFor(
      config.request_authentications, jwt.root_namespace, jwt.workload_namespace, jwt.labels);

  AuthorizationInputs authz;
  authz.root_namespace = mesh.root_namespace;
  authz.workload_namespace = proxy.namespace_name;
  authz.labels = proxy.labels;
  authz.jwt_issuers = jwtIssuers(request_authentications);
  auto rbac = buildAuthorizationFilters(config.authorization_policies, authz, errors);

  inputs->inbound_http_filters.clear();
  if (auto jwt_config = buildJwtAuthentication(request_authentications, jwt, errors)) {
    auto& filter = inputs->inbound_http_filters.emplace_back();
    filter.set_name("envoy.filters.http.jwt_authn");
    packDeterministicInto(*jwt_config, filter.mutable_typed_config());
  }
  for (auto& filter : rbac.http) inputs->inbound_http_filters.push_back(std::move(filter));
  inputs->inbound_network_filters = std::move(rbac.network);
}

std::vector<envoy::config::listener::v3::Listener> buildSidecarListeners(
    const ListenerInputs& inputs, std::vector<ResourceError>* errors) {
  std::vector<Listener> out;
  if (inputs.proxy == nullptr || inputs.mesh == nullptr) return out;

  OutboundBuilder outbound(inputs, errors);
  bool has_egress = inputs.sidecar != nullptr && !inputs.sidecar->egress.empty();
  if (!has_egress) {
    outbound.addEgressListener(nullptr, inputs.services);
  } else {
    std::string ns =
        inputs.sidecar_namespace.empty() ? inputs.proxy->namespace_name : inputs.sidecar_namespace;
    // Ports named by egress listeners first, whatever their order, so that
    // the catch-all one only fills the remaining ports.
    std::vector<const IstioEgressListener*> ordered;
    for (const auto& egress : inputs.sidecar->egress) {
      if (egress.port.has_value()) ordered.push_back(&egress);
    }
    for (const auto& egress : inputs.sidecar->egress) {
      if (!egress.port.has_value()) ordered.push_back(&egress);
    }
    for (const IstioEgressListener* egress : ordered) {
      std::vector<const Service*> selected;
      for (const Service* service : inputs.services) {
        bool match = std::any_of(
            egress->hosts.begin(), egress->hosts.end(),
            [&](const std::string& host) { return egressHostMatches(host, *service, ns); });
        if (match) selected.push_back(service);
      }
      outbound.addEgressListener(egress, selected);
    }
  }
  out = outbound.finish();
  if (inputs.mesh->proxy_listen_port > 0) out.push_back(buildVirtualOutbound(inputs, outbound));
  for (auto& l : buildInbound(inputs, outbound.wildcard(), errors)) out.push_back(std::move(l));

  std::stable_sort(out.begin(), out.end(),
                   [](const Listener& a, const Listener& b) { return a.name() < b.name(); });
  // Two listeners with one name (a Sidecar binding the same address and port
  // inbound and outbound): Envoy would reject the whole update.
  std::vector<Listener> unique;
  unique.reserve(out.size());
  for (auto& l : out) {
    if (!unique.empty() && unique.back().name() == l.name()) {
      report(errors, nullptr,
             "listener " + l.name() +
                 " is generated twice (inbound and outbound bind the same "
                 "address and port); kept the first");
      continue;
    }
    unique.push_back(std::move(l));
  }
  return unique;
}

}  // namespace sheave::control
