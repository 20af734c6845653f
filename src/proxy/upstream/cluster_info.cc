#include "proxy/upstream/cluster_info.h"

#include <mutex>
#include <string>

namespace sheave::upstream {

namespace {
// The stats ClusterStats creates up front (the 5 response classes included),
// so that they are laid out in one piece (a unit test checks they fit).
constexpr uint32_t kCounters = 38;
constexpr uint32_t kGauges = 5;
constexpr uint32_t kHistograms = 3;

stats::Scope& reserved(stats::Scope& scope) {
  scope.reserve(kCounters, kGauges, kHistograms);
  return scope;
}
}  // namespace

ClusterStats::ClusterStats(stats::Scope& s)
    : scope(reserved(s)),
      upstream_cx_total(s.counter("upstream_cx_total")),
      upstream_cx_active(s.gauge("upstream_cx_active")),
      upstream_cx_http1_total(s.counter("upstream_cx_http1_total")),
      upstream_cx_http2_total(s.counter("upstream_cx_http2_total")),
      upstream_cx_connect_fail(s.counter("upstream_cx_connect_fail")),
      upstream_cx_connect_timeout(s.counter("upstream_cx_connect_timeout")),
      upstream_cx_overflow(s.counter("upstream_cx_overflow")),
      upstream_cx_none_healthy(s.counter("upstream_cx_none_healthy")),
      upstream_cx_destroy(s.counter("upstream_cx_destroy")),
      upstream_cx_destroy_local(s.counter("upstream_cx_destroy_local")),
      upstream_cx_destroy_remote(s.counter("upstream_cx_destroy_remote")),
      upstream_cx_idle_timeout(s.counter("upstream_cx_idle_timeout")),
      upstream_cx_max_requests(s.counter("upstream_cx_max_requests")),
      upstream_cx_max_duration_reached(s.counter("upstream_cx_max_duration_reached")),
      upstream_cx_rx_bytes_total(s.counter("upstream_cx_rx_bytes_total")),
      upstream_cx_tx_bytes_total(s.counter("upstream_cx_tx_bytes_total")),
      upstream_rq_total(s.counter("upstream_rq_total")),
      upstream_rq_active(s.gauge("upstream_rq_active")),
      upstream_rq_completed(s.counter("upstream_rq_completed")),
      upstream_rq_pending_total(s.counter("upstream_rq_pending_total")),
      upstream_rq_pending_active(s.gauge("upstream_rq_pending_active")),
      upstream_rq_pending_overflow(s.counter("upstream_rq_pending_overflow")),
      upstream_rq_pending_failure_eject(s.counter("upstream_rq_pending_failure_eject")),
      upstream_rq_cancelled(s.counter("upstream_rq_cancelled")),
      upstream_rq_timeout(s.counter("upstream_rq_timeout")),
      upstream_rq_per_try_timeout(s.counter("upstream_rq_per_try_timeout")),
      upstream_rq_rx_reset(s.counter("upstream_rq_rx_reset")),
      upstream_rq_tx_reset(s.counter("upstream_rq_tx_reset")),
      upstream_rq_retry(s.counter("upstream_rq_retry")),
      upstream_rq_retry_success(s.counter("upstream_rq_retry_success")),
      upstream_rq_retry_overflow(s.counter("upstream_rq_retry_overflow")),
      upstream_rq_retry_limit_exceeded(s.counter("upstream_rq_retry_limit_exceeded")),
      upstream_rq_maintenance_mode(s.counter("upstream_rq_maintenance_mode")),
      membership_total(s.gauge("membership_total")),
      membership_healthy(s.gauge("membership_healthy")),
      update_attempt(s.counter("update_attempt")),
      update_success(s.counter("update_success")),
      update_failure(s.counter("update_failure")),
      upstream_rq_time(s.histogram("upstream_rq_time", stats::Histogram::Unit::kMilliseconds)),
      upstream_cx_connect_ms(
          s.histogram("upstream_cx_connect_ms", stats::Histogram::Unit::kMilliseconds)),
      upstream_cx_length_ms(
          s.histogram("upstream_cx_length_ms", stats::Histogram::Unit::kMilliseconds)) {
  for (uint32_t c = 1; c <= 5; ++c)
    by_class_[c] = &s.counter("upstream_rq_" + std::to_string(c) + "xx");
}

struct ClusterStats::CodeCounters {
  static constexpr uint32_t kSlots = 16;
  // key = code + 1, so that 0 marks a free slot. A slot's counter is
  // published before its key, so a reader that sees the key sees the counter.
  std::array<std::atomic<uint32_t>, kSlots> keys{};
  std::array<std::atomic<stats::Counter*>, kSlots> counters{};

  stats::Counter* find(uint32_t key) const {
    for (uint32_t i = 0; i < kSlots; ++i) {
      const uint32_t slot = (key + i) % kSlots;
      const uint32_t k = keys[slot].load(std::memory_order_acquire);
      if (k == key) return counters[slot].load(std::memory_order_relaxed);
      if (k == 0) return nullptr;
    }
    return nullptr;
  }
};

ClusterStats::~ClusterStats() { delete by_code_.load(std::memory_order_acquire); }

stats::Counter& ClusterStats::upstreamRqCode(uint32_t code) {
  if (code >= 600) code = 0;
  const uint32_t key = code + 1;
  if (const CodeCounters* table = by_code_.load(std::memory_order_acquire)) {
    if (stats::Counter* c = table->find(key)) return *c;
  }
  // First response with this code on this cluster. Rare enough to share one
  // lock between all clusters.
  static std::mutex insert_mutex;
  std::lock_guard<std::mutex> lock(insert_mutex);
  CodeCounters* table = by_code_.load(std::memory_order_acquire);
  if (table == nullptr) {
    table = new CodeCounters();
    by_code_.store(table, std::memory_order_release);
  }
  if (stats::Counter* c = table->find(key)) return *c;
  stats::Counter& counter = scope.counter("upstream_rq_" + std::to_string(code));
  for (uint32_t i = 0; i < CodeCounters::kSlots; ++i) {
    const uint32_t slot = (key + i) % CodeCounters::kSlots;
    if (table->keys[slot].load(std::memory_order_relaxed) != 0) continue;
    table->counters[slot].store(&counter, std::memory_order_relaxed);
    table->keys[slot].store(key, std::memory_order_release);
    break;
  }
  // A full table (more than 16 distinct codes) leaves the code out of the
  // cache: each such response then takes the scope's lookup, still correct.
  return counter;
}

stats::Counter& ClusterStats::upstreamRqClass(uint32_t code) {
  uint32_t cls = code / 100;
  if (cls < 1 || cls > 5) cls = 5;
  return *by_class_[cls];
}

}  // namespace sheave::upstream
