#include "proxy/network/listener_filters/http_inspector.h"

namespace sheave {

namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr std::string_view kHttp1VersionPrefix = "HTTP/1.";

// RFC 9110 section 5.6.2 token characters, which a method is made of.
bool isTokenChar(uint8_t c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// Visible ASCII, and bytes >= 0x80 which some clients send unencoded in paths; never controls,
// space or DEL.
bool isTargetChar(uint8_t c) { return c > 0x20 && c != 0x7F; }

}  // namespace

HttpInspector::State HttpInspector::onData(std::string_view bytes) {
  for (char ch : bytes) {
    if (state_ != State::kNeedMoreData) break;
    if (inspected_ >= kMaxInspectSize) {
      state_ = State::kNotHttp;
      break;
    }
    state_ = step(static_cast<uint8_t>(ch));
    ++inspected_;
  }
  if (state_ == State::kNeedMoreData && inspected_ >= kMaxInspectSize) state_ = State::kNotHttp;
  return state_;
}

HttpInspector::State HttpInspector::step(uint8_t c) {
  if (preface_possible_) {
    if (inspected_ < kHttp2Preface.size() && c == static_cast<uint8_t>(kHttp2Preface[inspected_])) {
      if (inspected_ + 1 == kHttp2Preface.size()) return State::kHttp2;
    } else {
      preface_possible_ = false;
    }
  }

  if (http1_possible_) {
    switch (phase_) {
      case Phase::kMethod:
        if (c == ' ' && phase_len_ > 0) {
          phase_ = Phase::kTarget;
          phase_len_ = 0;
        } else if (isTokenChar(c)) {
          ++phase_len_;
        } else {
          http1_possible_ = false;
        }
        break;
      case Phase::kTarget:
        if (c == ' ' && phase_len_ > 0) {
          phase_ = Phase::kVersion;
          phase_len_ = 0;
        } else if (isTargetChar(c)) {
          ++phase_len_;
        } else {
          http1_possible_ = false;
        }
        break;
      case Phase::kVersion:
        if (phase_len_ < kHttp1VersionPrefix.size()) {
          if (c != static_cast<uint8_t>(kHttp1VersionPrefix[phase_len_])) http1_possible_ = false;
        } else if (phase_len_ == kHttp1VersionPrefix.size()) {
          if (c < '0' || c > '9') http1_possible_ = false;
          http11_ = c == '1';
        } else if (c == '\r') {
          phase_ = Phase::kLf;
        } else {
          http1_possible_ = false;
        }
        ++phase_len_;
        break;
      case Phase::kLf:
        if (c == '\n') return State::kHttp1;
        http1_possible_ = false;
        break;
    }
  }

  return preface_possible_ || http1_possible_ ? State::kNeedMoreData : State::kNotHttp;
}

std::string_view HttpInspector::applicationProtocol() const {
  switch (state_) {
    case State::kHttp1:
      return http11_ ? "http/1.1" : "http/1.0";
    case State::kHttp2:
      return "h2c";
    default:
      return {};
  }
}

}  // namespace sheave
