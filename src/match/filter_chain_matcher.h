#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/address.h"
#include "common/result.h"
#include "envoy/config/listener/v3/listener.pb.h"

namespace sheave {

// What the listener knows about a connection once its listener filters ran: the inputs of
// FilterChainMatch. Views only; the caller keeps the strings alive for the call.
struct ConnectionView {
  Address destination;  // local address, or the original destination (original_dst)
  Address source;       // peer address, possibly rewritten (PROXY protocol)
  // The address of the directly connected peer; empty means "same as source".
  Address direct_source;
  std::string_view server_name;  // SNI, empty when none
  // "tls", "raw_buffer", ...; empty means "raw_buffer" as Envoy defaults it when no listener
  // filter detected a transport.
  std::string_view transport_protocol;
  std::span<const std::string> application_protocols;  // ALPN in client order, or http_inspector's
};

// Envoy's filter chain selection (Listener.filter_chains[].filter_chain_match +
// default_filter_chain), compiled once on the main thread and then read-only, so workers may
// share it.
//
// Selection follows Envoy's documented order: destination_port, destination IP (prefix_ranges),
// server_names, transport_protocol, application_protocols, direct_source_prefix_ranges,
// source_type, source_prefix_ranges, source_ports. At each step only the chains whose value
// matches most specifically survive (exact port over any port, longest CIDR, exact name over
// the longest `*.suffix` over no names, ...); a step that leaves nothing means no chain matched
// and the default chain, if any, is used. There is no backtracking to a less specific value.
class FilterChainMatcher {
 public:
  // Index returned for Listener.default_filter_chain.
  static constexpr size_t kDefaultChain = std::numeric_limits<size_t>::max();

  // Validates every filter_chain_match (errors carry the field path, e.g.
  // "filter_chains[2].filter_chain_match.server_names[0]: ...") and rejects two chains that
  // could match the same connection with the same specificity, as Envoy does.
  static Result<std::unique_ptr<const FilterChainMatcher>> create(
      const envoy::config::listener::v3::Listener& listener);

  ~FilterChainMatcher();
  FilterChainMatcher(const FilterChainMatcher&) = delete;
  FilterChainMatcher& operator=(const FilterChainMatcher&) = delete;

  // The index into Listener.filter_chains of the chosen chain, kDefaultChain when only the
  // default chain applies, nullopt when nothing applies (Envoy closes the connection).
  std::optional<size_t> match(const ConnectionView& connection) const;

  size_t chainCount() const { return chain_count_; }
  bool hasDefaultChain() const { return has_default_; }

  struct Tree;  // the per-step lookup tables, defined in the .cc

 private:
  FilterChainMatcher();

  std::unique_ptr<Tree> tree_;
  size_t chain_count_ = 0;
  bool has_default_ = false;
};

}  // namespace sheave
