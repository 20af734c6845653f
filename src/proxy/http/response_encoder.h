#pragma once

#include <string_view>

#include "match/header_map.h"
#include "proxy/network/buffer.h"

namespace sheave::http {

// The codec side of one downstream stream: where the connection manager's stream puts its
// response, whatever protocol the client speaks. The stream applies the protocol-independent
// rules (date, server, via, x-request-id, which responses have no body, stats, access log);
// an encoder applies its protocol's own (HTTP/1.1: hop-by-hop fields, Content-Length or
// chunked framing, keep-alive or close; HTTP/2: frames on one stream of a multiplexed
// connection) and carries request-side flow control back to its client.
//
// The calls mirror upstream::RequestEncoder, the other direction of the same exchange, so an
// HTTP/2 upstream pool slots in under the router without the connection manager noticing: all
// the manager relies on is headers [data...] [trailers], or a reset.
class ResponseEncoder {
 public:
  virtual ~ResponseEncoder() = default;

  // "HTTP/1.0", "HTTP/1.1" or "HTTP/2" (%PROTOCOL%).
  virtual std::string_view protocol() const = 0;

  // An interim 1xx response (never 101).
  virtual void encode1xxHeaders(HeaderMap& headers) = 0;
  // The final response headers. `end_stream` is true when no body follows: either the
  // response has none or it cannot have one (HEAD, 204, 304); the encoder may still add
  // framing fields such as Content-Length for a HEAD.
  virtual void encodeHeaders(HeaderMap& headers, bool end_stream) = 0;
  // Takes the bytes out of `data`.
  virtual void encodeData(network::Buffer& data, bool end_stream) = 0;
  // Ends the response with trailers (an empty map ends it without any).
  virtual void encodeTrailers(HeaderMap& trailers) = 0;
  // Ends the stream abruptly: RST_STREAM on HTTP/2, a closed connection on HTTP/1.1. Called
  // while the stream is still alive; it finishes (filters, stats, access log) right after.
  virtual void resetStream() = 0;

  // Request-side flow control, nested: while disabled, the client's request body is not
  // taken (HTTP/1.1: the connection is not read; HTTP/2: the stream's window stays closed).
  virtual void readDisable(bool disable) = 0;
};

}  // namespace sheave::http
