#include "proxy/http/http2/connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>

#include "common/logging.h"
#include "proxy/http/http2/header_translation.h"

namespace sheave::http2 {

namespace {

constexpr uint8_t kFrameData = NGHTTP2_DATA;
constexpr size_t kFrameHeaderSize = 9;

bool isControlFrame(uint8_t type) {
  return type == NGHTTP2_PING || type == NGHTTP2_SETTINGS || type == NGHTTP2_RST_STREAM;
}

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NONE;  // nghttp2 copies: the map may die before the frame leaves
  return nv;
}

// Pseudo-headers first (RFC 9113 8.3), connection-specific fields never. A request without
// :authority gets it from Host, and Host is not sent besides :authority: HTTP/1 parsers fold
// Host into :authority already, so a Host here would only repeat it.
std::vector<nghttp2_nv> toNv(const HeaderMap& headers, bool request, bool trailers) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size() + 1);
  if (!trailers) {
    for (const HeaderMap::Entry& e : headers) {
      if (!e.name.empty() && e.name[0] == ':') nv.push_back(makeNv(e.name, e.value));
    }
    if (request && !headers.has(":authority")) {
      if (const std::string* host = headers.get("host")) {
        nv.push_back(makeNv(":authority", *host));
      }
    }
  }
  for (const HeaderMap::Entry& e : headers) {
    if (e.name.empty() || e.name[0] == ':') continue;
    if (request && e.name == "host") continue;
    if (isConnectionSpecificHeader(e.name, e.value)) continue;
    nv.push_back(makeNv(e.name, e.value));
  }
  return nv;
}

// A GOAWAY built by hand: after a fatal error nghttp2's queue is not to be trusted (it may hold
// the very flood being refused), so the codec writes this frame itself.
void appendGoAway(std::string& out, int32_t last_stream_id, ErrorCode code) {
  const uint32_t last = static_cast<uint32_t>(last_stream_id) & 0x7fffffffu;
  const uint32_t err = static_cast<uint32_t>(code);
  const uint8_t frame[17] = {0,
                             0,
                             8,
                             NGHTTP2_GOAWAY,
                             0,
                             0,
                             0,
                             0,
                             0,
                             static_cast<uint8_t>(last >> 24),
                             static_cast<uint8_t>(last >> 16),
                             static_cast<uint8_t>(last >> 8),
                             static_cast<uint8_t>(last),
                             static_cast<uint8_t>(err >> 24),
                             static_cast<uint8_t>(err >> 16),
                             static_cast<uint8_t>(err >> 8),
                             static_cast<uint8_t>(err)};
  out.append(reinterpret_cast<const char*>(frame), sizeof(frame));
}

}  // namespace

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNoError:
      return "NO_ERROR";
    case ErrorCode::kProtocolError:
      return "PROTOCOL_ERROR";
    case ErrorCode::kInternalError:
      return "INTERNAL_ERROR";
    case ErrorCode::kFlowControlError:
      return "FLOW_CONTROL_ERROR";
    case ErrorCode::kSettingsTimeout:
      return "SETTINGS_TIMEOUT";
    case ErrorCode::kStreamClosed:
      return "STREAM_CLOSED";
    case ErrorCode::kFrameSizeError:
      return "FRAME_SIZE_ERROR";
    case ErrorCode::kRefusedStream:
      return "REFUSED_STREAM";
    case ErrorCode::kCancel:
      return "CANCEL";
    case ErrorCode::kCompressionError:
      return "COMPRESSION_ERROR";
    case ErrorCode::kConnectError:
      return "CONNECT_ERROR";
    case ErrorCode::kEnhanceYourCalm:
      return "ENHANCE_YOUR_CALM";
    case ErrorCode::kInadequateSecurity:
      return "INADEQUATE_SECURITY";
    case ErrorCode::kHttp11Required:
      return "HTTP_1_1_REQUIRED";
  }
  return "UNKNOWN";
}

Status validateProtocolOptions(const ProtocolOptions& o) {
  constexpr uint32_t kMaxWindow = (1u << 31) - 1;
  if (o.max_concurrent_streams < 1 || o.max_concurrent_streams > kMaxWindow) {
    return invalidArgument("must be in [1, 2147483647]").at("max_concurrent_streams");
  }
  if (o.initial_stream_window_size < 65535 || o.initial_stream_window_size > kMaxWindow) {
    return invalidArgument("must be in [65535, 2147483647]").at("initial_stream_window_size");
  }
  if (o.initial_connection_window_size < 65535 || o.initial_connection_window_size > kMaxWindow) {
    return invalidArgument("must be in [65535, 2147483647]").at("initial_connection_window_size");
  }
  if (o.max_outbound_frames < 1) return invalidArgument("must be >= 1").at("max_outbound_frames");
  if (o.max_outbound_control_frames < 1) {
    return invalidArgument("must be >= 1").at("max_outbound_control_frames");
  }
  if (o.max_request_headers_kb < 1 || o.max_request_headers_kb > 8192) {
    return invalidArgument("must be in [1, 8192]").at("max_request_headers_kb");
  }
  if (o.max_headers_count < 1) return invalidArgument("must be >= 1").at("max_headers_count");
  return okStatus();
}

