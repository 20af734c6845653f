#pragma once

#include <cstdint>

namespace sheave::http2 {

// Counters of one worker's HTTP/2 codecs, named after Envoy's `http2.*` codec stats so the
// stats layer can publish them under the same names (e.g. `http2.outbound_control_flood`).
// Plain integers: a CodecStats belongs to one event loop, like the connections that bump it.
struct CodecStats {
  uint64_t header_overflow = 0;  // a header block over max_request_headers_kb / count
  uint64_t headers_cb_no_stream = 0;
  uint64_t inbound_empty_frames_flood = 0;
  uint64_t inbound_priority_frames_flood = 0;
  uint64_t inbound_window_update_frames_flood = 0;
  uint64_t outbound_control_flood = 0;
  uint64_t outbound_flood = 0;
  uint64_t rx_messaging_error = 0;  // malformed request/response (RFC 9113 8.1.1)
  uint64_t rx_reset = 0;            // RST_STREAM received
  uint64_t tx_reset = 0;            // RST_STREAM sent
  uint64_t stream_refused_errors = 0;
  uint64_t trailers = 0;  // trailer blocks received
  uint64_t goaway_sent = 0;
};

}  // namespace sheave::http2
