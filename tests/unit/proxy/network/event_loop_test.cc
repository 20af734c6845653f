#include "proxy/network/event_loop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "loop_test_util.h"

namespace sheave::network {
namespace {

using std::chrono::milliseconds;
using testing::runUntil;

TEST(EventLoopTest, TimersFireInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> fired;
  auto t30 = loop.createTimer([&] { fired.push_back(30); });
  auto t10 = loop.createTimer([&] { fired.push_back(10); });
  auto t20 = loop.createTimer([&] { fired.push_back(20); });
  t30->enable(milliseconds(30));
  t10->enable(milliseconds(10));
  t20->enable(milliseconds(20));
  EXPECT_TRUE(t10->enabled());
  ASSERT_TRUE(runUntil(loop, [&] { return fired.size() == 3; }));
  EXPECT_EQ(fired, (std::vector<int>{10, 20, 30}));
  EXPECT_FALSE(t10->enabled());
}

TEST(EventLoopTest, SameDeadlineFiresInEnableOrder) {
  EventLoop loop;
  std::vector<int> fired;
  std::vector<std::unique_ptr<Timer>> timers;
  for (int i = 0; i < 10; ++i) {
    timers.push_back(loop.createTimer([&fired, i] { fired.push_back(i); }));
  }
  for (auto& t : timers) t->enable(milliseconds(0));
  ASSERT_TRUE(runUntil(loop, [&] { return fired.size() == 10; }));
  EXPECT_EQ(fired, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(EventLoopTest, TimerDoesNotFireEarly) {
  EventLoop loop;
  MonotonicTime fired_at;
  bool fired = false;
  auto start = std::chrono::steady_clock::now();
  auto t = loop.createTimer([&] {
    fired = true;
    fired_at = std::chrono::steady_clock::now();
  });
  t->enable(milliseconds(25));
  ASSERT_TRUE(runUntil(loop, [&] { return fired; }));
  EXPECT_GE(fired_at - start, milliseconds(25));
}

TEST(EventLoopTest, DisableAndDestroyStopTimers) {
  EventLoop loop;
  int fired = 0;
  auto a = loop.createTimer([&] { ++fired; });
  auto b = loop.createTimer([&] { ++fired; });
  auto c = loop.createTimer([&] { fired += 100; });
  a->enable(milliseconds(5));
  b->enable(milliseconds(5));
  c->enable(milliseconds(10));
  a->disable();
  EXPECT_FALSE(a->enabled());
  b.reset();
  ASSERT_TRUE(runUntil(loop, [&] { return fired >= 100; }));
  EXPECT_EQ(fired, 100);
  EXPECT_EQ(loop.armedTimersForTest(), 0u);
}

TEST(EventLoopTest, ReEnableMovesTheDeadline) {
  EventLoop loop;
  std::vector<char> fired;
  auto a = loop.createTimer([&] { fired.push_back('a'); });
  auto b = loop.createTimer([&] { fired.push_back('b'); });
  a->enable(milliseconds(5));
  b->enable(milliseconds(20));
  a->enable(milliseconds(40));  // re-arm: now after b
  ASSERT_TRUE(runUntil(loop, [&] { return fired.size() == 2; }));
  EXPECT_EQ(fired, (std::vector<char>{'b', 'a'}));
}

TEST(EventLoopTest, TimerCanReArmAndDestroyItselfFromItsCallback) {
  EventLoop loop;
  int count = 0;
  std::unique_ptr<Timer> t;
  t = loop.createTimer([&] {
    if (++count < 5) {
      t->enable(milliseconds(0));  // runs on a later iteration, not in this one
    } else {
      t.reset();
    }
  });
  t->enable(milliseconds(0));
  ASSERT_TRUE(runUntil(loop, [&] { return count == 5; }));
  EXPECT_EQ(t, nullptr);
}

TEST(EventLoopTest, ManyTimersWithRandomChurn) {
  EventLoop loop;
  constexpr int kTimers = 20000;
  std::vector<std::unique_ptr<Timer>> timers;
  std::vector<int> fired_order;
  std::vector<int> expected_deadline(kTimers, -1);
  timers.reserve(kTimers);
  for (int i = 0; i < kTimers; ++i) {
    timers.push_back(loop.createTimer([&fired_order, i] { fired_order.push_back(i); }));
  }
  uint32_t rng = 12345;
  auto next = [&rng] { return rng = rng * 1103515245 + 12345, (rng >> 8) & 0xffff; };
  // Enable all, re-arm half, disable a quarter: the heap must stay consistent.
  for (int i = 0; i < kTimers; ++i) {
    int d = static_cast<int>(next() % 50);
    timers[i]->enable(milliseconds(d));
    expected_deadline[i] = d;
  }
  for (int i = 0; i < kTimers; i += 2) {
    int d = static_cast<int>(next() % 50);
    timers[i]->enable(milliseconds(d));
    expected_deadline[i] = d;
  }
  int expected_count = 0;
  for (int i = 0; i < kTimers; ++i) {
    if (i % 4 == 1) {
      timers[i]->disable();
      expected_deadline[i] = -1;
    } else {
      ++expected_count;
    }
  }
  EXPECT_EQ(loop.armedTimersForTest(), static_cast<size_t>(expected_count));
  ASSERT_TRUE(runUntil(loop, [&] { return fired_order.size() == size_t(expected_count); }));
  for (size_t k = 1; k < fired_order.size(); ++k) {
    ASSERT_LE(expected_deadline[fired_order[k - 1]], expected_deadline[fired_order[k]]);
  }
}

TEST(EventLoopTest, PostFromOtherThreadsRunsFifoOnTheLoopThread) {
  EventLoop loop;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<int> total{0};
  std::atomic<bool> wrong_thread{false};
  std::thread::id loop_thread;
  std::thread runner([&] {
    loop_thread = std::this_thread::get_id();
    runUntil(loop, [&] { return total.load() == kThreads * kPerThread; });
  });
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        loop.post([&, t, i] {
          if (!loop.isThreadSafe()) wrong_thread = true;
          seen[t].push_back(i);
          ++total;
        });
      }
    });
  }
  for (auto& p : posters) p.join();
  runner.join();
  EXPECT_FALSE(wrong_thread.load());
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), size_t(kPerThread));
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(seen[t][i], i);
  }
}

