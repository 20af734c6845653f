#include "proxy/http/http1/encoder.h"

#include <cassert>
#include <charconv>

namespace sheave::http1 {
namespace {

void appendField(std::string_view name, std::string_view value, std::string& out) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

// Regular fields, without pseudo-headers and the framing fields the encoder owns.
void appendFields(const HeaderMap& headers, bool chunked, std::string& out) {
  for (const HeaderMap::Entry& e : headers) {
    if (e.name.empty() || e.name[0] == ':') continue;
    if (e.name.size() == 17 && e.name == "transfer-encoding") continue;
    if (chunked && e.name.size() == 14 && e.name == "content-length") continue;
    appendField(e.name, e.value, out);
  }
  if (chunked) out.append("transfer-encoding: chunked\r\n");
  out.append("\r\n", 2);
}

}  // namespace

void encodeRequestHeaders(const HeaderMap& headers, bool chunked, std::string& out) {
  const std::string_view method = headers.method();
  const std::string_view authority = headers.authority();
  out.append(method);
  out.push_back(' ');
  out.append(method == "CONNECT" ? authority : headers.path());
  out.append(" HTTP/1.1\r\n", 11);
  if (!authority.empty() && !headers.has("host")) appendField("host", authority, out);
  appendFields(headers, chunked, out);
}

void encodeResponseHeaders(const HeaderMap& headers, int version_minor, bool chunked,
                           std::string& out) {
  assert(!chunked || version_minor == 1);
  const std::string_view status = headers.status();
  int code = 0;
  std::from_chars(status.data(), status.data() + status.size(), code);
  out.append(version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
  out.append(status);
  out.push_back(' ');
  out.append(reasonPhrase(code));
  out.append("\r\n", 2);
  appendFields(headers, chunked, out);
}

void encodeChunk(std::string_view data, std::string& out) {
  if (data.empty()) return;
  char hex[16];
  size_t n = data.size();
  int len = 0;
  do {
    hex[15 - len++] = "0123456789abcdef"[n & 0xf];
    n >>= 4;
  } while (n != 0);
  out.append(hex + 16 - len, static_cast<size_t>(len));
  out.append("\r\n", 2);
  out.append(data);
  out.append("\r\n", 2);
}

void encodeLastChunk(const HeaderMap* trailers, std::string& out) {
  out.append("0\r\n", 3);
  if (trailers != nullptr) {
    for (const HeaderMap::Entry& e : *trailers) {
      if (e.name.empty() || e.name[0] == ':') continue;
      appendField(e.name, e.value, out);
    }
  }
  out.append("\r\n", 2);
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 207:
      return "Multi-Status";
    case 208:
      return "Already Reported";
    case 226:
      return "IM Used";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 305:
      return "Use Proxy";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 423:
      return "Locked";
    case 424:
      return "Failed Dependency";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 506:
      return "Variant Also Negotiates";
    case 507:
      return "Insufficient Storage";
    case 508:
      return "Loop Detected";
    case 510:
      return "Not Extended";
    case 511:
      return "Network Authentication Required";
    default:
      return {};
  }
}

}  // namespace sheave::http1
