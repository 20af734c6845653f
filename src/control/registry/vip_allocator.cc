#include "control/registry/vip_allocator.h"

#include <arpa/inet.h>

#include <charconv>

namespace sheave::control {

std::optional<uint32_t> parseIpv4(std::string_view text) {
  if (text.empty() || text.size() >= INET_ADDRSTRLEN) return std::nullopt;
  const std::string copy(text);
  in_addr addr{};
  if (inet_pton(AF_INET, copy.c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

std::string formatIpv4(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
         std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

Result<Ipv4Range> Ipv4Range::parse(std::string_view cidr) {
  const size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) {
    return invalidArgument("VIP range \"" + std::string(cidr) +
                           "\" is not an IPv4 CIDR block such as 240.240.0.0/16");
  }
  const std::optional<uint32_t> base = parseIpv4(cidr.substr(0, slash));
  const std::string_view len_text = cidr.substr(slash + 1);
  int len = -1;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (!base || ec != std::errc() || end != len_text.data() + len_text.size() || len < 0 ||
      len > 32) {
    return invalidArgument("VIP range \"" + std::string(cidr) +
                           "\" is not an IPv4 CIDR block such as 240.240.0.0/16");
  }
  const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  if ((*base & ~mask) != 0) {
    return invalidArgument("VIP range \"" + std::string(cidr) +
                           "\" has host bits set; did you mean " + formatIpv4(*base & mask) + "/" +
                           std::to_string(len) + "?");
  }
  Ipv4Range range;
  range.base_ = *base;
  range.prefix_length_ = len;
  return range;
}

bool Ipv4Range::contains(uint32_t address) const {
  const uint32_t mask = prefix_length_ == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length_);
  return (address & mask) == base_;
}

std::string Ipv4Range::toString() const {
  return formatIpv4(base_) + "/" + std::to_string(prefix_length_);
}

VipAllocator::VipAllocator(Ipv4Range range) : range_(range) {
  if (range_.prefixLength() <= 24) {
    capacity_ = (range_.size() / 256) * 254;
  } else {
    for (uint64_t i = 0; i < range_.size(); ++i) {
      const uint32_t address = range_.base() + static_cast<uint32_t>(i);
      if (isSlot(address)) small_range_slots_.push_back(address);
    }
    capacity_ = small_range_slots_.size();
  }
}

bool VipAllocator::isSlot(uint32_t address) const {
  const uint32_t last = address & 0xff;
  return range_.contains(address) && last != 0 && last != 255;
}

uint32_t VipAllocator::slotAddress(uint64_t slot) const {
  if (range_.prefixLength() > 24) return small_range_slots_[slot];
  return range_.base() + static_cast<uint32_t>((slot / 254) * 256 + 1 + slot % 254);
}

void VipAllocator::reserve(std::string_view address) {
  const std::optional<uint32_t> ip = parseIpv4(address);
  if (!ip || !isSlot(*ip)) return;
  if (taken_.insert(*ip).second) ++taken_slots_;
}

std::optional<std::string> VipAllocator::allocate(std::string_view hostname) {
  if (taken_slots_ >= capacity_) return std::nullopt;
  uint64_t slot = hash(hostname) % capacity_;
  // Terminates: at least one slot is free.
  while (taken_.count(slotAddress(slot)) != 0) slot = (slot + 1) % capacity_;
  const uint32_t address = slotAddress(slot);
  taken_.insert(address);
  ++taken_slots_;
  return formatIpv4(address);
}

uint32_t VipAllocator::hash(std::string_view text) {
  uint32_t h = 2166136261u;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

}  // namespace sheave::control
