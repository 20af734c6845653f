#pragma once

#include "proxy/accesslog/stream_info.h"
#include "proxy/network/connection.h"

namespace sheave {

// What a request or TCP session's StreamInfo knows of its downstream
// connection: addresses, connection id and, on TLS, the SNI and the peer's
// verified certificate (%DOWNSTREAM_PEER_URI_SAN%, %REQUESTED_SERVER_NAME%).
inline void setDownstreamConnectionInfo(const network::Connection& connection, StreamInfo& info) {
  info.downstream_remote_address = connection.remoteAddress().asString();
  info.downstream_direct_remote_address = info.downstream_remote_address;
  info.downstream_local_address = connection.localAddress().asString();
  info.connection_id = connection.id();
  info.requested_server_name = std::string(connection.requestedServerName());
  if (const auto* peer = connection.peerCertificate()) {
    info.downstream_peer_uri_san.clear();
    for (const auto& san : peer->uri_sans) {
      if (!info.downstream_peer_uri_san.empty()) info.downstream_peer_uri_san += ',';
      info.downstream_peer_uri_san += san;
    }
    info.downstream_peer_subject = peer->subject;
  }
}

}  // namespace sheave
