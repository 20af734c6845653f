#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "match/header_map.h"
#include "proxy/http/http2/codec_stats.h"
#include "proxy/http/http2/protocol_options.h"

struct nghttp2_session;

namespace sheave::http2 {

// RFC 9113 section 7. A peer may send any 32-bit value; unknown ones pass through as is.
enum class ErrorCode : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kFlowControlError = 0x3,
  kSettingsTimeout = 0x4,
  kStreamClosed = 0x5,
  kFrameSizeError = 0x6,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kCompressionError = 0x9,
  kConnectError = 0xa,
  kEnhanceYourCalm = 0xb,
  kInadequateSecurity = 0xc,
  kHttp11Required = 0xd,
};
std::string_view errorCodeName(ErrorCode code);

// Why a stream ended before both of its directions completed.
enum class ResetSource {
  kRemote,            // the peer sent RST_STREAM
  kLocal,             // this codec reset it (malformed frames or headers, limits, flow control)
  kGoAway,            // the peer's GOAWAY refused it (never processed; safe to retry)
  kConnectionClosed,  // close() was called: the transport is gone
  kConnectionFailure  // the connection failed (protocol error, flood); see Connection::error()
};

// One stream's events, in order: [1xx headers...] headers [data...] [trailers], or a reset at
// any point. After end_stream, trailers or onReset nothing more arrives (except watermarks
// until the local side is done). Callbacks may call back into the connection (submit*,
// resetStream, consumeData, readDisable) but must not destroy it.
class StreamCallbacks {
 public:
  virtual ~StreamCallbacks() = default;
  // Server: the request headers (:method, :scheme, :path, :authority first; Host folded into
  // :authority). Client: the final response headers (:status first).
  virtual void onHeaders(HeaderMap&& headers, bool end_stream) = 0;
  // Client only: an interim 1xx response; the final one follows through onHeaders.
  virtual void onInformationalHeaders(HeaderMap&& /*headers*/) {}
  // Body bytes, whole DATA frames (or what arrived of one when reading is re-enabled). The view
  // is valid during the call only. Every byte must eventually be acknowledged with
  // Connection::consumeData: until then it counts against the peer's flow-control windows.
  // A frame with END_STREAM and no payload arrives as onData({}, true).
  virtual void onData(std::string_view data, bool end_stream) = 0;
  // Trailers; they end the stream.
  virtual void onTrailers(HeaderMap&& trailers) = 0;
  // The stream is gone. Not called for the caller's own resetStream.
  virtual void onReset(ErrorCode code, ResetSource source) = 0;
  // Bytes queued by submitData on this stream crossed stream_buffer_limit / fell to half of it:
  // stop / resume reading whatever feeds this stream.
  virtual void onAboveWriteBufferHighWatermark() {}
  virtual void onBelowWriteBufferLowWatermark() {}
};

class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  // The peer sent GOAWAY. Client streams above last_stream_id are reset with kGoAway.
  virtual void onGoAway(int32_t /*last_stream_id*/, ErrorCode /*code*/) {}
  // The peer's SETTINGS arrived (e.g. a new max concurrent streams for a pool).
  virtual void onSettings() {}
};

class ServerConnectionCallbacks : public ConnectionCallbacks {
 public:
  // A request whose headers arrived complete and valid; its onHeaders follows at once.
  // Returns where the stream's events go, or nullptr to refuse it (RST_STREAM REFUSED_STREAM).
  virtual StreamCallbacks* onNewStream(int32_t stream_id) = 0;
};

