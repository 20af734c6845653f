#include "proxy/upstream/health_checker.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>

#include "common/logging.h"

namespace sheave::upstream {

namespace {

using HealthCheckProto = envoy::config::core::v3::HealthCheck;

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(google::protobuf::util::TimeUtil::DurationToMilliseconds(d));
}

Result<std::string> payloadBytes(const HealthCheckProto::Payload& p, const std::string& where) {
  if (p.has_binary()) return p.binary();
  const std::string& hex = p.text();
  if (hex.size() % 2 != 0) return invalidArgument("hex text of odd length").at(where + ".text");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return invalidArgument("not hex").at(where + ".text");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

Result<std::vector<std::pair<int64_t, int64_t>>> statusRanges(
    const google::protobuf::RepeatedPtrField<envoy::type::v3::Int64Range>& ranges,
    const std::string& where) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int i = 0; i < ranges.size(); ++i) {
    const auto& r = ranges[i];
    if (r.start() < 100 || r.end() > 600 || r.start() >= r.end()) {
      return invalidArgument("must be a range of HTTP statuses [start, end) within 100-600")
          .at(where + "[" + std::to_string(i) + "]");
    }
    out.emplace_back(r.start(), r.end());
  }
  return out;
}

bool inRanges(const std::vector<std::pair<int64_t, int64_t>>& ranges, int64_t code) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [code](const auto& r) { return code >= r.first && code < r.second; });
}

}  // namespace

Result<HealthCheckConfig> HealthCheckConfig::fromProto(const HealthCheckProto& proto) {
  HealthCheckConfig c;
  if (!proto.has_timeout() || toMs(proto.timeout()).count() <= 0) {
    return invalidArgument("timeout: is required and must be greater than zero");
  }
  if (!proto.has_interval() || toMs(proto.interval()).count() <= 0) {
    return invalidArgument("interval: is required and must be greater than zero");
  }
  if (!proto.has_unhealthy_threshold()) return invalidArgument("unhealthy_threshold: is required");
  if (!proto.has_healthy_threshold()) return invalidArgument("healthy_threshold: is required");
  c.timeout = toMs(proto.timeout());
  c.interval = toMs(proto.interval());
  c.interval_jitter = toMs(proto.interval_jitter());
  c.interval_jitter_percent = proto.interval_jitter_percent();
  c.initial_jitter = toMs(proto.initial_jitter());
  if (proto.has_no_traffic_interval()) c.no_traffic_interval = toMs(proto.no_traffic_interval());
  c.no_traffic_healthy_interval = toMs(proto.no_traffic_healthy_interval());
  c.unhealthy_interval = toMs(proto.unhealthy_interval());
  c.unhealthy_edge_interval = toMs(proto.unhealthy_edge_interval());
  c.healthy_edge_interval = toMs(proto.healthy_edge_interval());
  c.unhealthy_threshold = std::max<uint32_t>(proto.unhealthy_threshold().value(), 1);
  c.healthy_threshold = std::max<uint32_t>(proto.healthy_threshold().value(), 1);
  if (proto.has_alt_port()) {
    if (proto.alt_port().value() == 0 || proto.alt_port().value() > 65535) {
      return invalidArgument("alt_port: must be a port (1-65535)");
    }
    c.alt_port = proto.alt_port().value();
  }
  switch (proto.health_checker_case()) {
    case HealthCheckProto::kHttpHealthCheck: {
      const auto& h = proto.http_health_check();
      c.kind = Kind::kHttp;
      c.host = h.host();
      c.path = h.path();
      if (c.path.empty() || c.path.front() != '/') {
        return invalidArgument("http_health_check.path: is required and must start with '/'");
      }
      if (h.has_send() || h.receive_size() > 0) {
        return invalidArgument("http_health_check.send/receive: are not supported");
      }
      if (h.codec_client_type() != envoy::type::v3::HTTP1) {
        return invalidArgument("http_health_check.codec_client_type: only HTTP1 is supported");
      }
      if (h.method() != envoy::config::core::v3::METHOD_UNSPECIFIED) {
        c.method = envoy::config::core::v3::RequestMethod_Name(h.method());
        if (c.method == "CONNECT") {
          return invalidArgument("http_health_check.method: CONNECT is not allowed");
        }
      }
      if (h.expected_statuses_size() > 0) {
        SHEAVE_ASSIGN_OR_RETURN(
            c.expected_statuses,
            statusRanges(h.expected_statuses(), "http_health_check.expected_statuses"));
      }
      SHEAVE_ASSIGN_OR_RETURN(
          c.retriable_statuses,
          statusRanges(h.retriable_statuses(), "http_health_check.retriable_statuses"));
      for (const auto& hv : h.request_headers_to_add()) {
        c.request_headers.emplace_back(hv.header().key(), hv.header().value());
      }
      break;
    }
    case HealthCheckProto::kTcpHealthCheck: {
      const auto& t = proto.tcp_health_check();
      c.kind = Kind::kTcp;
      if (t.has_send()) {
        SHEAVE_ASSIGN_OR_RETURN(c.send, payloadBytes(t.send(), "tcp_health_check.send"));
      }
      for (int i = 0; i < t.receive_size(); ++i) {
        SHEAVE_ASSIGN_OR_RETURN(
            auto block,
            payloadBytes(t.receive(i), "tcp_health_check.receive[" + std::to_string(i) + "]"));
        c.receive.push_back(std::move(block));
      }
      break;
    }
    case HealthCheckProto::kGrpcHealthCheck:
      return invalidArgument("grpc_health_check: is not supported (http and tcp are)");
    case HealthCheckProto::kCustomHealthCheck:
      return invalidArgument("custom_health_check: is not supported (http and tcp are)");
    default:
      return invalidArgument("one of http_health_check, tcp_health_check is required");
  }
  return c;
}

