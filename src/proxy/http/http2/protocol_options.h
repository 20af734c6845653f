#pragma once

#include <cstddef>
#include <cstdint>

#include "common/result.h"

namespace sheave::http2 {

// What an HTTP/2 connection may do, as Envoy's config.core.v3.Http2ProtocolOptions says it,
// plus the header limits of the connection manager and two buffer limits of our own. The
// defaults are Envoy's unless a comment says otherwise; the config loader fills unset proto
// fields from a default-constructed ProtocolOptions.
struct ProtocolOptions {
  // --- config.core.v3.Http2ProtocolOptions ---
  // SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the peer's encoder may use.
  uint32_t hpack_table_size = 4096;
  // SETTINGS_MAX_CONCURRENT_STREAMS. Envoy's default is 2147483647 (no limit, the overload
  // manager is meant to bound memory). We cap it at 1024 so that one client cannot make a
  // worker hold an unbounded number of streams; set it explicitly to get Envoy's value.
  uint32_t max_concurrent_streams = 1024;
  // SETTINGS_INITIAL_WINDOW_SIZE and the connection-level window. 256 MiB each in Envoy; the
  // real bound on buffering is the stream buffer limit, which withholds window updates.
  uint32_t initial_stream_window_size = 268435456;
  uint32_t initial_connection_window_size = 268435456;
  // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 extended CONNECT, e.g. WebSocket over h2).
  bool allow_connect = false;
  // Flood protection; see README.md for how each one is counted.
  uint32_t max_outbound_frames = 10000;
  uint32_t max_outbound_control_frames = 1000;
  uint32_t max_consecutive_inbound_frames_with_empty_payload = 1;
  uint32_t max_inbound_priority_frames_per_stream = 100;
  uint32_t max_inbound_window_update_frames_per_data_frame_sent = 10;
  // false (Envoy's default): a malformed request or response (RFC 9113 8.1.1) ends the whole
  // connection with GOAWAY(PROTOCOL_ERROR). true: only the offending stream is reset.
  bool stream_error_on_invalid_http_messaging = false;

  // --- HttpConnectionManager.max_request_headers_kb, HttpProtocolOptions.max_headers_count ---
  // Per header block (headers or trailers), names plus values, as Envoy counts them. A block
  // over either limit resets its stream.
  uint32_t max_request_headers_kb = 60;
  uint32_t max_headers_count = 100;

  // --- Sheave's own ---
  // Bytes queued for sending on one stream above which its callbacks get
  // onAboveWriteBufferHighWatermark (low watermark: half). Envoy derives the same limit from
  // per_connection_buffer_limit_bytes, 1 MiB by default.
  uint32_t stream_buffer_limit = 1024 * 1024;
  // Undrained output bytes above which the codec stops serializing DATA and HEADERS until the
  // caller drains; control frames still queue inside nghttp2 and count toward the flood limits.
  uint32_t output_buffer_limit = 1024 * 1024;

  size_t maxHeaderBytes() const { return static_cast<size_t>(max_request_headers_kb) * 1024; }
};

// Envoy's accepted ranges for the fields above; the error names the field.
Status validateProtocolOptions(const ProtocolOptions& options);

}  // namespace sheave::http2
