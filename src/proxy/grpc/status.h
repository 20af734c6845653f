#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "match/header_map.h"

namespace sheave::grpc {

// gRPC's status codes, with the names and numbers gRPC defines (doc/statuscodes.md). A peer may
// send other numbers; parseGrpcStatus folds those into kUnknown.
enum class StatusCode : uint32_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "OK", "CANCELLED", ..., "UNAUTHENTICATED" (as gRPC prints them); "UNKNOWN_CODE" otherwise.
std::string_view statusName(StatusCode code);

// How a call ended: a code and a human-readable message (already percent-decoded).
struct GrpcStatus {
  StatusCode code = StatusCode::kOk;
  std::string message;

  bool ok() const { return code == StatusCode::kOk; }
};

// The value of a grpc-status field: decimal digits only. Numbers outside gRPC's table become
// kUnknown (what gRPC's own clients do); anything else is not a status (nullopt).
std::optional<StatusCode> parseGrpcStatus(std::string_view value);

// grpc-message is percent-encoded (PROTOCOL-HTTP2.md): bytes outside 0x20..0x7E and '%' itself
// travel as %XX. Decoding never fails: a malformed escape is kept as it is, as the spec asks.
std::string percentEncodeGrpcMessage(std::string_view message);
std::string percentDecodeGrpcMessage(std::string_view encoded);

// grpc-status + grpc-message of a trailer block (or of a Trailers-Only response's headers).
// nullopt when grpc-status is absent or not a number.
std::optional<GrpcStatus> grpcStatusFromHeaders(const HeaderMap& headers);

// What a client reports when the response's HTTP status is not 200 and it carries no
// grpc-status (doc/http-grpc-status-mapping.md): 400 INTERNAL, 401 UNAUTHENTICATED,
// 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, others UNKNOWN.
StatusCode httpStatusToGrpcStatus(uint32_t http_status);

// What a client reports for an RST_STREAM with this HTTP/2 error code (PROTOCOL-HTTP2.md,
// "Errors"): REFUSED_STREAM UNAVAILABLE, CANCEL CANCELLED, ENHANCE_YOUR_CALM RESOURCE_EXHAUSTED,
// INADEQUATE_SECURITY PERMISSION_DENIED, everything else INTERNAL.
StatusCode http2ErrorToGrpcStatus(uint32_t http2_error_code);

// grpc-timeout: 1 to 8 digits and a unit (H hours, M minutes, S seconds, m milliseconds,
// u microseconds, n nanoseconds). Sub-millisecond remainders round up, so a tiny timeout never
// becomes zero. Errors are invalidArgument values naming what is wrong.
Result<std::chrono::milliseconds> parseGrpcTimeout(std::string_view value);
// Milliseconds ("250m") while they fit in 8 digits, else the value rounded up to the first unit
// that fits (S, M, H): a deadline may be announced a little later, never earlier. Negative
// timeouts are sent as "0m".
std::string formatGrpcTimeout(std::chrono::milliseconds timeout);

}  // namespace sheave::grpc