HealthCheckStats::HealthCheckStats(stats::Scope& s)
    : attempt(s.counter("health_check.attempt")),
      success(s.counter("health_check.success")),
      failure(s.counter("health_check.failure")),
      network_failure(s.counter("health_check.network_failure")),
      passive_failure(s.counter("health_check.passive_failure")),
      verify_cluster(s.counter("health_check.verify_cluster")),
      healthy(s.gauge("health_check.healthy")),
      degraded(s.gauge("health_check.degraded")) {}

// One host's checks: a timer, then a connection per check.
class HealthChecker::Session : public network::ConnectionCallbacks {
 public:
  Session(HealthChecker& parent, HostSharedPtr host) : parent_(parent), host_(std::move(host)) {
    interval_timer_ = parent_.loop_->createTimer([this] { startCheck(); });
    timeout_timer_ = parent_.loop_->createTimer([this] { onTimeout(); });
  }
  ~Session() override { closeConnection(); }

  void schedule(std::chrono::milliseconds delay) { interval_timer_->enable(delay); }
  const Host& host() const { return *host_; }
  bool checkedOnce() const { return checked_once_; }
  bool lastChanged() const { return last_changed_; }

  void onData(network::Buffer& data, bool) override {
    response_.append(data.toString());
    data.drain(data.length());
    const auto& c = parent_.config_;
    if (c.kind == HealthCheckConfig::Kind::kHttp) {
      const size_t eol = response_.find("\r\n");
      if (eol == std::string::npos) {
        if (response_.size() > 4096) finish(Result::kNetworkFailure);
        return;
      }
      // "HTTP/1.1 200 OK"
      int64_t code = -1;
      if (response_.compare(0, 5, "HTTP/") == 0) {
        const size_t sp = response_.find(' ');
        if (sp != std::string::npos && sp + 4 <= eol) {
          code = 0;
          for (size_t i = sp + 1; i < sp + 4; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(response_[i]))) code = -1000;
            code = code * 10 + (response_[i] - '0');
          }
        }
      }
      if (code < 100) {
        finish(Result::kNetworkFailure);
      } else if (inRanges(c.expected_statuses, code)) {
        finish(Result::kSuccess);
      } else if (inRanges(c.retriable_statuses, code)) {
        finish(Result::kRetriableFailure);
      } else {
        finish(Result::kFailure);
      }
      return;
    }
    // TCP: every receive block, in order.
    size_t at = 0;
    for (const std::string& block : c.receive) {
      const size_t found = response_.find(block, at);
      if (found == std::string::npos) {
        if (response_.size() > 64 * 1024) finish(Result::kFailure);
        return;
      }
      at = found + block.size();
    }
    finish(Result::kSuccess);
  }

  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::kConnected) {
      const auto& c = parent_.config_;
      network::Buffer out;
      if (c.kind == HealthCheckConfig::Kind::kHttp) {
        std::string req = c.method + " " + c.path + " HTTP/1.1\r\nhost: " +
                          (c.host.empty() ? parent_.cluster_name_ : c.host) +
                          "\r\nuser-agent: Envoy/HC\r\nconnection: close\r\n";
        for (const auto& [k, v] : c.request_headers) req += k + ": " + v + "\r\n";
        req += "\r\n";
        out.add(req);
      } else {
        if (c.receive.empty()) {
          finish(Result::kSuccess);  // connect-only check
          return;
        }
        out.add(c.send);
      }
      if (out.length() > 0) connection_->write(out, false);
      return;
    }
    // Closed before a verdict.
    finish(Result::kNetworkFailure);
  }

 private:
  enum class Result { kSuccess, kFailure, kRetriableFailure, kNetworkFailure };

  void startCheck() {
    const auto& c = parent_.config_;
    parent_.stats_.attempt.inc();
    response_.clear();
    Address target = c.alt_port != 0 ? host_->address().withPort(static_cast<uint16_t>(c.alt_port))
                                     : host_->address();
    connection_ = network::Connection::createClient(*parent_.loop_, target);
    connection_->setCallbacks(*this);
    connection_->setConnectTimeout(c.timeout);
    timeout_timer_->enable(c.timeout);
    in_flight_ = true;
  }

  void onTimeout() { finish(Result::kNetworkFailure); }

  void closeConnection() {
    if (!connection_) return;
    connection_->close(network::ConnectionCloseType::kNoFlush);
    parent_.loop_->deferredDelete(std::move(connection_));
  }

  void finish(Result result) {
    if (!in_flight_) return;
    in_flight_ = false;
    timeout_timer_->disable();
    closeConnection();
    const auto& c = parent_.config_;
    auto& stats = parent_.stats_;
    const bool was_failed = host_->failedActiveHealthCheck();
    const bool first = !checked_once_;
    bool now_failed = was_failed;
    if (result == Result::kSuccess) {
      stats.success.inc();
      failures_ = 0;
      ++successes_;
      // A host never checked needs one success; a failed one healthy_threshold.
      if (was_failed && (!checked_once_ || successes_ >= c.healthy_threshold)) now_failed = false;
    } else {
      stats.failure.inc();
      if (result == Result::kNetworkFailure) stats.network_failure.inc();
      successes_ = 0;
      ++failures_;
      // A status outside expected and retriable statuses fails the host at once.
      if (result == Result::kFailure || failures_ >= c.unhealthy_threshold || !checked_once_) {
        now_failed = true;
      }
    }
    checked_once_ = true;
    last_changed_ = now_failed != was_failed;
    if (last_changed_) {
      host_->setFailedActiveHealthCheck(now_failed);
      // Back from failing (not a first pass): slow start, where configured, ramps it up again.
      if (!now_failed && !first) {
        host_->setSlowStartSince(std::chrono::steady_clock::now().time_since_epoch().count());
      }
      SHEAVE_LOG_INFO("cluster '{}': host {} {} active health checking", parent_.cluster_name_,
                      host_->address().asString(), now_failed ? "failed" : "passed");
    }
    parent_.onResult(*this, last_changed_);
  }

  HealthChecker& parent_;
  HostSharedPtr host_;
  std::unique_ptr<network::Timer> interval_timer_;
  std::unique_ptr<network::Timer> timeout_timer_;
  std::unique_ptr<network::Connection> connection_;
  std::string response_;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  bool checked_once_ = false;
  bool last_changed_ = false;
  bool in_flight_ = false;
};