// Per-stream state. The map owns it from the first HEADERS (or submitRequest) until nghttp2 has
// closed the stream and every held event has been delivered.
struct Connection::Stream {
  explicit Stream(int32_t stream_id) : id(stream_id) {}

  int32_t id;
  StreamCallbacks* callbacks = nullptr;  // null before onNewStream and after a local reset

  // Receive side.
  HeaderMap block;  // header block being received
  size_t block_bytes = 0;
  bool final_headers_received = false;
  std::string recv_data;  // received, not yet delivered (frame in progress or reading disabled)
  std::string delivery_buf;
  bool recv_end = false;  // END_STREAM received
  std::optional<HeaderMap> recv_trailers;
  bool remote_done = false;  // end of stream delivered
  uint32_t read_disabled = 0;
  bool delivering = false;
  uint64_t unconsumed = 0;  // delivered or held bytes not acknowledged by consumeData

  // Send side.
  std::deque<std::string> send_queue;
  size_t send_offset = 0;  // bytes of send_queue.front() already sent
  size_t send_bytes = 0;
  bool headers_sent = false;  // final headers submitted
  bool send_end = false;      // end of stream queued (data or trailers)
  std::optional<HeaderMap> send_trailers;
  bool provider_deferred = false;
  bool above_high_watermark = false;

  // Lifetime.
  bool closed = false;  // nghttp2 closed it (or the connection died)
  bool reaping = false;
  bool remote_reset = false;  // RST_STREAM received

  bool holdsEvents() const {
    return !recv_data.empty() || recv_trailers.has_value() || (recv_end && !remote_done);
  }
};

// Public calls may nest (a callback calls back in); streams are erased only when the outermost
// call returns, so no frame of the call stack holds a dangling Stream&.
class Connection::EntryGuard {
 public:
  explicit EntryGuard(Connection& c) : c_(c) { ++c_.depth_; }
  ~EntryGuard() {
    if (--c_.depth_ == 0) c_.reap();
  }

 private:
  Connection& c_;
};

