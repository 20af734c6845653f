#include "proxy/network/buffer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace sheave::network {
namespace {

std::string pattern(size_t len, char seed = 0) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>('a' + (i + seed) % 26);
  return s;
}

TEST(BufferTest, AddDrainLength) {
  Buffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b.frontSlice().empty());
  b.add("hello ");
  b.add(std::string_view("world"));
  EXPECT_EQ(b.length(), 11u);
  EXPECT_EQ(b.toString(), "hello world");
  EXPECT_EQ(b.frontSlice(), "hello world");
  b.drain(6);
  EXPECT_EQ(b.toString(), "world");
  b.drain(5);
  EXPECT_TRUE(b.empty());
  b.add("again");
  EXPECT_EQ(b.toString(), "again");
}

TEST(BufferTest, LargeDataSpansSlices) {
  Buffer b;
  std::string data = pattern(5 * Buffer::kSliceSize + 123);
  b.add(data);
  EXPECT_EQ(b.length(), data.size());
  EXPECT_EQ(b.sliceCount(), 6u);
  EXPECT_EQ(b.frontSlice().size(), Buffer::kSliceSize);
  EXPECT_EQ(b.toString(), data);
  size_t pieces = 0;
  std::string joined;
  b.forEachSlice([&](std::string_view s) {
    ++pieces;
    joined.append(s);
  });
  EXPECT_EQ(pieces, 6u);
  EXPECT_EQ(joined, data);
  // Drain across slice boundaries.
  b.drain(Buffer::kSliceSize + 10);
  EXPECT_EQ(b.toString(), data.substr(Buffer::kSliceSize + 10));
  b.drain(b.length());
  EXPECT_TRUE(b.empty());
  EXPECT_LE(b.sliceCount(), 1u);  // an empty tail slice may be kept for the next read
}

TEST(BufferTest, MoveAllMovesSlicesWithoutCopy) {
  Buffer a;
  Buffer b;
  std::string data = pattern(3 * Buffer::kSliceSize);
  a.add(data);
  const char* first = a.frontSlice().data();
  b.move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.length(), data.size());
  EXPECT_EQ(b.frontSlice().data(), first);  // same memory: the slice moved
  EXPECT_EQ(b.toString(), data);
}

TEST(BufferTest, MovePartialMovesWholeSlicesAndCopiesTheRest) {
  Buffer a;
  Buffer b;
  std::string data = pattern(2 * Buffer::kSliceSize + 100);
  a.add(data);
  const char* first = a.frontSlice().data();
  b.move(a, Buffer::kSliceSize + 50);
  EXPECT_EQ(b.frontSlice().data(), first);
  EXPECT_EQ(b.length(), Buffer::kSliceSize + 50);
  EXPECT_EQ(a.length(), data.size() - (Buffer::kSliceSize + 50));
  EXPECT_EQ(b.toString(), data.substr(0, Buffer::kSliceSize + 50));
  EXPECT_EQ(a.toString(), data.substr(Buffer::kSliceSize + 50));
  // len larger than the source takes everything.
  b.move(a, 1 << 30);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.toString(), data);
}

TEST(BufferTest, SmallMovesCoalesce) {
  Buffer out;
  for (int i = 0; i < 100; ++i) {
    Buffer small;
    small.add("0123456789");
    out.move(small);
  }
  EXPECT_EQ(out.length(), 1000u);
  EXPECT_EQ(out.sliceCount(), 1u);
}

TEST(BufferTest, CopyAdd) {
  Buffer a;
  a.add(pattern(40000));
  Buffer b;
  b.add("x");
  b.add(a);
  EXPECT_EQ(a.length(), 40000u);
  EXPECT_EQ(b.toString(), "x" + pattern(40000));
}

TEST(BufferTest, LinearizeAcrossSlices) {
  Buffer b;
  std::string data = pattern(Buffer::kSliceSize * 2 + 500);
  b.add(data);
  const char* p = b.linearize(Buffer::kSliceSize + 100);
  EXPECT_EQ(std::string(p, Buffer::kSliceSize + 100), data.substr(0, Buffer::kSliceSize + 100));
  EXPECT_EQ(b.length(), data.size());
  EXPECT_EQ(b.toString(), data);
  EXPECT_GE(b.frontSlice().size(), Buffer::kSliceSize + 100);

  // Larger than one slice.
  Buffer big;
  std::string bigdata = pattern(Buffer::kSliceSize * 3 + 7, 3);
  big.add(bigdata);
  p = big.linearize(bigdata.size());
  EXPECT_EQ(std::string(p, bigdata.size()), bigdata);
  EXPECT_EQ(big.frontSlice().size(), bigdata.size());

  // Already contiguous: no change.
  Buffer c;
  c.add("abc");
  const char* before = c.frontSlice().data();
  EXPECT_EQ(c.linearize(3), before);
}

