#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "control/model/sidecar.h"
#include "control/registry/hostname.h"
#include "control/registry/identity.h"

namespace sheave::control {

// The mesh-wide settings Istio keeps in its MeshConfig, as far as the
// compiler uses them; the defaults are Istio's.
struct MeshConfig {
  // Where mesh-wide defaults (Sidecar, PeerAuthentication, ...) live. Istio's
  // is istio-system; Sheave's own control plane lives in sheave-system.
  std::string root_namespace = "sheave-system";
  std::string trust_domain = std::string(kDefaultTrustDomain);
  std::string domain_suffix = std::string(kDefaultDomainSuffix);
  // outboundTrafficPolicy.mode when no Sidecar says otherwise.
  OutboundTrafficPolicyMode outbound_traffic_policy = OutboundTrafficPolicyMode::kAllowAny;
  std::chrono::milliseconds connect_timeout{10000};
  // Istio's ports: outbound capture (virtualOutbound) and inbound capture (virtualInbound).
  uint32_t proxy_listen_port = 15001;
  uint32_t proxy_inbound_listen_port = 15006;
  // protocolDetectionTimeout: how long the inbound/outbound sniffing waits for the first bytes.
  std::chrono::milliseconds protocol_detection_timeout{0};
  // enableAutoMtls: clusters to in-mesh endpoints use ISTIO_MUTUAL unless a DestinationRule sets
  // tls.
  bool enable_auto_mtls = true;
  // pathNormalization.normalization: how inbound HTTP paths are normalized
  // before AuthorizationPolicy sees them. BASE (Istio's default) resolves
  // "." and ".." segments; MERGE_SLASHES also collapses "//";
  // DECODE_AND_MERGE_SLASHES also decodes %2F and %5C.
  enum class PathNormalization { kNone, kBase, kMergeSlashes, kDecodeAndMergeSlashes };
  PathNormalization path_normalization = PathNormalization::kBase;
  // Istio's standard metrics (telemetry v2): istio.metadata_exchange and
  // istio.stats in every sidecar's HTTP filter chains. On by default, as in Istio.
  bool enable_istio_metrics = true;
};

}  // namespace sheave::control
