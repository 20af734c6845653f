#include "proxy/grpc/message_framer.h"

#include <gtest/gtest.h>

namespace sheave::grpc {
namespace {

std::string prefix(uint8_t flags, uint32_t length) {
  std::string p(MessageFramer::kPrefixBytes, '\0');
  MessageFramer::writePrefix(length, p.data());
  p[0] = static_cast<char>(flags);
  return p;
}

TEST(MessageFramerTest, FramesWithBigEndianLength) {
  const std::string framed = MessageFramer::frame("hello");
  EXPECT_EQ(framed, std::string("\0\0\0\0\x05hello", 10));
  const std::string big = MessageFramer::frame(std::string(0x010203, 'x'));
  EXPECT_EQ(big.substr(0, 5), std::string("\0\0\x01\x02\x03", 5));
}

TEST(MessageFramerTest, DecodesSeveralMessagesInOneRead) {
  MessageFramer framer;
  std::vector<std::string> out;
  const std::string bytes =
      MessageFramer::frame("one") + MessageFramer::frame("") + MessageFramer::frame("three");
  EXPECT_EQ(framer.decode(bytes, out), std::nullopt);
  EXPECT_EQ(out, (std::vector<std::string>{"one", "", "three"}));
  EXPECT_TRUE(framer.idle());
}

TEST(MessageFramerTest, DecodesByteAtATime) {
  MessageFramer framer;
  std::vector<std::string> out;
  const std::string bytes =
      MessageFramer::frame("split") + MessageFramer::frame(std::string(300, 'z'));
  for (size_t i = 0; i < bytes.size(); ++i) {
    ASSERT_EQ(framer.decode(bytes.substr(i, 1), out), std::nullopt);
    if (i + 1 < MessageFramer::kPrefixBytes) {
      EXPECT_FALSE(framer.idle());
    }
  }
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], "split");
  EXPECT_EQ(out[1], std::string(300, 'z'));
  EXPECT_TRUE(framer.idle());
}

TEST(MessageFramerTest, SplitsAcrossPrefixAndBody) {
  MessageFramer framer;
  std::vector<std::string> out;
  const std::string bytes = MessageFramer::frame("abcdef") + MessageFramer::frame("gh");
  EXPECT_EQ(framer.decode(bytes.substr(0, 3), out), std::nullopt);
  EXPECT_EQ(framer.decode(bytes.substr(3, 5), out), std::nullopt);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(framer.idle());
  EXPECT_EQ(framer.bufferedBytes(), 3u);
  EXPECT_EQ(framer.decode(bytes.substr(8, 6), out), std::nullopt);  // rest of one, part of two
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(framer.decode(bytes.substr(14), out), std::nullopt);
  EXPECT_EQ(out, (std::vector<std::string>{"abcdef", "gh"}));
}

TEST(MessageFramerTest, ZeroLengthMessageAlone) {
  MessageFramer framer;
  std::vector<std::string> out;
  EXPECT_EQ(framer.decode(prefix(0, 0), out), std::nullopt);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].empty());
  EXPECT_TRUE(framer.idle());
}

TEST(MessageFramerTest, RejectsOversizedMessageFromItsPrefix) {
  MessageFramer framer(1024);
  std::vector<std::string> out;
  // Exactly the limit is fine.
  EXPECT_EQ(framer.decode(MessageFramer::frame(std::string(1024, 'a')), out), std::nullopt);
  ASSERT_EQ(out.size(), 1u);
  // One byte more is refused before any of the body arrives.
  std::optional<GrpcStatus> error = framer.decode(prefix(0, 1025), out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, StatusCode::kResourceExhausted);
  EXPECT_NE(error->message.find("1025"), std::string::npos);
  // Poisoned from now on.
  error = framer.decode(MessageFramer::frame("x"), out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, StatusCode::kResourceExhausted);
  EXPECT_EQ(out.size(), 1u);
}

TEST(MessageFramerTest, DefaultLimitIsFourMiB) {
  MessageFramer framer;
  EXPECT_EQ(framer.maxMessageBytes(), 4u * 1024 * 1024);
  std::vector<std::string> out;
  EXPECT_EQ(framer.decode(prefix(0, 4 * 1024 * 1024), out), std::nullopt);
  std::optional<GrpcStatus> error = MessageFramer().decode(prefix(0, 4 * 1024 * 1024 + 1), out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, StatusCode::kResourceExhausted);
}

TEST(MessageFramerTest, CompressedWithoutEncodingIsInternal) {
  MessageFramer framer;
  std::vector<std::string> out;
  std::optional<GrpcStatus> error = framer.decode(prefix(1, 3) + "abc", out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, StatusCode::kInternal);
  EXPECT_TRUE(out.empty());
}

TEST(MessageFramerTest, CompressedWithUnsupportedEncodingIsUnimplemented) {
  MessageFramer framer;
  framer.setMessageEncoding("gzip");
  std::vector<std::string> out;
  std::optional<GrpcStatus> error = framer.decode(MessageFramer::frame("ok") + prefix(1, 3), out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, StatusCode::kUnimplemented);
  EXPECT_NE(error->message.find("gzip"), std::string::npos);
  EXPECT_EQ(out, std::vector<std::string>{"ok"});  // what came before the error still counts
}

TEST(MessageFramerTest, IdentityEncodingStillRejectsCompressedFlag) {
  MessageFramer framer;
  framer.setMessageEncoding("identity");
  std::vector<std::string> out;
  std::optional<GrpcStatus> error = framer.decode(prefix(1, 0), out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, StatusCode::kInternal);
}

TEST(MessageFramerTest, ReservedFlagBitsAreInternal) {
  MessageFramer framer;
  std::vector<std::string> out;
  std::optional<GrpcStatus> error = framer.decode(prefix(0x80, 0), out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, StatusCode::kInternal);
}

}  // namespace
}  // namespace sheave::grpc
