#include "proxy/network/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sheave::network {

namespace {
constexpr int kMaxEventsPerPoll = 256;
}  // namespace

class TimerImpl final : public Timer {
 public:
  TimerImpl(EventLoop& loop, std::function<void()> cb) : loop_(loop), cb_(std::move(cb)) {}
  ~TimerImpl() override { disable(); }

  void enable(std::chrono::milliseconds delay) override {
    assert(loop_.isThreadSafe());
    if (delay.count() < 0) delay = std::chrono::milliseconds(0);
    if (heap_index_ != kNotArmed) loop_.timerRemove(this);
    deadline_ = loop_.now() + delay;
    seq_ = loop_.timer_seq_++;
    loop_.timerInsert(this);
  }
  void disable() override {
    if (heap_index_ != kNotArmed) loop_.timerRemove(this);
  }
  bool enabled() const override { return heap_index_ != kNotArmed; }

  static constexpr size_t kNotArmed = static_cast<size_t>(-1);

  EventLoop& loop_;
  std::function<void()> cb_;
  MonotonicTime deadline_;
  uint64_t seq_ = 0;
  size_t heap_index_ = kNotArmed;
};

class FileEventImpl final : public FileEvent {
 public:
  FileEventImpl(EventLoop& loop, int fd, std::function<void(uint32_t)> cb, uint32_t events,
                FileTriggerType trigger)
      : loop_(loop), fd_(fd), cb_(std::move(cb)), edge_(trigger == FileTriggerType::kEdge) {
    setEnabled(events);
  }
  ~FileEventImpl() override {
    if (registered_) ::epoll_ctl(loop_.epoll_fd_, EPOLL_CTL_DEL, fd_, nullptr);
    loop_.forgetInBatch(this);
  }

  void setEnabled(uint32_t events) override {
    enabled_ = events;
    if (events == 0) {
      // Removing the fd (rather than watching nothing) keeps a hung-up fd from spinning a
      // level-triggered loop with EPOLLHUP, which epoll reports even for an empty mask.
      if (registered_) ::epoll_ctl(loop_.epoll_fd_, EPOLL_CTL_DEL, fd_, nullptr);
      registered_ = false;
      return;
    }
    epoll_event ev{};
    ev.data.ptr = this;
    if (events & kRead) ev.events |= EPOLLIN;
    if (events & kWrite) ev.events |= EPOLLOUT;
    if (events & kClosed) ev.events |= EPOLLRDHUP;
    if (edge_) ev.events |= EPOLLET;
    // MOD re-evaluates readiness, so re-enabling an edge-triggered fd reports what is pending.
    int rc = ::epoll_ctl(loop_.epoll_fd_, registered_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd_, &ev);
    if (rc != 0 && errno == ENOENT) rc = ::epoll_ctl(loop_.epoll_fd_, EPOLL_CTL_ADD, fd_, &ev);
    registered_ = rc == 0;
  }

  void dispatch(uint32_t epoll_events) {
    uint32_t ready = 0;
    if (epoll_events & EPOLLIN) ready |= kRead;
    if (epoll_events & EPOLLOUT) ready |= kWrite;
    if (epoll_events & EPOLLRDHUP) ready |= kClosed;
    // An error or hang-up is reported to every interest so a read or write sees the errno.
    if (epoll_events & (EPOLLERR | EPOLLHUP)) ready |= kRead | kWrite | kClosed;
    ready &= enabled_;
    if (ready != 0) cb_(ready);
  }

  EventLoop& loop_;
  int fd_;
  std::function<void(uint32_t)> cb_;
  bool edge_;
  bool registered_ = false;
  uint32_t enabled_ = 0;
};

class SchedulableCallbackImpl final : public SchedulableCallback, public EventLoop::ListNode {
 public:
  SchedulableCallbackImpl(EventLoop& loop, std::function<void()> cb)
      : loop_(loop), cb_(std::move(cb)) {}
  ~SchedulableCallbackImpl() override { cancel(); }

  void scheduleCallbackCurrentIteration() override { link(&loop_.current_list_); }
  void scheduleCallbackNextIteration() override { link(&loop_.next_list_); }
  void cancel() override { unlink(); }
  bool enabled() const override { return next != this; }

