#pragma once

#include <google/protobuf/any.pb.h>
#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace sheave::config {

// Fills `out` from JSON with protobuf's JSON mapping, as Envoy reads its
// configuration: field names may be the proto names (stat_prefix) or the
// lowerCamelCase JSON names (statPrefix); an `Any` names its type with
// "@type" and is resolved against the messages linked into the binary;
// unknown fields are errors. The error names the field path, e.g.
// "static_resources.clusters[0].lb_policy: unknown value 'FASTEST' for enum
// envoy.config.cluster.v3.Cluster.LbPolicy (expected one of ROUND_ROBIN, ...)".
Status jsonToMessage(std::string_view json, google::protobuf::Message& out);

// yamlToJson followed by jsonToMessage.
Status yamlToMessage(std::string_view yaml, google::protobuf::Message& out);

// The "type.googleapis.com/<full name>" URL of a message type.
std::string typeUrlOf(const google::protobuf::Descriptor& descriptor);

// Decodes `any` into `out`; the error says what was expected and what was
// found, prefixed by `where` (a field path such as
// "filter_chains[0].filters[0].typed_config").
Status unpackAny(const google::protobuf::Any& any, google::protobuf::Message& out,
                 std::string_view where);

template <class T>
Result<T> unpackTypedConfig(const google::protobuf::Any& any, std::string_view where) {
  T out;
  SHEAVE_RETURN_IF_ERROR(unpackAny(any, out, where));
  return out;
}

}  // namespace sheave::config
