#include "proxy/config/proto_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "proxy/config/yaml_json.h"

namespace sheave::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";

std::string child(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
}

std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

Error errorAt(const std::string& path, std::string message) {
  return path.empty() ? invalidArgument(std::move(message))
                      : invalidArgument(path + ": " + message);
}

const char* kindName(const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue:
      return "null";
    case Value::kNumberValue:
      return "a number";
    case Value::kStringValue:
      return "a string";
    case Value::kBoolValue:
      return "a boolean";
    case Value::kStructValue:
      return "an object";
    case Value::kListValue:
      return "a list";
    default:
      return "nothing";
  }
}

// Levenshtein distance, for "did you mean" hints on misspelt field names.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

const FieldDescriptor* findField(const Descriptor& d, const std::string& key) {
  if (const FieldDescriptor* f = d.FindFieldByName(key)) {
    return f;
  }
  for (int i = 0; i < d.field_count(); ++i) {
    if (d.field(i)->json_name() == key) {
      return d.field(i);
    }
  }
  return nullptr;
}

std::string unknownFieldMessage(const Descriptor& d, const std::string& key) {
  std::string msg = "unknown field '" + key + "' in " + d.full_name();
  const FieldDescriptor* best = nullptr;
  size_t best_distance = 3;
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor* f = d.field(i);
    size_t dist = std::min(editDistance(key, f->name()), editDistance(key, f->json_name()));
    if (dist < best_distance) {
      best_distance = dist;
      best = f;
    }
  }
  if (best != nullptr) {
    msg += " (did you mean '" + best->name() + "'?)";
  }
  return msg;
}

bool isIntegral(double v) { return std::isfinite(v) && std::floor(v) == v; }

// Checks the shape of the JSON against the message type before protobuf's
// own parser runs. protobuf reports most problems with a path, but loses it
// inside Any payloads (a typo in a filter's typed_config would come back as
// just "foo: Cannot find field."); this walk knows the full path everywhere.
// Value-level details it does not cover are left to protobuf.
class ShapeChecker {
 public:
  Status message(const Value& v, const Descriptor& d, const std::string& path) {
    if (v.kind_case() == Value::kNullValue) {
      return okStatus();
    }
    if (++depth_ > kMaxDepth) {
      return errorAt(path, "nested too deeply");
    }
    Status s = messageBody(v, d, path);
    --depth_;
    return s;
  }

 private:
  static constexpr int kMaxDepth = 100;

  Status messageBody(const Value& v, const Descriptor& d, const std::string& path) {
    const std::string& name = d.full_name();
    if (name == "google.protobuf.Value") {
      return okStatus();
    }
    if (name == "google.protobuf.Struct") {
      return expectKind(v, Value::kStructValue, path, "an object");
    }
    if (name == "google.protobuf.ListValue") {
      return expectKind(v, Value::kListValue, path, "a list");
    }
    if (name == "google.protobuf.Duration") {
      return duration(v, path);
    }
    if (name == "google.protobuf.Timestamp" || name == "google.protobuf.FieldMask") {
      return expectKind(v, Value::kStringValue, path, "a string");
    }
    if (d.file()->name() == "google/protobuf/wrappers.proto") {
      return scalar(v, *d.FindFieldByName("value"), path);
    }
    if (name == "google.protobuf.Any") {
      return any(v, path);
    }
    SHEAVE_RETURN_IF_ERROR(expectKind(v, Value::kStructValue, path, "an object"));
    return fields(v.struct_value(), d, path, /*skip=*/"");
  }

