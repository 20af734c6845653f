#pragma once

#include <string_view>

#include "match/header_map.h"

namespace sheave::http2 {

// HTTP/1.1 <-> HTTP/2 header translation for a proxy that speaks one protocol on each side.
// Both codecs share one HeaderMap representation (lower-case names, :method/:path/:authority/
// :scheme/:status in the map, Host folded into :authority), so translation is mostly removing
// what one protocol forbids and the other needs done differently.

// RFC 9113 8.2.2: fields that describe one HTTP/1 connection and are malformed in HTTP/2:
// Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, and TE with any value
// but "trailers". `name` is lower-case.
bool isConnectionSpecificHeader(std::string_view name, std::string_view value);

// HTTP/2 request -> what the HTTP/1 encoder needs: :authority present (from Host if the client
// sent only Host) and Host dropped (the encoder writes Host from :authority), Cookie crumbs
// joined with "; " into one field (RFC 9113 8.2.3), connection-specific fields and TE dropped.
// :scheme stays (the encoder ignores pseudo-headers it does not use).
void requestHeadersToHttp1(HeaderMap& headers);

// HTTP/1 request (as the HTTP/1 parser produced it) -> HTTP/2: hop-by-hop fields dropped
// (Connection and the fields it names, Keep-Alive, Proxy-Connection, Transfer-Encoding,
// Upgrade, TE except "trailers", which gRPC needs), Host folded into :authority, :scheme set to
// `scheme` when absent. Pseudo-headers come first.
void requestHeadersToHttp2(HeaderMap& headers, std::string_view scheme);

// HTTP/2 response -> HTTP/1: connection-specific fields dropped (a well-behaved peer sends none).
// The HTTP/1 side chooses its own framing (Content-Length or chunked).
void responseHeadersToHttp1(HeaderMap& headers);

// HTTP/1 response -> HTTP/2: hop-by-hop fields dropped, as for requests.
void responseHeadersToHttp2(HeaderMap& headers);

// Trailers in either direction: pseudo-headers and hop-by-hop fields dropped.
void trailersForForwarding(HeaderMap& trailers);

}  // namespace sheave::http2
