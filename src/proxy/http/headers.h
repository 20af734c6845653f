#pragma once

#include <string_view>

#include "common/address.h"
#include "match/header_map.h"

namespace sheave::http {

// Removes the hop-by-hop fields of RFC 9110 7.6.1 (Connection and the
// fields it lists, Keep-Alive, Proxy-Connection, Transfer-Encoding, TE except
// "trailers", Upgrade): they describe one connection and must not be
// forwarded. Framing is re-done by the encoder for the next hop.
void removeHopByHopHeaders(HeaderMap& headers);

// Appends `value` to a comma-separated header such as x-forwarded-for.
void appendHeaderValue(HeaderMap& headers, std::string_view name, std::string_view value);

// RFC 1918, loopback, link-local and unique-local addresses: Envoy's
// definition of an internal caller when no internal_address_config is set.
bool isInternalAddress(const Address& address);

// Strips the x-envoy-* request headers an external caller must not control
// (retry policy overrides, timeouts, internal markers).
void removeEnvoyInternalHeaders(HeaderMap& headers);

}  // namespace sheave::http
