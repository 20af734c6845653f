#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sheave::jwt {

// RFC 7515's base64url without padding, decoded strictly: any byte outside
// the URL-safe alphabet (including '=' and whitespace), an impossible length
// or non-zero leftover bits reject the input, so one token has exactly one
// encoding and a tampered copy cannot pass as the same bytes.
std::optional<std::string> base64UrlDecode(std::string_view in);

// `pad` adds '=' to a multiple of four (forward_payload_header padding).
std::string base64UrlEncode(std::string_view in, bool pad = false);

}  // namespace sheave::jwt