TEST(EventLoopTest, ExitFromAnotherThreadStopsRun) {
  EventLoop loop;
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    loop.run();
    returned = true;
  });
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_FALSE(returned.load());
  loop.exit();
  runner.join();
  EXPECT_TRUE(returned.load());
}

TEST(EventLoopTest, PostBeforeExitStillRuns) {
  EventLoop loop;
  bool ran = false;
  loop.post([&] { ran = true; });
  loop.exit();
  loop.run();
  EXPECT_TRUE(ran);
}

struct Tracked : DeferredDeletable {
  explicit Tracked(bool* destroyed) : destroyed_(destroyed) {}
  ~Tracked() override { *destroyed_ = true; }
  bool* destroyed_;
};

TEST(EventLoopTest, DeferredDeleteRunsAfterTheCallback) {
  EventLoop loop;
  bool destroyed = false;
  bool destroyed_inside_callback = true;
  loop.post([&] {
    loop.deferredDelete(std::make_unique<Tracked>(&destroyed));
    destroyed_inside_callback = destroyed;
  });
  ASSERT_TRUE(runUntil(loop, [&] { return destroyed; }));
  EXPECT_FALSE(destroyed_inside_callback);
}

TEST(EventLoopTest, SchedulableCallbacks) {
  EventLoop loop;
  std::vector<std::string> order;
  std::unique_ptr<SchedulableCallback> next;
  auto current = loop.createSchedulableCallback([&] {
    order.push_back("current");
    next->scheduleCallbackNextIteration();
  });
  next = loop.createSchedulableCallback([&] { order.push_back("next"); });
  auto cancelled = loop.createSchedulableCallback([&] { order.push_back("cancelled"); });
  loop.post([&] {
    current->scheduleCallbackCurrentIteration();
    current->scheduleCallbackCurrentIteration();  // idempotent
    cancelled->scheduleCallbackCurrentIteration();
    EXPECT_TRUE(cancelled->enabled());
    cancelled->cancel();
    order.push_back("post");
  });
  ASSERT_TRUE(runUntil(loop, [&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<std::string>{"post", "current", "next"}));
}

TEST(EventLoopTest, FileEventLevelAndDestroyInsideCallback) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  int reads = 0;
  std::unique_ptr<FileEvent> ev;
  ev = loop.createFileEvent(
      fds[0],
      [&](uint32_t ready) {
        EXPECT_TRUE(ready & kRead);
        char c;
        ASSERT_EQ(::read(fds[0], &c, 1), 1);
        if (++reads == 3) ev.reset();  // destroying itself from its own callback is allowed
      },
      kRead);
  ASSERT_EQ(::write(fds[1], "abcdef", 6), 6);
  // Level-triggered: each iteration reads one byte while bytes remain; after 3 the event is gone.
  ASSERT_TRUE(runUntil(loop, [&] { return reads == 3; }));
  runUntil(
      loop, [] { return false; }, milliseconds(20));
  EXPECT_EQ(reads, 3);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(EventLoopTest, FileEventSetEnabled) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  uint32_t last = 0;
  int calls = 0;
  auto ev = loop.createFileEvent(
      fds[1],
      [&](uint32_t ready) {
        last = ready;
        ++calls;
      },
      0);
  runUntil(
      loop, [] { return false; }, milliseconds(10));
  EXPECT_EQ(calls, 0);
  ev->setEnabled(kWrite);
  ASSERT_TRUE(runUntil(loop, [&] { return calls > 0; }));
  EXPECT_EQ(last, uint32_t(kWrite));
  ev.reset();
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(EventLoopTest, NowIsCachedAndAdvances) {
  EventLoop loop;
  MonotonicTime first{};
  MonotonicTime second{};
  auto t = loop.createTimer([&] { second = loop.now(); });
  loop.post([&] {
    first = loop.now();
    t->enable(milliseconds(5));
  });
  ASSERT_TRUE(runUntil(loop, [&] { return second != MonotonicTime{}; }));
  EXPECT_GE(second - first, milliseconds(5));
  EXPECT_GT(loop.systemNow().time_since_epoch().count(), 0);
}

}  // namespace
}  // namespace sheave::network
