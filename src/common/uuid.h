#pragma once

#include <string>

#include "common/random.h"

namespace sheave {

// A random (version 4) UUID in its canonical text form, as Envoy generates
// for x-request-id.
inline std::string randomUuid(RandomGenerator& random) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t hi = random.next();
  uint64_t lo = random.next();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = kHex[(v >> (i * 4)) & 0xf];
    }
  };
  put(hi, 16);
  put(lo, 16);
  return out;
}

}  // namespace sheave
