#include "match/filter_chain_matcher.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <vector>

namespace sheave {

namespace {

using envoy::config::listener::v3::FilterChainMatch;

// Every FilterChainMatch is expanded into one leaf per combination of its list values, as
// Envoy's own tables are. A listener whose chains multiply out beyond this is refused rather
// than allowed to take the main thread's memory.
constexpr size_t kMaxLeaves = 1'000'000;

// An IP address or a CIDR network as 16 bytes (IPv4 uses the first 4), masked to the prefix.
using IpBytes = std::array<uint8_t, 16>;

struct IpBytesHash {
  size_t operator()(const IpBytes& b) const {
    uint64_t hi;
    uint64_t lo;
    std::memcpy(&hi, b.data(), 8);
    std::memcpy(&lo, b.data() + 8, 8);
    return std::hash<uint64_t>()(hi * 0x9E3779B97F4A7C15ull ^ lo);
  }
};

// Returns false for an empty or non-IP address.
bool ipBytesOf(const Address& address, IpBytes& out, bool& is_v6) {
  out.fill(0);
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address.sockAddr());
    std::memcpy(out.data(), &in->sin_addr, 4);
    is_v6 = false;
    return true;
  }
  if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.sockAddr());
    std::memcpy(out.data(), &in6->sin6_addr, 16);
    is_v6 = true;
    return true;
  }
  return false;
}

void maskTo(IpBytes& bytes, unsigned prefix_len) {
  for (unsigned i = 0; i < bytes.size(); ++i) {
    const unsigned bit = i * 8;
    if (bit >= prefix_len) {
      bytes[i] = 0;
    } else if (prefix_len - bit < 8) {
      bytes[i] &= static_cast<uint8_t>(0xFFu << (8 - (prefix_len - bit)));
    }
  }
}

struct Cidr {
  bool is_v6 = false;
  unsigned prefix_len = 0;
  IpBytes network{};
};

// Envoy reads a missing prefix_len as 0, which makes the range match every address of its
// family; kept for compatibility.
Result<Cidr> parseCidr(const envoy::config::core::v3::CidrRange& range, const std::string& where) {
  auto address = Address::parse(range.address_prefix(), 0);
  if (!address.ok()) {
    return invalidArgument("malformed IP address: " + address.error().message()).at(where);
  }
  Cidr cidr;
  ipBytesOf(*address, cidr.network, cidr.is_v6);
  cidr.prefix_len = range.prefix_len().value();
  const unsigned max_len = cidr.is_v6 ? 128 : 32;
  if (cidr.prefix_len > max_len) {
    return invalidArgument("prefix_len " + std::to_string(cidr.prefix_len) + " is longer than " +
                           std::to_string(max_len) + " bits for " + range.address_prefix())
        .at(where);
  }
  maskTo(cidr.network, cidr.prefix_len);
  return cidr;
}

// Longest-prefix match: one hash table per distinct prefix length, probed from the longest.
// Listeners have a handful of distinct lengths, so this is a few hash lookups per connection.
template <typename Child>
class CidrTable {
 public:
  Child& getOrAdd(const Cidr& cidr) {
    auto& buckets = cidr.is_v6 ? v6_ : v4_;
    auto it = std::find_if(buckets.begin(), buckets.end(),
                           [&](const Bucket& b) { return b.prefix_len == cidr.prefix_len; });
    if (it == buckets.end()) {
      it = std::find_if(buckets.begin(), buckets.end(),
                        [&](const Bucket& b) { return b.prefix_len < cidr.prefix_len; });
      it = buckets.insert(it, Bucket{cidr.prefix_len, {}});
    }
    return it->entries[cidr.network];
  }

  const Child* longestMatch(const Address& address) const {
    IpBytes bytes;
    bool is_v6 = false;
    if (!ipBytesOf(address, bytes, is_v6)) {
      // Not an IP address (unknown destination): only the catch-all ranges apply.
      for (const auto* buckets : {&v4_, &v6_}) {
        if (!buckets->empty() && buckets->back().prefix_len == 0) {
          return &buckets->back().entries.begin()->second;
        }
      }
      return nullptr;
    }
    for (const Bucket& bucket : is_v6 ? v6_ : v4_) {
      IpBytes masked = bytes;
      maskTo(masked, bucket.prefix_len);
      auto it = bucket.entries.find(masked);
      if (it != bucket.entries.end()) return &it->second;
    }
    return nullptr;
  }

