#include "control/model/yaml_decoder.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace sheave::control {

namespace {

enum class PlainKind { kString, kBool, kInt, kFloat };

bool isPlain(const YAML::Node& n) { return n.Tag() == "?" || n.Tag().empty(); }

bool isIntText(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool isFloatText(std::string_view s) {
  if (s == ".inf" || s == "-.inf" || s == "+.inf" || s == ".nan" || s == ".Inf" || s == ".NaN") {
    return true;
  }
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  size_t i = 0;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    const size_t exp_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == exp_start) return false;
  }
  return i == s.size();
}

bool isBoolText(std::string_view s) {
  return s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE";
}

// What a plain (unquoted) scalar means under YAML's core schema.
PlainKind plainKind(const std::string& s) {
  if (isBoolText(s)) return PlainKind::kBool;
  if (isIntText(s)) return PlainKind::kInt;
  if (isFloatText(s)) return PlainKind::kFloat;
  return PlainKind::kString;
}

// The text of a scalar that YAML types as a number (a plain number), or nullopt.
std::optional<std::string> numberText(Decoder& d, const YAML::Node& n, const std::string& path,
                                      std::string_view expected) {
  if (n.IsScalar() && isPlain(n)) {
    const PlainKind kind = plainKind(n.Scalar());
    if (kind == PlainKind::kInt || (kind == PlainKind::kFloat && expected == "a number")) {
      return n.Scalar();
    }
  }
  d.fail(n, path, "expected " + std::string(expected) + ", got " + describeNode(n));
  return std::nullopt;
}

template <typename Int>
void decodeInt(Decoder& d, const YAML::Node& n, const std::string& path, Int& out,
               std::string_view expected) {
  const std::optional<std::string> text = numberText(d, n, path, expected);
  if (!text) return;
  std::string_view s = *text;
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  Int value{};
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) {
    d.fail(n, path, std::string(expected) + " out of range: " + *text);
    return;
  }
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    // "-1" for an unsigned field lands here.
    d.fail(n, path, "expected " + std::string(expected) + ", got " + *text);
    return;
  }
  out = value;
}

}  // namespace

void Decoder::fail(const YAML::Node& at, std::string_view path, std::string_view message) {
  failAt(at.Mark(), path, message);
}

void Decoder::failAt(const YAML::Mark& mark, std::string_view path, std::string_view message) {
  if (error_) return;
  std::string text = locate(mark).toString() + ": ";
  if (!path.empty()) {
    text += path;
    text += ": ";
  }
  text += message;
  error_.emplace(invalidArgument(std::move(text)));
}

SourceLocation Decoder::locate(const YAML::Mark& mark) const {
  SourceLocation loc{file_, 0, 0};
  const YAML::Mark& m = mark.line >= 0 ? mark : fallback_;
  if (m.line >= 0) {
    loc.line = m.line + 1 + line_offset_;
    loc.column = m.column + 1;
  }
  return loc;
}

std::string childPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out(path);
  out += '.';
  out += key;
  return out;
}

std::string indexPath(std::string_view path, size_t index) {
  return std::string(path) + "[" + std::to_string(index) + "]";
}

std::string describeNode(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "null";
    case YAML::NodeType::Scalar:
      break;
  }
  if (isPlain(n) && plainKind(n.Scalar()) != PlainKind::kString) return n.Scalar();
  return "\"" + n.Scalar() + "\"";
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, std::string& out) {
  if (n.IsScalar() && (!isPlain(n) || plainKind(n.Scalar()) == PlainKind::kString)) {
    out = n.Scalar();
    return;
  }
  d.fail(n, path, "expected a string, got " + describeNode(n));
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, bool& out) {
  if (n.IsScalar() && isPlain(n) && isBoolText(n.Scalar())) {
    out = n.Scalar()[0] == 't' || n.Scalar()[0] == 'T';
    return;
  }
  d.fail(n, path, "expected true or false, got " + describeNode(n));
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, int32_t& out) {
  decodeInt(d, n, path, out, "an integer");
}
void decode(Decoder& d, const YAML::Node& n, const std::string& path, uint32_t& out) {
  decodeInt(d, n, path, out, "a non-negative integer");
}
void decode(Decoder& d, const YAML::Node& n, const std::string& path, int64_t& out) {
  decodeInt(d, n, path, out, "an integer");
}
void decode(Decoder& d, const YAML::Node& n, const std::string& path, uint64_t& out) {
  decodeInt(d, n, path, out, "a non-negative integer");
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, double& out) {
  const std::optional<std::string> text = numberText(d, n, path, "a number");
  if (!text) return;
  const std::string& s = *text;
  if (s.find("inf") != std::string::npos || s.find("Inf") != std::string::npos ||
      s.find("nan") != std::string::npos || s.find("NaN") != std::string::npos) {
    d.fail(n, path, "expected a finite number, got " + s);
    return;
  }
  out = std::strtod(s.c_str(), nullptr);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Duration& out) {
  if (!n.IsScalar()) {
    d.fail(n, path, "expected a duration such as \"10s\", got " + describeNode(n));
    return;
  }
  Result<Duration> parsed = parseDuration(n.Scalar());
  if (!parsed.ok()) {
    d.fail(n, path, parsed.error().message());
    return;
  }
  out = *parsed;
}

