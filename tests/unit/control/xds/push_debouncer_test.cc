#include "control/xds/push_debouncer.h"

#include <gtest/gtest.h>

namespace sheave::control::xds {
namespace {

using namespace std::chrono_literals;
using Clock = PushDebouncer::Clock;

PushRequest config(std::string reason) {
  PushRequest r;
  r.full = true;
  r.reason = std::move(reason);
  return r;
}

PushRequest endpoints(std::string service) {
  PushRequest r;
  r.full = false;
  r.services.insert(std::move(service));
  r.reason = "endpoints";
  return r;
}

TEST(PushDebouncerTest, QuietPeriodMergesABurst) {
  PushDebouncer d(100ms, 1s);
  Clock::time_point t0{};
  t0 += 10s;
  EXPECT_FALSE(d.nextDeadline());
  d.add(config("a"), t0);
  d.add(config("b"), t0 + 50ms);
  d.add(config("a"), t0 + 90ms);
  EXPECT_EQ(*d.nextDeadline(), t0 + 190ms);
  EXPECT_FALSE(d.take(t0 + 189ms));
  auto r = d.take(t0 + 190ms);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->full);
  EXPECT_EQ(r->reason, "a,b");
  EXPECT_TRUE(d.idle());
}

TEST(PushDebouncerTest, MaxBoundsAConstantStream) {
  PushDebouncer d(100ms, 1s);
  Clock::time_point t0{};
  t0 += 10s;
  Clock::time_point t = t0;
  for (int i = 0; i < 30; ++i, t += 50ms) {
    if (t - t0 >= 1s) {
      break;
    }
    d.add(config("churn"), t);
    EXPECT_FALSE(d.take(t));
  }
  EXPECT_EQ(*d.nextDeadline(), t0 + 1s);
  EXPECT_TRUE(d.take(t0 + 1s));
}

TEST(PushDebouncerTest, EndpointsAreDueAtOnceAndMergeIntoDueConfig) {
  PushDebouncer d(100ms, 1s);
  Clock::time_point t0{};
  t0 += 10s;
  d.add(config("vs"), t0);
  d.add(endpoints("a"), t0 + 10ms);
  d.add(endpoints("b"), t0 + 10ms);
  auto r = d.take(t0 + 10ms);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->full);
  EXPECT_EQ(r->services, (std::set<std::string>{"a", "b"}));
  // The config push still waits for its quiet period.
  EXPECT_FALSE(d.take(t0 + 20ms));
  d.add(endpoints("c"), t0 + 150ms);
  r = d.take(t0 + 150ms);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->full);
  EXPECT_EQ(r->services, (std::set<std::string>{"c"}));
  EXPECT_TRUE(d.idle());
}

TEST(PushRequestTest, MergeKeepsEarliestStart) {
  PushRequest a;
  a.full = false;
  a.start = Clock::time_point{} + 5s;
  PushRequest b;
  b.full = true;
  b.start = Clock::time_point{} + 3s;
  a.merge(b);
  EXPECT_TRUE(a.full);
  EXPECT_EQ(a.start, Clock::time_point{} + 3s);
  PushRequest unknown;
  a.merge(unknown);
  EXPECT_EQ(a.start, Clock::time_point{} + 3s);
}

}  // namespace
}  // namespace sheave::control::xds
