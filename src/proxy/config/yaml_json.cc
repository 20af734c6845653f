#include "proxy/config/yaml_json.h"
#include "common/json_string.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace sheave::config {
namespace {

// Aliases can make a small document expand enormously ("billion laughs");
// these bounds keep a hostile file from exhausting memory.
constexpr int kMaxDepth = 200;
constexpr size_t kMaxOutputBytes = 16 << 20;

std::string where(const YAML::Mark& mark) {
  if (mark.is_null()) {
    return "";
  }
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

Error errorAt(const YAML::Mark& mark, std::string message) {
  std::string w = where(mark);
  return invalidArgument(w.empty() ? std::move(message) : w + ": " + message);
}

bool allDigits(std::string_view s, int base) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                         : (c >= '0' && c < static_cast<char>('0' + base));
    if (!ok) {
      return false;
    }
  }
  return true;
}

// YAML 1.2 core schema integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+.
// Writes the JSON form (decimal, no sign '+', no leading zeros) to `out`.
bool plainInteger(std::string_view s, std::string& out) {
  bool negative = false;
  std::string_view body = s;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'o')) {
    if (s[0] == '-' || s[0] == '+') {
      return false;  // the core schema has no signed hex/octal
    }
    int base = body[1] == 'x' ? 16 : 8;
    body.remove_prefix(2);
    if (!allDigits(body, base)) {
      return false;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), v, base);
    if (ec != std::errc() || p != body.data() + body.size()) {
      return false;
    }
    out = std::to_string(v);
    return true;
  }
  if (!allDigits(body, 10)) {
    return false;
  }
  // Keep every digit: 64-bit values must not pass through a double.
  size_t first = body.find_first_not_of('0');
  std::string digits = first == std::string_view::npos ? "0" : std::string(body.substr(first));
  out = (negative && digits != "0" ? "-" : "") + digits;
  return true;
}

// YAML 1.2 core schema floats (without .inf/.nan, which JSON cannot carry:
// those stay strings, and protobuf's JSON mapping reads "Infinity"/"NaN").
bool plainFloat(std::string_view s, std::string& out) {
  // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    ++i;
  }
  size_t int_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    ++i;
    ++int_digits;
  }
  size_t frac_digits = 0;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      ++frac_digits;
    }
  }
  if (int_digits == 0 && frac_digits == 0) {
    return false;
  }
  bool exponent = false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    exponent = true;
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
      ++i;
    }
    size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      ++exp_digits;
    }
    if (exp_digits == 0) {
      return false;
    }
  }
  if (i != s.size() || (!dot && !exponent)) {
    return false;
  }
  std::string text(s[0] == '+' ? s.substr(1) : s);
  double v = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(v)) {
    return false;
  }
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.assign(buf, p);
  // JSON numbers written by to_chars may lack a fraction ("30"); that is
  // still a valid JSON number and protobuf accepts it for float fields.
  return true;
}

class Converter {
 public:
  Status convert(const YAML::Node& node, int depth) {
    if (depth > kMaxDepth) {
      return errorAt(node.Mark(), "document nested too deeply (more than " +
                                      std::to_string(kMaxDepth) + " levels)");
    }
    if (out_.size() > kMaxOutputBytes) {
      return errorAt(node.Mark(),
                     "document expands to more than 16 MiB of JSON (alias expansion?)");
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out_ += "null";
        return okStatus();
      case YAML::NodeType::Scalar:
        scalar(node);
        return okStatus();
      case YAML::NodeType::Sequence: {
        out_.push_back('[');
        bool first = true;
        for (const auto& item : node) {
          if (!first) {
            out_.push_back(',');
          }
          first = false;
          SHEAVE_RETURN_IF_ERROR(convert(item, depth + 1));
        }
        out_.push_back(']');
        return okStatus();
      }
      case YAML::NodeType::Map: {
        out_.push_back('{');
        std::set<std::string> seen;
        bool first = true;
        SHEAVE_RETURN_IF_ERROR(mapEntries(node, depth, seen, first, /*from_merge=*/false));
        out_.push_back('}');
        return okStatus();
      }
    }
    return okStatus();
  }

