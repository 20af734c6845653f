#include "proxy/config/http2_options.h"

namespace sheave::config {

Status parseHttp2ProtocolOptions(const envoy::config::core::v3::Http2ProtocolOptions& p,
                                 http2::ProtocolOptions& o) {
  if (p.has_hpack_table_size()) o.hpack_table_size = p.hpack_table_size().value();
  if (p.has_max_concurrent_streams()) o.max_concurrent_streams = p.max_concurrent_streams().value();
  if (p.has_initial_stream_window_size()) {
    o.initial_stream_window_size = p.initial_stream_window_size().value();
  }
  if (p.has_initial_connection_window_size()) {
    o.initial_connection_window_size = p.initial_connection_window_size().value();
  }
  o.allow_connect = p.allow_connect();
  if (p.has_max_outbound_frames()) o.max_outbound_frames = p.max_outbound_frames().value();
  if (p.has_max_outbound_control_frames()) {
    o.max_outbound_control_frames = p.max_outbound_control_frames().value();
  }
  if (p.has_max_consecutive_inbound_frames_with_empty_payload()) {
    o.max_consecutive_inbound_frames_with_empty_payload =
        p.max_consecutive_inbound_frames_with_empty_payload().value();
  }
  if (p.has_max_inbound_priority_frames_per_stream()) {
    o.max_inbound_priority_frames_per_stream = p.max_inbound_priority_frames_per_stream().value();
  }
  if (p.has_max_inbound_window_update_frames_per_data_frame_sent()) {
    o.max_inbound_window_update_frames_per_data_frame_sent =
        p.max_inbound_window_update_frames_per_data_frame_sent().value();
  }
  o.stream_error_on_invalid_http_messaging = p.stream_error_on_invalid_http_messaging();
  if (p.has_override_stream_error_on_invalid_http_message()) {
    o.stream_error_on_invalid_http_messaging =
        p.override_stream_error_on_invalid_http_message().value();
  }
  Status valid = http2::validateProtocolOptions(o);
  if (!valid.ok()) return std::move(valid).error().at("http2_protocol_options");
  return okStatus();
}

}  // namespace sheave::config