// An I/O-free HTTP/2 connection over nghttp2: bytes in (dispatch), bytes out (pendingOutput /
// drainOutput), events out per stream (StreamCallbacks), frames in per stream (submit*).
// Never touches a socket, a clock or an event loop, so it can be tested wired to a peer in
// memory and fuzzed.
//
// Output: after dispatch and submit*, frames wait in the codec. The caller copies
// pendingOutput() to the transport and calls drainOutput(n) with what it took. Frames count
// toward max_outbound_frames / max_outbound_control_frames until drained, so a caller should
// drain only as fast as its transport writes (as Envoy counts until the socket write): a peer
// that does not read then trips the outbound flood limits instead of growing memory.
//
// Errors: a connection-level error (protocol violation, flood, bad preface) makes dispatch
// return it; the output then ends with a GOAWAY. Write it, then close the transport.
// shouldClose() also turns true after a graceful GOAWAY exchange finishes.
class Connection {
 public:
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Feeds bytes from the peer; all of them are consumed unless an error is returned.
  Result<size_t> dispatch(std::string_view data);

  // Serialized frames not yet taken by the caller (serializes what nghttp2 has queued first,
  // up to output_buffer_limit). Valid until the next call on the connection.
  std::string_view pendingOutput();
  void drainOutput(size_t n);
  // Whether pendingOutput() would return something.
  bool wantsWrite() const;
  // The connection is finished: after an error, or when GOAWAY was exchanged and no stream is
  // left. Write what pendingOutput() has, then close.
  bool shouldClose() const;
  // The connection-level error, if one happened.
  const std::optional<Error>& error() const { return error_; }

  // Server: response headers (a 1xx :status sends an interim response). end_stream=false
  // leaves the stream open for submitData / submitTrailers.
  Status submitHeaders(int32_t stream_id, const HeaderMap& headers, bool end_stream);
  // Queues body bytes; they leave as the peer's windows allow. The string overload takes
  // ownership without copying; bytes are copied once more, into the output, when sent.
  Status submitData(int32_t stream_id, std::string_view data, bool end_stream);
  Status submitData(int32_t stream_id, std::string&& data, bool end_stream);
  // Ends the stream with trailers (sent after the queued data).
  Status submitTrailers(int32_t stream_id, const HeaderMap& trailers);
  // Sends RST_STREAM; the stream's callbacks get nothing more.
  void resetStream(int32_t stream_id, ErrorCode code);

  // Acknowledges n bytes delivered by onData, opening the windows again.
  void consumeData(int32_t stream_id, size_t n);
  // The caller is done with the stream (its side is fully submitted, or it no longer cares):
  // its callbacks get nothing more, received bytes never acknowledged and any still to come
  // are acknowledged at once (so an unread request body cannot hold the connection window),
  // and what is queued for sending still goes out. No RST_STREAM is sent.
  void detachStream(int32_t stream_id);
  // Nested disable/enable: while disabled, the stream's received data, end of stream and
  // trailers are held back (bounded by its window, since held bytes are unacknowledged) and
  // delivered when the count returns to zero.
  void readDisable(int32_t stream_id, bool disable);

  // Sends GOAWAY with the last stream this side processed: streams in flight finish, new ones
  // are refused. With an error code it is final: the connection should be closed once written.
  void goAway(ErrorCode code = ErrorCode::kNoError);
  // The transport closed: every open stream is reset with kConnectionClosed. Nothing more may
  // be dispatched.
  void close();

  size_t activeStreams() const;
  size_t pendingSendBytes(int32_t stream_id) const;
  // The peer's SETTINGS_MAX_CONCURRENT_STREAMS.
  uint32_t remoteMaxConcurrentStreams() const;
  bool goAwayReceived() const { return goaway_received_; }
  bool goAwaySent() const { return goaway_sent_; }
  const CodecStats& stats() const { return *stats_; }
  const ProtocolOptions& options() const { return options_; }

 protected:
  enum class Role { kServer, kClient };
  Connection(Role role, const ProtocolOptions& options, ConnectionCallbacks& callbacks,
             CodecStats* stats);

  struct Stream;
  Stream& createStream(int32_t stream_id);
  void addStream(std::unique_ptr<Stream> stream);
  Stream* findStream(int32_t stream_id);
  const Stream* findStream(int32_t stream_id) const;
  void flush();
  Status checkUsable() const;
  void noteOpenedStream() { ++opened_streams_; }

  class EntryGuard;