// The nghttp2 callbacks, as friends of the connection.
struct SessionGlue {
  static Connection& self(void* user_data) { return *static_cast<Connection*>(user_data); }

  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* ud) {
    Connection& c = self(ud);
    if (c.written_ - c.drained_ >= c.options_.output_buffer_limit) return NGHTTP2_ERR_WOULDBLOCK;
    c.appendOutput(data, length);
    if (c.outboundLimitsExceeded()) return NGHTTP2_ERR_CALLBACK_FAILURE;
    return static_cast<ssize_t>(length);
  }

  // DATA payloads go straight from the stream's queue into the output (NGHTTP2_DATA_FLAG_NO_COPY).
  static int sendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                      nghttp2_data_source* source, void* ud) {
    Connection& c = self(ud);
    if (c.written_ - c.drained_ >= c.options_.output_buffer_limit) return NGHTTP2_ERR_WOULDBLOCK;
    auto* s = static_cast<Connection::Stream*>(source->ptr);
    assert(frame->data.padlen == 0);  // no padding callback is installed
    (void)frame;
    c.appendOutput(framehd, kFrameHeaderSize);
    size_t left = length;
    while (left > 0) {
      const std::string& front = s->send_queue.front();
      const size_t take = std::min(left, front.size() - s->send_offset);
      c.appendOutput(reinterpret_cast<const uint8_t*>(front.data() + s->send_offset), take);
      s->send_offset += take;
      left -= take;
      if (s->send_offset == front.size()) {
        s->send_queue.pop_front();
        s->send_offset = 0;
      }
    }
    s->send_bytes -= length;
    if (s->above_high_watermark && s->send_bytes <= c.options_.stream_buffer_limit / 2) {
      s->above_high_watermark = false;
      c.low_watermark_later_.push_back(s->id);
    }
    if (c.outboundLimitsExceeded()) return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
  }

  static ssize_t readData(nghttp2_session* session, int32_t stream_id, uint8_t*, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void*) {
    auto* s = static_cast<Connection::Stream*>(source->ptr);
    const size_t n = std::min(length, s->send_bytes);
    if (n == 0 && !s->send_end) {
      s->provider_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == s->send_bytes && s->send_end) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (s->send_trailers) {
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nv = toNv(*s->send_trailers, false, true);
        const int rv = nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size());
        s->send_trailers.reset();
        if (rv != 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
    }
    return static_cast<ssize_t>(n);
  }

  static int onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* ud) {
    Connection& c = self(ud);
    const ProtocolOptions& o = c.options_;
    switch (hd->type) {
      case NGHTTP2_DATA:
      case NGHTTP2_HEADERS:
      case NGHTTP2_CONTINUATION:
        if (hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0) {
          if (++c.consecutive_empty_frames_ > o.max_consecutive_inbound_frames_with_empty_payload) {
            c.stats_->inbound_empty_frames_flood++;
            return c.floodDetected("too many consecutive frames with an empty payload");
          }
        } else {
          c.consecutive_empty_frames_ = 0;
        }
        break;
      case NGHTTP2_PRIORITY:
        if (++c.inbound_priority_frames_ >
            static_cast<uint64_t>(o.max_inbound_priority_frames_per_stream) *
                (1 + c.opened_streams_)) {
          c.stats_->inbound_priority_frames_flood++;
          return c.floodDetected("too many PRIORITY frames");
        }
        break;
      case NGHTTP2_WINDOW_UPDATE:
        // A peer may send a few window updates per stream and per DATA frame it receives.
        if (++c.inbound_window_update_frames_ >
            5 + 2 * (c.opened_streams_ +
                     static_cast<uint64_t>(o.max_inbound_window_update_frames_per_data_frame_sent) *
                         c.outbound_data_frames_)) {
          c.stats_->inbound_window_update_frames_flood++;
          return c.floodDetected("too many WINDOW_UPDATE frames");
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Connection& c = self(ud);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    const int32_t id = frame->hd.stream_id;
    Connection::Stream* s = c.findStream(id);
    if (s == nullptr && c.role_ == Connection::Role::kServer &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      s = &c.createStream(id);
      c.opened_streams_++;
    }
    if (s == nullptr) {
      c.stats_->headers_cb_no_stream++;
      return 0;
    }
    s->block.clear();
    s->block_bytes = 0;
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    Connection& c = self(ud);
    Connection::Stream* s = c.findStream(frame->hd.stream_id);
    if (s == nullptr) return 0;
    s->block_bytes += namelen + valuelen;
    if (s->block_bytes > c.options_.maxHeaderBytes() ||
        s->block.size() + 1 > c.options_.max_headers_count) {
      // nghttp2 resets the stream (INTERNAL_ERROR, as Envoy's codec does) and skips the rest of
      // the block without calling us again, so nothing more is stored.
      c.stats_->header_overflow++;
      s->block.clear();
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->block.add(std::string_view(reinterpret_cast<const char*>(name), namelen),
                 std::string_view(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }

  // nghttp2 would silently drop fields whose names are not valid tokens; a proxy should not
  // forward a request that differs from what the client sent, so they make it malformed.
  static int onInvalidHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                             const uint8_t*, size_t, uint8_t, void*) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }

  static int onInvalidFrameRecv(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                                void* ud) {
    Connection& c = self(ud);
    SHEAVE_LOG_DEBUG("http2: invalid frame type {} on stream {}: {}", frame->hd.type,
                     frame->hd.stream_id, nghttp2_strerror(lib_error));
    if (lib_error == NGHTTP2_ERR_HTTP_HEADER || lib_error == NGHTTP2_ERR_HTTP_MESSAGING) {
      return c.messagingError("malformed HTTP/2 message");
    }
    return 0;
  }

  static int onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* ud) {
    Connection& c = self(ud);
    Connection::Stream* s = c.findStream(stream_id);
    if (s == nullptr || s->callbacks == nullptr || s->closed) {
      // Nobody will read it: give the window back at once.
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    s->unconsumed += len;
    s->recv_data.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Connection& c = self(ud);
    const int32_t id = frame->hd.stream_id;
    switch (frame->hd.type) {
      case NGHTTP2_DATA: {
        Connection::Stream* s = c.findStream(id);
        if (s == nullptr || s->callbacks == nullptr) return 0;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) s->recv_end = true;
        c.deliver(*s);
        return 0;
      }
      case NGHTTP2_HEADERS:
        return c.onHeadersComplete(id, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
      case NGHTTP2_RST_STREAM: {
        c.stats_->rx_reset++;
        if (Connection::Stream* s = c.findStream(id)) s->remote_reset = true;
        return 0;
      }
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) c.callbacks_.onSettings();
        return 0;
      case NGHTTP2_GOAWAY:
        c.goaway_received_ = true;
        c.goaway_last_stream_id_ = frame->goaway.last_stream_id;
        c.callbacks_.onGoAway(frame->goaway.last_stream_id,
                              static_cast<ErrorCode>(frame->goaway.error_code));
        return 0;
      default:
        return 0;
    }
  }

  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Connection& c = self(ud);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      c.stats_->tx_reset++;
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
      c.goaway_sent_ = true;
      c.stats_->goaway_sent++;
      if (frame->goaway.error_code != NGHTTP2_NO_ERROR && !c.terminate_requested_) {
        c.local_goaway_error_ = true;
      }
    }
    return 0;
  }

  // A request HEADERS that never left (GOAWAY received first, or cancelled by resetStream
  // before it was sent). nghttp2 may not report such a stream as closed, so do it here.
  static int onFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* ud) {
    Connection& c = self(ud);
    if (frame->hd.type != NGHTTP2_HEADERS || c.role_ != Connection::Role::kClient) return 0;
    Connection::Stream* s = c.findStream(frame->hd.stream_id);
    if (s == nullptr || s->closed) return 0;
    SHEAVE_LOG_DEBUG("http2: request on stream {} not sent: {}", s->id,
                     nghttp2_strerror(lib_error));
    c.onStreamClosed(*s, ErrorCode::kRefusedStream);
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
    Connection& c = self(ud);
    Connection::Stream* s = c.findStream(stream_id);
    if (s != nullptr && !s->closed) c.onStreamClosed(*s, static_cast<ErrorCode>(error_code));
    return 0;
  }

  static int onError(nghttp2_session*, int lib_error, const char* msg, size_t len, void*) {
    SHEAVE_LOG_DEBUG("http2: {} ({})", std::string_view(msg, len), nghttp2_strerror(lib_error));
    return 0;
  }
};

