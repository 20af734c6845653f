#pragma once

#include "proxy/accesslog/stream_info.h"
#include "proxy/network/connection.h"

namespace sheave {

// A certificate's URI SANs as the access log prints them: comma-separated.
inline std::string joinUriSans(const std::vector<std::string>& sans) {
  std::string out;
  for (const auto& san : sans) {
    if (!out.empty()) out += ',';
    out += san;
  }
  return out;
}

// What a request or TCP session's StreamInfo knows of its downstream
// connection: addresses, connection id and, on TLS, the SNI and the peer's
// verified certificate and our own (%DOWNSTREAM_PEER_URI_SAN%, %DOWNSTREAM_LOCAL_URI_SAN%,
// %REQUESTED_SERVER_NAME%).
inline void setDownstreamConnectionInfo(const network::Connection& connection, StreamInfo& info) {
  info.downstream_remote_address = connection.remoteAddress().asString();
  info.downstream_direct_remote_address = info.downstream_remote_address;
  info.downstream_local_address = connection.localAddress().asString();
  info.connection_id = connection.id();
  info.requested_server_name = std::string(connection.requestedServerName());
  if (const auto* peer = connection.peerCertificate()) {
    info.downstream_peer_uri_san = joinUriSans(peer->uri_sans);
    info.downstream_peer_subject = peer->subject;
  }
  if (const auto* local = connection.localCertificate()) {
    info.downstream_local_uri_san = joinUriSans(local->uri_sans);
  }
}

// The upstream side of a session: our certificate and the server's on a TLS
// connection to it (Istio's destination_principal on the client side).
inline void setUpstreamConnectionInfo(const network::Connection& connection, StreamInfo& info) {
  info.upstream_local_address = connection.localAddress().asString();
  if (const auto* peer = connection.peerCertificate()) {
    info.upstream_peer_uri_san = joinUriSans(peer->uri_sans);
  }
  if (const auto* local = connection.localCertificate()) {
    info.upstream_local_uri_san = joinUriSans(local->uri_sans);
  }
}

}  // namespace sheave
