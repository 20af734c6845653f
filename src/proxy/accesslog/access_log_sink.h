#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.h"
#include "proxy/stats/scope.h"

namespace sheave::accesslog {

// Where formatted access log lines go. write() is called on workers when a
// stream ends: it must not block on I/O.
class AccessLogSink {
 public:
  virtual ~AccessLogSink() = default;
  virtual void write(std::string_view line) = 0;
};

// Envoy's access log file stats ("access_log_file." prefix), shared by all
// files, plus write_dropped, which Envoy does not have because it never
// drops: Sheave drops a line rather than block a worker on a full buffer.
struct AccessLogFileStats {
  stats::Counter& write_buffered;   // lines appended to a flush buffer
  stats::Counter& write_completed;  // successful writes to the file
  stats::Counter& write_failed;     // failed writes (the data is lost)
  stats::Counter& write_dropped;    // lines dropped because the buffer was full
  stats::Counter& flushed_by_timer;
  stats::Counter& reopen_failed;
  stats::Gauge& write_total_buffered;  // bytes waiting in flush buffers
  // Keeps the references above valid for as long as a file uses them.
  std::shared_ptr<stats::Scope> scope;

  // Creates the stats in `scope` (Envoy's is "access_log_file").
  static AccessLogFileStats create(std::shared_ptr<stats::Scope> scope);
};

struct AccessLogFileOptions {
  // A file path; "/dev/stdout" and "/dev/stderr" write to the process' own
  // descriptors even when those are pipes or sockets.
  std::string path;
  // Envoy's file_flush_interval default.
  std::chrono::milliseconds flush_interval{1000};
  // The flusher wakes early once this many bytes wait.
  size_t flush_bytes = 64 * 1024;
  // Beyond this many buffered bytes new lines are dropped and counted.
  size_t max_buffer_bytes = 4 * 1024 * 1024;
};

// One output file with a background flusher thread. Workers append to a
// shared buffer under a short critical section (a memcpy); the flusher swaps
// the buffer out and writes it with no lock held, every flush_interval or
// when flush_bytes accumulate.
class AccessLogFile : public AccessLogSink {
 public:
  // Opens (creating, appending) the file now, so a bad path is a config error.
  static Result<std::shared_ptr<AccessLogFile>> open(AccessLogFileOptions options,
                                                     AccessLogFileStats stats);
  ~AccessLogFile() override;  // writes what is buffered, then stops the flusher

  void write(std::string_view line) override;
  // Blocks until everything written before the call has reached the file.
  // Not for workers: tests, shutdown and /reopen_logs.
  void flush();
  // Closes and reopens the path before the next write (log rotation).
  void reopen();

  const std::string& path() const { return options_.path; }

 private:
  AccessLogFile(AccessLogFileOptions options, AccessLogFileStats stats, int fd);
  void run();
  void writeOut(const std::string& data);
  static Result<int> openPath(const std::string& path);

  const AccessLogFileOptions options_;
  AccessLogFileStats stats_;
  int fd_;  // flusher thread only (after construction)

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_cv_;
  std::string buffer_;             // guarded by mu_
  uint64_t flush_requests_ = 0;    // guarded by mu_
  uint64_t flushes_done_ = 0;      // guarded by mu_
  bool reopen_requested_ = false;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  std::thread flusher_;
};

// Hands out one AccessLogFile per path, so every access log naming the same
// file shares its buffer and thread. Main thread.
class AccessLogManager {
 public:
  explicit AccessLogManager(stats::Scope& root_scope);

  Result<std::shared_ptr<AccessLogFile>> file(const std::string& path);
  void reopenAll();
  // Options for files opened from now on (tests shorten the flush interval).
  void setDefaultOptions(AccessLogFileOptions options) { defaults_ = std::move(options); }

 private:
  AccessLogFileStats stats_;
  AccessLogFileOptions defaults_;
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<AccessLogFile>> files_;
};

}  // namespace sheave::accesslog