int Connection::floodDetected(std::string_view what) {
  pending_error_ = invalidArgument("HTTP/2 flood: " + std::string(what));
  pending_goaway_code_ = ErrorCode::kEnhanceYourCalm;
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

int Connection::messagingError(std::string_view what) {
  stats_->rx_messaging_error++;
  if (options_.stream_error_on_invalid_http_messaging) return 0;  // nghttp2 resets the stream
  pending_error_ = invalidArgument(std::string(what));
  pending_goaway_code_ = ErrorCode::kProtocolError;
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

int Connection::onHeadersComplete(int32_t id, bool end_stream) {
  Stream* s = findStream(id);
  if (s == nullptr) return 0;
  HeaderMap block = std::move(s->block);
  s->block.clear();

  if (s->final_headers_received) {
    // Trailers (nghttp2 has checked END_STREAM and the absence of pseudo-headers).
    if (s->callbacks == nullptr) return 0;
    stats_->trailers++;
    s->recv_trailers = std::move(block);
    s->recv_end = true;
    deliver(*s);
    return 0;
  }

  if (role_ == Role::kServer) {
    // RFC 9113 8.3.1: Host and :authority must agree; keep only :authority, as HTTP/1 does.
    if (const std::string* host = block.get("host")) {
      const std::string* authority = block.get(":authority");
      if (authority == nullptr) {
        HeaderMap folded;
        for (const HeaderMap::Entry& e : block) {
          if (!e.name.empty() && e.name[0] == ':') folded.add(e.name, e.value);
        }
        folded.add(":authority", *host);
        for (const HeaderMap::Entry& e : block) {
          if (e.name.empty() || e.name[0] == ':' || e.name == "host") continue;
          folded.add(e.name, e.value);
        }
        block = std::move(folded);
      } else if (!equalsIgnoreCase(*authority, *host)) {
        if (options_.stream_error_on_invalid_http_messaging) {
          stats_->rx_messaging_error++;
          nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
          return 0;
        }
        return messagingError("Host differs from :authority");
      } else {
        block.remove("host");
      }
    }
    s->final_headers_received = true;
    StreamCallbacks* callbacks = server_callbacks_->onNewStream(id);
    if (callbacks == nullptr) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    s->callbacks = callbacks;
    if (end_stream) {
      s->recv_end = true;
      s->remote_done = true;
    }
    callbacks->onHeaders(std::move(block), end_stream);
    return 0;
  }

  if (s->callbacks == nullptr) return 0;
  const std::string_view status = block.status();
  if (status.size() == 3 && status[0] == '1') {
    // nghttp2 has rejected 101 and END_STREAM on an interim response already.
    s->callbacks->onInformationalHeaders(std::move(block));
    return 0;
  }
  s->final_headers_received = true;
  if (end_stream) {
    s->recv_end = true;
    s->remote_done = true;
  }
  s->callbacks->onHeaders(std::move(block), end_stream);
  return 0;
}

Connection::Connection(Role role, const ProtocolOptions& options, ConnectionCallbacks& callbacks,
                       CodecStats* stats)
    : role_(role),
      options_(options),
      callbacks_(callbacks),
      stats_(stats != nullptr ? stats : &own_stats_) {
  if (role_ == Role::kClient) out_preface_left_ = NGHTTP2_CLIENT_MAGIC_LEN;
  nghttp2_session_callbacks* cbs = nullptr;
  int rv = nghttp2_session_callbacks_new(&cbs);
  assert(rv == 0);
  nghttp2_session_callbacks_set_send_callback(cbs, &SessionGlue::send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &SessionGlue::sendData);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &SessionGlue::onBeginFrame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &SessionGlue::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &SessionGlue::onHeader);
  nghttp2_session_callbacks_set_on_invalid_header_callback(cbs, &SessionGlue::onInvalidHeader);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs,
                                                               &SessionGlue::onInvalidFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &SessionGlue::onDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &SessionGlue::onFrameRecv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &SessionGlue::onFrameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, &SessionGlue::onFrameNotSend);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &SessionGlue::onStreamClose);
  nghttp2_session_callbacks_set_error_callback2(cbs, &SessionGlue::onError);

  nghttp2_option* opt = nullptr;
  rv = nghttp2_option_new(&opt);
  assert(rv == 0);
  // Window updates follow consumeData, not arrival: that is what bounds buffering.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // nghttp2's own cap on queued SETTINGS/PING acks, aligned with ours so that a flood inside
  // one read is caught before nghttp2 queues more than we would allow in the output.
  nghttp2_option_set_max_outbound_ack(opt, options_.max_outbound_control_frames);
  nghttp2_option_set_no_closed_streams(opt, 1);

  if (role_ == Role::kServer) {
    rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
  } else {
    rv = nghttp2_session_client_new2(&session_, cbs, this, opt);
  }
  assert(rv == 0);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);

  std::vector<nghttp2_settings_entry> settings;
  settings.push_back({NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, options_.hpack_table_size});
  settings.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams});
  settings.push_back({NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_stream_window_size});
  if (role_ == Role::kClient) {
    settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  } else if (options_.allow_connect) {
    settings.push_back({NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1});
  }
  rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  assert(rv == 0);
  if (options_.initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    rv = nghttp2_session_set_local_window_size(
        session_, NGHTTP2_FLAG_NONE, 0,
        static_cast<int32_t>(options_.initial_connection_window_size));
    assert(rv == 0);
  }
  (void)rv;
}

