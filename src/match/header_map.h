#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sheave {

// An ordered list of HTTP header fields. Names are stored lower-case (HTTP/2
// requires it, HTTP/1 is case-insensitive), so every lookup is a plain compare.
// Request pseudo-headers (":method", ":path", ":authority", ":scheme") and the
// response ":status" live in the same map, as Envoy keeps them, so route
// matching and filters see one representation for HTTP/1.1 and HTTP/2.
//
// Small by design: headers are few, so a linear scan over a vector beats a
// hash map and costs no node allocation per field.
class HeaderMap {
 public:
  struct Entry {
    std::string name;  // lower-case
    std::string value;
  };

  // Appends a field; `name` is lower-cased.
  void add(std::string_view name, std::string_view value);
  // Replaces every field called `name` with one field, or appends it.
  void set(std::string_view name, std::string_view value);
  // Removes every field called `name`; returns how many were removed.
  size_t remove(std::string_view name);
  // The first value of `name` (lower-case), or nullptr.
  const std::string* get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name) != nullptr; }
  // Every value of `name`, in order.
  std::vector<std::string_view> getAll(std::string_view name) const;
  // Number of fields called `name`.
  size_t count(std::string_view name) const;

  // Convenience accessors for the pseudo-headers; empty when absent.
  std::string_view method() const { return valueOr(":method"); }
  std::string_view path() const { return valueOr(":path"); }
  std::string_view authority() const { return valueOr(":authority"); }
  std::string_view scheme() const { return valueOr(":scheme"); }
  std::string_view status() const { return valueOr(":status"); }

  // Sum of name and value lengths, for limits such as max_request_headers_kb.
  size_t byteSize() const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }

  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::string_view valueOr(std::string_view name) const {
    const std::string* v = get(name);
    return v ? std::string_view(*v) : std::string_view();
  }

  std::vector<Entry> entries_;
};

// Lower-cases ASCII in place; HTTP field names are ASCII tokens.
void asciiLowerInPlace(std::string& s);
bool equalsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace sheave