  nghttp2_session* session_ = nullptr;
  const Role role_;
  ServerConnectionCallbacks* server_callbacks_ = nullptr;  // server role only

 private:
  friend struct SessionGlue;

  struct OutFrame {
    uint64_t start;  // absolute output offset of the frame header
    uint64_t end;    // one past the frame
    bool control;    // PING, SETTINGS or RST_STREAM
  };

  void appendOutput(const uint8_t* data, size_t len);
  // Called from nghttp2 callbacks: record why the connection fails and return the nghttp2 code
  // that makes mem_recv/send stop (or 0 when policy says only the stream is reset).
  int floodDetected(std::string_view what);
  int messagingError(std::string_view what);
  int onHeadersComplete(int32_t stream_id, bool end_stream);
  bool outboundLimitsExceeded();
  void fail(Error error, ErrorCode goaway_code);
  void resetAllStreams(ErrorCode code, ResetSource source);
  void deliver(Stream& stream);
  void onStreamClosed(Stream& stream, ErrorCode code);
  void markForReap(Stream& stream);
  void reap();
  void runDeferred();
  void queueData(Stream& stream, std::string&& owned, std::string_view view, bool end_stream);
  Status checkSendable(const Stream* stream, int32_t stream_id) const;

  ProtocolOptions options_;
  ConnectionCallbacks& callbacks_;
  CodecStats own_stats_;
  CodecStats* stats_;

  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<int32_t> reap_;
  std::vector<int32_t> deliver_later_;
  std::vector<int32_t> low_watermark_later_;

  // Output: bytes [drained_, written_) in absolute offsets live in output_[output_begin_...].
  std::string output_;
  size_t output_begin_ = 0;
  uint64_t drained_ = 0;
  uint64_t written_ = 0;
  std::deque<OutFrame> out_frames_;  // frames not yet fully drained
  size_t out_control_frames_ = 0;
  uint8_t out_header_[9] = {};  // frame header being parsed from the output
  size_t out_header_have_ = 0;
  uint64_t out_payload_left_ = 0;
  size_t out_preface_left_ = 0;  // client connection preface still to skip

  // Inbound flood accounting (Envoy's rules; see README.md).
  uint64_t opened_streams_ = 0;
  uint64_t outbound_data_frames_ = 0;
  uint64_t inbound_priority_frames_ = 0;
  uint64_t inbound_window_update_frames_ = 0;
  uint32_t consecutive_empty_frames_ = 0;

  std::optional<Error> error_;
  // Set inside an nghttp2 callback that failed the connection on purpose.
  std::optional<Error> pending_error_;
  ErrorCode pending_goaway_code_ = ErrorCode::kProtocolError;
  int depth_ = 0;  // public calls in progress (callbacks may re-enter)
  bool dispatching_ = false;
  bool sending_ = false;
  bool closed_ = false;
  bool goaway_received_ = false;
  bool goaway_sent_ = false;
  bool local_goaway_error_ = false;   // nghttp2 ended the session with an error GOAWAY
  bool terminate_requested_ = false;  // goAway() with an error code
  int32_t goaway_last_stream_id_ = 0;
};

class ServerConnection : public Connection {
 public:
  ServerConnection(const ProtocolOptions& options, ServerConnectionCallbacks& callbacks,
                   CodecStats* stats = nullptr);

  // First phase of a graceful drain: GOAWAY with the maximum stream id, so the client stops
  // opening streams without any being refused yet; goAway() later sends the real one.
  void shutdownNotice();
};

class ClientConnection : public Connection {
 public:
  ClientConnection(const ProtocolOptions& options, ConnectionCallbacks& callbacks,
                   CodecStats* stats = nullptr);

  // Opens a stream. Requests beyond the peer's concurrency limit wait inside nghttp2 until a
  // stream closes; a pool should check activeStreams() against remoteMaxConcurrentStreams().
  Result<int32_t> submitRequest(const HeaderMap& headers, bool end_stream,
                                StreamCallbacks& callbacks);
};

}  // namespace sheave::http2
