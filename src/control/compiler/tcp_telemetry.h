#pragma once

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener_components.pb.h"

namespace sheave::control {

// Istio's TCP telemetry, as istiod emits it when metrics are on:
// - istio.metadata_exchange (envoy.tcp.metadataexchange.config.MetadataExchange,
//   protocol "istio-peer-exchange") first on inbound TCP chains, and as a
//   cluster filter on outbound clusters: over mTLS that negotiated the
//   protocol, both sidecars learn each other's workload;
// - istio.stats (stats.PluginConfig) just before tcp_proxy on inbound and
//   outbound TCP chains: istio_tcp_* metrics.
envoy::config::listener::v3::Filter tcpMetadataExchangeFilter();
envoy::config::listener::v3::Filter tcpStatsFilter(bool outbound);
void addClusterMetadataExchange(envoy::config::cluster::v3::Cluster& cluster);

}  // namespace sheave::control
