#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "envoy/config/core/v3/base.pb.h"
#include "istio/proxy/peer_metadata/config.pb.h"
#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"

namespace sheave::peer_metadata {

inline constexpr std::string_view kFilterName = "istio.metadata_exchange";
inline constexpr std::string_view kFilterTypeName = "io.istio.http.peer_metadata.Config";
inline constexpr std::string_view kPeerMetadataHeader = "x-envoy-peer-metadata";
inline constexpr std::string_view kPeerMetadataIdHeader = "x-envoy-peer-metadata-id";

// io.istio.http.peer_metadata.Config, parsed once, with this node's own
// header values computed once from the bootstrap's node.
struct PeerMetadataConfig {
  bool downstream_discovery = false;
  bool upstream_discovery = false;
  bool downstream_propagation = false;
  bool upstream_propagation = false;
  std::string node_id;       // x-envoy-peer-metadata-id
  std::string header_value;  // x-envoy-peer-metadata

  // Only istio_headers is implemented; workload_discovery and baggage are
  // accepted and skipped (the next method in the list is tried, as in Istio).
  static Result<std::shared_ptr<const PeerMetadataConfig>> create(
      const io::istio::http::peer_metadata::Config& proto,
      const envoy::config::core::v3::Node& node);
};

// Whether our metadata may go to the upstream of `cluster`: only to a mesh
// peer, i.e. a cluster whose connections are TLS that verifies the server's
// certificate (Istio's ISTIO_MUTUAL, or auto mTLS's `tlsMode: istio` socket
// match), and never to Istio's passthrough or blackhole clusters. A cluster
// the worker does not know gets nothing.
bool upstreamIsMesh(std::string_view cluster);

// istio.metadata_exchange (Istio's HTTP metadata exchange):
// - request path: the downstream's x-envoy-peer-metadata(-id) become
//   StreamInfo::downstream_peer and are removed (the application never sees
//   them, configured or not); with upstream propagation ours are added when
//   the upstream is a mesh peer (upstreamIsMesh);
// - response path: the upstream's headers become StreamInfo::upstream_peer
//   and are removed; with downstream propagation ours are added only when the
//   request carried the downstream's own (a client outside the mesh, or the
//   application behind an outbound listener, never learns them).
class PeerMetadataFilter : public http::PassThroughStreamFilter {
 public:
  explicit PeerMetadataFilter(std::shared_ptr<const PeerMetadataConfig> config)
      : config_(std::move(config)) {}

  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;
  http::FilterHeadersStatus encodeHeaders(HeaderMap& headers, bool end_stream) override;

 private:
  std::shared_ptr<const PeerMetadataConfig> config_;
  bool request_peer_received_ = false;
  bool request_peer_id_received_ = false;
};

// The peer described by a header value, through a small per-thread cache
// keyed by the value (a peer sends the same bytes on every request); null
// when the value does not decode.
std::shared_ptr<const PeerWorkloadMetadata> lookupPeer(std::string_view header_value);

void registerPeerMetadataFilter(http::FilterRegistry& registry);

}  // namespace sheave::peer_metadata