HealthChecker::HealthChecker(HealthCheckConfig config, std::string cluster_name,
                             stats::Scope& cluster_scope,
                             std::function<std::shared_ptr<const HostVector>()> hosts,
                             std::function<bool()> had_traffic, std::function<void()> on_change)
    : config_(std::move(config)),
      cluster_name_(std::move(cluster_name)),
      stats_(cluster_scope),
      hosts_(std::move(hosts)),
      had_traffic_(std::move(had_traffic)),
      on_change_(std::move(on_change)) {}

HealthChecker::~HealthChecker() = default;

void HealthChecker::start(network::EventLoop& loop) {
  loop_ = &loop;
  onHostsChanged();
}

void HealthChecker::onHostsChanged() {
  if (loop_ == nullptr) return;
  const auto hosts = hosts_();
  std::unordered_map<const Host*, std::unique_ptr<Session>> next;
  for (const auto& h : *hosts) {
    auto it = sessions_.find(h.get());
    if (it != sessions_.end()) {
      next.emplace(h.get(), std::move(it->second));
      continue;
    }
    // Not checked yet: not available until its first check passes.
    h->setFailedActiveHealthCheck(true);
    auto session = std::make_unique<Session>(*this, h);
    const auto jitter = config_.initial_jitter.count() > 0
                            ? std::chrono::milliseconds(random_.uniform(
                                  static_cast<uint64_t>(config_.initial_jitter.count())))
                            : std::chrono::milliseconds(0);
    session->schedule(jitter);
    next.emplace(h.get(), std::move(session));
  }
  sessions_ = std::move(next);
  updateHealthyGauge();
}

