#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sheave::control::xds {

// Plain snapshots for the debug and metrics endpoints; the server fills them
// under its locks and hands out copies.

// One resource type on one connection.
struct TypeStatus {
  std::string type_url;
  bool wildcard = false;
  size_t subscribed_names = 0;
  std::string sent_version;  // version_info (SotW) or system_version_info (delta) last sent
  std::string sent_nonce;
  std::string acked_version;  // empty until the first ACK
  bool nacked = false;        // the last response answered was rejected
  std::string last_nack;      // error_detail.message of the most recent NACK, kept after ACKs
  uint64_t nacks = 0;
  size_t resource_count = 0;  // resources the proxy holds from us, as far as we know
};

struct ConnectionStatus {
  std::string connection_id;  // unique per stream, as Istio's "<node id>-<counter>"
  std::string proxy_id;       // Node.id, empty until the first request is handled
  std::string peer;           // "ip:port"
  bool delta = false;         // DeltaAggregatedResources rather than SotW
  std::chrono::system_clock::time_point connected_at;
  std::vector<TypeStatus> types;  // in push order
};

// Fixed-bucket histogram, as Prometheus exposes one: counts[i] holds the
// observations <= bounds[i] and > bounds[i-1]; the last count is +Inf.
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count = 0;

  static Histogram seconds();  // bounds suited to push and convergence times
  void record(double value);
};

struct XdsStats {
  uint64_t connected_proxies = 0;          // streams past their first request
  uint64_t total_connections = 0;          // streams ever accepted
  uint64_t rejected_streams = 0;           // over the per-peer limit or without a valid node
  uint64_t push_rounds = 0;                // debounced pushes started (beginPush calls)
  std::map<std::string, uint64_t> pushes;  // responses sent, by short type name ("cds", ...)
  std::map<std::string, uint64_t> nacks;   // by short type name
  uint64_t stale_requests = 0;             // ignored for a nonce that is not the latest
  uint64_t unknown_type_requests = 0;
  uint64_t provider_errors = 0;                  // streams closed because generation failed
  Histogram push_time = Histogram::seconds();    // generate + send, per proxy per push
  Histogram convergence = Histogram::seconds();  // PushRequest.start -> ACK
};

}  // namespace sheave::control::xds
