// libFuzzer target for TlsInspector: arbitrary bytes, split into pieces chosen by the input
// itself, must never crash, read out of bounds or grow without bound, and the answer must not
// depend on how the bytes were split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/network/listener_filters/http_inspector.h"
#include "proxy/network/listener_filters/tls_inspector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the piece size; the rest is the connection's first bytes.
  const size_t piece = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  sheave::TlsInspector whole;
  const auto whole_state = whole.onData(input);

  sheave::TlsInspector pieces;
  auto state = sheave::TlsInspector::State::kNeedMoreData;
  for (size_t pos = 0; pos < input.size(); pos += piece)
    state = pieces.onData(input.substr(pos, piece));
  if (state != whole_state || pieces.serverName() != whole.serverName() ||
      pieces.applicationProtocols() != whole.applicationProtocols() ||
      pieces.bytesInspected() != whole.bytesInspected()) {
    std::abort();
  }
  if (whole.bytesInspected() > sheave::TlsInspector::kMaxClientHelloSize) std::abort();

  // The HTTP inspector sees the same first bytes on a plaintext listener.
  sheave::HttpInspector http;
  http.onData(input);
  if (http.bytesInspected() > sheave::HttpInspector::kMaxInspectSize) std::abort();
  return 0;
}
