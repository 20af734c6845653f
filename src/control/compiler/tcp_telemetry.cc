#include "control/compiler/tcp_telemetry.h"

#include "control/compiler/deterministic_any.h"
#include "istio/proxy/stats/config.pb.h"
#include "istio/proxy/tcp_metadata_exchange/config.pb.h"

namespace sheave::control {
namespace {

envoy::tcp::metadataexchange::config::MetadataExchange exchangeConfig() {
  envoy::tcp::metadataexchange::config::MetadataExchange mx;
  mx.set_protocol("istio-peer-exchange");
  return mx;
}

}  // namespace

envoy::config::listener::v3::Filter tcpMetadataExchangeFilter() {
  envoy::config::listener::v3::Filter filter;
  filter.set_name("istio.metadata_exchange");
  packDeterministicInto(exchangeConfig(), filter.mutable_typed_config());
  return filter;
}

envoy::config::listener::v3::Filter tcpStatsFilter(bool outbound) {
  ::stats::PluginConfig stats;
  // Outbound: the destination service comes from the cluster, never from the traffic.
  if (outbound) stats.set_disable_host_header_fallback(true);
  envoy::config::listener::v3::Filter filter;
  filter.set_name("istio.stats");
  packDeterministicInto(stats, filter.mutable_typed_config());
  return filter;
}

void addClusterMetadataExchange(envoy::config::cluster::v3::Cluster& cluster) {
  auto* filter = cluster.add_filters();
  filter->set_name("istio.metadata_exchange");
  packDeterministicInto(exchangeConfig(), filter->mutable_typed_config());
}

}  // namespace sheave::control
