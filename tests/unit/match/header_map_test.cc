#include "match/header_map.h"

#include <gtest/gtest.h>

namespace sheave {
namespace {

TEST(HeaderMapTest, NamesAreCaseInsensitive) {
  HeaderMap h;
  h.add("Content-Type", "text/plain");
  ASSERT_NE(h.get("content-type"), nullptr);
  EXPECT_EQ(*h.get("content-type"), "text/plain");
  EXPECT_EQ(h.entries()[0].name, "content-type");
}

TEST(HeaderMapTest, SetReplacesAllAndRemoveCounts) {
  HeaderMap h;
  h.add("x-a", "1");
  h.add("x-b", "2");
  h.add("X-A", "3");
  EXPECT_EQ(h.count("x-a"), 2u);
  EXPECT_EQ(h.getAll("x-a").size(), 2u);
  h.set("x-a", "9");
  EXPECT_EQ(h.count("x-a"), 1u);
  EXPECT_EQ(*h.get("x-a"), "9");
  EXPECT_EQ(h.remove("X-B"), 1u);
  EXPECT_FALSE(h.has("x-b"));
  EXPECT_EQ(h.byteSize(), 4u);
}

TEST(HeaderMapTest, PseudoHeaders) {
  HeaderMap h;
  h.add(":method", "GET");
  h.add(":path", "/a?b=c");
  h.add(":authority", "example.com");
  EXPECT_EQ(h.method(), "GET");
  EXPECT_EQ(h.path(), "/a?b=c");
  EXPECT_EQ(h.authority(), "example.com");
  EXPECT_EQ(h.scheme(), "");
}

}  // namespace
}  // namespace sheave
