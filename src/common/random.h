#pragma once

#include <cstdint>
#include <random>

namespace sheave {

// A fast, non-cryptographic generator (xoshiro256**), one per thread or per
// worker, for load balancing, weighted picks and jitter. Tests inject a seed.
class RandomGenerator {
 public:
  explicit RandomGenerator(uint64_t seed = std::random_device{}()) { reseed(seed); }

  void reseed(uint64_t seed) {
    // splitmix64 expands the seed into the 256-bit state.
    for (auto& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, bound); bound > 0.
  uint64_t uniform(uint64_t bound) { return next() % bound; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace sheave
