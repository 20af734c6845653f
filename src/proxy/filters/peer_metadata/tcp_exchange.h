#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/accesslog/stream_info.h"
#include "proxy/network/buffer.h"

namespace sheave::peer_metadata {

// Istio's TCP metadata exchange (istio.metadata_exchange on TCP listeners and
// clusters): when TLS negotiated the ALPN protocol "istio-peer-exchange", each
// side first writes
//   magic 0x3D230467 (4 bytes, big-endian), length (4 bytes, big-endian),
//   google.protobuf.Any of a google.protobuf.Struct with
//     "x-envoy-peer-metadata" (the node's workload Struct) and
//     "x-envoy-peer-metadata-id" (the node id)
// and reads the same from its peer before the application's bytes.
inline constexpr std::string_view kPeerExchangeProtocol = "istio-peer-exchange";
inline constexpr uint32_t kExchangeMagic = 0x3D230467;
// A peer announcing more than this is not sending metadata: its bytes pass on.
inline constexpr uint32_t kMaxExchangeBytes = 64 * 1024;

// This node's exchange bytes (header and payload), from the bootstrap's node;
// computed once.
const std::string& localExchangeBytes();
// The exchange bytes for a workload and node id (tests, and localExchangeBytes).
std::string encodeExchange(const PeerWorkloadMetadata& workload, std::string_view node_id);

// Reads a peer's exchange off the front of a connection's bytes.
class ExchangeReader {
 public:
  enum class State { kReading, kDone, kInvalid };

  // Takes what arrived (`data` is drained into the reader). kDone: the peer is
  // known (peer()) and `out` holds the bytes after the exchange; kInvalid: not
  // an exchange (wrong magic, oversized, unparsable): `out` holds every byte
  // received, to pass on as the application's; kReading: more is needed.
  State feed(network::Buffer& data, network::Buffer& out);
  // The peer stopped sending before the exchange was whole: what arrived passes on (kInvalid).
  void giveUp(network::Buffer& out) {
    state_ = State::kInvalid;
    out.move(pending_);
  }
  State state() const { return state_; }
  const std::shared_ptr<const PeerWorkloadMetadata>& peer() const { return peer_; }
  // Bytes of the exchange itself (header and payload), once done.
  uint64_t exchangeBytes() const { return exchange_bytes_; }

 private:
  network::Buffer pending_;
  State state_ = State::kReading;
  std::shared_ptr<const PeerWorkloadMetadata> peer_;
  uint64_t exchange_bytes_ = 0;
};

}  // namespace sheave::peer_metadata
