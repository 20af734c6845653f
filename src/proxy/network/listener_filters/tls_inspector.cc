#include "proxy/network/listener_filters/tls_inspector.h"

#include <algorithm>

namespace sheave {

namespace {

constexpr uint8_t kContentTypeHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kMaxRecordPayload = 16384;  // 2^14, RFC 8446 section 5.1
// version(2) random(32) session_id(1+0) cipher_suites(2+2) compression_methods(1+1)
constexpr size_t kMinClientHelloBody = 41;
constexpr uint16_t kExtensionServerName = 0;
constexpr uint16_t kExtensionAlpn = 16;
constexpr uint8_t kServerNameTypeHostName = 0;

// A bounds-checked cursor over a byte string; every read fails cleanly past the end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool empty() const { return data_.empty(); }
  size_t size() const { return data_.size(); }

  bool u8(uint8_t& out) {
    if (data_.empty()) return false;
    out = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool u16(uint16_t& out) {
    if (data_.size() < 2) return false;
    out =
        static_cast<uint16_t>(static_cast<uint8_t>(data_[0]) << 8 | static_cast<uint8_t>(data_[1]));
    data_.remove_prefix(2);
    return true;
  }
  bool bytes(size_t n, std::string_view& out) {
    if (data_.size() < n) return false;
    out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool skip(size_t n) {
    std::string_view ignored;
    return bytes(n, ignored);
  }
  // A vector with an 8- or 16-bit length prefix.
  bool vector8(std::string_view& out) {
    uint8_t n = 0;
    return u8(n) && bytes(n, out);
  }
  bool vector16(std::string_view& out) {
    uint16_t n = 0;
    return u16(n) && bytes(n, out);
  }

 private:
  std::string_view data_;
};

bool parseServerName(std::string_view extension, std::string& name) {
  Reader ext(extension);
  std::string_view list;
  if (!ext.vector16(list) || !ext.empty() || list.empty()) return false;
  Reader entries(list);
  while (!entries.empty()) {
    uint8_t type = 0;
    std::string_view value;
    if (!entries.u8(type) || !entries.vector16(value)) return false;
    if (type != kServerNameTypeHostName) continue;
    // An empty or NUL-carrying host name is malformed (RFC 6066 section 3).
    if (value.empty() || value.find('\0') != std::string_view::npos) return false;
    if (name.empty()) name.assign(value);
  }
  return true;
}

bool parseAlpn(std::string_view extension, std::vector<std::string>& protocols) {
  Reader ext(extension);
  std::string_view list;
  if (!ext.vector16(list) || !ext.empty() || list.empty()) return false;
  Reader entries(list);
  while (!entries.empty()) {
    std::string_view protocol;
    if (!entries.vector8(protocol) || protocol.empty()) return false;  // RFC 7301 section 3.1
    protocols.emplace_back(protocol);
  }
  return true;
}

}  // namespace

TlsInspector::TlsInspector(size_t max_client_hello_size)
    : max_size_(std::min(max_client_hello_size, kMaxClientHelloSize)) {}

TlsInspector::State TlsInspector::onData(std::string_view bytes) {
  while (state_ == State::kNeedMoreData && !bytes.empty()) {
    if (inspected_ >= max_size_) {
      state_ = State::kClientHelloTooLarge;
      break;
    }
    if (record_remaining_ == 0) {
      // Record header, checked byte by byte so that a plaintext protocol is ruled out at once.
      const uint8_t b = static_cast<uint8_t>(bytes[0]);
      bytes.remove_prefix(1);
      ++inspected_;
      record_header_[record_header_len_++] = b;
      bool plausible = true;
      switch (record_header_len_) {
        case 1:
          plausible = b == kContentTypeHandshake;
          break;
        case 2:
          plausible = b == 3;  // SSL 3.0 .. TLS 1.3 record versions are 3.x
          break;
        case 3:
          plausible = b <= 4;
          break;
        case 5: {
          const size_t length = static_cast<size_t>(record_header_[3]) << 8 | record_header_[4];
          // Zero-length handshake fragments are forbidden (RFC 8446 section 5.1).
          plausible = length > 0 && length <= kMaxRecordPayload;
          record_remaining_ = length;
          record_header_len_ = 0;
          break;
        }
        default:
          break;
      }
      if (!plausible) state_ = State::kNotTls;
      continue;
    }

    // Record payload: take what is needed of it for the ClientHello.
    size_t take = std::min({bytes.size(), record_remaining_, max_size_ - inspected_});
    const size_t missing = handshake_len_ == 0 ? 4 - std::min<size_t>(handshake_.size(), 4)
                                               : handshake_len_ + 4 - handshake_.size();
    take = std::min(take, missing);
    handshake_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    record_remaining_ -= take;
    inspected_ += take;

    if (handshake_len_ == 0 && handshake_.size() >= 4) {
      if (static_cast<uint8_t>(handshake_[0]) != kHandshakeClientHello) {
        state_ = State::kNotTls;
        break;
      }
      handshake_len_ = static_cast<size_t>(static_cast<uint8_t>(handshake_[1])) << 16 |
                       static_cast<size_t>(static_cast<uint8_t>(handshake_[2])) << 8 |
                       static_cast<uint8_t>(handshake_[3]);
      if (handshake_len_ < kMinClientHelloBody) {
        state_ = State::kNotTls;
        break;
      }
      // The record headers of the records still to come are not counted here, so this is an
      // early answer, not the whole check; the running byte count below is.
      if (handshake_len_ + 4 + 5 > max_size_) {
        state_ = State::kClientHelloTooLarge;
        break;
      }
      handshake_.reserve(handshake_len_ + 4);
    }
    if (handshake_len_ != 0 && handshake_.size() == handshake_len_ + 4) {
      state_ = parseClientHello(std::string_view(handshake_).substr(4));
      handshake_.clear();
      handshake_.shrink_to_fit();
      break;
    }
    if (inspected_ >= max_size_ && state_ == State::kNeedMoreData) {
      state_ = State::kClientHelloTooLarge;
    }
  }
  return state_;
}

TlsInspector::State TlsInspector::parseClientHello(std::string_view hello) {
  Reader r(hello);
  uint8_t major = 0;
  std::string_view session_id;
  std::string_view cipher_suites;
  std::string_view compression_methods;
  if (!r.u8(major) || major != 3 || !r.skip(1) || !r.skip(32) || !r.vector8(session_id) ||
      session_id.size() > 32 || !r.vector16(cipher_suites) || cipher_suites.size() < 2 ||
      cipher_suites.size() % 2 != 0 || !r.vector8(compression_methods) ||
      compression_methods.empty()) {
    return State::kNotTls;
  }
  if (r.empty()) return State::kTls;  // no extensions at all: no SNI, no ALPN

  std::string_view extensions;
  if (!r.vector16(extensions) || !r.empty()) return State::kNotTls;
  Reader ext(extensions);
  std::vector<uint16_t> seen;
  std::string server_name;
  std::vector<std::string> protocols;
  while (!ext.empty()) {
    uint16_t type = 0;
    std::string_view body;
    if (!ext.u16(type) || !ext.vector16(body)) return State::kNotTls;
    seen.push_back(type);
    if (type == kExtensionServerName && !parseServerName(body, server_name)) {
      return State::kNotTls;
    }
    if (type == kExtensionAlpn && !parseAlpn(body, protocols)) return State::kNotTls;
  }
  // The same extension twice is a malformed ClientHello (RFC 8446 section 4.2).
  std::sort(seen.begin(), seen.end());
  if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) return State::kNotTls;

  server_name_ = std::move(server_name);
  application_protocols_ = std::move(protocols);
  return State::kTls;
}

}  // namespace sheave
