#include "proxy/filters/tcp_proxy/tcp_proxy.h"

#include <google/protobuf/util/time_util.h>

#include "common/logging.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "proxy/accesslog/downstream_connection_info.h"

namespace sheave::tcp_proxy {

TcpProxyStats::TcpProxyStats(stats::Scope& s)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_no_route(s.counter("downstream_cx_no_route")),
      downstream_cx_tx_bytes_total(s.counter("downstream_cx_tx_bytes_total")),
      downstream_cx_rx_bytes_total(s.counter("downstream_cx_rx_bytes_total")),
      idle_timeout(s.counter("idle_timeout")),
      upstream_flush_total(s.counter("upstream_flush_total")),
      max_downstream_connection_duration(s.counter("max_downstream_connection_duration")),
      downstream_cx_tx_bytes_buffered(s.gauge("downstream_cx_tx_bytes_buffered")) {}

const std::string& TcpProxyConfig::pickCluster(uint64_t random) const {
  if (weighted_clusters.empty()) return cluster;
  uint64_t point = random % total_weight;
  for (const auto& wc : weighted_clusters) {
    if (point < wc.weight) return wc.name;
    point -= wc.weight;
  }
  return weighted_clusters.back().name;
}

Result<std::shared_ptr<const TcpProxyConfig>> TcpProxyConfig::create(
    const envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy& proto, stats::Scope& root,
    accesslog::AccessLogManager& access_logs,
    const std::function<bool(const std::string&)>& cluster_exists) {
  using google::protobuf::util::TimeUtil;
  auto config = std::make_shared<TcpProxyConfig>();
  if (proto.stat_prefix().empty()) return invalidArgument("stat_prefix: must not be empty");
  config->stat_prefix = proto.stat_prefix();
  if (proto.has_weighted_clusters()) {
    for (int i = 0; i < proto.weighted_clusters().clusters_size(); ++i) {
      const auto& c = proto.weighted_clusters().clusters(i);
      if (!cluster_exists(c.name())) {
        return invalidArgument("weighted_clusters.clusters[" + std::to_string(i) +
                               "].name: unknown cluster '" + c.name() + "'");
      }
      config->weighted_clusters.push_back({c.name(), c.weight()});
      config->total_weight += c.weight();
    }
    if (config->total_weight == 0) {
      return invalidArgument("weighted_clusters: the weights must add up to more than zero");
    }
  } else {
    if (proto.cluster().empty()) {
      return invalidArgument("cluster: a tcp_proxy needs a cluster or weighted_clusters");
    }
    if (!cluster_exists(proto.cluster())) {
      return invalidArgument("cluster: unknown cluster '" + proto.cluster() + "'");
    }
    config->cluster = proto.cluster();
  }
  if (proto.has_idle_timeout()) {
    config->idle_timeout =
        std::chrono::milliseconds(TimeUtil::DurationToMilliseconds(proto.idle_timeout()));
  }
  if (proto.has_max_downstream_connection_duration()) {
    config->max_downstream_connection_duration = std::chrono::milliseconds(
        TimeUtil::DurationToMilliseconds(proto.max_downstream_connection_duration()));
  }
  if (proto.has_max_connect_attempts()) {
    config->max_connect_attempts = std::max<uint32_t>(proto.max_connect_attempts().value(), 1);
  }
  for (int i = 0; i < proto.access_log_size(); ++i) {
    auto log = accesslog::accessLogFromProto(proto.access_log(i), access_logs);
    if (!log.ok()) return std::move(log).error().at("access_log[" + std::to_string(i) + "]");
    config->access_logs.push_back(std::move(log).value());
  }
  config->scope = root.createScope("tcp." + config->stat_prefix);
  config->stats = std::make_unique<TcpProxyStats>(*config->scope);
  return std::shared_ptr<const TcpProxyConfig>(std::move(config));
}

class TcpProxySession::DownstreamCallbacks : public network::ConnectionCallbacks {
 public:
  explicit DownstreamCallbacks(TcpProxySession& s) : s_(s) {}
  void onData(network::Buffer& data, bool end_stream) override {
    s_.onDownstreamData(data, end_stream);
  }
  void onEvent(network::ConnectionEvent event) override { s_.onDownstreamEvent(event); }
  void onAboveWriteBufferHighWatermark() override {
    if (s_.upstream_) s_.upstream_->readDisable(true);
  }
  void onBelowWriteBufferLowWatermark() override {
    if (s_.upstream_) s_.upstream_->readDisable(false);
  }

