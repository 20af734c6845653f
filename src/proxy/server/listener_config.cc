#include "proxy/server/listener_config.h"

#include <algorithm>

#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "proxy/config/proto_json.h"

namespace sheave::server {
namespace {

constexpr std::string_view kHcmType =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
constexpr std::string_view kTcpProxyType = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
constexpr std::string_view kRawBufferName = "envoy.transport_sockets.raw_buffer";
constexpr std::string_view kRawBufferType =
    "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

bool emptyMatch(const envoy::config::listener::v3::FilterChain& chain) {
  return !chain.has_filter_chain_match() || chain.filter_chain_match().ByteSizeLong() == 0;
}

// The server side of a filter chain's transport_socket; null for plaintext (raw_buffer). Errors
// are relative to the TransportSocket.
Result<std::shared_ptr<network::tls::TlsSocketFactory>> buildTransportSocket(
    const envoy::config::core::v3::TransportSocket& config, network::tls::SecretManager* secrets) {
  using network::tls::TlsSocketFactory;
  if (TlsSocketFactory::isTls(config)) {
    return TlsSocketFactory::fromTransportSocket(config, /*server=*/true, secrets);
  }
  std::string_view type = config.typed_config().type_url();
  type = type.substr(type.rfind('/') + 1);
  if ((config.name().empty() || config.name() == kRawBufferName || config.name() == "raw_buffer") &&
      (type.empty() || type == kRawBufferType)) {
    return std::shared_ptr<TlsSocketFactory>();
  }
  return invalidArgument(
      "unsupported transport socket '" +
      (config.name().empty() ? std::string(type) : config.name()) +
      "' (supported: envoy.transport_sockets.tls, envoy.transport_sockets.raw_buffer)");
}

}  // namespace

ListenerStats::ListenerStats(stats::Scope& s)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_active(s.gauge("downstream_cx_active")),
      downstream_cx_destroy(s.counter("downstream_cx_destroy")),
      downstream_cx_overflow(s.counter("downstream_cx_overflow")),
      no_filter_chain_match(s.counter("no_filter_chain_match")) {}

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
  if (proto.listener_filters_size() > 0) {
    return invalidArgument("listener_filters: not supported yet (" +
                           proto.listener_filters(0).name() + ")");
  }
  // One filter chain for every connection for now: filter_chain_match
  // comes with TLS and SNI.
  const envoy::config::listener::v3::FilterChain* chain = nullptr;
  std::string where;
  if (proto.filter_chains_size() == 1 && emptyMatch(proto.filter_chains(0))) {
    chain = &proto.filter_chains(0);
    where = "filter_chains[0]";
  } else if (proto.filter_chains_size() == 0 && proto.has_default_filter_chain()) {
    chain = &proto.default_filter_chain();
    where = "default_filter_chain";
  } else if (proto.filter_chains_size() == 0) {
    return invalidArgument("filter_chains: a listener needs a filter chain");
  } else {
    return invalidArgument(
        "filter_chains: more than one chain, or filter_chain_match, is not supported yet");
  }
  if (chain->has_transport_socket()) {
    auto factory = buildTransportSocket(chain->transport_socket(), context.secrets);
    if (!factory.ok()) {
      return network::tls::underField(std::move(factory).error(), where + ".transport_socket");
    }
    config->transport_socket_factory = std::move(factory).value();
  }
  if (chain->filters_size() != 1) {
    return invalidArgument(where +
                           ".filters: exactly one network filter "
                           "(http_connection_manager or tcp_proxy) is supported for now");
  }
  const auto& filter = chain->filters(0);
  const std::string fwhere = where + ".filters[0].typed_config";
  std::string_view type = filter.typed_config().type_url();
  type = type.substr(type.rfind('/') + 1);

  // Stats use Envoy's listener naming: the address with ':' as '_'.
  std::string stat_name = config->address.asString();
  std::replace(stat_name.begin(), stat_name.end(), ':', '_');
  config->scope = context.stats_root.createScope("listener." + stat_name);
  config->stats = std::make_unique<ListenerStats>(*config->scope);

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
    mutable_config->buffer_limit_bytes = config->per_connection_buffer_limit_bytes;
    config->http = std::move(built).value();
  } else if (type == kTcpProxyType) {
    auto tcp =
        config::unpackTypedConfig<envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy>(
            filter.typed_config(), fwhere);
    if (!tcp.ok()) return std::move(tcp).error();
    auto built = tcp_proxy::TcpProxyConfig::create(*tcp, context.stats_root, context.access_logs,
                                                   context.cluster_exists);
    if (!built.ok()) return std::move(built).error().at(fwhere);
    config->tcp = std::move(built).value();
  } else {
    return invalidArgument(fwhere + ": unsupported network filter type '" + std::string(type) +
                           "'");
  }
  return std::shared_ptr<const ListenerConfig>(std::move(config));
}

}  // namespace sheave::server