Connection::~Connection() {
  // Before the streams: nghttp2's data providers point into them.
  nghttp2_session_del(session_);
}

Connection::Stream& Connection::createStream(int32_t stream_id) {
  auto stream = std::make_unique<Stream>(stream_id);
  Stream& ref = *stream;
  streams_[stream_id] = std::move(stream);
  return ref;
}

void Connection::addStream(std::unique_ptr<Stream> stream) {
  const int32_t id = stream->id;
  streams_[id] = std::move(stream);
}

Connection::Stream* Connection::findStream(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

const Connection::Stream* Connection::findStream(int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

Result<size_t> Connection::dispatch(std::string_view data) {
  EntryGuard guard(*this);
  SHEAVE_RETURN_IF_ERROR(checkUsable());
  dispatching_ = true;
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  dispatching_ = false;
  if (rv < 0) {
    if (pending_error_) {
      Error error = std::move(*pending_error_);
      pending_error_.reset();
      fail(std::move(error), pending_goaway_code_);
    } else if (rv == NGHTTP2_ERR_FLOODED) {
      stats_->outbound_control_flood++;
      fail(invalidArgument("HTTP/2 flood: too many SETTINGS/PING acknowledgements queued"),
           ErrorCode::kEnhanceYourCalm);
    } else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      fail(invalidArgument("not an HTTP/2 connection preface"), ErrorCode::kProtocolError);
    } else {
      fail(invalidArgument(std::string("HTTP/2 protocol error: ") +
                           nghttp2_strerror(static_cast<int>(rv))),
           ErrorCode::kProtocolError);
    }
    return *error_;
  }
  runDeferred();
  flush();
  if (error_) return *error_;
  return data.size();
}

void Connection::runDeferred() {
  while (!deliver_later_.empty()) {
    std::vector<int32_t> ids;
    ids.swap(deliver_later_);
    for (int32_t id : ids) {
      if (Stream* s = findStream(id)) deliver(*s);
    }
  }
}

std::string_view Connection::pendingOutput() {
  EntryGuard guard(*this);
  flush();
  return std::string_view(output_).substr(output_begin_);
}

void Connection::drainOutput(size_t n) {
  n = std::min<uint64_t>(n, written_ - drained_);
  drained_ += n;
  output_begin_ += n;
  if (output_begin_ == output_.size()) {
    output_.clear();
    output_begin_ = 0;
  } else if (output_begin_ >= 64 * 1024 && output_begin_ * 2 >= output_.size()) {
    output_.erase(0, output_begin_);
    output_begin_ = 0;
  }
  while (!out_frames_.empty() && out_frames_.front().end <= drained_) {
    if (out_frames_.front().control) --out_control_frames_;
    out_frames_.pop_front();
  }
}

bool Connection::wantsWrite() const {
  if (written_ > drained_) return true;
  return !error_ && !closed_ && nghttp2_session_want_write(session_) != 0;
}

bool Connection::shouldClose() const {
  if (error_ || closed_) return true;
  return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0 &&
         written_ == drained_;
}

void Connection::appendOutput(const uint8_t* data, size_t len) {
  const uint64_t base = written_;
  output_.append(reinterpret_cast<const char*>(data), len);
  written_ += len;
  // Track frame boundaries: frames count toward the outbound limits until drained.
  size_t i = 0;
  if (out_preface_left_ > 0) {
    // A client's output starts with the 24-byte connection preface, which is not a frame.
    i = std::min(len, out_preface_left_);
    out_preface_left_ -= i;
  }
  while (i < len) {
    if (out_payload_left_ > 0) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(len - i, out_payload_left_));
      i += k;
      out_payload_left_ -= k;
      continue;
    }
    const size_t k = std::min(len - i, kFrameHeaderSize - out_header_have_);
    std::memcpy(out_header_ + out_header_have_, data + i, k);
    out_header_have_ += k;
    i += k;
    if (out_header_have_ < kFrameHeaderSize) break;
    out_header_have_ = 0;
    const uint32_t length = (uint32_t{out_header_[0]} << 16) | (uint32_t{out_header_[1]} << 8) |
                            uint32_t{out_header_[2]};
    const uint8_t type = out_header_[3];
    const uint64_t payload_start = base + i;
    const bool control = isControlFrame(type);
    out_frames_.push_back({payload_start - kFrameHeaderSize, payload_start + length, control});
    if (control) ++out_control_frames_;
    if (type == kFrameData) ++outbound_data_frames_;
    out_payload_left_ = length;
  }
}

