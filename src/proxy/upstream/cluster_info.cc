#include "proxy/upstream/cluster_info.h"

#include <string>

namespace sheave::upstream {

ClusterStats::ClusterStats(stats::Scope& s)
    : scope(s),
      upstream_cx_total(s.counter("upstream_cx_total")),
      upstream_cx_active(s.gauge("upstream_cx_active")),
      upstream_cx_http1_total(s.counter("upstream_cx_http1_total")),
      upstream_cx_connect_fail(s.counter("upstream_cx_connect_fail")),
      upstream_cx_connect_timeout(s.counter("upstream_cx_connect_timeout")),
      upstream_cx_overflow(s.counter("upstream_cx_overflow")),
      upstream_cx_none_healthy(s.counter("upstream_cx_none_healthy")),
      upstream_cx_destroy(s.counter("upstream_cx_destroy")),
      upstream_cx_destroy_local(s.counter("upstream_cx_destroy_local")),
      upstream_cx_destroy_remote(s.counter("upstream_cx_destroy_remote")),
      upstream_cx_idle_timeout(s.counter("upstream_cx_idle_timeout")),
      upstream_cx_max_requests(s.counter("upstream_cx_max_requests")),
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

stats::Counter& ClusterStats::upstreamRqCode(uint32_t code) {
  if (code >= by_code_.size()) code = 0;
  stats::Counter* c = by_code_[code].load(std::memory_order_acquire);
  if (c != nullptr) return *c;
  // First response with this code on this cluster: create it once.
  std::lock_guard<std::mutex> lock(mutex_);
  c = by_code_[code].load(std::memory_order_relaxed);
  if (c == nullptr) {
    c = &scope.counter("upstream_rq_" + std::to_string(code));
    by_code_[code].store(c, std::memory_order_release);
  }
  return *c;
}

stats::Counter& ClusterStats::upstreamRqClass(uint32_t code) {
  uint32_t cls = code / 100;
  if (cls < 1 || cls > 5) cls = 5;
  return *by_class_[cls];
}

}  // namespace sheave::upstream