  Status fields(const Struct& object, const Descriptor& d, const std::string& path,
                std::string_view skip) {
    // Struct's map has no stable order; sort the keys so that, with several
    // mistakes, the same one is always reported first.
    std::vector<const std::string*> keys;
    for (const auto& [key, _] : object.fields()) {
      keys.push_back(&key);
    }
    std::sort(keys.begin(), keys.end(), [](auto* a, auto* b) { return *a < *b; });
    std::vector<const FieldDescriptor*> seen;
    for (const std::string* key : keys) {
      if (*key == skip) {
        continue;
      }
      const Value& value = object.fields().at(*key);
      const FieldDescriptor* f = findField(d, *key);
      if (f == nullptr) {
        return errorAt(child(path, *key), unknownFieldMessage(d, *key));
      }
      for (const FieldDescriptor* other : seen) {
        if (other == f) {
          return errorAt(child(path, *key), "field '" + f->name() + "' is given twice (as '" +
                                                f->name() + "' and as '" + f->json_name() + "')");
        }
      }
      if (value.kind_case() != Value::kNullValue) {
        if (const auto* oneof = f->real_containing_oneof()) {
          for (const FieldDescriptor* other : seen) {
            if (other->real_containing_oneof() == oneof) {
              return errorAt(child(path, *key), "only one of '" + other->name() + "' and '" +
                                                    f->name() + "' may be set (they are both in '" +
                                                    oneof->name() + "')");
            }
          }
        }
        seen.push_back(f);
      }
      SHEAVE_RETURN_IF_ERROR(field(value, *f, child(path, *key)));
    }
    return okStatus();
  }

  Status field(const Value& v, const FieldDescriptor& f, const std::string& path) {
    if (v.kind_case() == Value::kNullValue) {
      return okStatus();
    }
    if (f.is_map()) {
      SHEAVE_RETURN_IF_ERROR(expectKind(v, Value::kStructValue, path, "an object (a map)"));
      const FieldDescriptor& value_field = *f.message_type()->FindFieldByName("value");
      for (const auto& [key, entry] : v.struct_value().fields()) {
        SHEAVE_RETURN_IF_ERROR(single(entry, value_field, path + "[\"" + key + "\"]"));
      }
      return okStatus();
    }
    if (f.is_repeated()) {
      SHEAVE_RETURN_IF_ERROR(expectKind(v, Value::kListValue, path, "a list"));
      const ListValue& list = v.list_value();
      for (int i = 0; i < list.values_size(); ++i) {
        SHEAVE_RETURN_IF_ERROR(single(list.values(i), f, indexed(path, static_cast<size_t>(i))));
      }
      return okStatus();
    }
    return single(v, f, path);
  }

  Status single(const Value& v, const FieldDescriptor& f, const std::string& path) {
    if (f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return message(v, *f.message_type(), path);
    }
    return scalar(v, f, path);
  }

  Status scalar(const Value& v, const FieldDescriptor& f, const std::string& path) {
    if (v.kind_case() == Value::kNullValue) {
      return okStatus();
    }
    switch (f.cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return expectKind(v, Value::kStringValue, path, "a string");
      case FieldDescriptor::CPPTYPE_BOOL:
        if (v.kind_case() == Value::kBoolValue ||
            (v.kind_case() == Value::kStringValue &&
             (v.string_value() == "true" || v.string_value() == "false"))) {
          return okStatus();
        }
        return errorAt(path, std::string("expected true or false, got ") + kindName(v));
      case FieldDescriptor::CPPTYPE_INT32:
        return integer(v, path, "int32", std::numeric_limits<int32_t>::min(),
                       std::numeric_limits<int32_t>::max());
      case FieldDescriptor::CPPTYPE_UINT32:
        return integer(v, path, "uint32", 0, std::numeric_limits<uint32_t>::max());
      case FieldDescriptor::CPPTYPE_INT64:
        return integer(v, path, "int64", -9.3e18, 9.3e18);
      case FieldDescriptor::CPPTYPE_UINT64:
        return integer(v, path, "uint64", 0, 1.85e19);
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE:
        if (v.kind_case() == Value::kNumberValue || v.kind_case() == Value::kStringValue) {
          return okStatus();  // protobuf checks the text ("NaN", "1.5", ...)
        }
        return errorAt(path, std::string("expected a number, got ") + kindName(v));
      case FieldDescriptor::CPPTYPE_ENUM:
        return enumValue(v, *f.enum_type(), path);
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return okStatus();
  }

  Status integer(const Value& v, const std::string& path, const char* type, double min,
                 double max) {
    if (v.kind_case() == Value::kStringValue) {
      // Quoted integers are valid (the JSON form of 64-bit values); protobuf
      // checks the range, this only rejects text that is not a number.
      const std::string& s = v.string_value();
      size_t start = !s.empty() && s[0] == '-' ? 1 : 0;
      if (start == s.size() || s.find_first_not_of("0123456789", start) != std::string::npos) {
        return errorAt(path, std::string("expected an integer (") + type + "), got '" + s + "'");
      }
      return okStatus();
    }
    if (v.kind_case() != Value::kNumberValue) {
      return errorAt(path, std::string("expected an integer (") + type + "), got " + kindName(v));
    }
    double n = v.number_value();
    if (!isIntegral(n)) {
      return errorAt(path,
                     std::string("expected an integer (") + type + "), got " + std::to_string(n));
    }
    if (n < min || n > max) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.0f", n);
      return errorAt(path, std::string(buf) + " is out of range for " + type);
    }
    return okStatus();
  }

