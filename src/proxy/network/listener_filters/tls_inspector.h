#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sheave {

// envoy.filters.listener.tls_inspector without the socket: decides from a connection's first
// bytes whether it starts with a TLS ClientHello and, if so, reads its SNI and ALPN without
// terminating TLS. Bytes may arrive in any number of pieces; the work is linear in the bytes
// fed and the memory is bounded by the ClientHello size limit.
//
// The inspector copies only the handshake bytes it needs; the caller keeps (or peeks) the
// original bytes and hands them to the transport socket afterwards.
class TlsInspector {
 public:
  // Envoy's limit (and the largest max_client_hello_size it accepts): a real ClientHello is
  // 0.3-2 KiB, a bit more with post-quantum key shares.
  static constexpr size_t kMaxClientHelloSize = 64 * 1024;
  static constexpr std::string_view kTransportProtocol = "tls";

  enum class State {
    kNeedMoreData,
    // A complete, well-formed ClientHello: transport protocol "tls"; serverName() and
    // applicationProtocols() are set.
    kTls,
    // Not a TLS ClientHello (decided at the first byte that rules it out). Envoy counts this
    // as tls_not_found and goes on without a transport protocol.
    kNotTls,
    // A ClientHello that did not fit in the limit. Envoy counts client_hello_too_large and
    // closes the connection.
    kClientHelloTooLarge,
  };

  // `max_client_hello_size` counts the TLS record headers too, and is clamped to
  // kMaxClientHelloSize.
  explicit TlsInspector(size_t max_client_hello_size = kMaxClientHelloSize);

  // Feeds the next bytes of the connection. Once the state is final, further bytes are ignored
  // and the same state is returned.
  State onData(std::string_view bytes);

  State state() const { return state_; }
  // How many of the fed bytes were looked at before the state became final (all of them while
  // more data is needed).
  size_t bytesInspected() const { return inspected_; }
  // The first host_name of the server_name extension, as the client sent it; empty when none.
  const std::string& serverName() const { return server_name_; }
  // The ALPN list in client order; empty when the client sent none.
  const std::vector<std::string>& applicationProtocols() const { return application_protocols_; }

 private:
  State parseClientHello(std::string_view hello);

  size_t max_size_;
  State state_ = State::kNeedMoreData;
  size_t inspected_ = 0;

  uint8_t record_header_[5] = {};
  size_t record_header_len_ = 0;
  size_t record_remaining_ = 0;  // payload bytes of the current record still to come
  std::string handshake_;        // reassembled handshake bytes, bounded by max_size_
  size_t handshake_len_ = 0;     // length of the ClientHello message, 0 until known

  std::string server_name_;
  std::vector<std::string> application_protocols_;
};

}  // namespace sheave