  void link(EventLoop::ListNode* list) {
    // Scheduling twice keeps the earliest: "current" wins over "next".
    if (enabled() && (list == &loop_.next_list_ || list_ == list)) return;
    unlink();
    prev = list->prev;
    next = list;
    list->prev->next = this;
    list->prev = this;
    list_ = list;
  }
  void unlink() {
    if (!enabled()) return;
    prev->next = next;
    next->prev = prev;
    prev = next = this;
    list_ = nullptr;
  }

  EventLoop& loop_;
  std::function<void()> cb_;
  EventLoop::ListNode* list_ = nullptr;
};

EventLoop::EventLoop() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    std::fprintf(stderr, "sheave: cannot create an event loop: %s\n", std::strerror(errno));
    std::abort();
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake fd is the only registration without an owner
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  updateTime();
}

EventLoop::~EventLoop() {
  clearDeferredDeletes();
  // Objects still alive hold a reference to this loop; that is their owner's bug.
  assert(timer_heap_.empty());
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    posted_.clear();
  }
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void EventLoop::updateTime() {
  now_ = std::chrono::steady_clock::now();
  system_now_ = std::chrono::system_clock::now();
}

bool EventLoop::isThreadSafe() const {
  // Before the first run() the loop is being set up by one thread, which may do anything.
  std::thread::id owner = thread_id_.load(std::memory_order_relaxed);
  return owner == std::thread::id() || owner == std::this_thread::get_id();
}

void EventLoop::exit() {
  exit_requested_.store(true, std::memory_order_release);
  wake();
}

void EventLoop::post(std::function<void()> cb) {
  bool need_wake;
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    posted_.push_back(std::move(cb));
    need_wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (need_wake) wake();
}

void EventLoop::wake() {
  uint64_t one = 1;
  // Only EAGAIN (counter saturated, already awake) can fail here.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

std::unique_ptr<Timer> EventLoop::createTimer(std::function<void()> cb) {
  return std::make_unique<TimerImpl>(*this, std::move(cb));
}

std::unique_ptr<FileEvent> EventLoop::createFileEvent(int fd, std::function<void(uint32_t)> cb,
                                                      uint32_t events, FileTriggerType trigger) {
  return std::make_unique<FileEventImpl>(*this, fd, std::move(cb), events, trigger);
}

std::unique_ptr<SchedulableCallback> EventLoop::createSchedulableCallback(
    std::function<void()> cb) {
  return std::make_unique<SchedulableCallbackImpl>(*this, std::move(cb));
}

void EventLoop::deferredDelete(std::unique_ptr<DeferredDeletable> obj) {
  if (obj) deferred_.push_back(std::move(obj));
}

bool EventLoop::timerLess(const TimerImpl* a, const TimerImpl* b) const {
  if (a->deadline_ != b->deadline_) return a->deadline_ < b->deadline_;
  return a->seq_ < b->seq_;
}

void EventLoop::timerInsert(TimerImpl* t) {
  t->heap_index_ = timer_heap_.size();
  timer_heap_.push_back(t);
  timerSiftUp(t->heap_index_);
}

void EventLoop::timerRemove(TimerImpl* t) {
  size_t i = t->heap_index_;
  TimerImpl* last = timer_heap_.back();
  timer_heap_.pop_back();
  t->heap_index_ = TimerImpl::kNotArmed;
  if (last == t) return;
  timer_heap_[i] = last;
  last->heap_index_ = i;
  timerSiftUp(i);
  timerSiftDown(last->heap_index_);
}

void EventLoop::timerSiftUp(size_t i) {
  TimerImpl* t = timer_heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!timerLess(t, timer_heap_[parent])) break;
    timer_heap_[i] = timer_heap_[parent];
    timer_heap_[i]->heap_index_ = i;
    i = parent;
  }
  timer_heap_[i] = t;
  t->heap_index_ = i;
}

void EventLoop::timerSiftDown(size_t i) {
  TimerImpl* t = timer_heap_[i];
  const size_t n = timer_heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && timerLess(timer_heap_[child + 1], timer_heap_[child])) ++child;
    if (!timerLess(timer_heap_[child], t)) break;
    timer_heap_[i] = timer_heap_[child];
    timer_heap_[i]->heap_index_ = i;
    i = child;
  }
  timer_heap_[i] = t;
  t->heap_index_ = i;
}

