#include "proxy/filters/peer_metadata/peer_metadata_filter.h"

#include <unordered_map>

#include "proxy/config/local_node.h"
#include "proxy/config/proto_json.h"
#include "proxy/filters/peer_metadata/workload_metadata.h"
#include "proxy/network/tls/tls_socket_factory.h"
#include "proxy/upstream/cluster_manager.h"

namespace sheave::peer_metadata {
namespace {

using Proto = io::istio::http::peer_metadata::Config;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

constexpr size_t kMaxCachedPeers = 1024;

bool verifiesPeer(const std::shared_ptr<network::tls::TlsSocketFactory>& factory) {
  if (factory == nullptr) return false;
  auto context = factory->context();
  return context != nullptr && context->hasValidation();
}

}  // namespace

Result<std::shared_ptr<const PeerMetadataConfig>> PeerMetadataConfig::create(
    const Proto& proto, const envoy::config::core::v3::Node& node) {
  auto config = std::make_shared<PeerMetadataConfig>();
  for (const auto& m : proto.downstream_discovery()) {
    if (m.has_istio_headers()) config->downstream_discovery = true;
  }
  for (const auto& m : proto.upstream_discovery()) {
    if (m.has_istio_headers()) config->upstream_discovery = true;
  }
  for (const auto& m : proto.downstream_propagation()) {
    if (m.has_istio_headers()) config->downstream_propagation = true;
  }
  for (const auto& m : proto.upstream_propagation()) {
    if (m.has_istio_headers()) config->upstream_propagation = true;
  }
  config->node_id = node.id();
  config->header_value = encodePeerMetadataHeader(workloadFromStruct(node.metadata()));
  return std::shared_ptr<const PeerMetadataConfig>(std::move(config));
}

bool upstreamIsMesh(std::string_view cluster) {
  if (cluster.empty() || cluster == "PassthroughCluster" || cluster == "BlackHoleCluster" ||
      cluster.starts_with("InboundPassthroughCluster")) {
    return false;
  }
  auto* clusters = upstream::ThreadLocalClusterManager::current();
  if (clusters == nullptr) return false;
  const auto& tlc = clusters->get(cluster);
  if (tlc == nullptr) return false;
  const auto& info = *tlc->info();
  if (verifiesPeer(info.transport_socket_factory)) return true;
  for (const auto& match : info.transport_socket_matches) {
    if (verifiesPeer(match.factory)) return true;
  }
  return false;
}

std::shared_ptr<const PeerWorkloadMetadata> lookupPeer(std::string_view value) {
  thread_local std::unordered_map<std::string, std::shared_ptr<const PeerWorkloadMetadata>,
                                  StringHash, std::equal_to<>>
      cache;
  auto it = cache.find(value);
  if (it != cache.end()) return it->second;
  auto peer = decodePeerMetadataHeader(value);
  if (peer == nullptr) return nullptr;
  if (cache.size() >= kMaxCachedPeers) cache.clear();
  cache.emplace(std::string(value), peer);
  return peer;
}

http::FilterHeadersStatus PeerMetadataFilter::decodeHeaders(HeaderMap& headers, bool) {
  auto& info = callbacks_->streamInfo();
  const std::string* id = headers.get(kPeerMetadataIdHeader);
  const std::string* value = headers.get(kPeerMetadataHeader);
  request_peer_id_received_ = id != nullptr;
  request_peer_received_ = value != nullptr;
  if (config_->downstream_discovery && value != nullptr && info.downstream_peer == nullptr) {
    info.downstream_peer = lookupPeer(*value);
  }
  // Whatever the configuration, the application never sees a peer's metadata.
  if (id != nullptr) headers.remove(kPeerMetadataIdHeader);
  if (value != nullptr) headers.remove(kPeerMetadataHeader);
  if (config_->upstream_propagation) {
    const RouteMatchResult& match = callbacks_->route();
    if (match.route != nullptr && upstreamIsMesh(match.cluster(headers))) {
      headers.set(kPeerMetadataIdHeader, config_->node_id);
      headers.set(kPeerMetadataHeader, config_->header_value);
    }
  }
  return http::FilterHeadersStatus::kContinue;
}

http::FilterHeadersStatus PeerMetadataFilter::encodeHeaders(HeaderMap& headers, bool) {
  auto& info = callbacks_->streamInfo();
  const std::string* id = headers.get(kPeerMetadataIdHeader);
  const std::string* value = headers.get(kPeerMetadataHeader);
  if (config_->upstream_discovery && value != nullptr && info.upstream_peer == nullptr) {
    info.upstream_peer = lookupPeer(*value);
  }
  if (id != nullptr) headers.remove(kPeerMetadataIdHeader);
  if (value != nullptr) headers.remove(kPeerMetadataHeader);
  if (config_->downstream_propagation) {
    if (request_peer_id_received_) headers.set(kPeerMetadataIdHeader, config_->node_id);
    if (request_peer_received_) headers.set(kPeerMetadataHeader, config_->header_value);
  }
  return http::FilterHeadersStatus::kContinue;
}

void registerPeerMetadataFilter(http::FilterRegistry& registry) {
  registry.add(
      std::string(kFilterTypeName),
      [](const google::protobuf::Any& any,
         http::FilterFactoryContext&) -> Result<http::FilterFactoryCb> {
        auto proto = config::unpackTypedConfig<Proto>(any, "typed_config");
        if (!proto.ok()) return std::move(proto).error();
        auto config = PeerMetadataConfig::create(*proto, *config::localNode());
        if (!config.ok()) return std::move(config).error();
        return http::FilterFactoryCb([config = *config](http::FilterChainBuilder& builder) {
          builder.addStreamFilter(std::make_unique<PeerMetadataFilter>(config));
        });
      });
}

}  // namespace sheave::peer_metadata
