#include "proxy/grpc/status.h"

#include <gtest/gtest.h>

namespace sheave::grpc {
namespace {

using std::chrono::milliseconds;

TEST(StatusTest, NamesAndNumbersAreGrpcs) {
  EXPECT_EQ(statusName(StatusCode::kOk), "OK");
  EXPECT_EQ(statusName(StatusCode::kDeadlineExceeded), "DEADLINE_EXCEEDED");
  EXPECT_EQ(statusName(StatusCode::kUnauthenticated), "UNAUTHENTICATED");
  EXPECT_EQ(statusName(static_cast<StatusCode>(42)), "UNKNOWN_CODE");
  EXPECT_EQ(static_cast<uint32_t>(StatusCode::kPermissionDenied), 7u);
  EXPECT_EQ(static_cast<uint32_t>(StatusCode::kUnavailable), 14u);
  EXPECT_EQ(static_cast<uint32_t>(StatusCode::kUnauthenticated), 16u);
}

TEST(StatusTest, ParsesGrpcStatus) {
  EXPECT_EQ(parseGrpcStatus("0"), StatusCode::kOk);
  EXPECT_EQ(parseGrpcStatus("14"), StatusCode::kUnavailable);
  EXPECT_EQ(parseGrpcStatus("99"), StatusCode::kUnknown);  // outside the table
  EXPECT_EQ(parseGrpcStatus(""), std::nullopt);
  EXPECT_EQ(parseGrpcStatus("1a"), std::nullopt);
  EXPECT_EQ(parseGrpcStatus("-1"), std::nullopt);
  EXPECT_EQ(parseGrpcStatus("99999999999"), std::nullopt);
}

TEST(StatusTest, PercentEncodingRoundTrips) {
  EXPECT_EQ(percentEncodeGrpcMessage("plain text"), "plain text");
  EXPECT_EQ(percentEncodeGrpcMessage("100%"), "100%25");
  EXPECT_EQ(percentEncodeGrpcMessage("a\nb"), "a%0Ab");
  EXPECT_EQ(percentEncodeGrpcMessage("\xc3\xa9"), "%C3%A9");
  const std::string message = "d\xc3\xa9j\xc3\xa0 vu 50% \t\x7f~";
  EXPECT_EQ(percentDecodeGrpcMessage(percentEncodeGrpcMessage(message)), message);
}

TEST(StatusTest, PercentDecodingKeepsMalformedEscapes) {
  EXPECT_EQ(percentDecodeGrpcMessage("%41%62"), "Ab");
  EXPECT_EQ(percentDecodeGrpcMessage("%e2%82%ac"), "\xe2\x82\xac");  // lower-case hex too
  EXPECT_EQ(percentDecodeGrpcMessage("100%"), "100%");
  EXPECT_EQ(percentDecodeGrpcMessage("%4"), "%4");
  EXPECT_EQ(percentDecodeGrpcMessage("%zz%41"), "%zzA");
}

TEST(StatusTest, StatusFromHeaders) {
  HeaderMap trailers;
  EXPECT_EQ(grpcStatusFromHeaders(trailers), std::nullopt);
  trailers.add("grpc-status", "7");
  trailers.add("grpc-message", "no%20way");
  std::optional<GrpcStatus> status = grpcStatusFromHeaders(trailers);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, StatusCode::kPermissionDenied);
  EXPECT_EQ(status->message, "no way");
  HeaderMap bad;
  bad.add("grpc-status", "seven");
  EXPECT_EQ(grpcStatusFromHeaders(bad), std::nullopt);
}

TEST(StatusTest, HttpStatusMapping) {
  EXPECT_EQ(httpStatusToGrpcStatus(400), StatusCode::kInternal);
  EXPECT_EQ(httpStatusToGrpcStatus(401), StatusCode::kUnauthenticated);
  EXPECT_EQ(httpStatusToGrpcStatus(403), StatusCode::kPermissionDenied);
  EXPECT_EQ(httpStatusToGrpcStatus(404), StatusCode::kUnimplemented);
  EXPECT_EQ(httpStatusToGrpcStatus(429), StatusCode::kUnavailable);
  EXPECT_EQ(httpStatusToGrpcStatus(502), StatusCode::kUnavailable);
  EXPECT_EQ(httpStatusToGrpcStatus(503), StatusCode::kUnavailable);
  EXPECT_EQ(httpStatusToGrpcStatus(504), StatusCode::kUnavailable);
  EXPECT_EQ(httpStatusToGrpcStatus(500), StatusCode::kUnknown);
  EXPECT_EQ(httpStatusToGrpcStatus(302), StatusCode::kUnknown);
}

TEST(StatusTest, Http2ErrorMapping) {
  EXPECT_EQ(http2ErrorToGrpcStatus(0x0), StatusCode::kInternal);
  EXPECT_EQ(http2ErrorToGrpcStatus(0x1), StatusCode::kInternal);
  EXPECT_EQ(http2ErrorToGrpcStatus(0x7), StatusCode::kUnavailable);
  EXPECT_EQ(http2ErrorToGrpcStatus(0x8), StatusCode::kCancelled);
  EXPECT_EQ(http2ErrorToGrpcStatus(0xb), StatusCode::kResourceExhausted);
  EXPECT_EQ(http2ErrorToGrpcStatus(0xc), StatusCode::kPermissionDenied);
  EXPECT_EQ(http2ErrorToGrpcStatus(0x1234), StatusCode::kInternal);
}

TEST(StatusTest, ParsesGrpcTimeout) {
  EXPECT_EQ(*parseGrpcTimeout("1H"), milliseconds(3'600'000));
  EXPECT_EQ(*parseGrpcTimeout("2M"), milliseconds(120'000));
  EXPECT_EQ(*parseGrpcTimeout("3S"), milliseconds(3'000));
  EXPECT_EQ(*parseGrpcTimeout("250m"), milliseconds(250));
  EXPECT_EQ(*parseGrpcTimeout("1500u"), milliseconds(2));  // rounded up
  EXPECT_EQ(*parseGrpcTimeout("1n"), milliseconds(1));
  EXPECT_EQ(*parseGrpcTimeout("0m"), milliseconds(0));
  EXPECT_EQ(*parseGrpcTimeout("99999999H"), milliseconds(int64_t{99'999'999} * 3'600'000));
  EXPECT_FALSE(parseGrpcTimeout("").ok());
  EXPECT_FALSE(parseGrpcTimeout("m").ok());
  EXPECT_FALSE(parseGrpcTimeout("10").ok());
  EXPECT_FALSE(parseGrpcTimeout("10x").ok());
  EXPECT_FALSE(parseGrpcTimeout("-1S").ok());
  EXPECT_FALSE(parseGrpcTimeout("123456789m").ok());  // 9 digits
}

TEST(StatusTest, FormatsGrpcTimeout) {
  EXPECT_EQ(formatGrpcTimeout(milliseconds(250)), "250m");
  EXPECT_EQ(formatGrpcTimeout(milliseconds(0)), "0m");
  EXPECT_EQ(formatGrpcTimeout(milliseconds(-5)), "0m");
  EXPECT_EQ(formatGrpcTimeout(milliseconds(99'999'999)), "99999999m");
  EXPECT_EQ(formatGrpcTimeout(milliseconds(100'000'001)), "100001S");  // rounded up
  EXPECT_EQ(formatGrpcTimeout(milliseconds(int64_t{200'000'000} * 1000)), "3333334M");
  for (int64_t ms : {1, 999, 5'000, 86'400'000}) {
    EXPECT_EQ(*parseGrpcTimeout(formatGrpcTimeout(milliseconds(ms))), milliseconds(ms));
  }
}

}  // namespace
}  // namespace sheave::grpc
