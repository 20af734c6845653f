#include "match/jwt/base64url.h"

#include <gtest/gtest.h>

namespace sheave::jwt {
namespace {

TEST(Base64UrlTest, RoundTrips) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00\x01"}) {
    auto decoded = base64UrlDecode(base64UrlEncode(s));
    ASSERT_TRUE(decoded.has_value()) << s;
    EXPECT_EQ(*decoded, s);
  }
  EXPECT_EQ(base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64UrlEncode("f", true), "Zg==");
}

TEST(Base64UrlTest, RejectsNonAlphabetAndPadding) {
  EXPECT_FALSE(base64UrlDecode("Zg=="));  // padding is not part of JWS encoding
  EXPECT_FALSE(base64UrlDecode("Zm9v+w"));
  EXPECT_FALSE(base64UrlDecode("Zm9v/w"));
  EXPECT_FALSE(base64UrlDecode("Zm 9v"));
  EXPECT_FALSE(base64UrlDecode("Zm9v\n"));
  EXPECT_FALSE(base64UrlDecode(std::string("Zm\0v", 4)));
}

TEST(Base64UrlTest, RejectsImpossibleLengthAndLeftoverBits) {
  EXPECT_FALSE(base64UrlDecode("Z"));
  EXPECT_FALSE(base64UrlDecode("Zm9vY"));
  EXPECT_TRUE(base64UrlDecode("Zg"));
  EXPECT_FALSE(base64UrlDecode("Zh"));  // the same byte with non-zero unused bits
}

}  // namespace
}  // namespace sheave::jwt
