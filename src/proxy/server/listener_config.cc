#include "proxy/server/listener_config.h"

#include <algorithm>

#include "envoy/extensions/filters/listener/http_inspector/v3/http_inspector.pb.h"
#include "envoy/extensions/filters/listener/original_dst/v3/original_dst.pb.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "istio/proxy/stats/config.pb.h"
#include "istio/proxy/tcp_metadata_exchange/config.pb.h"
#include "proxy/config/local_node.h"
#include "proxy/config/proto_json.h"
#include "proxy/filters/istio_stats/istio_stats_filter.h"

namespace sheave::server {
namespace {

constexpr std::string_view kHcmType =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
constexpr std::string_view kTcpProxyType = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
constexpr std::string_view kTcpMetadataExchangeType =
    "envoy.tcp.metadataexchange.config.MetadataExchange";
constexpr std::string_view kRawBufferName = "envoy.transport_sockets.raw_buffer";
constexpr std::string_view kRawBufferType =
    "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

struct KnownListenerFilter {
  std::string_view name;
  std::string_view type;
  ListenerFilterKind kind;
};
constexpr KnownListenerFilter kListenerFilters[] = {
    {"envoy.filters.listener.original_dst",
     "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
     ListenerFilterKind::kOriginalDst},
    {"envoy.filters.listener.tls_inspector",
     "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
     ListenerFilterKind::kTlsInspector},
    {"envoy.filters.listener.http_inspector",
     "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
     ListenerFilterKind::kHttpInspector},
};

std::string_view typeName(const google::protobuf::Any& any) {
  std::string_view type = any.type_url();
  return type.substr(type.rfind('/') + 1);
}

// The server side of a filter chain's transport_socket; null for plaintext (raw_buffer). Errors
// are relative to the TransportSocket.
Result<std::shared_ptr<network::tls::TlsSocketFactory>> buildTransportSocket(
    const envoy::config::core::v3::TransportSocket& config, network::tls::SecretManager* secrets) {
  using network::tls::TlsSocketFactory;
  if (TlsSocketFactory::isTls(config)) {
    return TlsSocketFactory::fromTransportSocket(config, /*server=*/true, secrets);
  }
  std::string_view type = typeName(config.typed_config());
  if ((config.name().empty() || config.name() == kRawBufferName || config.name() == "raw_buffer") &&
      (type.empty() || type == kRawBufferType)) {
    return std::shared_ptr<TlsSocketFactory>();
  }
  return invalidArgument(
      "unsupported transport socket '" +
      (config.name().empty() ? std::string(type) : config.name()) +
      "' (supported: envoy.transport_sockets.tls, envoy.transport_sockets.raw_buffer)");
}

Result<ListenerFilterPredicate> buildPredicate(
    const envoy::config::listener::v3::ListenerFilterChainMatchPredicate& proto,
    const std::string& where, int depth) {
  using Proto = envoy::config::listener::v3::ListenerFilterChainMatchPredicate;
  if (depth > 32) return invalidArgument(where + ": nested too deeply");
  ListenerFilterPredicate out;
  auto rules = [&](const Proto::MatchSet& set, const std::string& field) -> Status {
    if (set.rules_size() < 2) {
      return invalidArgument(where + "." + field + ".rules: needs at least 2 rules");
    }
    for (int i = 0; i < set.rules_size(); ++i) {
      auto rule = buildPredicate(
          set.rules(i), where + "." + field + ".rules[" + std::to_string(i) + "]", depth + 1);
      if (!rule.ok()) return std::move(rule).error();
      out.rules.push_back(std::move(rule).value());
    }
    return okStatus();
  };
  switch (proto.rule_case()) {
    case Proto::kOrMatch:
      out.op = ListenerFilterPredicate::Op::kOr;
      SHEAVE_RETURN_IF_ERROR(rules(proto.or_match(), "or_match"));
      break;
    case Proto::kAndMatch:
      out.op = ListenerFilterPredicate::Op::kAnd;
      SHEAVE_RETURN_IF_ERROR(rules(proto.and_match(), "and_match"));
      break;
    case Proto::kNotMatch: {
      out.op = ListenerFilterPredicate::Op::kNot;
      auto rule = buildPredicate(proto.not_match(), where + ".not_match", depth + 1);
      if (!rule.ok()) return std::move(rule).error();
      out.rules.push_back(std::move(rule).value());
      break;
    }
    case Proto::kAnyMatch:
      if (!proto.any_match()) return invalidArgument(where + ".any_match: must be true");
      out.op = ListenerFilterPredicate::Op::kAny;
      break;
    case Proto::kDestinationPortRange:
      out.op = ListenerFilterPredicate::Op::kPortRange;
      out.start = proto.destination_port_range().start();
      out.end = proto.destination_port_range().end();
      if (out.end <= out.start) {
        return invalidArgument(where + ".destination_port_range: end must be greater than start");
      }
      break;
    default:
      return invalidArgument(where + ": a rule is required");
  }
  return out;
}

// One listener filter; `where` is "listener_filters[i]".
Result<ListenerFilterKind> buildListenerFilter(const envoy::config::listener::v3::ListenerFilter& f,
                                               const std::string& where) {
  if (f.has_config_discovery()) {
    return invalidArgument(where + ".config_discovery: not supported yet");
  }
  const std::string_view type = f.has_typed_config() ? typeName(f.typed_config()) : "";
  const KnownListenerFilter* known = nullptr;
  for (const auto& k : kListenerFilters) {
    // The type URL decides; without one, Envoy's well-known name does.
    if (type.empty() ? f.name() == k.name : type == k.type) known = &k;
  }
  if (known == nullptr) {
    std::string label = "'" + (f.name().empty() ? std::string(type) : f.name()) + "'";
    if (!f.name().empty() && !type.empty()) label += " (" + std::string(type) + ")";
    return invalidArgument(where + ": unknown listener filter " + label +
                           "; supported: envoy.filters.listener.original_dst, "
                           "envoy.filters.listener.tls_inspector, "
                           "envoy.filters.listener.http_inspector");
  }
  if (known->kind == ListenerFilterKind::kTlsInspector && f.has_typed_config()) {
    auto tls = config::unpackTypedConfig<
        envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector>(
        f.typed_config(), where + ".typed_config");
    if (!tls.ok()) return std::move(tls).error();
    if (tls->has_enable_ja3_fingerprinting() && tls->enable_ja3_fingerprinting().value()) {
      return invalidArgument(where + ".typed_config.enable_ja3_fingerprinting: not supported yet");
    }
  } else if (known->kind == ListenerFilterKind::kOriginalDst && f.has_typed_config()) {
    auto od = config::unpackTypedConfig<
        envoy::extensions::filters::listener::original_dst::v3::OriginalDst>(
        f.typed_config(), where + ".typed_config");
    if (!od.ok()) return std::move(od).error();
  } else if (known->kind == ListenerFilterKind::kHttpInspector && f.has_typed_config()) {
    auto hi = config::unpackTypedConfig<
        envoy::extensions::filters::listener::http_inspector::v3::HttpInspector>(
        f.typed_config(), where + ".typed_config");
    if (!hi.ok()) return std::move(hi).error();
  }
  return known->kind;
}

// One FilterChain's transport socket and network filter; `where` is its field path.
Status buildChain(const envoy::config::listener::v3::FilterChain& chain, const std::string& where,
                  ListenerConfig::Context& context, uint32_t buffer_limit, FilterChainConfig& out) {
  out.name = chain.name().empty() ? where : chain.name();
  if (chain.has_transport_socket()) {
    auto factory = buildTransportSocket(chain.transport_socket(), context.secrets);
    if (!factory.ok()) {
      return network::tls::underField(std::move(factory).error(), where + ".transport_socket");
    }
    out.transport_socket_factory = std::move(factory).value();
  }
  if (chain.filters_size() == 0) {
    return invalidArgument(where +
                           ".filters: a network filter (http_connection_manager or "
                           "tcp_proxy) is required");
  }
  // envoy.filters.network.rbac filters may come first, and before a tcp_proxy Istio's
  // istio.metadata_exchange and istio.stats; the last filter is the terminal one.
  const int terminal = chain.filters_size() - 1;
  std::string exchange_protocol;
  std::optional<::stats::PluginConfig> tcp_stats;
  std::string tcp_only_filter;  // where a filter that needs a tcp_proxy terminal was
  for (int i = 0; i < terminal; ++i) {
    const auto& f = chain.filters(i);
    const std::string rwhere = where + ".filters[" + std::to_string(i) + "].typed_config";
    const std::string_view ftype = typeName(f.typed_config());
    if (ftype == kTcpMetadataExchangeType) {
      auto mx = config::unpackTypedConfig<envoy::tcp::metadataexchange::config::MetadataExchange>(
          f.typed_config(), rwhere);
      if (!mx.ok()) return std::move(mx).error();
      if (mx->protocol().empty()) return invalidArgument(rwhere + ".protocol: must not be empty");
      exchange_protocol = mx->protocol();
      tcp_only_filter = rwhere;
      continue;
    }
    if (ftype == istio_stats::kFilterTypeName) {
      auto st = config::unpackTypedConfig<::stats::PluginConfig>(f.typed_config(), rwhere);
      if (!st.ok()) return std::move(st).error();
      tcp_stats = std::move(st).value();
      tcp_only_filter = rwhere;
      continue;
    }
    if (ftype != rbac::kNetworkRbacTypeName) {
      return invalidArgument(rwhere +
                             ": only envoy.filters.network.rbac, istio.metadata_exchange and "
                             "istio.stats may precede the terminal network filter "
                             "(http_connection_manager or tcp_proxy)");
    }
    auto proto = config::unpackTypedConfig<envoy::extensions::filters::network::rbac::v3::RBAC>(
        f.typed_config(), rwhere);
    if (!proto.ok()) return std::move(proto).error();
    auto built = rbac::NetworkRbacConfig::create(*proto, context.stats_root);
    if (!built.ok()) return std::move(built).error().at(rwhere);
    out.network_rbac.push_back(std::move(built).value());
  }
  const auto& filter = chain.filters(terminal);
  const std::string fwhere = where + ".filters[" + std::to_string(terminal) + "].typed_config";
  const std::string_view type = typeName(filter.typed_config());
  if (!tcp_only_filter.empty() && type != kTcpProxyType) {
    return invalidArgument(tcp_only_filter +
                           ": the network istio.metadata_exchange and istio.stats filters work "
                           "with tcp_proxy only (HTTP chains use the HTTP filters of those names)");
  }
  if (type == kHcmType) {
    auto hcm = config::unpackTypedConfig<
        envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager>(
        filter.typed_config(), fwhere);
    if (!hcm.ok()) return std::move(hcm).error();
    http::ConnectionManagerConfig::Context hctx{context.stats_root, context.http_filters,
                                                context.access_logs, context.cluster_exists,
                                                context.rds};
    auto built = http::ConnectionManagerConfig::create(*hcm, hctx);
    if (!built.ok()) return std::move(built).error().at(fwhere);
    // The listener's buffer limit bounds what a filter may buffer per request.
    auto mutable_config = std::const_pointer_cast<http::ConnectionManagerConfig>(*built);
    mutable_config->buffer_limit_bytes = buffer_limit;
    for (const auto& rbac : out.network_rbac) {
      mutable_config->connection_checks.emplace_back(
          [rbac](const network::Connection& connection) { return rbac->check(connection); });
    }
    out.http = std::move(built).value();
  } else if (type == kTcpProxyType) {
    auto tcp =
        config::unpackTypedConfig<envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy>(
            filter.typed_config(), fwhere);
    if (!tcp.ok()) return std::move(tcp).error();
    auto built = tcp_proxy::TcpProxyConfig::create(*tcp, context.stats_root, context.access_logs,
                                                   context.cluster_exists);
    if (!built.ok()) return std::move(built).error().at(fwhere);
    auto mutable_tcp = std::const_pointer_cast<tcp_proxy::TcpProxyConfig>(*built);
    for (const auto& rbac : out.network_rbac) {
      mutable_tcp->connection_checks.emplace_back(
          [rbac](const network::Connection& connection) { return rbac->check(connection); });
    }
    mutable_tcp->metadata_exchange_protocol = exchange_protocol;
    if (tcp_stats) {
      auto stats_config = istio_stats::IstioStatsConfig::create(
          *tcp_stats, *config::localNode(), context.stats_root, mutable_tcp->stat_prefix);
      if (!stats_config.ok()) return std::move(stats_config).error().at(tcp_only_filter);
      mutable_tcp->istio_stats = std::move(stats_config).value();
    }
    out.tcp = std::move(built).value();
  } else {
    return invalidArgument(fwhere + ": unsupported network filter type '" + std::string(type) +
                           "'");
  }
  return okStatus();
}

}  // namespace

ListenerStats::ListenerStats(stats::Scope& s)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_active(s.gauge("downstream_cx_active")),
      downstream_cx_destroy(s.counter("downstream_cx_destroy")),
      downstream_cx_overflow(s.counter("downstream_cx_overflow")),
      no_filter_chain_match(s.counter("no_filter_chain_match")),
      downstream_pre_cx_timeout(s.counter("downstream_pre_cx_timeout")),
      downstream_pre_cx_active(s.gauge("downstream_pre_cx_active")),
      downstream_listener_filter_error(s.counter("downstream_listener_filter_error")) {}

ListenerFilterStats::ListenerFilterStats(stats::Scope& root)
    : tls_found(root.counter("tls_inspector.tls_found")),
      tls_not_found(root.counter("tls_inspector.tls_not_found")),
      sni_found(root.counter("tls_inspector.sni_found")),
      sni_not_found(root.counter("tls_inspector.sni_not_found")),
      alpn_found(root.counter("tls_inspector.alpn_found")),
      alpn_not_found(root.counter("tls_inspector.alpn_not_found")),
      client_hello_too_large(root.counter("tls_inspector.client_hello_too_large")),
      http10_found(root.counter("http_inspector.http10_found")),
      http11_found(root.counter("http_inspector.http11_found")),
      http2_found(root.counter("http_inspector.http2_found")),
      http_not_found(root.counter("http_inspector.http_not_found")),
      read_error(root.counter("http_inspector.read_error")) {}

const FilterChainConfig* ListenerConfig::selectChain(const ConnectionView& connection) const {
  auto index = matcher->match(connection);
  if (!index) return nullptr;
  if (*index == FilterChainMatcher::kDefaultChain) return default_filter_chain.get();
  return &filter_chains[*index];
}

bool ListenerFilterPredicate::matches(const Address& destination) const {
  switch (op) {
    case Op::kAny:
      return true;
    case Op::kOr:
      return std::any_of(rules.begin(), rules.end(),
                         [&](const ListenerFilterPredicate& r) { return r.matches(destination); });
    case Op::kAnd:
      return std::all_of(rules.begin(), rules.end(),
                         [&](const ListenerFilterPredicate& r) { return r.matches(destination); });
    case Op::kNot:
      return !rules.front().matches(destination);
    case Op::kPortRange: {
      const int32_t port = destination.port();
      return port >= start && port < end;
    }
  }
  return false;
}

bool ListenerConfig::hasListenerFilter(ListenerFilterKind kind) const {
  return std::find(listener_filters.begin(), listener_filters.end(), kind) !=
         listener_filters.end();
}

Result<std::shared_ptr<const ListenerConfig>> ListenerConfig::create(
    const envoy::config::listener::v3::Listener& proto, Context& context) {
  auto config = std::make_shared<ListenerConfig>();
  config->proto = proto;
  config->name = proto.name();
  if (!proto.address().has_socket_address()) {
    return invalidArgument("address: a socket_address is required");
  }
  const auto& sa = proto.address().socket_address();
  auto address = Address::parse(sa.address(), static_cast<uint16_t>(sa.port_value()));
  if (!address.ok()) {
    return invalidArgument("address.socket_address.address: '" + sa.address() +
                           "' is not an IP address");
  }
  if (sa.port_value() > 65535) {
    return invalidArgument("address.socket_address.port_value: must be at most 65535");
  }
  config->address = std::move(address).value();
  if (config->name.empty()) config->name = config->address.asString();
  if (proto.has_per_connection_buffer_limit_bytes()) {
    config->per_connection_buffer_limit_bytes = proto.per_connection_buffer_limit_bytes().value();
  }
  config->use_original_dst = proto.has_use_original_dst() && proto.use_original_dst().value();
  config->bind_to_port = !proto.has_bind_to_port() || proto.bind_to_port().value();

  for (int i = 0; i < proto.listener_filters_size(); ++i) {
    auto kind = buildListenerFilter(proto.listener_filters(i),
                                    "listener_filters[" + std::to_string(i) + "]");
    if (!kind.ok()) return std::move(kind).error();
    config->listener_filters.push_back(*kind);
    std::optional<ListenerFilterPredicate> disabled;
    if (proto.listener_filters(i).has_filter_disabled()) {
      auto predicate =
          buildPredicate(proto.listener_filters(i).filter_disabled(),
                         "listener_filters[" + std::to_string(i) + "].filter_disabled", 0);
      if (!predicate.ok()) return std::move(predicate).error();
      disabled = std::move(predicate).value();
    }
    config->listener_filters_disabled.push_back(std::move(disabled));
  }
  if (proto.has_listener_filters_timeout()) {
    const auto& d = proto.listener_filters_timeout();
    if (d.seconds() < 0 || d.nanos() < 0) {
      return invalidArgument("listener_filters_timeout: must not be negative");
    }
    config->listener_filters_timeout =
        std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1'000'000);
  }
  config->continue_on_listener_filters_timeout = proto.continue_on_listener_filters_timeout();

