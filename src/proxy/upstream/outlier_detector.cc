#include "proxy/upstream/outlier_detector.h"

#include <algorithm>
#include <cmath>

#include "common/logging.h"
#include "envoy/config/cluster/v3/outlier_detection.pb.h"

namespace sheave::upstream {

namespace {

uint32_t orDefault(bool has, uint32_t value, uint32_t fallback) { return has ? value : fallback; }

std::chrono::milliseconds millis(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

bool isGatewayFailure(uint32_t code) { return code == 502 || code == 503 || code == 504; }

// A local-origin event as the HTTP status Envoy maps it to when external and
// local errors are not split.
uint32_t asHttpStatus(LocalOriginEvent event) {
  switch (event) {
    case LocalOriginEvent::kSuccess:
      return 200;
    case LocalOriginEvent::kTimeout:
      return 504;
    case LocalOriginEvent::kConnectFailed:
    case LocalOriginEvent::kReset:
      return 503;
  }
  return 503;
}

// Counts one step of a consecutive-error counter; trips at the threshold.
void countConsecutive(std::atomic<uint32_t>& counter, uint32_t threshold, OutlierTrip bit,
                      HostOutlierState& s) {
  if (threshold == 0) return;
  if (counter.fetch_add(1, std::memory_order_relaxed) + 1 == threshold) {
    s.tripped.fetch_or(bit, std::memory_order_relaxed);
  }
}

}  // namespace

OutlierDetectionConfig OutlierDetectionConfig::fromProto(
    const envoy::config::cluster::v3::OutlierDetection& p) {
  OutlierDetectionConfig c;
  if (p.has_interval()) c.interval = std::max(millis(p.interval()), std::chrono::milliseconds(1));
  if (p.has_base_ejection_time()) c.base_ejection_time = millis(p.base_ejection_time());
  if (p.has_max_ejection_time()) c.max_ejection_time = millis(p.max_ejection_time());
  // The cap is never below the base time (Envoy's rule).
  c.max_ejection_time = std::max(c.max_ejection_time, c.base_ejection_time);
#define SHEAVE_FIELD(name) c.name = orDefault(p.has_##name(), p.name().value(), c.name)
  SHEAVE_FIELD(max_ejection_percent);
  SHEAVE_FIELD(consecutive_5xx);
  SHEAVE_FIELD(enforcing_consecutive_5xx);
  SHEAVE_FIELD(consecutive_gateway_failure);
  SHEAVE_FIELD(enforcing_consecutive_gateway_failure);
  SHEAVE_FIELD(consecutive_local_origin_failure);
  SHEAVE_FIELD(enforcing_consecutive_local_origin_failure);
  SHEAVE_FIELD(success_rate_minimum_hosts);
  SHEAVE_FIELD(success_rate_request_volume);
  SHEAVE_FIELD(success_rate_stdev_factor);
  SHEAVE_FIELD(enforcing_success_rate);
  SHEAVE_FIELD(enforcing_local_origin_success_rate);
  SHEAVE_FIELD(failure_percentage_threshold);
  SHEAVE_FIELD(failure_percentage_minimum_hosts);
  SHEAVE_FIELD(failure_percentage_request_volume);
  SHEAVE_FIELD(enforcing_failure_percentage);
  SHEAVE_FIELD(enforcing_failure_percentage_local_origin);
#undef SHEAVE_FIELD
  c.split_external_local_origin_errors = p.split_external_local_origin_errors();
  c.max_ejection_percent = std::min<uint32_t>(c.max_ejection_percent, 100);
  return c;
}

void reportHttpStatus(const OutlierDetectionConfig& config, const Host& host, uint32_t code) {
  HostOutlierState& s = host.outlierState();
  const bool failed = code >= 500;
  s.window_requests.fetch_add(1, std::memory_order_relaxed);
  if (failed) s.window_failures.fetch_add(1, std::memory_order_relaxed);
  if (!failed) {
    s.consecutive_5xx.store(0, std::memory_order_relaxed);
    s.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
    return;
  }
  countConsecutive(s.consecutive_5xx, config.consecutive_5xx, kTripConsecutive5xx, s);
  if (isGatewayFailure(code)) {
    countConsecutive(s.consecutive_gateway_failure, config.consecutive_gateway_failure,
                     kTripConsecutiveGatewayFailure, s);
  } else {
    s.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
  }
}

void reportLocalOrigin(const OutlierDetectionConfig& config, const Host& host,
                       LocalOriginEvent event) {
  if (!config.split_external_local_origin_errors) {
    // One stream of results: a connection that worked is no result yet (the
    // response will be), a failure counts as the 5xx Envoy maps it to.
    if (event != LocalOriginEvent::kSuccess) reportHttpStatus(config, host, asHttpStatus(event));
    return;
  }
  HostOutlierState& s = host.outlierState();
  s.window_local_requests.fetch_add(1, std::memory_order_relaxed);
  if (event == LocalOriginEvent::kSuccess) {
    s.consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
    return;
  }
  s.window_local_failures.fetch_add(1, std::memory_order_relaxed);
  countConsecutive(s.consecutive_local_origin_failure, config.consecutive_local_origin_failure,
                   kTripConsecutiveLocalOriginFailure, s);
}

OutlierDetector::OutlierDetector(std::shared_ptr<const OutlierDetectionConfig> config,
                                 stats::Scope& scope,
                                 std::function<std::shared_ptr<const HostVector>()> hosts,
                                 std::function<void()> on_change, uint64_t seed)
    : config_(std::move(config)),
      hosts_(std::move(hosts)),
      on_change_(std::move(on_change)),
      random_(seed),
      ejections_enforced_total_(scope.counter("outlier_detection.ejections_enforced_total")),
      ejections_overflow_(scope.counter("outlier_detection.ejections_overflow")),
      ejections_active_(scope.gauge("outlier_detection.ejections_active")) {
  static constexpr const char* kNames[] = {"consecutive_5xx",
                                           "consecutive_gateway_failure",
                                           "consecutive_local_origin_failure",
                                           "success_rate",
                                           "failure_percentage",
                                           "local_origin_success_rate",
                                           "local_origin_failure_percentage"};
  for (size_t i = 0; i < 7; ++i) {
    kinds_[i].detected =
        &scope.counter(std::string("outlier_detection.ejections_detected_") + kNames[i]);
    kinds_[i].enforced =
        &scope.counter(std::string("outlier_detection.ejections_enforced_") + kNames[i]);
  }
}

OutlierDetector::~OutlierDetector() {
  // Hosts may outlive their cluster (a newer one keeps them): they are not ejected by it any more.
  for (const auto& h : *hosts_()) h->setEjected(false);
  ejections_active_.set(0);
}

void OutlierDetector::start(network::EventLoop& loop) {
  timer_ = loop.createTimer([this] {
    evaluate(Clock::now());
    timer_->enable(config_->interval);
  });
  timer_->enable(config_->interval);
}

uint32_t OutlierDetector::ejectionCount(const Host& host) const {
  auto it = records_.find(&host);
  return it == records_.end() ? 0 : it->second.ejections;
}

bool OutlierDetector::enforced(uint32_t percent) {
  if (percent >= 100) return true;
  if (percent == 0) return false;
  return std::uniform_int_distribution<uint32_t>(0, 99)(random_) < percent;
}

bool OutlierDetector::eject(const HostSharedPtr& host, Kind kind, uint32_t enforcing,
                            Clock::time_point now, size_t host_count) {
  KindStats& ks = kinds_[static_cast<size_t>(kind)];
  ks.detected->inc();
  if (!enforced(enforcing)) return false;
  // At most max_ejection_percent of the hosts, but one host may always go.
  const size_t allowed = std::max<size_t>(1, host_count * config_->max_ejection_percent / 100);
  if (ejected_count_ + 1 > allowed) {
    ejections_overflow_.inc();
    return false;
  }
  HostRecord& r = records_[host.get()];
  r.ejections++;
  auto duration = std::min(config_->base_ejection_time * r.ejections, config_->max_ejection_time);
  r.ejected = true;
  r.ejected_until = now + duration;
  host->setEjected(true);
  ejected_count_++;
  ejections_enforced_total_.inc();
  ks.enforced->inc();
  changed_ = true;
  SHEAVE_LOG_DEBUG("outlier detection: ejected {} for {} ms", host->address().asString(),
                   duration.count());
  return true;
}

void OutlierDetector::statisticalEjections(const HostVector& hosts, bool local,
                                           Clock::time_point now) {
  auto& window = local ? local_window_ : window_;
  // Success rate: hosts with enough requests, against the mean minus a
  // multiple of the standard deviation.
  std::vector<std::pair<HostSharedPtr, double>> rates;
  for (const auto& h : hosts) {
    auto it = window.find(h.get());
    if (it == window.end() || h->ejected()) continue;
    auto [requests, failures] = it->second;
    if (requests >= config_->success_rate_request_volume && requests > 0) {
      rates.emplace_back(h, 100.0 * static_cast<double>(requests - failures) / requests);
    }
  }
  if (!rates.empty() && rates.size() >= config_->success_rate_minimum_hosts) {
    double mean = 0;
    for (const auto& [h, rate] : rates) mean += rate;
    mean /= static_cast<double>(rates.size());
    double variance = 0;
    for (const auto& [h, rate] : rates) variance += (rate - mean) * (rate - mean);
    const double stdev = std::sqrt(variance / static_cast<double>(rates.size()));
    const double limit = mean - stdev * (config_->success_rate_stdev_factor / 1000.0);
    for (const auto& [h, rate] : rates) {
      if (rate < limit) {
        eject(
            h, local ? Kind::kLocalOriginSuccessRate : Kind::kSuccessRate,
            local ? config_->enforcing_local_origin_success_rate : config_->enforcing_success_rate,
            now, hosts.size());
      }
    }
  }
  // Failure percentage: an absolute threshold.
  std::vector<std::pair<HostSharedPtr, double>> failing;
  size_t counted = 0;
  for (const auto& h : hosts) {
    auto it = window.find(h.get());
    if (it == window.end() || h->ejected()) continue;
    auto [requests, failures] = it->second;
    if (requests < config_->failure_percentage_request_volume || requests == 0) continue;
    counted++;
    failing.emplace_back(h, 100.0 * static_cast<double>(failures) / requests);
  }
  if (counted > 0 && counted >= config_->failure_percentage_minimum_hosts) {
    for (const auto& [h, percent] : failing) {
      if (percent >= config_->failure_percentage_threshold) {
        eject(h, local ? Kind::kLocalOriginFailurePercentage : Kind::kFailurePercentage,
              local ? config_->enforcing_failure_percentage_local_origin
                    : config_->enforcing_failure_percentage,
              now, hosts.size());
      }
    }
  }
}

void OutlierDetector::evaluate(Clock::time_point now) {
  std::shared_ptr<const HostVector> hosts = hosts_();
  changed_ = false;
  window_.clear();
  local_window_.clear();
  // Forget hosts that left the cluster.
  for (auto it = records_.begin(); it != records_.end();) {
    bool present = std::any_of(hosts->begin(), hosts->end(),
                               [&](const HostSharedPtr& h) { return h.get() == it->first; });
    if (!present) {
      if (it->second.ejected) ejected_count_--;
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& h : *hosts) {
    HostRecord& r = records_[h.get()];
    HostOutlierState* s = h->outlierStateIfAny();
    uint8_t tripped = 0;
    if (s != nullptr) {
      tripped = s->tripped.exchange(0, std::memory_order_relaxed);
      window_[h.get()] = {s->window_requests.exchange(0, std::memory_order_relaxed),
                          s->window_failures.exchange(0, std::memory_order_relaxed)};
      local_window_[h.get()] = {s->window_local_requests.exchange(0, std::memory_order_relaxed),
                                s->window_local_failures.exchange(0, std::memory_order_relaxed)};
    }
    if (r.ejected) {
      if (now >= r.ejected_until) {
        r.ejected = false;
        h->setEjected(false);
        ejected_count_--;
        changed_ = true;
        // Counting starts afresh for a host that comes back.
        if (s != nullptr) {
          s->consecutive_5xx.store(0, std::memory_order_relaxed);
          s->consecutive_gateway_failure.store(0, std::memory_order_relaxed);
          s->consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
        }
      }
      continue;
    }
    bool ejected_now = false;
    if (tripped & kTripConsecutive5xx) {
      ejected_now =
          eject(h, Kind::kConsecutive5xx, config_->enforcing_consecutive_5xx, now, hosts->size());
    }
    if (!ejected_now && (tripped & kTripConsecutiveGatewayFailure)) {
      ejected_now = eject(h, Kind::kConsecutiveGatewayFailure,
                          config_->enforcing_consecutive_gateway_failure, now, hosts->size());
    }
    if (!ejected_now && (tripped & kTripConsecutiveLocalOriginFailure)) {
      ejected_now = eject(h, Kind::kConsecutiveLocalOriginFailure,
                          config_->enforcing_consecutive_local_origin_failure, now, hosts->size());
    }
    if (s != nullptr && tripped != 0) {
      // A trip that did not eject (not enforced, or overflow) starts counting again.
      if (tripped & kTripConsecutive5xx) s->consecutive_5xx.store(0, std::memory_order_relaxed);
      if (tripped & kTripConsecutiveGatewayFailure) {
        s->consecutive_gateway_failure.store(0, std::memory_order_relaxed);
      }
      if (tripped & kTripConsecutiveLocalOriginFailure) {
        s->consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
      }
    }
    // A host that stayed healthy for a whole interval earns back one step of its multiplier.
    if (!ejected_now && r.ejections > 0 && tripped == 0) r.ejections--;
  }
  statisticalEjections(*hosts, false, now);
  if (config_->split_external_local_origin_errors) statisticalEjections(*hosts, true, now);
  ejections_active_.set(ejected_count_);
  if (changed_ && on_change_) on_change_();
}

}  // namespace sheave::upstream
