// libFuzzer target for the HTTP/2 server connection (nghttp2 underneath, our glue around it).
//
// The first input byte picks the read size, whether the client preface is prepended (so the
// fuzzer need not discover it), how often output is drained, and how the application side
// behaves (consume data or not, answer streams, reset some). The rest is the client's byte
// stream. Besides sanitizer findings it checks the codec's contract: request headers are
// lower-case with pseudo-headers first, events never follow the end of a stream or a reset,
// errors stick, and a failed connection's output ends with a GOAWAY frame.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/http/http2/connection.h"

namespace {

using namespace sheave::http2;
using sheave::HeaderMap;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (false)

class FuzzStream : public StreamCallbacks {
 public:
  FuzzStream(ServerConnection& conn, int32_t id, uint8_t behaviour)
      : conn_(conn), id_(id), behaviour_(behaviour) {}

  void onHeaders(HeaderMap&& headers, bool end_stream) override {
    FUZZ_CHECK(!headers_ && !done_);
    headers_ = true;
    bool regular_seen = false;
    for (const auto& e : headers) {
      FUZZ_CHECK(!e.name.empty());
      for (char c : e.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
      const bool pseudo = e.name[0] == ':';
      FUZZ_CHECK(!(pseudo && regular_seen));
      if (!pseudo) regular_seen = true;
    }
    FUZZ_CHECK(!headers.method().empty());
    if (end_stream) finish();
    if (behaviour_ & 0x01) conn_.readDisable(id_, true);
    if (behaviour_ & 0x02) conn_.resetStream(id_, ErrorCode::kCancel), done_ = true;
  }
  void onData(std::string_view data, bool end_stream) override {
    FUZZ_CHECK(headers_ && !done_);
    if (behaviour_ & 0x04) conn_.consumeData(id_, data.size());
    if (end_stream) finish();
  }
  void onTrailers(HeaderMap&& trailers) override {
    FUZZ_CHECK(headers_ && !done_);
    for (const auto& e : trailers) FUZZ_CHECK(!e.name.empty() && e.name[0] != ':');
    finish();
  }
  void onReset(ErrorCode, ResetSource) override {
    FUZZ_CHECK(!reset_);
    reset_ = true;
    done_ = true;
  }
  void enableReading() {
    if (behaviour_ & 0x01) {
      behaviour_ &= ~0x01;
      conn_.readDisable(id_, false);
    }
  }

 private:
  void finish() {
    done_ = true;
    if (reset_) return;
    HeaderMap response;
    response.add(":status", "200");
    if (behaviour_ & 0x08) {
      (void)conn_.submitHeaders(id_, response, true);
      return;
    }
    if (!conn_.submitHeaders(id_, response, false).ok()) return;
    (void)conn_.submitData(id_, std::string(100, 'r'), (behaviour_ & 0x10) == 0);
    if (behaviour_ & 0x10) {
      HeaderMap trailers;
      trailers.add("grpc-status", "0");
      (void)conn_.submitTrailers(id_, trailers);
    }
  }

  ServerConnection& conn_;
  int32_t id_;
  uint8_t behaviour_;
  bool headers_ = false;
  bool done_ = false;
  bool reset_ = false;
};

class Handler : public ServerConnectionCallbacks {
 public:
  explicit Handler(uint8_t behaviour) : behaviour_(behaviour) {}
  StreamCallbacks* onNewStream(int32_t stream_id) override {
    if ((behaviour_ & 0x20) && (stream_id % 7) == 0) return nullptr;
    auto stream = std::make_unique<FuzzStream>(*conn, stream_id,
                                               static_cast<uint8_t>(behaviour_ + stream_id));
    FuzzStream* raw = stream.get();
    streams_[stream_id] = std::move(stream);
    return raw;
  }
  void enableAll() {
    for (auto& [id, s] : streams_) s->enableReading();
  }

  ServerConnection* conn = nullptr;

 private:
  uint8_t behaviour_;
  std::map<int32_t, std::unique_ptr<FuzzStream>> streams_;
};

// The output is whole frames (the harness always drains all of it); the last must be GOAWAY.
bool endsWithGoAway(std::string_view out) {
  uint8_t last_type = 0xff;
  size_t pos = 0;
  while (pos + 9 <= out.size()) {
    const size_t len = (size_t{static_cast<uint8_t>(out[pos])} << 16) |
                       (size_t{static_cast<uint8_t>(out[pos + 1])} << 8) |
                       size_t{static_cast<uint8_t>(out[pos + 2])};
    last_type = static_cast<uint8_t>(out[pos + 3]);
    pos += 9 + len;
  }
  return pos == out.size() && last_type == 0x07;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t control = data[0];
  const uint8_t behaviour = data[1];
  std::string input;
  if (control & 0x80) input = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  input.append(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t step = 1 + (control & 0x1f) * 7;
  const bool drain = (control & 0x40) == 0;

  ProtocolOptions options;
  options.initial_stream_window_size = 65535;  // small, so flow control paths are reached
  options.max_request_headers_kb = 4;
  options.max_headers_count = 20;
  options.max_outbound_control_frames = 100;
  options.stream_error_on_invalid_http_messaging = (control & 0x20) != 0;
  Handler handler(behaviour);
  ServerConnection conn(options, handler);
  handler.conn = &conn;

  std::string_view rest(input);
  while (!rest.empty()) {
    const std::string_view piece = rest.substr(0, step);
    rest.remove_prefix(piece.size());
    const auto r = conn.dispatch(piece);
    if (!r.ok()) {
      FUZZ_CHECK(conn.error().has_value());
      FUZZ_CHECK(!conn.dispatch(piece).ok());  // errors stick
      FUZZ_CHECK(conn.shouldClose());
      FUZZ_CHECK(endsWithGoAway(conn.pendingOutput()));
      return 0;
    }
    FUZZ_CHECK(*r == piece.size());
    if (drain) conn.drainOutput(conn.pendingOutput().size());
    if (rest.size() % 5 == 0) handler.enableAll();
  }
  conn.close();
  return 0;
}
