#pragma once

#include <google/protobuf/struct.pb.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/accesslog/stream_info.h"

namespace sheave::peer_metadata {

// Istio's node metadata keys (the bootstrap's node.metadata, and the Struct
// carried by x-envoy-peer-metadata).
inline constexpr std::string_view kInstanceNameKey = "NAME";
inline constexpr std::string_view kNamespaceKey = "NAMESPACE";
inline constexpr std::string_view kWorkloadNameKey = "WORKLOAD_NAME";
inline constexpr std::string_view kClusterIdKey = "CLUSTER_ID";
inline constexpr std::string_view kLabelsKey = "LABELS";
inline constexpr std::string_view kOwnerKey = "OWNER";
inline constexpr std::string_view kCanonicalNameLabel = "service.istio.io/canonical-name";
inline constexpr std::string_view kCanonicalRevisionLabel = "service.istio.io/canonical-revision";
inline constexpr std::string_view kAppLabel = "app";
inline constexpr std::string_view kVersionLabel = "version";

// The workload facts Istio's telemetry uses, from a node metadata Struct.
// Unknown keys are ignored; missing ones stay empty.
PeerWorkloadMetadata workloadFromStruct(const google::protobuf::Struct& metadata);
// The Struct Istio's sidecars exchange: NAME, NAMESPACE, WORKLOAD_NAME,
// CLUSTER_ID, OWNER when set, and LABELS with the canonical service labels and
// app/version.
google::protobuf::Struct structFromWorkload(const PeerWorkloadMetadata& workload);

// x-envoy-peer-metadata: the Struct in protobuf's deterministic binary form,
// base64 (standard alphabet, padded).
std::string encodePeerMetadataHeader(const PeerWorkloadMetadata& workload);
// Null when the value is not base64 of a Struct. Accepts missing padding.
std::shared_ptr<const PeerWorkloadMetadata> decodePeerMetadataHeader(std::string_view value);

// Protobuf's binary form with map entries sorted, so the same message always gives the same bytes.
std::string serializeDeterministic(const google::protobuf::Message& message);

std::string base64Encode(std::string_view bytes);
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace sheave::peer_metadata
