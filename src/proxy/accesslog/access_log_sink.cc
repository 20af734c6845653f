#include "proxy/accesslog/access_log_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/logging.h"

namespace sheave::accesslog {

AccessLogFileStats AccessLogFileStats::create(std::shared_ptr<stats::Scope> scope) {
  stats::Scope& s = *scope;
  return AccessLogFileStats{s.counter("write_buffered"),     s.counter("write_completed"),
                            s.counter("write_failed"),       s.counter("write_dropped"),
                            s.counter("flushed_by_timer"),   s.counter("reopen_failed"),
                            s.gauge("write_total_buffered"), std::move(scope)};
}

Result<int> AccessLogFile::openPath(const std::string& path) {
  int fd;
  if (path == "/dev/stdout") {
    fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
  } else if (path == "/dev/stderr") {
    fd = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
  } else {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    return ioError("cannot open access log file '" + path + "': " + std::strerror(errno));
  }
  return fd;
}

Result<std::shared_ptr<AccessLogFile>> AccessLogFile::open(AccessLogFileOptions options,
                                                           AccessLogFileStats stats) {
  if (options.path.empty()) return invalidArgument("access log path must not be empty");
  SHEAVE_ASSIGN_OR_RETURN(int fd, openPath(options.path));
  return std::shared_ptr<AccessLogFile>(
      new AccessLogFile(std::move(options), std::move(stats), fd));
}

AccessLogFile::AccessLogFile(AccessLogFileOptions options, AccessLogFileStats stats, int fd)
    : options_(std::move(options)), stats_(std::move(stats)), fd_(fd) {
  buffer_.reserve(options_.flush_bytes);
  flusher_ = std::thread([this] { run(); });
}

AccessLogFile::~AccessLogFile() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  flusher_.join();
  ::close(fd_);
}

void AccessLogFile::write(std::string_view line) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffer_.size() + line.size() > options_.max_buffer_bytes) {
      stats_.write_dropped.inc();
      return;
    }
    const size_t before = buffer_.size();
    buffer_.append(line);
    // Wake the flusher once, when the threshold is crossed, not per line.
    wake = before < options_.flush_bytes && buffer_.size() >= options_.flush_bytes;
  }
  stats_.write_buffered.inc();
  stats_.write_total_buffered.add(line.size());
  if (wake) wake_.notify_one();
}

void AccessLogFile::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = ++flush_requests_;
  wake_.notify_one();
  flushed_cv_.wait(lock, [&] { return flushes_done_ >= target; });
}

void AccessLogFile::reopen() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reopen_requested_ = true;
  }
  wake_.notify_one();
}

void AccessLogFile::writeOut(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      stats_.write_failed.inc();
      return;
    }
    off += static_cast<size_t>(n);
  }
  stats_.write_completed.inc();
}

void AccessLogFile::run() {
  std::string batch;
  batch.reserve(options_.flush_bytes);
  std::unique_lock<std::mutex> lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + options_.flush_interval;
  while (true) {
    const bool woken = wake_.wait_until(lock, deadline, [&] {
      return stopping_ || reopen_requested_ || flush_requests_ > flushes_done_ ||
             buffer_.size() >= options_.flush_bytes;
    });
    const bool by_timer = !woken;
    const uint64_t requests = flush_requests_;
    const bool reopen = reopen_requested_;
    const bool stop = stopping_;
    reopen_requested_ = false;
    batch.clear();
    batch.swap(buffer_);  // workers continue into batch's old capacity
    lock.unlock();

    if (reopen) {
      auto fd = openPath(options_.path);
      if (fd.ok()) {
        ::close(fd_);
        fd_ = *fd;
      } else {
        stats_.reopen_failed.inc();
        SHEAVE_LOG_WARN("{}", fd.error().message());
      }
    }
    if (!batch.empty()) {
      stats_.write_total_buffered.sub(batch.size());
      if (by_timer) stats_.flushed_by_timer.inc();
      writeOut(batch);
    }

    lock.lock();
    flushes_done_ = requests;
    flushed_cv_.notify_all();
    if (stop && buffer_.empty()) break;
    if (by_timer) deadline = std::chrono::steady_clock::now() + options_.flush_interval;
  }
}

AccessLogManager::AccessLogManager(stats::Scope& root_scope)
    : stats_(AccessLogFileStats::create(root_scope.createScope("access_log_file"))) {}

Result<std::shared_ptr<AccessLogFile>> AccessLogManager::file(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it != files_.end()) {
    if (auto live = it->second.lock()) return live;
  }
  AccessLogFileOptions options = defaults_;
  options.path = path;
  SHEAVE_ASSIGN_OR_RETURN(auto file, AccessLogFile::open(std::move(options), stats_));
  files_[path] = file;
  return file;
}

void AccessLogManager::reopenAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [_, weak] : files_) {
    if (auto file = weak.lock()) file->reopen();
  }
}

}  // namespace sheave::accesslog
