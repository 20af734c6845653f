#include "match/path_normalizer.h"

#include <vector>

namespace sheave {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

char upperHex(char c) { return (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c; }

bool isEscapedSlashAt(std::string_view s, size_t i) {
  if (i + 2 >= s.size() || s[i] != '%') return false;
  const char a = s[i + 1];
  const char b = s[i + 2];
  return (a == '2' && (b == 'f' || b == 'F')) || (a == '5' && (b == 'c' || b == 'C'));
}

// RFC 3986 section 5.2.4 over a path that starts with '/'.
std::string removeDotSegments(std::string_view in) {
  std::vector<std::string_view> segments;
  size_t pos = 1;  // past the leading '/'
  bool trailing_slash = false;
  while (pos <= in.size()) {
    size_t next = in.find('/', pos);
    if (next == std::string_view::npos) next = in.size();
    const std::string_view seg = in.substr(pos, next - pos);
    const bool last = next == in.size();
    if (seg == ".") {
      trailing_slash = last;
    } else if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = last;
    } else {
      segments.push_back(seg);
      trailing_slash = false;
    }
    pos = next + 1;
  }
  std::string out;
  out.reserve(in.size());
  for (const auto& seg : segments) {
    out += '/';
    out += seg;
  }
  if (trailing_slash || out.empty()) out += '/';
  return out;
}

}  // namespace

bool PathNormalizer::hasEscapedSlash(std::string_view s) {
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (isEscapedSlashAt(s, i)) return true;
  }
  return false;
}

bool PathNormalizer::unescapeSlashes(std::string_view s, std::string& out) {
  out.clear();
  out.reserve(s.size());
  bool found = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (isEscapedSlashAt(s, i)) {
      out += s[i + 1] == '2' ? '/' : '\\';
      i += 2;
      found = true;
    } else {
      out += s[i];
    }
  }
  return found;
}

bool PathNormalizer::canonicalize(std::string_view path, std::string& out) {
  if (path.empty() || path.front() != '/') return false;
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '\0') return false;
    if (c == '%') {
      if (i + 2 >= path.size()) return false;
      const int hi = hexValue(path[i + 1]);
      const int lo = hexValue(path[i + 2]);
      if (hi < 0 || lo < 0) return false;
      const auto byte = static_cast<unsigned char>(hi * 16 + lo);
      if (isUnreserved(byte)) {
        decoded += static_cast<char>(byte);
      } else {
        decoded += '%';
        decoded += upperHex(path[i + 1]);
        decoded += upperHex(path[i + 2]);
      }
      i += 2;
    } else if (c == '\\') {
      decoded += '/';
    } else {
      decoded += c;
    }
  }
  out = removeDotSegments(decoded);
  return true;
}

std::string PathNormalizer::mergeSlashes(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  return out;
}

PathNormalizer::Result PathNormalizer::normalize(std::string_view full) const {
  Result result;
  const size_t q = full.find('?');
  const std::string_view query = q == std::string_view::npos ? std::string_view() : full.substr(q);
  std::string path(q == std::string_view::npos ? full : full.substr(0, q));

  // Escaped slashes first, so the unescaped '/' take part in normalization.
  if (options_.escaped_slashes != EscapedSlashesAction::kKeepUnchanged && hasEscapedSlash(path)) {
    if (options_.escaped_slashes == EscapedSlashesAction::kRejectRequest) {
      result.outcome = Outcome::kReject;
      return result;
    }
    std::string unescaped;
    unescapeSlashes(path, unescaped);
    path = std::move(unescaped);
    if (options_.escaped_slashes == EscapedSlashesAction::kUnescapeAndRedirect) {
      result.outcome = Outcome::kRedirect;
    }
  }
  if (options_.normalize_path) {
    std::string canonical;
    if (!canonicalize(path, canonical)) {
      result.outcome = Outcome::kReject;
      return result;
    }
    path = std::move(canonical);
  }
  if (options_.merge_slashes) path = mergeSlashes(path);
  result.path = std::move(path);
  result.path += query;
  return result;
}

}  // namespace sheave
