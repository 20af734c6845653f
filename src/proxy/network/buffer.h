#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sheave::network {

// The outcome of one I/O step. `error` is 0, EAGAIN (would block; try again when ready) or the
// errno that broke the socket. `eof` means the peer finished sending.
struct IoResult {
  uint64_t bytes = 0;
  int error = 0;
  bool eof = false;

  bool wouldBlock() const;
  bool failed() const { return error != 0 && !wouldBlock(); }
};

// A byte queue made of a chain of slices. Standard slices hold 16 KiB and are recycled through a
// per-thread free list, so steady-state I/O allocates nothing. Moving data between buffers moves
// slices (pointers), never bytes; only a partial slice at the end of move(other, len) is copied.
// Not thread-safe; a Buffer may be handed to another thread as a whole (e.g. inside post()).
class Buffer {
 public:
  static constexpr size_t kSliceSize = 16 * 1024;

  Buffer() = default;
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void add(const void* data, size_t len);
  void add(std::string_view s) { add(s.data(), s.size()); }
  void add(const Buffer& other);         // copies
  void move(Buffer& other);              // takes all of other's data
  void move(Buffer& other, size_t len);  // takes the first len bytes
  void drain(size_t len);
  size_t length() const { return length_; }
  bool empty() const { return length_ == 0; }

  // The first contiguous piece (for parsers); empty if none.
  std::string_view frontSlice() const;
  // Makes the first len bytes contiguous and returns them (len <= length()).
  const char* linearize(size_t len);
  // Copies len bytes starting at offset into out (offset + len <= length()).
  void copyOut(size_t offset, size_t len, void* out) const;
  std::string toString() const;

  // Zero-copy writes into the buffer (for TLS and codecs): reserve returns writable space at the
  // tail, at least min_len bytes when min_len <= kSliceSize; commit appends len of them.
  std::pair<char*, size_t> reserveSingleSlice(size_t min_len = 1);
  void commit(size_t len);

  // readv into free slices, at most max_len bytes, one syscall.
  IoResult readFromFd(int fd, size_t max_len);
  // Writes as much as the fd takes (until empty or EAGAIN) and drains what was written. Sockets
  // are written with MSG_NOSIGNAL, so a closed peer is EPIPE, never SIGPIPE.
  IoResult writeToFd(int fd);

  template <class F>
  void forEachSlice(F&& f) const {
    for (uint32_t i = 0; i < size_; ++i) {
      const Slice* s = at(i);
      if (s->end > s->start) f(std::string_view(s->data() + s->start, s->end - s->start));
    }
  }
  size_t sliceCount() const { return size_; }

 private:
  struct Slice {
    uint32_t capacity;
    uint32_t start;  // first readable byte
    uint32_t end;    // one past the last readable byte
    char* data() { return reinterpret_cast<char*>(this + 1); }
    const char* data() const { return reinterpret_cast<const char*>(this + 1); }
    size_t readable() const { return end - start; }
    size_t writable() const { return capacity - end; }
  };
  static Slice* allocSlice(size_t capacity = kSliceSize);
  static void freeSlice(Slice* s);

  // A ring of slice pointers with room for a few inline, so small buffers need no extra heap node.
  static constexpr uint32_t kInlineSlices = 4;
  Slice* at(uint32_t i) const { return ring_[(head_ + i) & (capacity_ - 1)]; }
  Slice* front() const { return at(0); }
  Slice* back() const { return at(size_ - 1); }
  void pushBack(Slice* s);
  void pushFront(Slice* s);
  Slice* popFront();
  void grow();
  void clear();

  Slice* inline_[kInlineSlices] = {};
  Slice** ring_ = inline_;
  uint32_t capacity_ = kInlineSlices;  // a power of two
  uint32_t head_ = 0;
  uint32_t size_ = 0;
  size_t length_ = 0;
};

}  // namespace sheave::network
