#include "proxy/network/buffer.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace sheave::network {

namespace {

// Small slices are copied into the tail instead of being linked, so many small writes do not
// turn into a chain of mostly empty 16 KiB slices (memory and iovec count).
constexpr size_t kCopyThreshold = 1024;
constexpr int kMaxReadSlices = 8;
constexpr int kMaxWriteIov = 64;
// Per-thread cache bound: 256 slices = 4 MiB per thread; beyond that slices go back to malloc.
constexpr size_t kMaxFreeSlices = 256;

struct SliceFreeList {
  std::vector<void*> free;
  ~SliceFreeList() {
    for (void* p : free) ::operator delete(p);
  }
};
thread_local SliceFreeList t_free_slices;

}  // namespace

bool IoResult::wouldBlock() const { return error == EAGAIN || error == EWOULDBLOCK; }

Buffer::Slice* Buffer::allocSlice(size_t capacity) {
  void* mem;
  if (capacity == kSliceSize && !t_free_slices.free.empty()) {
    mem = t_free_slices.free.back();
    t_free_slices.free.pop_back();
  } else {
    mem = ::operator new(sizeof(Slice) + capacity);
  }
  return new (mem) Slice{static_cast<uint32_t>(capacity), 0, 0};
}

void Buffer::freeSlice(Slice* s) {
  if (s->capacity == kSliceSize && t_free_slices.free.size() < kMaxFreeSlices) {
    t_free_slices.free.push_back(s);
  } else {
    ::operator delete(s);
  }
}

Buffer::~Buffer() {
  clear();
  if (ring_ != inline_) delete[] ring_;
}

Buffer::Buffer(Buffer&& other) noexcept { *this = std::move(other); }

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this == &other) return *this;
  clear();
  if (ring_ != inline_) delete[] ring_;
  if (other.ring_ == other.inline_) {
    std::copy(std::begin(other.inline_), std::end(other.inline_), inline_);
    ring_ = inline_;
  } else {
    ring_ = other.ring_;
  }
  capacity_ = other.capacity_;
  head_ = other.head_;
  size_ = other.size_;
  length_ = other.length_;
  other.ring_ = other.inline_;
  other.capacity_ = kInlineSlices;
  other.head_ = other.size_ = 0;
  other.length_ = 0;
  return *this;
}

void Buffer::clear() {
  while (size_ > 0) freeSlice(popFront());
  length_ = 0;
}

void Buffer::grow() {
  uint32_t new_cap = capacity_ * 2;
  Slice** ring = new Slice*[new_cap];
  for (uint32_t i = 0; i < size_; ++i) ring[i] = at(i);
  if (ring_ != inline_) delete[] ring_;
  ring_ = ring;
  capacity_ = new_cap;
  head_ = 0;
}

void Buffer::pushBack(Slice* s) {
  if (size_ == capacity_) grow();
  ring_[(head_ + size_) & (capacity_ - 1)] = s;
  ++size_;
}

void Buffer::pushFront(Slice* s) {
  if (size_ == capacity_) grow();
  head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
  ring_[head_] = s;
  ++size_;
}

Buffer::Slice* Buffer::popFront() {
  Slice* s = ring_[head_];
  head_ = (head_ + 1) & (capacity_ - 1);
  --size_;
  return s;
}

void Buffer::add(const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    if (size_ == 0 || back()->writable() == 0) pushBack(allocSlice());
    Slice* s = back();
    size_t n = std::min(len, s->writable());
    std::memcpy(s->data() + s->end, p, n);
    s->end += n;
    length_ += n;
    p += n;
    len -= n;
  }
}

void Buffer::add(const Buffer& other) {
  other.forEachSlice([this](std::string_view piece) { add(piece.data(), piece.size()); });
}

void Buffer::move(Buffer& other) {
  if (&other == this) return;
  while (other.size_ > 0) {
    Slice* s = other.popFront();
    size_t n = s->readable();
    other.length_ -= n;
    if (n == 0) {
      freeSlice(s);
    } else if (n <= kCopyThreshold && size_ > 0 && back()->writable() >= n) {
      std::memcpy(back()->data() + back()->end, s->data() + s->start, n);
      back()->end += n;
      length_ += n;
      freeSlice(s);
    } else {
      pushBack(s);
      length_ += n;
    }
  }
}

void Buffer::move(Buffer& other, size_t len) {
  if (&other == this) return;
  len = std::min(len, other.length_);
  while (len > 0) {
    Slice* s = other.front();
    size_t n = s->readable();
    if (n <= len) {
      other.popFront();
      other.length_ -= n;
      len -= n;
      if (n == 0) {
        freeSlice(s);
      } else if (n <= kCopyThreshold && size_ > 0 && back()->writable() >= n) {
        std::memcpy(back()->data() + back()->end, s->data() + s->start, n);
        back()->end += n;
        length_ += n;
        freeSlice(s);
      } else {
        pushBack(s);
        length_ += n;
      }
    } else {
      add(s->data() + s->start, len);
      other.drain(len);
      len = 0;
    }
  }
}

