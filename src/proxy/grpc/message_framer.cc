#include "proxy/grpc/message_framer.h"

#include <algorithm>

namespace sheave::grpc {

void MessageFramer::writePrefix(uint32_t length, char out[kPrefixBytes]) {
  out[0] = 0;
  out[1] = static_cast<char>((length >> 24) & 0xff);
  out[2] = static_cast<char>((length >> 16) & 0xff);
  out[3] = static_cast<char>((length >> 8) & 0xff);
  out[4] = static_cast<char>(length & 0xff);
}

std::string MessageFramer::frame(std::string_view message) {
  std::string out;
  out.resize(kPrefixBytes + message.size());
  writePrefix(static_cast<uint32_t>(message.size()), out.data());
  std::copy(message.begin(), message.end(), out.begin() + kPrefixBytes);
  return out;
}

std::optional<GrpcStatus> MessageFramer::checkPrefix() {
  const auto flags = static_cast<uint8_t>(prefix_[0]);
  if (flags > 1) {
    return GrpcStatus{StatusCode::kInternal, "invalid gRPC message flags " + std::to_string(flags)};
  }
  if (flags == 1) {
    if (!encoding_.empty() && encoding_ != "identity") {
      return GrpcStatus{StatusCode::kUnimplemented, "compressed gRPC messages (grpc-encoding " +
                                                        encoding_ + ") are not supported"};
    }
    return GrpcStatus{StatusCode::kInternal,
                      "compressed gRPC message without a negotiated grpc-encoding"};
  }
  message_length_ = (uint32_t{static_cast<uint8_t>(prefix_[1])} << 24) |
                    (uint32_t{static_cast<uint8_t>(prefix_[2])} << 16) |
                    (uint32_t{static_cast<uint8_t>(prefix_[3])} << 8) |
                    uint32_t{static_cast<uint8_t>(prefix_[4])};
  if (message_length_ > max_message_bytes_) {
    return GrpcStatus{StatusCode::kResourceExhausted,
                      "received gRPC message larger than max (" + std::to_string(message_length_) +
                          " vs. " + std::to_string(max_message_bytes_) + ")"};
  }
  return std::nullopt;
}

std::optional<GrpcStatus> MessageFramer::decode(std::string_view data,
                                                std::vector<std::string>& messages) {
  if (error_) return error_;
  while (!data.empty() || (in_message_ && message_.size() == message_length_)) {
    if (!in_message_) {
      const size_t take = std::min(kPrefixBytes - have_prefix_, data.size());
      std::copy_n(data.data(), take, prefix_ + have_prefix_);
      have_prefix_ += take;
      data.remove_prefix(take);
      if (have_prefix_ < kPrefixBytes) break;
      if (std::optional<GrpcStatus> bad = checkPrefix()) {
        error_ = std::move(bad);
        return error_;
      }
      have_prefix_ = 0;
      in_message_ = true;
      message_.clear();
      // The length is bounded by the limit just checked, so reserving it up front is safe and
      // saves the re-allocations of a large message arriving frame by frame.
      message_.reserve(message_length_);
    }
    const size_t take = std::min<size_t>(message_length_ - message_.size(), data.size());
    message_.append(data.data(), take);
    data.remove_prefix(take);
    if (message_.size() < message_length_) break;
    messages.push_back(std::move(message_));
    message_ = std::string();
    in_message_ = false;
  }
  return std::nullopt;
}

}  // namespace sheave::grpc
