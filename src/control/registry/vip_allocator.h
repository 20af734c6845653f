#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/result.h"

namespace sheave::control {

inline constexpr std::string_view kDefaultVipRange = "240.240.0.0/16";

// An IPv4 CIDR block, e.g. 240.240.0.0/16.
class Ipv4Range {
 public:
  // "a.b.c.d/len" with len in [0, 32] and no host bits set.
  static Result<Ipv4Range> parse(std::string_view cidr);

  uint32_t base() const { return base_; }  // host byte order
  int prefixLength() const { return prefix_length_; }
  uint64_t size() const { return uint64_t{1} << (32 - prefix_length_); }
  bool contains(uint32_t address) const;
  std::string toString() const;

 private:
  uint32_t base_ = 0;
  int prefix_length_ = 32;
};

// Dotted-quad <-> host-byte-order integer; parse fails on anything but IPv4.
std::optional<uint32_t> parseIpv4(std::string_view text);
std::string formatIpv4(uint32_t address);

// Hands out virtual IPs to services that have none. Deterministic: a
// hostname's first choice is FNV-1a(hostname) modulo the number of usable
// addresses, and on a collision the next free one (linear probing). Callers
// allocate in a fixed order (LocalRegistry: sorted by hostname), so the same
// set of services always gets the same VIPs, and adding or removing a service
// moves no other service's VIP unless they collided. Addresses whose last
// octet is 0 or 255 are never handed out (some clients treat them as network
// or broadcast addresses), so a /16 offers 256 * 254 VIPs.
class VipAllocator {
 public:
  explicit VipAllocator(Ipv4Range range);

  const Ipv4Range& range() const { return range_; }
  // How many VIPs the range can hand out.
  uint64_t capacity() const { return capacity_; }

  // Marks an address that a service already owns (an explicit clusterIP or
  // ServiceEntry address) as taken, so no allocation reuses it. Addresses
  // outside the range, IPv6 and CIDRs are ignored.
  void reserve(std::string_view address);

  // The next VIP for hostname, or nullopt when the range is exhausted.
  std::optional<std::string> allocate(std::string_view hostname);

  // 32-bit FNV-1a, exposed so tests can construct collisions.
  static uint32_t hash(std::string_view text);

 private:
  uint32_t slotAddress(uint64_t slot) const;
  bool isSlot(uint32_t address) const;

  Ipv4Range range_;
  uint64_t capacity_ = 0;
  std::vector<uint32_t> small_range_slots_;  // ranges narrower than /24, listed
  std::unordered_set<uint32_t> taken_;
  uint64_t taken_slots_ = 0;
};

}  // namespace sheave::control