 private:
  TcpProxySession& s_;
};

class TcpProxySession::UpstreamCallbacks : public network::ConnectionCallbacks {
 public:
  explicit UpstreamCallbacks(TcpProxySession& s) : s_(s) {}
  void onData(network::Buffer& data, bool end_stream) override {
    s_.onUpstreamData(data, end_stream);
  }
  void onEvent(network::ConnectionEvent event) override { s_.onUpstreamEvent(event); }
  void onAboveWriteBufferHighWatermark() override { s_.downstream_->readDisable(true); }
  void onBelowWriteBufferLowWatermark() override { s_.downstream_->readDisable(false); }

 private:
  TcpProxySession& s_;
};

TcpProxySession::TcpProxySession(std::shared_ptr<const TcpProxyConfig> config,
                                 std::unique_ptr<network::Connection> downstream,
                                 network::EventLoop& loop,
                                 upstream::ThreadLocalClusterManager& clusters, Host& host)
    : config_(std::move(config)),
      downstream_(std::move(downstream)),
      loop_(loop),
      clusters_(clusters),
      host_(host),
      downstream_callbacks_(std::make_unique<DownstreamCallbacks>(*this)),
      upstream_callbacks_(std::make_unique<UpstreamCallbacks>(*this)) {
  config_->stats->downstream_cx_total.inc();
  info_.start_time = loop_.systemNow();
  info_.start_time_monotonic = loop_.now();
  setDownstreamConnectionInfo(*downstream_, info_);
  downstream_->enableHalfClose(true);
  // The exchange needs ALPN, so TLS; it is decided when the handshake is done.
  if (!config_->metadata_exchange_protocol.empty() && downstream_->secure()) {
    downstream_exchange_ = Exchange::kUndecided;
  }
  if (config_->istio_stats) stats_reporter_.emplace(config_->istio_stats);
  downstream_->setCallbacks(*downstream_callbacks_);
  if (config_->idle_timeout.count() > 0) {
    idle_timer_ = loop_.createTimer([this] {
      config_->stats->idle_timeout.inc();
      info_.connection_termination_details = "tcp_proxy_idle_timeout";
      downstream_->close(network::ConnectionCloseType::kNoFlush);
    });
    idle_timer_->enable(config_->idle_timeout);
  }
  if (config_->max_downstream_connection_duration.count() > 0) {
    max_duration_timer_ = loop_.createTimer([this] {
      config_->stats->max_downstream_connection_duration.inc();
      downstream_->close(network::ConnectionCloseType::kNoFlush);
    });
    max_duration_timer_->enable(config_->max_downstream_connection_duration);
  }
  const std::string& name = config_->pickCluster(host_.random().next());
  info_.upstream_cluster = name;
  cluster_ = clusters_.get(name);
  if (cluster_ == nullptr) {
    config_->stats->downstream_cx_no_route.inc();
    info_.setResponseFlag(ResponseFlag::kNoClusterFound);
    downstream_->close(network::ConnectionCloseType::kNoFlush);
    return;
  }
  connectUpstream();
}

TcpProxySession::~TcpProxySession() = default;

void TcpProxySession::connectUpstream() {
  ++connect_attempts_;
  upstream::LbContext context;
  // ORIGINAL_DST clusters connect to where the client meant to go.
  context.downstream_local_address = &downstream_->localAddress();
  upstream_host_ = cluster_->chooseHost(&context);
  if (!upstream_host_) {
    info_.setResponseFlag(ResponseFlag::kNoHealthyUpstream);
    cluster_->info()->stats->upstream_cx_none_healthy.inc();
    downstream_->close(network::ConnectionCloseType::kNoFlush);
    return;
  }
  const auto& cinfo = *cluster_->info();
  if (!cinfo.resources->connections.tryInc()) {
    cinfo.stats->upstream_cx_overflow.inc();
    info_.setResponseFlag(ResponseFlag::kUpstreamOverflow);
    downstream_->close(network::ConnectionCloseType::kNoFlush);
    return;
  }
  info_.upstream_host = upstream_host_->address().asString();
  cinfo.stats->upstream_cx_total.inc();
  cinfo.stats->upstream_cx_active.inc();
  upstream_host_->stats().cx_total.fetch_add(1, std::memory_order_relaxed);
  upstream_host_->stats().cx_active.fetch_add(1, std::memory_order_relaxed);
  const auto& tls = cinfo.transportSocketFactoryFor(*upstream_host_);
  upstream_ = network::Connection::createClient(loop_, upstream_host_->address(),
                                                tls ? tls->createTransportSocket() : nullptr);
  upstream_->enableHalfClose(true);
  upstream_->setConnectTimeout(cinfo.connect_timeout);
  upstream_->setBufferLimits(cinfo.per_connection_buffer_limit_bytes);
  upstream_->setCallbacks(*upstream_callbacks_);
  // Nothing is read from the client until there is somewhere to send it.
  downstream_->readDisable(true);
}

void TcpProxySession::onUpstreamConnected() {
  upstream_connected_ = true;
  if (const auto& od = cluster_->info()->outlier_detection) {
    upstream::reportLocalOrigin(*od, *upstream_host_, upstream::LocalOriginEvent::kSuccess);
  }
  setUpstreamConnectionInfo(*upstream_, info_);
  const std::string& exchange = cluster_->info()->metadata_exchange_protocol;
  if (!exchange.empty() && upstream_->negotiatedProtocol() == exchange) {
    // Client side of Istio's exchange: ours first, then the server's comes back before its data.
    network::Buffer ours;
    ours.add(peer_metadata::localExchangeBytes());
    upstream_->write(ours, false);
    upstream_exchange_ = Exchange::kReading;
  }
  downstream_->readDisable(false);
  if (early_data_.length() > 0 || early_end_stream_) {
    upstream_->write(early_data_, early_end_stream_);
  }
  maybeReportOpen();
}

void TcpProxySession::startDownstreamExchange() {
  if (downstream_exchange_ != Exchange::kUndecided) return;
  if (downstream_->negotiatedProtocol() == config_->metadata_exchange_protocol) {
    // Server side: ours goes out before any byte of the upstream's.
    network::Buffer ours;
    ours.add(peer_metadata::localExchangeBytes());
    downstream_->write(ours, false);
    downstream_exchange_ = Exchange::kReading;
  } else {
    downstream_exchange_ = Exchange::kOff;
  }
  if (held_upstream_.length() > 0 || held_upstream_end_) {
    // What the upstream sent while the handshake ran.
    const bool paused = held_upstream_.length() > 0;
    network::Buffer held;
    held.move(held_upstream_);
    onUpstreamData(held, held_upstream_end_);
    if (paused && upstream_ && !upstream_closed_) upstream_->readDisable(false);
  }
  maybeReportOpen();
}

bool TcpProxySession::readExchange(Exchange& exchange, peer_metadata::ExchangeReader& reader,
                                   std::shared_ptr<const PeerWorkloadMetadata>& peer,
                                   network::Buffer& data, bool end_stream) {
  if (exchange != Exchange::kReading) return true;
  network::Buffer rest;
  if (reader.feed(data, rest) == peer_metadata::ExchangeReader::State::kReading) {
    if (!end_stream) return false;
    reader.giveUp(rest);  // the peer ended before its exchange did
  }
  exchange = Exchange::kSettled;
  peer = reader.peer();
  data.move(rest);
  maybeReportOpen();
  return data.length() > 0 || end_stream;
}

void TcpProxySession::maybeReportOpen() {
  if (!stats_reporter_ || !upstream_connected_ || finished_) return;
  if (downstream_exchange_ == Exchange::kUndecided || downstream_exchange_ == Exchange::kReading ||
      upstream_exchange_ == Exchange::kReading) {
    return;
  }
  setDownstreamConnectionInfo(*downstream_, info_);
  stats_reporter_->onConnectionOpen(info_);
}

void TcpProxySession::onDownstreamData(network::Buffer& data, bool end_stream) {
  if (!checked_ && data.length() > 0) {
    // Envoy's ONE_TIME_ON_FIRST_BYTE: the TLS handshake (and so the peer's identity) is done by
    // the time the first bytes arrive.
    checked_ = true;
    for (const auto& check : config_->connection_checks) {
      if (!check(*downstream_)) {
        data.drain(data.length());
        downstream_->close(network::ConnectionCloseType::kNoFlush);
        return;
      }
    }
  }
  startDownstreamExchange();
  if (!readExchange(downstream_exchange_, downstream_reader_, info_.downstream_peer, data,
                    end_stream)) {
    return;
  }
  resetIdleTimer();
  info_.bytes_received += data.length();
  config_->stats->downstream_cx_rx_bytes_total.inc(data.length());
  if (!upstream_connected_) {
    early_data_.move(data);
    early_end_stream_ = end_stream;
    return;
  }
  upstream_->write(data, end_stream);
}

void TcpProxySession::onUpstreamData(network::Buffer& data, bool end_stream) {
  if (!readExchange(upstream_exchange_, upstream_reader_, info_.upstream_peer, data, end_stream)) {
    return;
  }
  if (downstream_exchange_ == Exchange::kUndecided) {
    // Our exchange must reach the client before these bytes: hold them until its handshake is
    // done (a server that speaks first can answer before that).
    if (held_upstream_.length() == 0) upstream_->readDisable(true);
    held_upstream_.move(data);
    held_upstream_end_ = end_stream;
    return;
  }
  resetIdleTimer();
  info_.bytes_sent += data.length();
  config_->stats->downstream_cx_tx_bytes_total.inc(data.length());
  downstream_->write(data, end_stream);
}

void TcpProxySession::onDownstreamEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::kConnected) {
    startDownstreamExchange();
    return;
  }
  downstream_closed_ = true;
  if (upstream_ && !upstream_closed_) {
    upstream_->close(event == network::ConnectionEvent::kRemoteClose
                         ? network::ConnectionCloseType::kFlushWrite
                         : network::ConnectionCloseType::kNoFlush);
  }
  if (!upstream_ || upstream_closed_) finish();
}