  Status enumValue(const Value& v, const EnumDescriptor& e, const std::string& path) {
    if (v.kind_case() == Value::kNumberValue && isIntegral(v.number_value())) {
      return okStatus();
    }
    if (v.kind_case() == Value::kStringValue) {
      if (e.FindValueByName(v.string_value()) != nullptr) {
        return okStatus();
      }
      std::string names;
      for (int i = 0; i < e.value_count(); ++i) {
        names += (i ? ", " : "") + e.value(i)->name();
      }
      return errorAt(path, "unknown value '" + v.string_value() + "' for enum " + e.full_name() +
                               " (expected one of " + names + ")");
    }
    return errorAt(path, "expected the name of a " + e.full_name() + " value, got " + kindName(v));
  }

  Status duration(const Value& v, const std::string& path) {
    if (v.kind_case() != Value::kStringValue) {
      return errorAt(
          path, std::string("expected a duration string such as \"1.5s\", got ") + kindName(v));
    }
    const std::string& s = v.string_value();
    // protobuf's JSON form: seconds with up to 9 fractional digits, then "s".
    size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
    size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      ++digits;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        ++i;
      }
    }
    if (digits == 0 || i + 1 != s.size() || s[i] != 's') {
      return errorAt(path, "invalid duration '" + s + "': expected seconds with an 's' suffix, " +
                               "such as \"30s\" or \"0.25s\"");
    }
    return okStatus();
  }

  Status any(const Value& v, const std::string& path) {
    SHEAVE_RETURN_IF_ERROR(expectKind(v, Value::kStructValue, path, "an object"));
    const Struct& object = v.struct_value();
    auto it = object.fields().find("@type");
    if (it == object.fields().end()) {
      return errorAt(path,
                     "missing '@type' (an Any needs its type URL, such as "
                     "\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\")");
    }
    if (it->second.kind_case() != Value::kStringValue) {
      return errorAt(child(path, "@type"), "expected a type URL string");
    }
    const std::string& url = it->second.string_value();
    size_t slash = url.rfind('/');
    std::string type_name = slash == std::string::npos ? url : url.substr(slash + 1);
    const Descriptor* d = DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
    if (slash == std::string::npos || d == nullptr) {
      return errorAt(child(path, "@type"),
                     "unknown type URL '" + url + "' (no such message type in this build)");
    }
    // Types with a special JSON form carry it under "value".
    const std::string& name = d->full_name();
    bool special = d->file()->name() == "google/protobuf/wrappers.proto" ||
                   name == "google.protobuf.Duration" || name == "google.protobuf.Timestamp" ||
                   name == "google.protobuf.FieldMask" || name == "google.protobuf.Struct" ||
                   name == "google.protobuf.Value" || name == "google.protobuf.ListValue" ||
                   name == "google.protobuf.Any";
    if (special) {
      auto value = object.fields().find("value");
      if (value == object.fields().end()) {
        return okStatus();
      }
      return message(value->second, *d, child(path, "value"));
    }
    return fields(object, *d, path, "@type");
  }

  static Status expectKind(const Value& v, Value::KindCase kind, const std::string& path,
                           const char* what) {
    if (v.kind_case() == kind) {
      return okStatus();
    }
    return errorAt(path, std::string("expected ") + what + ", got " + kindName(v));
  }

  int depth_ = 0;
};