 private:
  struct Bucket {
    unsigned prefix_len;
    std::unordered_map<IpBytes, Child, IpBytesHash> entries;
  };
  std::vector<Bucket> v4_;  // longest prefix first
  std::vector<Bucket> v6_;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

template <typename Child>
using StringTable = std::unordered_map<std::string, Child, StringHash, std::equal_to<>>;

template <typename Child>
const Child* find(const StringTable<Child>& table, std::string_view key) {
  auto it = table.find(key);
  return it == table.end() ? nullptr : &it->second;
}

template <typename Child>
const Child* find(const std::unordered_map<uint32_t, Child>& table, uint32_t key) {
  auto it = table.find(key);
  return it == table.end() ? nullptr : &it->second;
}

bool isLoopback(const Address& address) {
  IpBytes bytes;
  bool is_v6 = false;
  if (!ipBytesOf(address, bytes, is_v6)) return false;
  if (!is_v6) return bytes[0] == 127;
  static constexpr IpBytes kV6Loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (bytes == kV6Loopback) return true;
  // ::ffff:127.x.y.z, what a dual-stack socket reports for an IPv4 loopback peer.
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  return std::memcmp(bytes.data(), kMappedPrefix, 12) == 0 && bytes[12] == 127;
}

bool isSameIpOrLoopback(const Address& source, const Address& destination) {
  if (isLoopback(source)) return true;
  IpBytes a;
  IpBytes b;
  bool a6 = false;
  bool b6 = false;
  return ipBytesOf(source, a, a6) && ipBytesOf(destination, b, b6) && a6 == b6 && a == b;
}

// Lower-cases into `storage` only when needed; SNI is almost always lower case already.
std::string_view asciiLower(std::string_view s, std::string& storage) {
  if (std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return s;
  storage.assign(s);
  for (char& c : storage) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return storage;
}

std::string chainLabel(const envoy::config::listener::v3::Listener& listener, size_t index) {
  std::string label = "filter_chains[" + std::to_string(index) + "]";
  const std::string& name = listener.filter_chains(static_cast<int>(index)).name();
  if (!name.empty()) label += " ('" + name + "')";
  return label;
}

}  // namespace

// The steps of the match, outermost first. Port 0 and the empty string stand for "any".
using SourcePorts = std::unordered_map<uint32_t, size_t>;  // -> chain index
using SourceIps = CidrTable<SourcePorts>;
using SourceTypes = std::array<std::optional<SourceIps>, 3>;  // by ConnectionSourceType
using DirectSourceIps = CidrTable<SourceTypes>;
using ApplicationProtocols = StringTable<DirectSourceIps>;
using TransportProtocols = StringTable<ApplicationProtocols>;
using ServerNames = StringTable<TransportProtocols>;  // "a.b", ".b" for "*.b", "" for any
using DestinationIps = CidrTable<ServerNames>;

struct FilterChainMatcher::Tree {
  std::unordered_map<uint32_t, DestinationIps> destination_ports;
};

FilterChainMatcher::FilterChainMatcher() : tree_(std::make_unique<Tree>()) {}
FilterChainMatcher::~FilterChainMatcher() = default;

namespace {

// One chain's match, validated and with each list made explicit ("any" as its own value).
struct ExpandedMatch {
  uint32_t destination_port = 0;
  std::vector<Cidr> destination_ips;
  std::vector<std::string> server_names;
  std::string transport_protocol;
  std::vector<std::string> application_protocols;
  std::vector<Cidr> direct_source_ips;
  int source_type = 0;
  std::vector<Cidr> source_ips;
  std::vector<uint32_t> source_ports;
};

Result<std::vector<Cidr>> expandRanges(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::CidrRange>& ranges,
    const std::string& where) {
  std::vector<Cidr> out;
  if (ranges.empty()) {
    // No ranges means every address, at the lowest specificity of the step.
    out.push_back(Cidr{false, 0, {}});
    out.push_back(Cidr{true, 0, {}});
    return out;
  }
  for (int i = 0; i < ranges.size(); ++i) {
    SHEAVE_ASSIGN_OR_RETURN(Cidr cidr, parseCidr(ranges[i], where + "[" + std::to_string(i) + "]"));
    out.push_back(cidr);
  }
  return out;
}

Result<ExpandedMatch> expand(const FilterChainMatch& match, const std::string& where) {
  ExpandedMatch out;
  if (!match.address_suffix().empty() || match.has_suffix_len()) {
    return invalidArgument("address_suffix and suffix_len are not implemented (as in Envoy)")
        .at(where);
  }
  if (match.has_destination_port()) {
    out.destination_port = match.destination_port().value();
    if (out.destination_port > 65535) {
      return invalidArgument("must be at most 65535").at(where + ".destination_port");
    }
  }
  SHEAVE_ASSIGN_OR_RETURN(out.destination_ips,
                          expandRanges(match.prefix_ranges(), where + ".prefix_ranges"));

  for (int i = 0; i < match.server_names_size(); ++i) {
    const std::string field = where + ".server_names[" + std::to_string(i) + "]";
    std::string storage;
    std::string name(asciiLower(match.server_names(i), storage));
    if (name.empty()) return invalidArgument("must not be empty").at(field);
    if (name.find('*') != std::string::npos) {
      // Only a whole leading label may be a wildcard; "*" alone is spelled by omitting
      // server_names.
      if (name.size() < 3 || name.compare(0, 2, "*.") != 0 ||
          name.find('*', 1) != std::string::npos) {
        return invalidArgument("'" + match.server_names(i) +
                               "': partial wildcards are not supported, only a leading '*.'")
            .at(field);
      }
      name.erase(0, 1);  // "*.example.com" is stored as ".example.com"
    }
    out.server_names.push_back(std::move(name));
  }
  if (out.server_names.empty()) out.server_names.emplace_back();

  out.transport_protocol = match.transport_protocol();

  for (int i = 0; i < match.application_protocols_size(); ++i) {
    if (match.application_protocols(i).empty()) {
      return invalidArgument("must not be empty")
          .at(where + ".application_protocols[" + std::to_string(i) + "]");
    }
    out.application_protocols.push_back(match.application_protocols(i));
  }
  if (out.application_protocols.empty()) out.application_protocols.emplace_back();

  SHEAVE_ASSIGN_OR_RETURN(
      out.direct_source_ips,
      expandRanges(match.direct_source_prefix_ranges(), where + ".direct_source_prefix_ranges"));
  out.source_type = match.source_type();
  if (out.source_type < 0 || out.source_type > 2) {
    return invalidArgument("unknown source_type " + std::to_string(out.source_type))
        .at(where + ".source_type");
  }
  SHEAVE_ASSIGN_OR_RETURN(
      out.source_ips, expandRanges(match.source_prefix_ranges(), where + ".source_prefix_ranges"));

  for (int i = 0; i < match.source_ports_size(); ++i) {
    const uint32_t port = match.source_ports(i);
    if (port == 0 || port > 65535) {
      return invalidArgument("must be between 1 and 65535")
          .at(where + ".source_ports[" + std::to_string(i) + "]");
    }
    out.source_ports.push_back(port);
  }
  if (out.source_ports.empty()) out.source_ports.push_back(0);
  return out;
}

size_t leafCount(const ExpandedMatch& m) {
  // Saturating product; only compared against kMaxLeaves.
  size_t n = 1;
  for (size_t k : {m.destination_ips.size(), m.server_names.size(), m.application_protocols.size(),
                   m.direct_source_ips.size(), m.source_ips.size(), m.source_ports.size()}) {
    n = (n > kMaxLeaves / std::max<size_t>(k, 1)) ? kMaxLeaves + 1 : n * k;
  }
  return n;
}

}  // namespace

Result<std::unique_ptr<const FilterChainMatcher>> FilterChainMatcher::create(
    const envoy::config::listener::v3::Listener& listener) {
  std::unique_ptr<FilterChainMatcher> matcher(new FilterChainMatcher());
  matcher->chain_count_ = static_cast<size_t>(listener.filter_chains_size());
  matcher->has_default_ = listener.has_default_filter_chain();
  if (matcher->chain_count_ == 0 && !matcher->has_default_) {
    return invalidArgument(
        "no filter chains specified (need filter_chains or "
        "default_filter_chain)");
  }

  size_t leaves = 0;
  for (size_t index = 0; index < matcher->chain_count_; ++index) {
    const std::string where = "filter_chains[" + std::to_string(index) + "].filter_chain_match";
    SHEAVE_ASSIGN_OR_RETURN(
        ExpandedMatch m,
        expand(listener.filter_chains(static_cast<int>(index)).filter_chain_match(), where));
    leaves += leafCount(m);
    if (leaves > kMaxLeaves) {
      return invalidArgument("the filter chain matches multiply out to more than " +
                             std::to_string(kMaxLeaves) +
                             " combinations; use fewer list values per chain")
          .at(where);
    }

    for (const Cidr& dst : m.destination_ips) {
      ServerNames& by_name = matcher->tree_->destination_ports[m.destination_port].getOrAdd(dst);
      for (const std::string& name : m.server_names) {
        ApplicationProtocols& by_alpn = by_name[name][m.transport_protocol];
        for (const std::string& alpn : m.application_protocols) {
          DirectSourceIps& by_direct = by_alpn[alpn];
          for (const Cidr& direct : m.direct_source_ips) {
            std::optional<SourceIps>& by_source = by_direct.getOrAdd(direct)[m.source_type];
            if (!by_source) by_source.emplace();
            for (const Cidr& source : m.source_ips) {
              SourcePorts& ports = by_source->getOrAdd(source);
              for (uint32_t port : m.source_ports) {
                auto [it, inserted] = ports.emplace(port, index);
                if (!inserted) {
                  if (it->second == index) {
                    return invalidArgument("a list repeats a value (or ranges overlap exactly)")
                        .at(where);
                  }
                  return invalidArgument(
                             "multiple filter chains with the same matching rules are defined: " +
                             chainLabel(listener, index) + " and " +
                             chainLabel(listener, it->second) + " match the same connections")
                      .at(where);
                }
              }
            }
          }
        }
      }
    }
  }
  return std::unique_ptr<const FilterChainMatcher>(std::move(matcher));
}

std::optional<size_t> FilterChainMatcher::match(const ConnectionView& c) const {
  const std::optional<size_t> no_match =
      has_default_ ? std::optional<size_t>(kDefaultChain) : std::nullopt;

  const DestinationIps* by_dst_ip = nullptr;
  if (!c.destination.empty()) by_dst_ip = find(tree_->destination_ports, c.destination.port());
  if (by_dst_ip == nullptr) by_dst_ip = find(tree_->destination_ports, 0u);
  if (by_dst_ip == nullptr) return no_match;

  const ServerNames* by_name = by_dst_ip->longestMatch(c.destination);
  if (by_name == nullptr) return no_match;

  std::string lowered;
  const std::string_view sni = asciiLower(c.server_name, lowered);
  const TransportProtocols* by_transport = find(*by_name, sni);
  // "www.example.com" tries ".example.com", then ".com".
  for (size_t dot = sni.find('.', 1);
       by_transport == nullptr && dot != std::string_view::npos && dot + 1 < sni.size();
       dot = sni.find('.', dot + 1)) {
    by_transport = find(*by_name, sni.substr(dot));
  }
  if (by_transport == nullptr) by_transport = find(*by_name, std::string_view());
  if (by_transport == nullptr) return no_match;

  const std::string_view transport =
      c.transport_protocol.empty() ? std::string_view("raw_buffer") : c.transport_protocol;
  const ApplicationProtocols* by_alpn = find(*by_transport, transport);
  if (by_alpn == nullptr) by_alpn = find(*by_transport, std::string_view());
  if (by_alpn == nullptr) return no_match;

  // The first of the connection's protocols that any chain names wins (client preference order).
  const DirectSourceIps* by_direct = nullptr;
  for (const std::string& protocol : c.application_protocols) {
    if (protocol.empty()) continue;
    by_direct = find(*by_alpn, std::string_view(protocol));
    if (by_direct != nullptr) break;
  }
  if (by_direct == nullptr) by_direct = find(*by_alpn, std::string_view());
  if (by_direct == nullptr) return no_match;

  const SourceTypes* by_type =
      by_direct->longestMatch(c.direct_source.empty() ? c.source : c.direct_source);
  if (by_type == nullptr) return no_match;

  const std::optional<SourceIps>* by_source = nullptr;
  const auto& local = (*by_type)[FilterChainMatch::SAME_IP_OR_LOOPBACK];
  const auto& external = (*by_type)[FilterChainMatch::EXTERNAL];
  if (local || external) {
    const auto& specific = isSameIpOrLoopback(c.source, c.destination) ? local : external;
    if (specific) by_source = &specific;
  }
  if (by_source == nullptr && (*by_type)[FilterChainMatch::ANY]) {
    by_source = &(*by_type)[FilterChainMatch::ANY];
  }
  if (by_source == nullptr) return no_match;

  const SourcePorts* by_port = (*by_source)->longestMatch(c.source);
  if (by_port == nullptr) return no_match;

  auto it = c.source.empty() ? by_port->end() : by_port->find(c.source.port());
  if (it == by_port->end()) it = by_port->find(0);
  if (it == by_port->end()) return no_match;
  return it->second;
}

}  // namespace sheave