std::optional<std::string> enumText(Decoder& d, const YAML::Node& n, const std::string& path) {
  if (n.IsScalar()) return n.Scalar();
  d.fail(n, path, "expected an enum name, got " + describeNode(n));
  return std::nullopt;
}

void failUnknownEnum(Decoder& d, const YAML::Node& n, const std::string& path,
                     std::string_view value, const std::vector<std::string_view>& names) {
  std::string list;
  for (std::string_view name : names) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  d.fail(n, path, "unknown value \"" + std::string(value) + "\" (expected one of " + list + ")");
}

bool checkMapKeys(Decoder& d, const YAML::Node& n, const std::string& path) {
  if (!n.IsMap()) {
    d.fail(n, path, "expected a map, got " + describeNode(n));
    return false;
  }
  std::vector<std::string> seen;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar()) {
      d.fail(it->first, path, "map keys must be strings, got " + describeNode(it->first));
      return false;
    }
    const std::string& key = it->first.Scalar();
    for (const std::string& s : seen) {
      if (s == key) {
        d.fail(it->first, childPath(path, key), "duplicate field \"" + key + "\"");
        return false;
      }
    }
    seen.push_back(key);
  }
  return true;
}

MapReader::MapReader(Decoder& d, const YAML::Node& node, std::string path)
    : d_(d), node_(node), path_(std::move(path)) {
  if (d_.failed()) return;
  if (node.IsNull()) {
    valid_ = true;
    return;
  }
  if (!checkMapKeys(d_, node, path_)) return;
  valid_ = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    entries_.push_back(Entry{it->first.Scalar(), it->first, it->second, false});
  }
}

void MapReader::finish() {
  if (finished_) return;
  finished_ = true;
  if (!valid_ || d_.failed()) return;
  for (const Entry& e : entries_) {
    if (!e.used) {
      d_.fail(e.key_node, childPath(path_, e.key), "unknown field \"" + e.key + "\"");
      return;
    }
  }
}

const YAML::Node* MapReader::find(std::string_view key) const {
  for (const Entry& e : entries_) {
    // A null value means "not set", as Kubernetes reads JSON null.
    if (e.key == key) return e.value.IsNull() ? nullptr : &e.value;
  }
  return nullptr;
}

const YAML::Node* MapReader::take(std::string_view key) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.used = true;
      if (d_.failed() || e.value.IsNull()) return nullptr;
      return &e.value;
    }
  }
  return nullptr;
}

void MapReader::percent(std::string_view key, std::optional<double>& out) {
  const YAML::Node* value = take(key);
  if (value == nullptr) return;
  const std::string path = childPath(path_, key);
  double v = 0;
  {
    MapReader m(d_, *value, path);
    m.field("value", v);
  }
  if (d_.failed()) return;
  if (v < 0 || v > 100) {
    d_.fail(*value, childPath(path, "value"), "percentage must be in [0, 100]");
    return;
  }
  out = v;
}

int MapReader::countSet(std::initializer_list<std::string_view> keys) const {
  int n = 0;
  for (std::string_view k : keys) n += has(k) ? 1 : 0;
  return n;
}

namespace {
std::string joinKeys(std::initializer_list<std::string_view> keys) {
  std::string out;
  for (std::string_view k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}
}  // namespace

void MapReader::atMostOne(std::initializer_list<std::string_view> keys) {
  if (d_.failed()) return;
  int n = 0;
  for (std::string_view k : keys) {
    if (!has(k)) continue;
    if (++n == 2) {
      for (const Entry& e : entries_) {
        if (e.key == k) {
          d_.fail(e.key_node, path_, "only one of " + joinKeys(keys) + " may be set");
          return;
        }
      }
    }
  }
}

void MapReader::exactlyOne(std::initializer_list<std::string_view> keys) {
  if (d_.failed()) return;
  if (countSet(keys) == 0) {
    d_.fail(node_, path_, "one of " + joinKeys(keys) + " must be set");
    return;
  }
  atMostOne(keys);
}

void MapReader::failField(std::string_view key, std::string_view message) {
  const YAML::Node* value = find(key);
  if (value != nullptr) {
    d_.fail(*value, childPath(path_, key), message);
  } else {
    d_.fail(node_, childPath(path_, key), message);
  }
}

}  // namespace sheave::control
