#pragma once

#include <google/protobuf/any.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>

#include <string>

namespace sheave::control {

// Any::PackFrom serializes maps in hash order, which may differ from one
// run to the next; configs with maps (RBAC policies, JWT providers) are
// packed with sorted map entries so that the same input always gives the
// same bytes (and no spurious pushes).
inline void packDeterministicInto(const google::protobuf::Message& message,
                                  google::protobuf::Any* out) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  out->set_type_url("type.googleapis.com/" + message.GetDescriptor()->full_name());
  out->set_value(std::move(bytes));
}

}  // namespace sheave::control