bool Connection::outboundLimitsExceeded() {
  if (out_frames_.size() > options_.max_outbound_frames) {
    stats_->outbound_flood++;
    floodDetected("too many frames waiting to be written (the peer does not read)");
    return true;
  }
  if (out_control_frames_ > options_.max_outbound_control_frames) {
    stats_->outbound_control_flood++;
    floodDetected("too many PING/SETTINGS/RST_STREAM frames waiting to be written");
    return true;
  }
  return false;
}

void Connection::flush() {
  if (error_ || closed_ || dispatching_ || sending_) return;
  for (;;) {
    sending_ = true;
    const int rv = nghttp2_session_send(session_);
    sending_ = false;
    if (rv != 0) {
      if (pending_error_) {
        Error error = std::move(*pending_error_);
        pending_error_.reset();
        fail(std::move(error), pending_goaway_code_);
      } else {
        fail(internalError(std::string("HTTP/2 send failed: ") + nghttp2_strerror(rv)),
             ErrorCode::kInternalError);
      }
      return;
    }
    if (local_goaway_error_) {
      // nghttp2 found a connection error in the peer's frames and has queued (and we have
      // just serialized) its GOAWAY: the connection is over.
      error_ = invalidArgument("HTTP/2 protocol error from the peer (GOAWAY sent)");
      resetAllStreams(ErrorCode::kProtocolError, ResetSource::kConnectionFailure);
      return;
    }
    if (low_watermark_later_.empty()) return;
    std::vector<int32_t> ids;
    ids.swap(low_watermark_later_);
    for (int32_t id : ids) {
      Stream* s = findStream(id);
      if (s != nullptr && s->callbacks != nullptr) s->callbacks->onBelowWriteBufferLowWatermark();
    }
    // The callbacks may have queued more data; send it too.
  }
}

void Connection::fail(Error error, ErrorCode goaway_code) {
  if (error_) return;
  SHEAVE_LOG_DEBUG("http2: closing connection: {}", error.message());
  // Keep a frame the caller has started taking (its tail must follow), drop the rest, which may
  // be the flood itself, and end with our GOAWAY.
  uint64_t keep = drained_;
  if (!out_frames_.empty() && out_frames_.front().start < drained_) {
    keep = std::min(out_frames_.front().end, written_);
  }
  output_.resize(output_begin_ + static_cast<size_t>(keep - drained_));
  written_ = keep;
  out_frames_.clear();
  out_control_frames_ = 0;
  out_header_have_ = 0;
  out_payload_left_ = 0;
  out_preface_left_ = 0;
  const size_t before = output_.size();
  appendGoAway(output_, nghttp2_session_get_last_proc_stream_id(session_), goaway_code);
  written_ += output_.size() - before;
  goaway_sent_ = true;
  stats_->goaway_sent++;
  error_ = std::move(error);
  resetAllStreams(goaway_code, ResetSource::kConnectionFailure);
}