std::chrono::milliseconds HealthChecker::nextInterval(const Session& session) {
  const auto& c = config_;
  const bool failed = session.host().failedActiveHealthCheck();
  std::chrono::milliseconds base = c.interval;
  if (!had_traffic_()) {
    base = !failed && c.no_traffic_healthy_interval.count() > 0 ? c.no_traffic_healthy_interval
                                                                : c.no_traffic_interval;
  } else if (failed) {
    const auto unhealthy = c.unhealthy_interval.count() > 0 ? c.unhealthy_interval : c.interval;
    base = session.lastChanged() && c.unhealthy_edge_interval.count() > 0
               ? c.unhealthy_edge_interval
               : unhealthy;
  } else if (session.lastChanged() && c.healthy_edge_interval.count() > 0) {
    base = c.healthy_edge_interval;
  }
  uint64_t jitter = 0;
  if (c.interval_jitter.count() > 0) {
    jitter += random_.uniform(static_cast<uint64_t>(c.interval_jitter.count()));
  }
  if (c.interval_jitter_percent > 0) {
    const uint64_t bound = static_cast<uint64_t>(base.count()) * c.interval_jitter_percent / 100;
    if (bound > 0) jitter += random_.uniform(bound);
  }
  return base + std::chrono::milliseconds(jitter);
}

void HealthChecker::onResult(Session& session, bool changed) {
  session.schedule(nextInterval(session));
  if (changed) {
    updateHealthyGauge();
    on_change_();
  }
}

void HealthChecker::updateHealthyGauge() {
  uint64_t healthy = 0;
  for (const auto& [host, session] : sessions_) healthy += !host->failedActiveHealthCheck();
  stats_.healthy.set(healthy);
}

}  // namespace sheave::upstream