void EventLoop::runExpiredTimers() {
  // Timers (re-)armed by a callback in this round wait for the next iteration, even with a zero
  // delay, so a self-re-arming timer cannot starve I/O. Such timers have a larger sequence number
  // and, since now_ is fixed during the round, a deadline >= now_, so they sort after every timer
  // that was already due.
  const uint64_t seq_limit = timer_seq_;
  while (!timer_heap_.empty()) {
    TimerImpl* t = timer_heap_.front();
    if (t->deadline_ > now_ || t->seq_ >= seq_limit) break;
    timerRemove(t);
    t->cb_();  // may destroy t
    clearDeferredDeletes();
  }
}

int EventLoop::pollTimeoutMs() {
  if (current_list_.next != &current_list_ || next_list_.next != &next_list_ ||
      !deferred_.empty()) {
    return 0;
  }
  if (timer_heap_.empty()) return -1;
  auto delta = timer_heap_.front()->deadline_ - std::chrono::steady_clock::now();
  if (delta <= std::chrono::steady_clock::duration::zero()) return 0;
  // Round up so a timer is never reported before it is due.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(delta).count();
  return ms > 24 * 3600 * 1000 ? 24 * 3600 * 1000 : static_cast<int>(ms);
}

void EventLoop::runPosted() {
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    running_posted_.swap(posted_);
    wake_pending_ = false;
  }
  for (auto& cb : running_posted_) {
    cb();
    clearDeferredDeletes();
  }
  running_posted_.clear();
}

void EventLoop::runScheduled() {
  // The current-iteration list is drained until empty, so work scheduled by these callbacks for
  // the current iteration runs now too; the next-iteration list is only moved in after a poll.
  while (current_list_.next != &current_list_) {
    auto* cb = static_cast<SchedulableCallbackImpl*>(current_list_.next);
    cb->unlink();
    cb->cb_();  // may destroy cb
    clearDeferredDeletes();
  }
}

void EventLoop::clearDeferredDeletes() {
  // Destructors may defer more deletions; loop until quiet.
  while (!deferred_.empty()) {
    deleting_.swap(deferred_);
    deleting_.clear();
  }
}

void EventLoop::forgetInBatch(FileEventImpl* fe) {
  for (int i = batch_pos_ + 1; i < batch_size_; ++i) {
    if (batch_[i].data.ptr == fe) batch_[i].data.ptr = nullptr, batch_[i].events = 0;
  }
}

void EventLoop::run() {
  thread_id_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  updateTime();
  epoll_event events[kMaxEventsPerPoll];
  for (;;) {
    // Posted work and clean-up run once more after exit() so nothing queued before it is lost.
    int n = ::epoll_wait(epoll_fd_, events, kMaxEventsPerPoll,
                         exit_requested_.load(std::memory_order_acquire) ? 0 : pollTimeoutMs());
    if (n < 0) {
      if (errno != EINTR) {
        std::fprintf(stderr, "sheave: epoll_wait failed: %s\n", std::strerror(errno));
        std::abort();
      }
      n = 0;
    }
    updateTime();

    // Callbacks scheduled for the "next" iteration become due now that we have polled.
    if (next_list_.next != &next_list_) {
      ListNode* first = next_list_.next;
      ListNode* last = next_list_.prev;
      next_list_.next = next_list_.prev = &next_list_;
      for (ListNode* p = first;; p = p->next) {
        static_cast<SchedulableCallbackImpl*>(p)->list_ = &current_list_;
        if (p == last) break;
      }
      // Append [first, last] to the current list.
      first->prev = current_list_.prev;
      current_list_.prev->next = first;
      last->next = &current_list_;
      current_list_.prev = last;
    }

    bool woken = false;
    batch_ = events;
    batch_size_ = n;
    for (batch_pos_ = 0; batch_pos_ < n; ++batch_pos_) {
      epoll_event& ev = events[batch_pos_];
      if (ev.data.ptr == nullptr) {
        if (ev.events != 0) woken = true;  // the wake fd (forgotten events have events == 0)
        continue;
      }
      static_cast<FileEventImpl*>(ev.data.ptr)->dispatch(ev.events);
      clearDeferredDeletes();
    }
    batch_ = nullptr;
    batch_size_ = batch_pos_ = 0;

    if (woken) {
      uint64_t count;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof(count));
    }
    runExpiredTimers();
    runPosted();
    runScheduled();
    clearDeferredDeletes();

    if (exit_requested_.load(std::memory_order_acquire)) {
      // One more drain so work posted right before exit() still runs, then stop.
      runPosted();
      runScheduled();
      clearDeferredDeletes();
      exit_requested_.store(false, std::memory_order_release);
      return;
    }
  }
}

}  // namespace sheave::network
