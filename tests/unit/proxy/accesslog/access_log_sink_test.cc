#include "proxy/accesslog/access_log_sink.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "proxy/stats/store.h"

namespace sheave::accesslog {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AccessLogFileTest : public testing::Test {
 protected:
  void SetUp() override {
    auto store = stats::Store::create();
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    stats_scope_ = store_->createScope("access_log_file");
    path_ = testing::TempDir() + "sheave_access_log_" + std::to_string(::getpid()) + "_" +
            testing::UnitTest::GetInstance()->current_test_info()->name() + ".log";
    std::remove(path_.c_str());
  }
  void TearDown() override { std::remove(path_.c_str()); }

  std::shared_ptr<AccessLogFile> open(AccessLogFileOptions options) {
    auto file = AccessLogFile::open(std::move(options), AccessLogFileStats::create(stats_scope_));
    EXPECT_TRUE(file.ok()) << (file.ok() ? "" : file.error().message());
    return file.ok() ? *file : nullptr;
  }

  uint64_t counter(const std::string& name) {
    return store_->counter("access_log_file." + name).value();
  }

  std::unique_ptr<stats::Store> store_;
  std::shared_ptr<stats::Scope> stats_scope_;
  std::string path_;
};

TEST_F(AccessLogFileTest, WritesOnFlush) {
  auto file = open({path_, std::chrono::hours(1), 1 << 20, 1 << 20});
  file->write("one\n");
  file->write("two\n");
  EXPECT_EQ(store_->gauge("access_log_file.write_total_buffered").value(), 8u);
  file->flush();
  EXPECT_EQ(readFile(path_), "one\ntwo\n");
  EXPECT_EQ(counter("write_buffered"), 2u);
  EXPECT_EQ(counter("write_completed"), 1u);
  EXPECT_EQ(store_->gauge("access_log_file.write_total_buffered").value(), 0u);
}

TEST_F(AccessLogFileTest, FlushesByTimer) {
  auto file = open({path_, std::chrono::milliseconds(20), 1 << 20, 1 << 20});
  file->write("tick\n");
  for (int i = 0; i < 200 && counter("flushed_by_timer") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(counter("flushed_by_timer"), 1u);
  EXPECT_EQ(readFile(path_), "tick\n");
}

TEST_F(AccessLogFileTest, FlushesWhenBatchFills) {
  auto file = open({path_, std::chrono::hours(1), 10, 1 << 20});
  file->write("0123456789abc\n");  // crosses flush_bytes
  for (int i = 0; i < 200 && counter("write_completed") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(readFile(path_), "0123456789abc\n");
  EXPECT_EQ(counter("flushed_by_timer"), 0u);
}

TEST_F(AccessLogFileTest, DropsAndCountsWhenFull) {
  // The flusher never wakes on its own: the buffer only fills.
  auto file = open({path_, std::chrono::hours(1), 1 << 20, 10});
  file->write("12345\n");  // 6 bytes
  file->write("67890\n");  // would make 12 > 10: dropped
  file->write("abc\n");    // 10: fits
  EXPECT_EQ(counter("write_dropped"), 1u);
  EXPECT_EQ(counter("write_buffered"), 2u);
  file->flush();
  EXPECT_EQ(readFile(path_), "12345\nabc\n");
  file->write("67890\n");  // room again after the flush
  file->flush();
  EXPECT_EQ(readFile(path_), "12345\nabc\n67890\n");
}

TEST_F(AccessLogFileTest, CountsFailedWrites) {
  auto file = open({"/dev/full", std::chrono::hours(1), 1 << 20, 1 << 20});
  file->write("lost\n");
  file->flush();
  EXPECT_EQ(counter("write_failed"), 1u);
  EXPECT_EQ(counter("write_completed"), 0u);
}

TEST_F(AccessLogFileTest, ManyWritersKeepLinesWhole) {
  auto file = open({path_, std::chrono::milliseconds(5), 4096, 1 << 24});
  constexpr int kThreads = 4, kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string line = "worker-" + std::to_string(t) + "-" + std::string(40, 'x') + "\n";
      for (int i = 0; i < kLines; ++i) file->write(line);
    });
  }
  for (auto& t : threads) t.join();
  file->flush();
  std::ifstream in(path_);
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    ASSERT_EQ(line.size(), 49u) << line;
    ++count;
  }
  EXPECT_EQ(count, kThreads * kLines);
  EXPECT_EQ(counter("write_dropped"), 0u);
}

TEST_F(AccessLogFileTest, ReopenFollowsRotation) {
  auto file = open({path_, std::chrono::hours(1), 1 << 20, 1 << 20});
  file->write("before\n");
  file->flush();
  const std::string rotated = path_ + ".1";
  ASSERT_EQ(std::rename(path_.c_str(), rotated.c_str()), 0);
  file->reopen();
  file->write("after\n");
  file->flush();
  EXPECT_EQ(readFile(rotated), "before\n");
  EXPECT_EQ(readFile(path_), "after\n");
  std::remove(rotated.c_str());
}

TEST_F(AccessLogFileTest, DestructorWritesWhatIsBuffered) {
  {
    auto file = open({path_, std::chrono::hours(1), 1 << 20, 1 << 20});
    file->write("last words\n");
  }
  EXPECT_EQ(readFile(path_), "last words\n");
}

TEST_F(AccessLogFileTest, OpenErrors) {
  EXPECT_FALSE(
      AccessLogFile::open({"/nonexistent-dir/x.log"}, AccessLogFileStats::create(stats_scope_))
          .ok());
  EXPECT_FALSE(AccessLogFile::open({""}, AccessLogFileStats::create(stats_scope_)).ok());
}

TEST_F(AccessLogFileTest, ManagerSharesFilesByPath) {
  AccessLogManager manager(*store_);
  auto a = manager.file(path_);
  auto b = manager.file(path_);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());
  (*a)->write("x\n");
  (*a)->flush();
  EXPECT_EQ(counter("write_completed"), 1u);
}

}  // namespace
}  // namespace sheave::accesslog