  if (proto.filter_chains_size() == 0 && !proto.has_default_filter_chain()) {
    return invalidArgument("filter_chains: a listener needs a filter chain");
  }
  auto matcher = FilterChainMatcher::create(proto);
  if (!matcher.ok()) return std::move(matcher).error();
  config->matcher = std::move(matcher).value();
  config->filter_chains.resize(proto.filter_chains_size());
  for (int i = 0; i < proto.filter_chains_size(); ++i) {
    SHEAVE_RETURN_IF_ERROR(
        buildChain(proto.filter_chains(i), "filter_chains[" + std::to_string(i) + "]", context,
                   config->per_connection_buffer_limit_bytes, config->filter_chains[i]));
  }
  if (proto.has_default_filter_chain()) {
    auto chain = std::make_unique<FilterChainConfig>();
    SHEAVE_RETURN_IF_ERROR(buildChain(proto.default_filter_chain(), "default_filter_chain", context,
                                      config->per_connection_buffer_limit_bytes, *chain));
    config->default_filter_chain = std::move(chain);
  }

  // Stats use Envoy's listener naming: the address with ':' as '_'.
  std::string stat_name = config->address.asString();
  std::replace(stat_name.begin(), stat_name.end(), ':', '_');
  config->scope = context.stats_root.createScope("listener." + stat_name);
  config->stats = std::make_unique<ListenerStats>(*config->scope);
  if (!config->listener_filters.empty()) {
    config->filter_stats = std::make_shared<ListenerFilterStats>(context.stats_root);
  }
  return std::shared_ptr<const ListenerConfig>(std::move(config));
}

}  // namespace sheave::server