void TcpProxySession::onUpstreamEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::kConnected) {
    onUpstreamConnected();
    return;
  }
  const bool connect_failed = !upstream_connected_;
  upstream_closed_ = true;
  const auto& cinfo = *cluster_->info();
  cinfo.stats->upstream_cx_active.dec();
  cinfo.stats->upstream_cx_destroy.inc();
  cinfo.resources->connections.dec();
  upstream_host_->stats().cx_active.fetch_sub(1, std::memory_order_relaxed);
  if (connect_failed) {
    cinfo.stats->upstream_cx_connect_fail.inc();
    upstream_host_->stats().cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
    if (const auto& od = cinfo.outlier_detection) {
      upstream::reportLocalOrigin(*od, *upstream_host_, upstream::LocalOriginEvent::kConnectFailed);
    }
    info_.upstream_transport_failure_reason = std::string(upstream_->failureReason());
    if (connect_attempts_ < config_->max_connect_attempts && !downstream_closed_) {
      // Destroy the failed connection after this callback returns.
      loop_.deferredDelete(std::move(upstream_));
      upstream_closed_ = false;
      connectUpstream();
      return;
    }
    info_.setResponseFlag(ResponseFlag::kUpstreamConnectionFailure);
  }
  if (!downstream_closed_) {
    downstream_->close(network::ConnectionCloseType::kFlushWrite);
  } else {
    finish();
  }
}

void TcpProxySession::resetIdleTimer() {
  if (idle_timer_) idle_timer_->enable(config_->idle_timeout);
}

void TcpProxySession::finish() {
  if (finished_) return;
  finished_ = true;
  if (idle_timer_) idle_timer_->disable();
  if (max_duration_timer_) max_duration_timer_->disable();
  info_.last_downstream_tx_byte_sent = loop_.now() - info_.start_time_monotonic;
  info_.request_complete = info_.last_downstream_tx_byte_sent;  // the total, %DURATION%
  // The TLS handshake completes after the session starts; the peer is known by now.
  setDownstreamConnectionInfo(*downstream_, info_);
  if (stats_reporter_) stats_reporter_->onConnectionClose(info_);
  for (const auto& log : config_->access_logs) log->log(info_);
  host_.onSessionClosed(*this);
}

}  // namespace sheave::tcp_proxy