// protobuf reports "(path) key: Cannot find field." or "(path): invalid
// value ..."; turn that into "path: ...".
std::string tidyProtobufMessage(std::string msg) {
  for (std::string_view prefix : {"INVALID_ARGUMENT:", "INVALID_ARGUMENT: "}) {
    if (msg.rfind(prefix, 0) == 0) {
      msg.erase(0, prefix.size());
    }
  }
  if (!msg.empty() && msg[0] == '(') {
    size_t close = msg.find(')');
    if (close != std::string::npos) {
      std::string path = msg.substr(1, close - 1);
      std::string rest = msg.substr(close + 1);
      if (rest.rfind(": ", 0) == 0) {
        rest.erase(0, 2);
      } else if (rest.rfind(' ', 0) == 0) {
        rest.erase(0, 1);
        size_t colon = rest.find(": ");
        if (colon != std::string::npos) {
          path = child(path, rest.substr(0, colon));
          rest.erase(0, colon + 2);
        }
      }
      msg = path.empty() ? rest : path + ": " + rest;
    }
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ' || msg.back() == '^')) {
    msg.pop_back();
  }
  return msg;
}

}  // namespace

Status jsonToMessage(std::string_view json, google::protobuf::Message& out) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  options.case_insensitive_enum_parsing = false;

  Value tree;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &tree, options);
  if (!parsed.ok()) {
    return invalidArgument("invalid JSON: " + tidyProtobufMessage(parsed.ToString()));
  }
  if (tree.kind_case() != Value::kStructValue) {
    return invalidArgument(std::string("expected a JSON object at the top level, got ") +
                           kindName(tree));
  }
  ShapeChecker checker;
  SHEAVE_RETURN_IF_ERROR(checker.message(tree, *out.GetDescriptor(), ""));

  out.Clear();
  auto status = google::protobuf::util::JsonStringToMessage(json, &out, options);
  if (!status.ok()) {
    return invalidArgument(tidyProtobufMessage(status.ToString()));
  }
  return okStatus();
}

Status yamlToMessage(std::string_view yaml, google::protobuf::Message& out) {
  SHEAVE_ASSIGN_OR_RETURN(std::string json, yamlToJson(yaml));
  return jsonToMessage(json, out);
}

std::string typeUrlOf(const google::protobuf::Descriptor& descriptor) {
  return std::string(kTypeUrlPrefix) + descriptor.full_name();
}

Status unpackAny(const google::protobuf::Any& any, google::protobuf::Message& out,
                 std::string_view where) {
  const std::string& url = any.type_url();
  size_t slash = url.rfind('/');
  std::string_view type_name =
      slash == std::string::npos ? std::string_view() : std::string_view(url).substr(slash + 1);
  const std::string& expected = out.GetDescriptor()->full_name();
  if (type_name != expected) {
    std::string got = url.empty() ? "no type URL" : "'" + url + "'";
    return errorAt(std::string(where), "expected typed_config of type '" +
                                           typeUrlOf(*out.GetDescriptor()) + "', got " + got);
  }
  if (!any.UnpackTo(&out)) {
    return errorAt(std::string(where), "could not decode the " + expected + " payload");
  }
  return okStatus();
}

}  // namespace sheave::config
