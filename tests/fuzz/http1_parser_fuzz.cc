// libFuzzer target for the HTTP/1.1 parser, in request and response mode.
//
// The first input byte picks the mode, the read size and the HEAD/CONNECT flags; the rest is
// the byte stream, fed in reads of that size as a connection would deliver it. Besides
// sanitizer findings, it checks the parser's own contract: consumption within bounds, pauses
// only at message ends, and Content-Length bodies of exactly the announced size.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/http/http1/parser.h"

namespace {

using sheave::HeaderMap;
using namespace sheave::http1;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (false)

class Checker : public ParserCallbacks {
 public:
  void onHeaders(HeaderMap&& headers, const MessageInfo& info) override {
    FUZZ_CHECK(!in_message_);
    in_message_ = true;
    info_ = info;
    body_bytes_ = 0;
    // Names are lower-case and never empty.
    for (const auto& e : headers) {
      FUZZ_CHECK(!e.name.empty());
      for (char c : e.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
      for (char c : e.value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
    }
  }
  void onBody(std::string_view data) override {
    FUZZ_CHECK(in_message_ && info_.has_body && !data.empty());
    body_bytes_ += data.size();
    if (info_.content_length && !info_.chunked) FUZZ_CHECK(body_bytes_ <= *info_.content_length);
  }
  void onMessageComplete(HeaderMap&& trailers) override {
    FUZZ_CHECK(in_message_);
    if (info_.has_body && info_.content_length && !info_.chunked) {
      FUZZ_CHECK(body_bytes_ == *info_.content_length);
    }
    in_message_ = false;
    ++completed_;
  }
  void onInformational(HeaderMap&& headers, const MessageInfo& info) override {
    FUZZ_CHECK(!in_message_ && info.status >= 100 && info.status < 200);
  }

  bool lastWasUpgrade() const { return info_.upgrade; }
  size_t completed() const { return completed_; }

 private:
  bool in_message_ = false;
  MessageInfo info_;
  uint64_t body_bytes_ = 0;
  size_t completed_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const Mode mode = (control & 1) ? Mode::kResponse : Mode::kRequest;
  const size_t step = 1 + ((control >> 1) & 0x1f) * 3;

  Limits limits;
  limits.max_header_bytes = 4096;  // small, so the fuzzer reaches the limit paths
  limits.max_headers_count = 20;
  Checker checker;
  Parser parser(mode, limits, checker);
  parser.setNextResponseIsForHead(control & 0x40);
  parser.setNextResponseIsForConnect(control & 0x80);

  uint64_t offset = 0;
  while (!input.empty()) {
    const std::string_view piece = input.substr(0, step);
    const ParseResult r = parser.parse(piece);
    FUZZ_CHECK(r.consumed <= piece.size());
    if (!r.ok()) {
      FUZZ_CHECK(r.error->offset <= offset + piece.size());
      FUZZ_CHECK(!r.error->details.empty());
      FUZZ_CHECK(!parser.parse(piece).ok());  // errors stick
      return 0;
    }
    offset += r.consumed;
    input.remove_prefix(r.consumed);
    if (r.consumed < piece.size()) {
      FUZZ_CHECK(parser.paused());
      if (checker.lastWasUpgrade()) return 0;
    }
    if (parser.paused()) parser.resume();
  }
  (void)parser.onEof();
  return 0;
}
