#pragma once

#include <string>

#include "common/result.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "match/header_map.h"
#include "proxy/network/connection.h"

namespace sheave::http {

// The connection manager's x-forwarded-client-cert handling (Envoy's forward_client_cert_details
// and set_current_client_cert_details): how a sidecar tells its workload which identity called
// it. Parsed once with the HCM config.
struct ForwardClientCertConfig {
  enum class Mode { kSanitize, kForwardOnly, kAppendForward, kSanitizeSet, kAlwaysForwardOnly };
  Mode mode = Mode::kSanitize;
  bool subject = false;
  bool uri = false;
  bool dns = false;

  // cert and chain (URL-encoded PEM) are refused rather than silently left out.
  static Result<ForwardClientCertConfig> create(
      const envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager&
          hcm);
};

// Rewrites the request's x-forwarded-client-cert as `config` says for a request that arrived on
// `connection`. On a connection without a client certificate every mode but ALWAYS_FORWARD_ONLY
// removes the header, so a plaintext caller can never claim an identity.
void applyForwardClientCert(const ForwardClientCertConfig& config,
                            const network::Connection& connection, HeaderMap& headers);

// The element for this connection: By=<our URI SAN>;Hash=<peer cert SHA-256>[;Subject="..."]
// [;URI=...][;DNS=...].
std::string clientCertElement(const ForwardClientCertConfig& config,
                              const network::Connection& connection);

}  // namespace sheave::http
