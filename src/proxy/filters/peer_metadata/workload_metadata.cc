#include "proxy/filters/peer_metadata/workload_metadata.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <array>

namespace sheave::peer_metadata {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const std::string& stringField(const google::protobuf::Struct& s, std::string_view key) {
  static const std::string empty;
  auto it = s.fields().find(std::string(key));
  if (it == s.fields().end() || !it->second.has_string_value()) return empty;
  return it->second.string_value();
}

void setIfNotEmpty(google::protobuf::Struct& s, std::string_view key, const std::string& value) {
  if (!value.empty()) (*s.mutable_fields())[std::string(key)].set_string_value(value);
}

}  // namespace

PeerWorkloadMetadata workloadFromStruct(const google::protobuf::Struct& metadata) {
  PeerWorkloadMetadata out;
  out.instance_name = stringField(metadata, kInstanceNameKey);
  out.namespace_name = stringField(metadata, kNamespaceKey);
  out.workload_name = stringField(metadata, kWorkloadNameKey);
  out.cluster_id = stringField(metadata, kClusterIdKey);
  out.owner = stringField(metadata, kOwnerKey);
  auto labels = metadata.fields().find(std::string(kLabelsKey));
  if (labels != metadata.fields().end() && labels->second.has_struct_value()) {
    const auto& l = labels->second.struct_value();
    out.canonical_name = stringField(l, kCanonicalNameLabel);
    out.canonical_revision = stringField(l, kCanonicalRevisionLabel);
    out.app_name = stringField(l, kAppLabel);
    out.app_version = stringField(l, kVersionLabel);
  }
  return out;
}

google::protobuf::Struct structFromWorkload(const PeerWorkloadMetadata& w) {
  google::protobuf::Struct s;
  setIfNotEmpty(s, kInstanceNameKey, w.instance_name);
  setIfNotEmpty(s, kNamespaceKey, w.namespace_name);
  setIfNotEmpty(s, kWorkloadNameKey, w.workload_name);
  setIfNotEmpty(s, kClusterIdKey, w.cluster_id);
  setIfNotEmpty(s, kOwnerKey, w.owner);
  auto* labels = (*s.mutable_fields())[std::string(kLabelsKey)].mutable_struct_value();
  setIfNotEmpty(*labels, kCanonicalNameLabel, w.canonical_name);
  setIfNotEmpty(*labels, kCanonicalRevisionLabel, w.canonical_revision);
  setIfNotEmpty(*labels, kAppLabel, w.app_name);
  setIfNotEmpty(*labels, kVersionLabel, w.app_version);
  return s;
}

std::string encodePeerMetadataHeader(const PeerWorkloadMetadata& workload) {
  // Deterministic: every sidecar of a workload sends the same value (and peers' per-value caches
  // hit).
  return base64Encode(serializeDeterministic(structFromWorkload(workload)));
}

std::string serializeDeterministic(const google::protobuf::Message& message) {
  std::string bytes;
  {
    // The streams give back their unused buffer when they go.
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

std::shared_ptr<const PeerWorkloadMetadata> decodePeerMetadataHeader(std::string_view value) {
  auto bytes = base64Decode(value);
  if (!bytes) return nullptr;
  google::protobuf::Struct s;
  if (!s.ParseFromString(*bytes)) return nullptr;
  return std::make_shared<const PeerWorkloadMetadata>(workloadFromStruct(s));
}

std::string base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n =
        (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.append("==");
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view in) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (size_t i = 0; i < kAlphabet.size(); ++i) t[uint8_t(kAlphabet[i])] = int8_t(i);
    return t;
  }();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int8_t v = table[uint8_t(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace sheave::peer_metadata