void Connection::resetAllStreams(ErrorCode code, ResetSource source) {
  std::vector<int32_t> ids;
  ids.reserve(streams_.size());
  for (const auto& [id, stream] : streams_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (int32_t id : ids) {
    Stream* s = findStream(id);
    if (s == nullptr) continue;
    StreamCallbacks* callbacks = s->callbacks;
    const bool complete = s->remote_done && s->send_end && s->send_bytes == 0;
    s->callbacks = nullptr;
    s->closed = true;
    s->recv_data.clear();
    s->recv_trailers.reset();
    markForReap(*s);
    if (callbacks != nullptr && !complete) callbacks->onReset(code, source);
  }
}

void Connection::deliver(Stream& s) {
  if (s.delivering) return;
  s.delivering = true;
  while (s.callbacks != nullptr && s.read_disabled == 0) {
    const bool end_pending = s.recv_end && !s.remote_done && !s.recv_trailers;
    if (!s.recv_data.empty() || end_pending) {
      s.delivery_buf.swap(s.recv_data);
      s.recv_data.clear();
      const bool end = s.recv_end && !s.recv_trailers;
      if (end) s.remote_done = true;
      s.callbacks->onData(s.delivery_buf, end);
      s.delivery_buf.clear();
      continue;
    }
    if (s.recv_trailers) {
      HeaderMap trailers = std::move(*s.recv_trailers);
      s.recv_trailers.reset();
      s.remote_done = true;
      s.callbacks->onTrailers(std::move(trailers));
      continue;
    }
    break;
  }
  s.delivering = false;
  if (s.closed) markForReap(s);
}

void Connection::onStreamClosed(Stream& s, ErrorCode code) {
  s.closed = true;
  // The connection window still counts bytes nobody acknowledged; the stream is over, so give
  // them back.
  if (s.unconsumed > 0 && !error_ && !closed_) {
    nghttp2_session_consume_connection(session_, s.unconsumed);
  }
  s.unconsumed = 0;
  s.send_queue.clear();
  s.send_bytes = 0;
  if (s.callbacks == nullptr) {
    markForReap(s);
    return;
  }
  if (code == ErrorCode::kNoError && s.recv_end) {
    // Normal end, or the peer's RST_STREAM(NO_ERROR) after a complete response ("stop
    // sending", RFC 9113 8.1). Held events are still delivered.
    markForReap(s);
    return;
  }
  ResetSource source = ResetSource::kLocal;
  if (s.remote_reset) {
    source = ResetSource::kRemote;
  } else if (code == ErrorCode::kRefusedStream && goaway_received_ &&
             s.id > goaway_last_stream_id_) {
    source = ResetSource::kGoAway;
  }
  if (code == ErrorCode::kRefusedStream && role_ == Role::kClient) stats_->stream_refused_errors++;
  StreamCallbacks* callbacks = s.callbacks;
  s.callbacks = nullptr;
  s.recv_data.clear();
  s.recv_trailers.reset();
  markForReap(s);
  callbacks->onReset(code, source);
}

void Connection::markForReap(Stream& s) {
  if (s.reaping || !s.closed) return;
  if (s.callbacks != nullptr && s.holdsEvents()) return;
  s.reaping = true;
  reap_.push_back(s.id);
}

void Connection::reap() {
  for (int32_t id : reap_) streams_.erase(id);
  reap_.clear();
}

Status Connection::checkUsable() const {
  if (error_) return Error(*error_);
  if (closed_) return Error(sheave::ErrorCode::kUnavailable, "the HTTP/2 connection is closed");
  return okStatus();
}

Status Connection::checkSendable(const Stream* s, int32_t stream_id) const {
  if (s == nullptr) return invalidArgument("unknown HTTP/2 stream " + std::to_string(stream_id));
  if (s->callbacks == nullptr || s->closed) {
    return Error(sheave::ErrorCode::kUnavailable,
                 "HTTP/2 stream " + std::to_string(stream_id) + " is reset or closed");
  }
  return okStatus();
}

Status Connection::submitHeaders(int32_t stream_id, const HeaderMap& headers, bool end_stream) {
  EntryGuard guard(*this);
  SHEAVE_RETURN_IF_ERROR(checkUsable());
  if (role_ != Role::kServer) {
    return invalidArgument("a client sends headers with submitRequest");
  }
  Stream* s = findStream(stream_id);
  SHEAVE_RETURN_IF_ERROR(checkSendable(s, stream_id));
  if (s->headers_sent) return invalidArgument("response headers were already sent");
  const std::string_view status = headers.status();
  if (status.size() != 3 || status[0] < '1' || status[0] > '5') {
    return invalidArgument("response headers need a 3-digit :status");
  }
  std::vector<nghttp2_nv> nv = toNv(headers, false, false);
  int rv = 0;
  if (status[0] == '1') {
    if (status == "101") return invalidArgument("HTTP/2 has no 101 Switching Protocols");
    if (end_stream) return invalidArgument("an interim 1xx response cannot end the stream");
    rv = nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, stream_id, nullptr, nv.data(),
                                nv.size(), nullptr);
  } else {
    nghttp2_data_provider provider;
    provider.source.ptr = s;
    provider.read_callback = &SessionGlue::readData;
    rv = nghttp2_submit_response(session_, stream_id, nv.data(), nv.size(),
                                 end_stream ? nullptr : &provider);
    if (rv == 0) {
      s->headers_sent = true;
      s->send_end = end_stream;
    }
  }
  if (rv != 0) return internalError(std::string("nghttp2: ") + nghttp2_strerror(rv));
  flush();
  return okStatus();
}

void Connection::queueData(Stream& s, std::string&& owned, std::string_view view, bool end_stream) {
  const size_t n = owned.empty() ? view.size() : owned.size();
  if (n > 0) {
    if (!owned.empty()) {
      s.send_queue.push_back(std::move(owned));
    } else {
      s.send_queue.emplace_back(view);
    }
    s.send_bytes += n;
  }
  if (end_stream) s.send_end = true;
  if (s.provider_deferred && (n > 0 || end_stream)) {
    s.provider_deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
  if (!s.above_high_watermark && s.send_bytes > options_.stream_buffer_limit) {
    s.above_high_watermark = true;
    s.callbacks->onAboveWriteBufferHighWatermark();
  }
}

Status Connection::submitData(int32_t stream_id, std::string_view data, bool end_stream) {
  EntryGuard guard(*this);
  SHEAVE_RETURN_IF_ERROR(checkUsable());
  Stream* s = findStream(stream_id);
  SHEAVE_RETURN_IF_ERROR(checkSendable(s, stream_id));
  if (!s->headers_sent || s->send_end) {
    return invalidArgument("data needs open headers and no end of stream yet");
  }
  queueData(*s, std::string(), data, end_stream);
  flush();
  return okStatus();
}

Status Connection::submitData(int32_t stream_id, std::string&& data, bool end_stream) {
  EntryGuard guard(*this);
  SHEAVE_RETURN_IF_ERROR(checkUsable());
  Stream* s = findStream(stream_id);
  SHEAVE_RETURN_IF_ERROR(checkSendable(s, stream_id));
  if (!s->headers_sent || s->send_end) {
    return invalidArgument("data needs open headers and no end of stream yet");
  }
  queueData(*s, std::move(data), {}, end_stream);
  flush();
  return okStatus();
}

Status Connection::submitTrailers(int32_t stream_id, const HeaderMap& trailers) {
  EntryGuard guard(*this);
  SHEAVE_RETURN_IF_ERROR(checkUsable());
  Stream* s = findStream(stream_id);
  SHEAVE_RETURN_IF_ERROR(checkSendable(s, stream_id));
  if (!s->headers_sent || s->send_end) {
    return invalidArgument("trailers need open headers and no end of stream yet");
  }
  if (!trailers.empty()) s->send_trailers = trailers;
  queueData(*s, std::string(), {}, /*end_stream=*/true);
  flush();
  return okStatus();
}

void Connection::resetStream(int32_t stream_id, ErrorCode code) {
  EntryGuard guard(*this);
  Stream* s = findStream(stream_id);
  if (s == nullptr) return;
  s->callbacks = nullptr;
  s->recv_data.clear();
  s->recv_trailers.reset();
  if (s->closed || error_ || closed_) {
    markForReap(*s);
    return;
  }
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, static_cast<uint32_t>(code));
  flush();
}

