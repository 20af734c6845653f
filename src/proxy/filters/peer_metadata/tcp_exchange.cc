#include "proxy/filters/peer_metadata/tcp_exchange.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/struct.pb.h>

#include "proxy/config/local_node.h"
#include "proxy/filters/peer_metadata/peer_metadata_filter.h"
#include "proxy/filters/peer_metadata/workload_metadata.h"

namespace sheave::peer_metadata {
namespace {

constexpr std::string_view kStructTypeUrl = "type.googleapis.com/google.protobuf.Struct";
constexpr size_t kHeaderBytes = 8;

void putBigEndian(uint32_t v, std::string& out) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t bigEndian(const std::string& bytes, size_t at) {
  return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
         (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
}

}  // namespace

std::string encodeExchange(const PeerWorkloadMetadata& workload, std::string_view node_id) {
  google::protobuf::Struct data;
  *(*data.mutable_fields())[std::string(kPeerMetadataHeader)].mutable_struct_value() =
      structFromWorkload(workload);
  if (!node_id.empty()) {
    (*data.mutable_fields())[std::string(kPeerMetadataIdHeader)].set_string_value(
        std::string(node_id));
  }
  google::protobuf::Any any;
  any.set_type_url(std::string(kStructTypeUrl));
  any.set_value(serializeDeterministic(data));
  const std::string payload = any.SerializeAsString();
  std::string out;
  putBigEndian(kExchangeMagic, out);
  putBigEndian(static_cast<uint32_t>(payload.size()), out);
  out += payload;
  return out;
}

const std::string& localExchangeBytes() {
  static const std::string bytes = [] {
    const auto& node = *config::localNode();
    return encodeExchange(workloadFromStruct(node.metadata()), node.id());
  }();
  return bytes;
}

ExchangeReader::State ExchangeReader::feed(network::Buffer& data, network::Buffer& out) {
  if (state_ != State::kReading) {
    out.move(data);
    return state_;
  }
  pending_.move(data);
  if (pending_.length() < kHeaderBytes) return state_;
  const std::string head = pending_.toString().substr(0, kHeaderBytes);
  const uint32_t size = bigEndian(head, 4);
  if (bigEndian(head, 0) != kExchangeMagic || size > kMaxExchangeBytes) {
    state_ = State::kInvalid;
    out.move(pending_);
    return state_;
  }
  if (pending_.length() < kHeaderBytes + size) return state_;
  const std::string all = pending_.toString();
  google::protobuf::Any any;
  google::protobuf::Struct data_struct;
  if (!any.ParseFromArray(all.data() + kHeaderBytes, static_cast<int>(size)) ||
      !any.UnpackTo(&data_struct)) {
    state_ = State::kInvalid;
    out.move(pending_);
    return state_;
  }
  auto it = data_struct.fields().find(std::string(kPeerMetadataHeader));
  peer_ = std::make_shared<const PeerWorkloadMetadata>(
      it != data_struct.fields().end() && it->second.has_struct_value()
          ? workloadFromStruct(it->second.struct_value())
          : PeerWorkloadMetadata{});
  exchange_bytes_ = kHeaderBytes + size;
  pending_.drain(exchange_bytes_);
  out.move(pending_);
  state_ = State::kDone;
  return state_;
}

}  // namespace sheave::peer_metadata
