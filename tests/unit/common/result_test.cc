#include "common/result.h"

#include <gtest/gtest.h>

#include <memory>

namespace sheave {
namespace {

Result<int> parsePositive(int v) {
  if (v <= 0) return invalidArgument("must be positive");
  return v;
}

Result<int> doubled(int v) {
  SHEAVE_ASSIGN_OR_RETURN(int x, parsePositive(v));
  return 2 * x;
}

Status check(int v) {
  SHEAVE_RETURN_IF_ERROR(parsePositive(v));
  return okStatus();
}

TEST(ResultTest, CarriesValueOrError) {
  auto good = parsePositive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  auto bad = parsePositive(0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "must be positive");
}

TEST(ResultTest, MacrosPropagate) {
  EXPECT_EQ(*doubled(4), 8);
  EXPECT_FALSE(doubled(-1).ok());
  EXPECT_TRUE(check(1).ok());
  EXPECT_EQ(check(-1).error().message(), "must be positive");
}

TEST(ResultTest, ErrorAtPrefixesLocation) {
  Error e = invalidArgument("must be positive").at("clusters[0].connect_timeout");
  EXPECT_EQ(e.message(), "clusters[0].connect_timeout: must be positive");
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace sheave