void Connection::consumeData(int32_t stream_id, size_t n) {
  EntryGuard guard(*this);
  if (error_ || closed_) return;
  Stream* s = findStream(stream_id);
  if (s == nullptr || s->closed) return;  // its bytes were given back when it closed
  n = static_cast<size_t>(std::min<uint64_t>(n, s->unconsumed));
  if (n == 0) return;
  s->unconsumed -= n;
  nghttp2_session_consume(session_, stream_id, n);
  flush();
}

void Connection::detachStream(int32_t stream_id) {
  EntryGuard guard(*this);
  Stream* s = findStream(stream_id);
  if (s == nullptr) return;
  s->callbacks = nullptr;
  s->recv_data.clear();
  s->recv_trailers.reset();
  if (s->unconsumed > 0 && !s->closed && !error_ && !closed_) {
    nghttp2_session_consume(session_, stream_id, s->unconsumed);
  }
  s->unconsumed = 0;
  if (s->closed) {
    markForReap(*s);
    return;
  }
  flush();
}

void Connection::readDisable(int32_t stream_id, bool disable) {
  EntryGuard guard(*this);
  Stream* s = findStream(stream_id);
  if (s == nullptr) return;
  if (disable) {
    ++s->read_disabled;
    return;
  }
  if (s->read_disabled == 0 || --s->read_disabled > 0) return;
  if (dispatching_ || sending_) {
    deliver_later_.push_back(stream_id);
  } else {
    deliver(*s);
  }
}

void Connection::goAway(ErrorCode code) {
  EntryGuard guard(*this);
  if (error_ || closed_) return;
  const int32_t last = nghttp2_session_get_last_proc_stream_id(session_);
  if (code == ErrorCode::kNoError) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, nullptr, 0);
  } else {
    terminate_requested_ = true;
    nghttp2_session_terminate_session2(session_, last, static_cast<uint32_t>(code));
  }
  flush();
}

void Connection::close() {
  EntryGuard guard(*this);
  if (closed_) return;
  closed_ = true;
  resetAllStreams(ErrorCode::kNoError, ResetSource::kConnectionClosed);
}

size_t Connection::activeStreams() const {
  size_t n = 0;
  for (const auto& [id, stream] : streams_) {
    if (!stream->closed) ++n;
  }
  return n;
}

size_t Connection::pendingSendBytes(int32_t stream_id) const {
  const Stream* s = findStream(stream_id);
  return s == nullptr ? 0 : s->send_bytes;
}

uint32_t Connection::remoteMaxConcurrentStreams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

ServerConnection::ServerConnection(const ProtocolOptions& options,
                                   ServerConnectionCallbacks& callbacks, CodecStats* stats)
    : Connection(Role::kServer, options, callbacks, stats) {
  server_callbacks_ = &callbacks;
}

void ServerConnection::shutdownNotice() {
  EntryGuard guard(*this);
  if (!checkUsable().ok()) return;
  nghttp2_submit_shutdown_notice(session_);
  flush();
}

ClientConnection::ClientConnection(const ProtocolOptions& options, ConnectionCallbacks& callbacks,
                                   CodecStats* stats)
    : Connection(Role::kClient, options, callbacks, stats) {}

Result<int32_t> ClientConnection::submitRequest(const HeaderMap& headers, bool end_stream,
                                                StreamCallbacks& callbacks) {
  EntryGuard guard(*this);
  SHEAVE_RETURN_IF_ERROR(checkUsable());
  if (goAwayReceived()) {
    return Error(sheave::ErrorCode::kUnavailable, "the server sent GOAWAY; open a new connection");
  }
  auto stream = std::make_unique<Stream>(0);
  nghttp2_data_provider provider;
  provider.source.ptr = stream.get();
  provider.read_callback = &SessionGlue::readData;
  std::vector<nghttp2_nv> nv = toNv(headers, true, false);
  const int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                            end_stream ? nullptr : &provider, nullptr);
  if (id < 0) return internalError(std::string("nghttp2: ") + nghttp2_strerror(id));
  stream->id = id;
  stream->callbacks = &callbacks;
  stream->headers_sent = true;
  stream->send_end = end_stream;
  addStream(std::move(stream));
  noteOpenedStream();
  flush();
  return id;
}

}  // namespace sheave::http2
