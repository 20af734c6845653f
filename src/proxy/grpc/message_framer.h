#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/grpc/status.h"

namespace sheave::grpc {

// gRPC's default limit on a received message, 4 MiB.
inline constexpr uint32_t kDefaultMaxMessageBytes = 4 * 1024 * 1024;

// gRPC's Length-Prefixed-Message framing (PROTOCOL-HTTP2.md): a 1-byte compressed flag, a 4-byte
// big-endian length, then the message. Encoding is a free function; decoding is incremental, so
// DATA frames may split messages and prefixes anywhere.
class MessageFramer {
 public:
  static constexpr size_t kPrefixBytes = 5;

  explicit MessageFramer(uint32_t max_message_bytes = kDefaultMaxMessageBytes)
      : max_message_bytes_(max_message_bytes) {}

  // Prefix + message, uncompressed (this client never compresses).
  static std::string frame(std::string_view message);
  static void writePrefix(uint32_t length, char out[kPrefixBytes]);

  // The response's grpc-encoding. This client sends no grpc-accept-encoding, so a compressed
  // message is an error either way; the encoding only chooses which one: a named codec we do
  // not implement is UNIMPLEMENTED, a compressed flag without any encoding is INTERNAL.
  void setMessageEncoding(std::string_view encoding) { encoding_ = std::string(encoding); }

  // Appends stream bytes and moves every message they complete to `messages`. On a framing
  // error returns the status that ends the call (RESOURCE_EXHAUSTED for a message above the
  // limit, INTERNAL/UNIMPLEMENTED for a compressed one); the framer then refuses all further
  // input with the same status. Messages completed before the error are still returned.
  std::optional<GrpcStatus> decode(std::string_view data, std::vector<std::string>& messages);

  // True when no message is partly received: the end of the stream is only clean then.
  bool idle() const { return have_prefix_ == 0 && !in_message_; }
  // Bytes of the message (or prefix) being assembled.
  size_t bufferedBytes() const { return have_prefix_ + message_.size(); }
  uint32_t maxMessageBytes() const { return max_message_bytes_; }
  const std::optional<GrpcStatus>& error() const { return error_; }

 private:
  std::optional<GrpcStatus> checkPrefix();

  const uint32_t max_message_bytes_;
  std::string encoding_;
  char prefix_[kPrefixBytes] = {};
  size_t have_prefix_ = 0;
  bool in_message_ = false;
  uint32_t message_length_ = 0;
  std::string message_;
  std::optional<GrpcStatus> error_;
};

}  // namespace sheave::grpc
