#pragma once

#include "proxy/accesslog/stream_info.h"
#include "proxy/network/connection.h"

namespace sheave {

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
  auto join = [](const std::vector<std::string>& sans) {
    std::string out;
    for (const auto& san : sans) {
      if (!out.empty()) out += ',';
      out += san;
    }
    return out;
  };
  if (const auto* peer = connection.peerCertificate()) {
    info.downstream_peer_uri_san = join(peer->uri_sans);
    info.downstream_peer_subject = peer->subject;
  }
  if (const auto* local = connection.localCertificate()) {
    info.downstream_local_uri_san = join(local->uri_sans);
  }
}

}  // namespace sheave
