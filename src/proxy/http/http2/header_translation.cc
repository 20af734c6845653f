#include "proxy/http/http2/header_translation.h"

#include <string>
#include <vector>

namespace sheave::http2 {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The field names listed in Connection headers, lower-cased.
std::vector<std::string> connectionOptions(const HeaderMap& headers) {
  std::vector<std::string> out;
  for (std::string_view value : headers.getAll("connection")) {
    while (!value.empty()) {
      const size_t comma = value.find(',');
      std::string token(trim(value.substr(0, comma)));
      asciiLowerInPlace(token);
      if (!token.empty()) out.push_back(std::move(token));
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  return out;
}

bool isTrailersOnly(std::string_view te) { return equalsIgnoreCase(trim(te), "trailers"); }

// Removes hop-by-hop fields; keeps "te: trailers" when `keep_te_trailers`.
void removeHopByHop(HeaderMap& headers, bool keep_te_trailers) {
  for (const std::string& option : connectionOptions(headers)) {
    // A Connection option naming an end-to-end pseudo-header or TE trailers is nonsense; the
    // field names it lists are dropped whatever they are, as RFC 9110 7.6.1 says.
    if (!option.empty() && option[0] != ':') headers.remove(option);
  }
  headers.remove("connection");
  headers.remove("keep-alive");
  headers.remove("proxy-connection");
  headers.remove("transfer-encoding");
  headers.remove("upgrade");
  bool te_trailers = false;
  for (std::string_view te : headers.getAll("te")) {
    // "TE: trailers, deflate" still announces trailers; HTTP/2 only allows the bare token.
    for (size_t pos = 0; pos <= te.size();) {
      const size_t comma = te.find(',', pos);
      std::string_view token =
          trim(te.substr(pos, comma == std::string_view::npos ? te.npos : comma - pos));
      const size_t semi = token.find(';');
      if (isTrailersOnly(token.substr(0, semi))) te_trailers = true;
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
  }
  headers.remove("te");
  if (keep_te_trailers && te_trailers) headers.add("te", "trailers");
}

// Rebuilds the map with pseudo-headers first, :authority from Host when missing, Host dropped.
void foldHostAndOrder(HeaderMap& headers, std::string_view default_scheme) {
  const std::string* host = headers.get("host");
  const bool need_authority = host != nullptr && !headers.has(":authority");
  const bool need_scheme =
      !default_scheme.empty() && !headers.has(":scheme") && headers.method() != "CONNECT";
  bool ordered = true;
  bool seen_regular = false;
  for (const HeaderMap::Entry& e : headers) {
    const bool pseudo = !e.name.empty() && e.name[0] == ':';
    if (pseudo && seen_regular) ordered = false;
    if (!pseudo) seen_regular = true;
  }
  if (ordered && !need_authority && !need_scheme) {
    headers.remove("host");
    return;
  }
  HeaderMap out;
  for (const HeaderMap::Entry& e : headers) {
    if (!e.name.empty() && e.name[0] == ':') out.add(e.name, e.value);
  }
  if (need_scheme) out.add(":scheme", default_scheme);
  if (need_authority) out.add(":authority", *host);
  for (const HeaderMap::Entry& e : headers) {
    if (e.name.empty() || e.name[0] == ':' || e.name == "host") continue;
    out.add(e.name, e.value);
  }
  headers = std::move(out);
}

}  // namespace

bool isConnectionSpecificHeader(std::string_view name, std::string_view value) {
  switch (name.size()) {
    case 2:
      return name == "te" && !isTrailersOnly(value);
    case 7:
      return name == "upgrade";
    case 10:
      return name == "connection" || name == "keep-alive";
    case 16:
      return name == "proxy-connection";
    case 17:
      return name == "transfer-encoding";
    default:
      return false;
  }
}

void requestHeadersToHttp1(HeaderMap& headers) {
  removeHopByHop(headers, /*keep_te_trailers=*/false);
  foldHostAndOrder(headers, {});
  if (headers.count("cookie") > 1) {
    std::string joined;
    for (std::string_view crumb : headers.getAll("cookie")) {
      if (!joined.empty()) joined.append("; ");
      joined.append(crumb);
    }
    headers.set("cookie", joined);
  }
}

void requestHeadersToHttp2(HeaderMap& headers, std::string_view scheme) {
  removeHopByHop(headers, /*keep_te_trailers=*/true);
  foldHostAndOrder(headers, scheme);
}

void responseHeadersToHttp1(HeaderMap& headers) { removeHopByHop(headers, false); }

void responseHeadersToHttp2(HeaderMap& headers) { removeHopByHop(headers, false); }

void trailersForForwarding(HeaderMap& trailers) {
  removeHopByHop(trailers, false);
  bool has_pseudo = false;
  for (const HeaderMap::Entry& e : trailers) {
    if (!e.name.empty() && e.name[0] == ':') has_pseudo = true;
  }
  if (!has_pseudo) return;
  HeaderMap out;
  for (const HeaderMap::Entry& e : trailers) {
    if (e.name.empty() || e.name[0] != ':') out.add(e.name, e.value);
  }
  trailers = std::move(out);
}

}  // namespace sheave::http2
