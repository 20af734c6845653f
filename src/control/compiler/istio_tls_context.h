#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"

namespace sheave::control {

// The TLS settings both directions of Istio's mTLS share, kept in one place
// so that clusters (client side) and inbound chains (server side) cannot
// drift apart.

// Resources that come over the proxy's ADS stream (SDS secrets, EDS).
void setAdsConfigSource(envoy::config::core::v3::ConfigSource* source);

// The workload certificate (`default`) and the trust bundle (`ROOTCA`), both
// over SDS, with the combined validation context Istio uses. Returns the
// default validation context so that callers add their SAN checks.
envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext*
setIstioSdsCertificates(envoy::extensions::transport_sockets::tls::v3::CommonTlsContext* common);

// The server side of Istio's mTLS on an inbound chain: client certificate
// required, peers accepted by their URI SAN being under
// `spiffe://<trust_domain>/`, ALPN offered as Istio does (HTTP chains
// h2/http/1.1, TCP chains also istio-peer-exchange).
envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext istioInboundTlsContext(
    std::string_view trust_domain, bool http);

}  // namespace sheave::control
