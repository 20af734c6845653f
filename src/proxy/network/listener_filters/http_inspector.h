#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sheave {

// envoy.filters.listener.http_inspector without the socket: from a plaintext connection's
// first bytes, tells an HTTP/1.x request line, the HTTP/2 prior-knowledge connection preface,
// or neither, and names the application protocol as Envoy does ("http/1.0", "http/1.1",
// "h2c"). A character-at-a-time state machine: nothing is buffered, any split of the input
// gives the same answer, and the answer comes within kMaxInspectSize bytes.
//
// Envoy skips this filter on connections whose transport protocol is already set to something
// other than "raw_buffer" (TLS); so should the caller.
class HttpInspector {
 public:
  // Envoy's bound: a request line longer than this is not worth waiting for.
  static constexpr size_t kMaxInspectSize = 8192;

  enum class State {
    kNeedMoreData,
    kHttp1,    // a complete request line "METHOD SP target SP HTTP/1.x CRLF"
    kHttp2,    // the 24-byte client connection preface (RFC 9113 section 3.4)
    kNotHttp,  // anything else, or no decision within kMaxInspectSize bytes
  };

  // Feeds the next bytes; once the state is final, further bytes are ignored.
  State onData(std::string_view bytes);

  State state() const { return state_; }
  // "http/1.0", "http/1.1" or "h2c" once detected; empty otherwise. HTTP/1.x other than 1.1
  // reports "http/1.0", as Envoy does.
  std::string_view applicationProtocol() const;
  size_t bytesInspected() const { return inspected_; }

 private:
  enum class Phase : uint8_t { kMethod, kTarget, kVersion, kLf };

  State step(uint8_t c);

  State state_ = State::kNeedMoreData;
  size_t inspected_ = 0;
  bool preface_possible_ = true;
  bool http1_possible_ = true;
  Phase phase_ = Phase::kMethod;
  size_t phase_len_ = 0;
  bool http11_ = false;
};

}  // namespace sheave
