#include "match/header_map.h"

#include <algorithm>

namespace sheave {

void asciiLowerInPlace(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  Entry e{std::string(name), std::string(value)};
  asciiLowerInPlace(e.name);
  entries_.push_back(std::move(e));
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  std::string lower(name);
  asciiLowerInPlace(lower);
  bool found = false;
  auto it = entries_.begin();
  while (it != entries_.end()) {
    if (it->name == lower) {
      if (!found) {
        it->value.assign(value);
        found = true;
        ++it;
      } else {
        it = entries_.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (!found) entries_.push_back(Entry{std::move(lower), std::string(value)});
}

size_t HeaderMap::remove(std::string_view name) {
  auto before = entries_.size();
  std::erase_if(entries_, [&](const Entry& e) { return equalsIgnoreCase(e.name, name); });
  return before - entries_.size();
}

const std::string* HeaderMap::get(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return &e.value;
  }
  return nullptr;
}

std::vector<std::string_view> HeaderMap::getAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& e : entries_) {
    if (e.name == name) out.emplace_back(e.value);
  }
  return out;
}

size_t HeaderMap::count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(),
                                           [&](const Entry& e) { return e.name == name; }));
}

size_t HeaderMap::byteSize() const {
  size_t n = 0;
  for (const auto& e : entries_) n += e.name.size() + e.value.size();
  return n;
}

}  // namespace sheave