  std::string take() { return std::move(out_); }

 private:
  static bool isMergeKey(const YAML::Node& key) {
    return key.IsScalar() && key.Tag() != "!" && key.Scalar() == "<<";
  }

  // Writes the entries of `node` into the object being built. Explicit keys
  // win over merged ones (YAML merge-key semantics), so explicit entries are
  // written first and merged entries only fill keys not yet seen.
  Status mapEntries(const YAML::Node& node, int depth, std::set<std::string>& seen, bool& first,
                    bool from_merge) {
    std::vector<YAML::Node> merges;
    for (const auto& kv : node) {
      const YAML::Node& key = kv.first;
      if (isMergeKey(key)) {
        merges.push_back(kv.second);
        continue;
      }
      if (!key.IsScalar()) {
        return errorAt(key.Mark(), "map keys must be scalars");
      }
      const std::string& name = key.Scalar();
      if (!seen.insert(name).second) {
        if (from_merge) {
          continue;
        }
        return errorAt(key.Mark(), "duplicate key '" + name + "'");
      }
      if (!first) {
        out_.push_back(',');
      }
      first = false;
      appendJsonString(out_, name);
      out_.push_back(':');
      SHEAVE_RETURN_IF_ERROR(convert(kv.second, depth + 1));
    }
    for (const auto& merge : merges) {
      if (depth > kMaxDepth) {
        return errorAt(merge.Mark(), "merge keys nested too deeply");
      }
      if (merge.IsMap()) {
        SHEAVE_RETURN_IF_ERROR(mapEntries(merge, depth + 1, seen, first, true));
      } else if (merge.IsSequence()) {
        for (const auto& m : merge) {
          if (!m.IsMap()) {
            return errorAt(m.Mark(), "a '<<' merge key takes a map or a list of maps");
          }
          SHEAVE_RETURN_IF_ERROR(mapEntries(m, depth + 1, seen, first, true));
        }
      } else {
        return errorAt(merge.Mark(), "a '<<' merge key takes a map or a list of maps");
      }
    }
    return okStatus();
  }

  void scalar(const YAML::Node& node) {
    const std::string& tag = node.Tag();
    const std::string& s = node.Scalar();
    // "!" marks a quoted (or literal/folded block) scalar: always a string.
    if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      appendJsonString(out_, s);
      return;
    }
    std::string number;
    if (tag == "?" || tag.empty() || tag == "tag:yaml.org,2002:int" ||
        tag == "tag:yaml.org,2002:float" || tag == "tag:yaml.org,2002:bool" ||
        tag == "tag:yaml.org,2002:null") {
      if (s == "true" || s == "True" || s == "TRUE") {
        out_ += "true";
        return;
      }
      if (s == "false" || s == "False" || s == "FALSE") {
        out_ += "false";
        return;
      }
      if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
        out_ += "null";
        return;
      }
      if (plainInteger(s, number) || plainFloat(s, number)) {
        out_ += number;
        return;
      }
    }
    appendJsonString(out_, s);
  }

  std::string out_;
};

}  // namespace

Result<std::string> yamlToJson(std::string_view yaml) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return errorAt(e.mark, e.msg);
  } catch (const std::exception& e) {
    return invalidArgument(std::string("YAML: ") + e.what());
  }
  const YAML::Node* doc = nullptr;
  for (const auto& d : docs) {
    if (d.IsNull() || !d.IsDefined()) {
      continue;  // "---" separators with nothing after them
    }
    if (doc != nullptr) {
      return errorAt(d.Mark(), "several YAML documents in one file; expected exactly one");
    }
    doc = &d;
  }
  if (doc == nullptr) {
    return std::string("null");
  }
  Converter converter;
  try {
    SHEAVE_RETURN_IF_ERROR(converter.convert(*doc, 0));
  } catch (const YAML::Exception& e) {
    return errorAt(e.mark, e.msg);
  }
  return converter.take();
}

}  // namespace sheave::config
