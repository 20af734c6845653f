#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

struct epoll_event;

namespace sheave::network {

using MonotonicTime = std::chrono::steady_clock::time_point;

// Owned by its creator; destroying it disables it. Resolution is 1 ms; a timer never fires
// early with respect to the loop's cached now().
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void enable(std::chrono::milliseconds delay) = 0;  // re-arms if already enabled
  virtual void disable() = 0;
  virtual bool enabled() const = 0;
};

enum FileReadyType : uint32_t { kRead = 1, kWrite = 2, kClosed = 4 };

// Level-triggered events repeat while the condition holds; edge-triggered ones are reported once
// per change, so the owner must read/write until EAGAIN (Connection does).
enum class FileTriggerType { kLevel, kEdge };

// Watches one fd. The fd is not owned. Destroying the event unregisters it, also from inside one of
// its own callbacks or another fd's callback in the same batch.
class FileEvent {
 public:
  virtual ~FileEvent() = default;
  // A mask of FileReadyType; 0 stops watching the fd.
  virtual void setEnabled(uint32_t events) = 0;
};

// A callback the owner schedules to run soon on the loop without a syscall, e.g. to coalesce
// work or to deliver an event outside the caller's stack. Destroying it cancels it.
class SchedulableCallback {
 public:
  virtual ~SchedulableCallback() = default;
  // Runs before the loop polls again (after the current batch of events). A callback that keeps
  // re-scheduling itself this way never lets the loop poll; loops use the next iteration.
  virtual void scheduleCallbackCurrentIteration() = 0;
  // Runs after the loop has polled for I/O once more (lets other connections go first).
  virtual void scheduleCallbackNextIteration() = 0;
  virtual void cancel() = 0;
  virtual bool enabled() const = 0;
};

class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

class TimerImpl;
class FileEventImpl;
class SchedulableCallbackImpl;

// One thread's epoll loop. Every object created from a loop (timers, file events, connections,
// listeners) belongs to it and is used only on its thread; other threads talk to it with post().
class EventLoop {
 public:
  EventLoop();  // epoll + eventfd; aborts if the kernel refuses them (no fds left at startup)
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until exit() is called (from any thread). The calling thread becomes the loop's thread.
  // exit() called before run() makes the next run() return after one iteration.
  void run();
  void exit();  // thread-safe
  // Thread-safe; runs cb on this loop's thread in FIFO order. Callbacks still queued when the loop
  // is destroyed are destroyed without running.
  void post(std::function<void()> cb);
  // True when called on the loop's thread: the thread that runs (or last ran) run(); before the
  // first run() always true (set-up may happen on any one thread).
  bool isThreadSafe() const;
  MonotonicTime now() const { return now_; }  // cached at each loop iteration
  std::chrono::system_clock::time_point systemNow() const { return system_now_; }
  // Refreshes the cached clocks (for callers that did something slow).
  void updateTime();

  std::unique_ptr<Timer> createTimer(std::function<void()> cb);
  std::unique_ptr<FileEvent> createFileEvent(int fd, std::function<void(uint32_t ready)> cb,
                                             uint32_t events,
                                             FileTriggerType trigger = FileTriggerType::kLevel);
  std::unique_ptr<SchedulableCallback> createSchedulableCallback(std::function<void()> cb);
  // Destroys the object after the current callback returns (objects that delete themselves from
  // their own callbacks).
  void deferredDelete(std::unique_ptr<DeferredDeletable> obj);
  // The same for an object of any type: it is held until then.
  template <class T>
  requires(!std::is_base_of_v<DeferredDeletable, T>) void deferredDelete(std::unique_ptr<T> obj) {
    struct Holder : DeferredDeletable {
      explicit Holder(std::unique_ptr<T> o) : held(std::move(o)) {}
      std::unique_ptr<T> held;
    };
    deferredDelete(std::unique_ptr<DeferredDeletable>(std::make_unique<Holder>(std::move(obj))));
  }

  size_t armedTimersForTest() const { return timer_heap_.size(); }

 private:
  friend class TimerImpl;
  friend class FileEventImpl;
  friend class SchedulableCallbackImpl;

  // Min-heap of intrusive timer nodes, ordered by (deadline, sequence): enable/disable are
  // O(log n) and allocate nothing once the vector has grown.
  void timerInsert(TimerImpl* t);
  void timerRemove(TimerImpl* t);
  void timerSiftUp(size_t i);
  void timerSiftDown(size_t i);
  bool timerLess(const TimerImpl* a, const TimerImpl* b) const;
  void runExpiredTimers();
  int pollTimeoutMs();
  void runPosted();
  void runScheduled();
  void clearDeferredDeletes();
  void wake();
  void forgetInBatch(FileEventImpl* fe);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> exit_requested_{false};
  std::atomic<std::thread::id> thread_id_{};  // set by run()
  MonotonicTime now_;
  std::chrono::system_clock::time_point system_now_;

  std::vector<TimerImpl*> timer_heap_;
  uint64_t timer_seq_ = 0;

  std::mutex post_mutex_;
  std::vector<std::function<void()>> posted_;  // guarded by post_mutex_
  bool wake_pending_ = false;                  // guarded by post_mutex_
  std::vector<std::function<void()>> running_posted_;

  // Intrusive lists of scheduled callbacks (sentinel-headed, circular).
  struct ListNode {
    ListNode* prev = this;
    ListNode* next = this;
  };
  ListNode current_list_;
  ListNode next_list_;

  std::vector<std::unique_ptr<DeferredDeletable>> deferred_;
  std::vector<std::unique_ptr<DeferredDeletable>> deleting_;

  // The batch of epoll events being dispatched, so a FileEvent destroyed mid-batch can be
  // forgotten without a heap node per fd.
  epoll_event* batch_ = nullptr;
  int batch_pos_ = 0;
  int batch_size_ = 0;
};

}  // namespace sheave::network