void Buffer::drain(size_t len) {
  assert(len <= length_);
  len = std::min(len, length_);
  length_ -= len;
  while (len > 0) {
    Slice* s = front();
    size_t n = s->readable();
    if (n > len) {
      s->start += len;
      return;
    }
    len -= n;
    // Keep the last slice when it still has room for new data: the common read-parse-drain cycle
    // then reuses it without touching the free list.
    if (size_ == 1 && s->writable() > 0) {
      s->start = s->end = 0;
      return;
    }
    freeSlice(popFront());
  }
}

std::string_view Buffer::frontSlice() const {
  for (uint32_t i = 0; i < size_; ++i) {
    const Slice* s = at(i);
    if (s->readable() > 0) return std::string_view(s->data() + s->start, s->readable());
  }
  return {};
}

const char* Buffer::linearize(size_t len) {
  assert(len <= length_);
  len = std::min(len, length_);
  if (len == 0) return size_ > 0 ? front()->data() + front()->start : nullptr;
  Slice* first = front();
  if (first->readable() >= len) return first->data() + first->start;
  Slice* joined = allocSlice(std::max(len, kSliceSize));
  copyOut(0, len, joined->data());
  joined->end = len;
  drain(len);
  pushFront(joined);
  length_ += len;
  return joined->data();
}

void Buffer::copyOut(size_t offset, size_t len, void* out) const {
  assert(offset + len <= length_);
  char* dst = static_cast<char*>(out);
  for (uint32_t i = 0; i < size_ && len > 0; ++i) {
    const Slice* s = at(i);
    size_t n = s->readable();
    if (offset >= n) {
      offset -= n;
      continue;
    }
    size_t take = std::min(n - offset, len);
    std::memcpy(dst, s->data() + s->start + offset, take);
    dst += take;
    len -= take;
    offset = 0;
  }
}

std::string Buffer::toString() const {
  std::string out;
  out.reserve(length_);
  forEachSlice([&out](std::string_view piece) { out.append(piece); });
  return out;
}

std::pair<char*, size_t> Buffer::reserveSingleSlice(size_t min_len) {
  if (min_len == 0) min_len = 1;
  if (size_ == 0 || back()->writable() < min_len)
    pushBack(allocSlice(std::max(min_len, kSliceSize)));
  Slice* s = back();
  return {s->data() + s->end, s->writable()};
}

void Buffer::commit(size_t len) {
  assert(size_ > 0 && back()->writable() >= len);
  back()->end += len;
  length_ += len;
}

IoResult Buffer::readFromFd(int fd, size_t max_len) {
  if (max_len == 0) return IoResult{};
  iovec iov[kMaxReadSlices + 1];
  Slice* fresh[kMaxReadSlices];
  int n_iov = 0;
  int n_fresh = 0;
  size_t planned = 0;
  Slice* tail = size_ > 0 && back()->writable() > 0 ? back() : nullptr;
  if (tail != nullptr) {
    size_t room = std::min(tail->writable(), max_len);
    iov[n_iov++] = {tail->data() + tail->end, room};
    planned += room;
  }
  while (planned < max_len && n_fresh < kMaxReadSlices) {
    Slice* s = allocSlice();
    fresh[n_fresh++] = s;
    size_t room = std::min<size_t>(s->capacity, max_len - planned);
    iov[n_iov++] = {s->data(), room};
    planned += room;
  }

  ssize_t rc;
  do {
    rc = ::readv(fd, iov, n_iov);
  } while (rc < 0 && errno == EINTR);

  IoResult result;
  size_t got = 0;
  if (rc < 0) {
    result.error = errno == EWOULDBLOCK ? EAGAIN : errno;
  } else if (rc == 0) {
    result.eof = true;
  } else {
    got = static_cast<size_t>(rc);
    result.bytes = got;
    length_ += got;
  }
  if (tail != nullptr) {
    size_t n = std::min(got, iov[0].iov_len);
    tail->end += n;
    got -= n;
  }
  for (int i = 0; i < n_fresh; ++i) {
    if (got == 0) {
      freeSlice(fresh[i]);
      continue;
    }
    size_t n = std::min<size_t>(got, fresh[i]->capacity);
    fresh[i]->end = n;
    got -= n;
    pushBack(fresh[i]);
  }
  return result;
}

IoResult Buffer::writeToFd(int fd) {
  IoResult result;
  bool is_socket = true;
  while (length_ > 0) {
    iovec iov[kMaxWriteIov];
    int n_iov = 0;
    for (uint32_t i = 0; i < size_ && n_iov < kMaxWriteIov; ++i) {
      Slice* s = at(i);
      if (s->readable() == 0) continue;
      iov[n_iov++] = {s->data() + s->start, s->readable()};
    }
    ssize_t rc;
    if (is_socket) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n_iov;
      rc = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (rc < 0 && errno == ENOTSOCK) {
        is_socket = false;  // a pipe or file: plain writev
        continue;
      }
    } else {
      rc = ::writev(fd, iov, n_iov);
    }
    if (rc < 0) {
      if (errno == EINTR) continue;
      result.error = errno == EWOULDBLOCK ? EAGAIN : errno;
      break;
    }
    drain(static_cast<size_t>(rc));
    result.bytes += static_cast<uint64_t>(rc);
  }
  return result;
}

}  // namespace sheave::network
