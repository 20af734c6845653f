#include "control/ca/spiffe_id.h"

namespace sheave::ca {

namespace {

constexpr std::string_view kScheme = "spiffe://";
// The SPIFFE specification's limits.
constexpr size_t kMaxTrustDomain = 255;
constexpr size_t kMaxUri = 2048;

bool validTrustDomain(std::string_view td) {
  if (td.empty() || td.size() > kMaxTrustDomain) return false;
  for (char c : td) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool validSegment(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Status SpiffeId::validate() const {
  if (!validTrustDomain(trust_domain)) {
    return invalidArgument("invalid SPIFFE trust domain (allowed: a-z 0-9 . - _)");
  }
  if (!validSegment(ns)) {
    return invalidArgument("invalid namespace in SPIFFE ID (allowed: A-Z a-z 0-9 . - _)");
  }
  if (!validSegment(sa)) {
    return invalidArgument("invalid service account in SPIFFE ID (allowed: A-Z a-z 0-9 . - _)");
  }
  return okStatus();
}

Result<SpiffeId> SpiffeId::parse(std::string_view uri) {
  if (uri.size() > kMaxUri) {
    return invalidArgument("SPIFFE ID longer than 2048 bytes");
  }
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return invalidArgument("SPIFFE ID must start with spiffe://");
  }
  std::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return invalidArgument("SPIFFE ID has no path; want spiffe://<td>/ns/<ns>/sa/<sa>");
  }
  SpiffeId id;
  id.trust_domain = std::string(rest.substr(0, slash));
  // Query, fragment, port and user info all show up as characters outside
  // the allowed sets, so the segment checks below reject them.
  std::string_view path = rest.substr(slash);
  constexpr std::string_view kNs = "/ns/";
  constexpr std::string_view kSa = "/sa/";
  if (path.substr(0, kNs.size()) != kNs) {
    return invalidArgument("SPIFFE ID path must be /ns/<ns>/sa/<sa>");
  }
  path.remove_prefix(kNs.size());
  size_t sa_at = path.find('/');
  if (sa_at == std::string_view::npos || path.substr(sa_at, kSa.size()) != kSa) {
    return invalidArgument("SPIFFE ID path must be /ns/<ns>/sa/<sa>");
  }
  id.ns = std::string(path.substr(0, sa_at));
  id.sa = std::string(path.substr(sa_at + kSa.size()));
  if (id.sa.find('/') != std::string::npos) {
    return invalidArgument("SPIFFE ID path must be exactly /ns/<ns>/sa/<sa>");
  }
  SHEAVE_RETURN_IF_ERROR(id.validate());
  return id;
}

std::string SpiffeId::toString() const {
  return std::string(kScheme) + trust_domain + "/ns/" + ns + "/sa/" + sa;
}

}  // namespace sheave::ca
