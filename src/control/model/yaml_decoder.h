#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/result.h"
#include "control/model/duration.h"
#include "control/model/source_location.h"

namespace sheave::control {

// Each Istio enum specializes EnumTraits next to its declaration with
// `static constexpr std::array<std::pair<std::string_view, E>, N> kNames`,
// the names exactly as Istio's API spells them. The first entry is the
// default (proto3's zero value).
template <typename E>
struct EnumTraits;

template <typename E>
concept IstioEnum = std::is_enum_v<E> && requires {
  EnumTraits<E>::kNames;
};

template <IstioEnum E>
std::string_view enumName(E value) {
  for (const auto& [name, v] : EnumTraits<E>::kNames) {
    if (v == value) return name;
  }
  return "?";
}

// Decoding state of one YAML document: which file it came from, where the
// document starts in that file, and the first error met. Decoding stops
// adding errors after the first, so a resource reports one actionable
// message, the way Kubernetes' strict decoding does.
class Decoder {
 public:
  Decoder(std::string file, int line_offset) : file_(std::move(file)), line_offset_(line_offset) {}

  bool failed() const { return error_.has_value(); }
  // Records "file:line:col: path: message" unless an error is already held.
  void fail(const YAML::Node& at, std::string_view path, std::string_view message);
  void failAt(const YAML::Mark& mark, std::string_view path, std::string_view message);
  std::optional<Error> takeError() { return std::exchange(error_, std::nullopt); }

  SourceLocation locate(const YAML::Mark& mark) const;
  // Where errors about nodes without a position (absent fields) point.
  void setFallback(const YAML::Mark& mark) { fallback_ = mark; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  int line_offset_;
  YAML::Mark fallback_ = YAML::Mark::null_mark();
  std::optional<Error> error_;
};

// "spec" + "http" -> "spec.http"; the root path is empty.
std::string childPath(std::string_view path, std::string_view key);
std::string indexPath(std::string_view path, size_t index);

// How a value shows up in "expected X, got Y" messages: `"ten"`, `10`,
// `a map`, `a list`, `null`.
std::string describeNode(const YAML::Node& node);

// Primitive decoders. Strict like Kubernetes: a quoted "10" is not an
// integer and a bare 10 is not a string.
void decode(Decoder& d, const YAML::Node& n, const std::string& path, std::string& out);
void decode(Decoder& d, const YAML::Node& n, const std::string& path, bool& out);
void decode(Decoder& d, const YAML::Node& n, const std::string& path, int32_t& out);
void decode(Decoder& d, const YAML::Node& n, const std::string& path, uint32_t& out);
void decode(Decoder& d, const YAML::Node& n, const std::string& path, int64_t& out);
void decode(Decoder& d, const YAML::Node& n, const std::string& path, uint64_t& out);
void decode(Decoder& d, const YAML::Node& n, const std::string& path, double& out);
void decode(Decoder& d, const YAML::Node& n, const std::string& path, Duration& out);

// The scalar text of an enum-like value, or nullopt after recording an error.
std::optional<std::string> enumText(Decoder& d, const YAML::Node& n, const std::string& path);
void failUnknownEnum(Decoder& d, const YAML::Node& n, const std::string& path,
                     std::string_view value, const std::vector<std::string_view>& names);

template <IstioEnum E>
void decode(Decoder& d, const YAML::Node& n, const std::string& path, E& out) {
  const std::optional<std::string> text = enumText(d, n, path);
  if (!text) return;
  std::vector<std::string_view> names;
  for (const auto& [name, value] : EnumTraits<E>::kNames) {
    if (name == *text) {
      out = value;
      return;
    }
    names.push_back(name);
  }
  failUnknownEnum(d, n, path, *text, names);
}

template <typename T>
void decode(Decoder& d, const YAML::Node& n, const std::string& path, std::optional<T>& out) {
  out.emplace();
  decode(d, n, path, *out);
}

template <typename T>
void decode(Decoder& d, const YAML::Node& n, const std::string& path, std::vector<T>& out) {
  if (!n.IsSequence()) {
    d.fail(n, path, "expected a list, got " + describeNode(n));
    return;
  }
  out.clear();
  out.reserve(n.size());
  for (size_t i = 0; i < n.size() && !d.failed(); ++i) {
    decode(d, n[i], indexPath(path, i), out.emplace_back());
  }
}

// Map keys are checked for duplicates: YAML allows them, Kubernetes does not.
bool checkMapKeys(Decoder& d, const YAML::Node& n, const std::string& path);

template <typename T>
void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            std::map<std::string, T>& out) {
  if (!checkMapKeys(d, n, path)) return;
  out.clear();
  for (auto it = n.begin(); it != n.end() && !d.failed(); ++it) {
    const std::string key = it->first.Scalar();
    decode(d, it->second, childPath(path, key), out[key]);
  }
}

// Reads the fields of one YAML map. Each field() call names a field the
// schema knows; when the reader goes out of scope, any key nobody asked for is
// reported as an unknown field (Istio's strict decoding).
class MapReader {
 public:
  // A null node (e.g. `spec:` with nothing after it) reads as an empty map.
  MapReader(Decoder& d, const YAML::Node& node, std::string path);
  ~MapReader() { finish(); }
  MapReader(const MapReader&) = delete;
  MapReader& operator=(const MapReader&) = delete;

  template <typename T>
  void field(std::string_view key, T& out) {
    const YAML::Node* value = take(key);
    if (value != nullptr) decode(d_, *value, childPath(path_, key), out);
  }
  // Istio's Percent message ({value: 12.5}) kept as a plain double.
  void percent(std::string_view key, std::optional<double>& out);
  // Accepted and dropped on purpose (Kubernetes bookkeeping such as status).
  void ignore(std::string_view key) { take(key); }

  // Reports the first key no field() / ignore() asked for. Call it before
  // semantic checks so a misspelt field is reported as such; the destructor
  // calls it otherwise.
  void finish();

  // Semantic checks, reported at the second field set / at the map itself.
  int countSet(std::initializer_list<std::string_view> keys) const;
  void atMostOne(std::initializer_list<std::string_view> keys);
  void exactlyOne(std::initializer_list<std::string_view> keys);
  // Records an error about a field's value (or the map when the field is absent).
  void failField(std::string_view key, std::string_view message);

  bool has(std::string_view key) const { return find(key) != nullptr; }
  const YAML::Node* find(std::string_view key) const;
  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  std::string pathOf(std::string_view key) const { return childPath(path_, key); }
  Decoder& decoder() { return d_; }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
    bool used = false;
  };
  const YAML::Node* take(std::string_view key);

  Decoder& d_;
  YAML::Node node_;
  std::string path_;
  std::vector<Entry> entries_;
  bool valid_ = false;
  bool finished_ = false;
};

}  // namespace sheave::control
