#include "control/model/duration.h"

#include <gtest/gtest.h>

namespace sheave::control {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(DurationTest, ParsesIstioSpellings) {
  EXPECT_EQ(*parseDuration("10s"), seconds(10));
  EXPECT_EQ(*parseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*parseDuration("100ms"), milliseconds(100));
  EXPECT_EQ(*parseDuration("1h"), hours(1));
  EXPECT_EQ(*parseDuration("1h30m"), minutes(90));
  EXPECT_EQ(*parseDuration("2m0.5s"), milliseconds(120500));
  EXPECT_EQ(*parseDuration("250us"), microseconds(250));
  EXPECT_EQ(*parseDuration("7ns"), nanoseconds(7));
  EXPECT_EQ(*parseDuration("0.001s"), milliseconds(1));
  EXPECT_EQ(*parseDuration(".5s"), milliseconds(500));
  EXPECT_EQ(*parseDuration("0"), nanoseconds(0));
}

TEST(DurationTest, RejectsWithAReason) {
  for (const char* bad : {"", "10", "s", "-1s", "10sec", "1.2.3s", "10 s", "1e3s"}) {
    Result<Duration> d = parseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.error().message().find("invalid duration"), std::string::npos);
  }
  EXPECT_NE(parseDuration("10").error().message().find("missing unit"), std::string::npos);
  EXPECT_NE(parseDuration("10sec").error().message().find("unknown unit \"sec\""),
            std::string::npos);
}

TEST(DurationTest, FormatsShortestExactSpelling) {
  EXPECT_EQ(formatDuration(seconds(10)), "10s");
  EXPECT_EQ(formatDuration(milliseconds(100)), "100ms");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(formatDuration(hours(1)), "3600s");
  EXPECT_EQ(formatDuration(microseconds(250)), "250us");
  EXPECT_EQ(formatDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(*parseDuration(formatDuration(milliseconds(2250))), milliseconds(2250));
}

}  // namespace
}  // namespace sheave::control
