#include "proxy/grpc/status.h"

#include "common/grpc_status_names.h"

#include <algorithm>
#include <array>

namespace sheave::grpc {

namespace {

// The grpc-timeout value is limited to 8 digits.
constexpr int64_t kMaxTimeoutValue = 99'999'999;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool needsEscape(unsigned char c) { return c < 0x20 || c > 0x7e || c == '%'; }

}  // namespace

std::string_view statusName(StatusCode code) {
  const auto i = static_cast<uint32_t>(code);
  return i < kGrpcStatusNames.size() ? kGrpcStatusNames[i] : std::string_view("UNKNOWN_CODE");
}

std::optional<StatusCode> parseGrpcStatus(std::string_view value) {
  if (value.empty() || value.size() > 10) return std::nullopt;
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > static_cast<uint64_t>(StatusCode::kUnauthenticated)) return StatusCode::kUnknown;
  return static_cast<StatusCode>(n);
}

std::string percentEncodeGrpcMessage(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    if (needsEscape(c)) {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string percentDecodeGrpcMessage(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size()) {
      const int hi = hexValue(encoded[i + 1]);
      const int lo = hexValue(encoded[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>((hi << 4) | lo));
        i += 2;
        continue;
      }
    }
    out.push_back(encoded[i]);
  }
  return out;
}

std::optional<GrpcStatus> grpcStatusFromHeaders(const HeaderMap& headers) {
  const std::string* status = headers.get("grpc-status");
  if (status == nullptr) return std::nullopt;
  std::optional<StatusCode> code = parseGrpcStatus(*status);
  if (!code) return std::nullopt;
  GrpcStatus result;
  result.code = *code;
  if (const std::string* message = headers.get("grpc-message")) {
    result.message = percentDecodeGrpcMessage(*message);
  }
  return result;
}

StatusCode httpStatusToGrpcStatus(uint32_t http_status) {
  switch (http_status) {
    case 400:
      return StatusCode::kInternal;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kUnknown;
  }
}

StatusCode http2ErrorToGrpcStatus(uint32_t http2_error_code) {
  switch (http2_error_code) {
    case 0x7:  // REFUSED_STREAM: the server never processed it, so it is safe to retry.
      return StatusCode::kUnavailable;
    case 0x8:  // CANCEL
      return StatusCode::kCancelled;
    case 0xb:  // ENHANCE_YOUR_CALM
      return StatusCode::kResourceExhausted;
    case 0xc:  // INADEQUATE_SECURITY
      return StatusCode::kPermissionDenied;
    default:
      return StatusCode::kInternal;
  }
}

Result<std::chrono::milliseconds> parseGrpcTimeout(std::string_view value) {
  if (value.size() < 2) return invalidArgument("grpc-timeout needs digits and a unit");
  const std::string_view digits = value.substr(0, value.size() - 1);
  if (digits.size() > 8) return invalidArgument("grpc-timeout has more than 8 digits");
  int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return invalidArgument("grpc-timeout value is not a number");
    n = n * 10 + (c - '0');
  }
  using std::chrono::milliseconds;
  const auto roundUp = [](int64_t v, int64_t per_ms) {
    return milliseconds((v + per_ms - 1) / per_ms);
  };
  switch (value.back()) {
    case 'H':
      return milliseconds(n * 3'600'000);
    case 'M':
      return milliseconds(n * 60'000);
    case 'S':
      return milliseconds(n * 1'000);
    case 'm':
      return milliseconds(n);
    case 'u':
      return roundUp(n, 1'000);
    case 'n':
      return roundUp(n, 1'000'000);
    default:
      return invalidArgument("grpc-timeout unit must be one of H, M, S, m, u, n");
  }
}

std::string formatGrpcTimeout(std::chrono::milliseconds timeout) {
  int64_t ms = timeout.count();
  if (ms < 0) ms = 0;
  if (ms <= kMaxTimeoutValue) return std::to_string(ms) + "m";
  const int64_t seconds = (ms + 999) / 1000;
  if (seconds <= kMaxTimeoutValue) return std::to_string(seconds) + "S";
  const int64_t minutes = (seconds + 59) / 60;
  if (minutes <= kMaxTimeoutValue) return std::to_string(minutes) + "M";
  const int64_t hours = (minutes + 59) / 60;
  return std::to_string(std::min(hours, kMaxTimeoutValue)) + "H";
}

}  // namespace sheave::grpc