TEST(BufferTest, LinearizeAfterSmallMoves) {
  // Slices that each hold a little (an uncoalesced chain) become contiguous.
  Buffer b;
  std::string expected;
  for (int i = 0; i < 5; ++i) {
    Buffer part;
    std::string s = pattern(2000, static_cast<char>(i));
    part.add(s);
    expected += s;
    b.move(part);
  }
  EXPECT_EQ(std::string(b.linearize(9000), 9000), expected.substr(0, 9000));
  EXPECT_EQ(b.toString(), expected);
}

TEST(BufferTest, CopyOutAndReserveCommit) {
  Buffer b;
  b.add(pattern(Buffer::kSliceSize + 10));
  char out[20];
  b.copyOut(Buffer::kSliceSize - 5, 15, out);
  EXPECT_EQ(std::string(out, 15), pattern(Buffer::kSliceSize + 10).substr(Buffer::kSliceSize - 5));

  Buffer r;
  auto [p, n] = r.reserveSingleSlice(100);
  ASSERT_GE(n, 100u);
  std::memcpy(p, "reserved", 8);
  r.commit(8);
  EXPECT_EQ(r.toString(), "reserved");
}

TEST(BufferTest, MoveConstructionAndAssignment) {
  Buffer a;
  a.add(pattern(Buffer::kSliceSize * 6));  // more slices than the inline ring
  Buffer b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.toString(), pattern(Buffer::kSliceSize * 6));
  Buffer c;
  c.add("old");
  c = std::move(b);
  EXPECT_EQ(c.toString(), pattern(Buffer::kSliceSize * 6));
  Buffer small;
  small.add("tiny");
  Buffer d(std::move(small));
  EXPECT_EQ(d.toString(), "tiny");
  small.add("reuse");
  EXPECT_EQ(small.toString(), "reuse");
}

TEST(BufferTest, RingWrapsAround) {
  Buffer b;
  std::string expected;
  for (int round = 0; round < 50; ++round) {
    std::string s = pattern(Buffer::kSliceSize, static_cast<char>(round));
    b.add(s);
    expected += s;
    if (round % 3 == 2) {
      b.drain(2 * Buffer::kSliceSize);
      expected.erase(0, 2 * Buffer::kSliceSize);
    }
  }
  EXPECT_EQ(b.toString(), expected);
}

TEST(BufferTest, ReadAndWriteFds) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  std::string data = pattern(100000);
  Buffer out;
  out.add(data);
  Buffer in;
  size_t written = 0;
  // The socket buffer may not take everything at once: alternate writing and reading.
  while (in.length() < data.size()) {
    IoResult w = out.writeToFd(sv[0]);
    EXPECT_FALSE(w.failed());
    written += w.bytes;
    IoResult r = in.readFromFd(sv[1], 64 * 1024);
    EXPECT_FALSE(r.failed());
    EXPECT_FALSE(r.eof);
  }
  EXPECT_EQ(written, data.size());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(in.toString(), data);

  IoResult again = in.readFromFd(sv[1], 1024);
  EXPECT_TRUE(again.wouldBlock());
  ::close(sv[0]);
  IoResult eof = in.readFromFd(sv[1], 1024);
  EXPECT_TRUE(eof.eof);

  // Writing to a closed peer is EPIPE, not SIGPIPE.
  Buffer more;
  more.add("x");
  IoResult broken = more.writeToFd(sv[1]);
  EXPECT_TRUE(broken.failed());
  EXPECT_EQ(broken.error, EPIPE);
  ::close(sv[1]);
}

TEST(BufferTest, WritesToPipes) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK), 0);
  Buffer b;
  b.add("through a pipe");
  IoResult w = b.writeToFd(fds[1]);
  EXPECT_EQ(w.bytes, 14u);
  Buffer in;
  in.readFromFd(fds[0], 100);
  EXPECT_EQ(in.toString(), "through a pipe");
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace sheave::network
