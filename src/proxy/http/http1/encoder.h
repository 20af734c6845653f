#pragma once

#include <string>
#include <string_view>

#include "match/header_map.h"

namespace sheave::http1 {

// HTTP/1.1 serialization: appends wire bytes to `out`, never does I/O.
//
// The encoder writes the fields it is given (hop-by-hop cleanup is the connection manager's
// job) except framing, which it owns: it never copies a Transfer-Encoding field, and writes
// "transfer-encoding: chunked" when `chunked` is set, in which case it also drops any
// Content-Length, so a message never carries both. Unchunked, a Content-Length field given in
// `headers` is written as is. Values must already be valid field values (no CR, LF or NUL);
// every producer of a HeaderMap validates them.

// Request line from :method, :path (or :authority for CONNECT) and HTTP/1.1; Host from
// :authority, first; then the regular fields.
void encodeRequestHeaders(const HeaderMap& headers, bool chunked, std::string& out);
// Status line from :status with the standard reason phrase. `chunked` needs version_minor 1;
// an HTTP/1.0 peer gets a body delimited by Content-Length or by closing the connection.
void encodeResponseHeaders(const HeaderMap& headers, int version_minor, bool chunked,
                           std::string& out);
// One chunk: size line, data, CRLF. Empty data writes nothing (a zero size would end the body).
void encodeChunk(std::string_view data, std::string& out);
// The last chunk, the trailer fields if any, and the final CRLF.
void encodeLastChunk(const HeaderMap* trailers, std::string& out);

// The standard reason phrase of a status code, or "" for codes without one.
std::string_view reasonPhrase(int status);

}  // namespace sheave::http1
