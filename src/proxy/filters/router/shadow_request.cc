#include "proxy/filters/router/shadow_request.h"

namespace sheave::router {

void ShadowRequest::send(upstream::ThreadLocalCluster& cluster, HeaderMap headers,
                         network::Buffer& body, std::optional<HeaderMap> trailers,
                         std::chrono::milliseconds timeout) {
  std::unique_ptr<ShadowRequest> request(
      new ShadowRequest(cluster, std::move(headers), std::move(trailers)));
  request->body_.add(body);
  ShadowRequest* raw = request.get();
  raw->self_ = cluster.adoptDetached(std::move(request));
  raw->start(timeout);
}

ShadowRequest::ShadowRequest(upstream::ThreadLocalCluster& cluster, HeaderMap headers,
                             std::optional<HeaderMap> trailers)
    : cluster_(&cluster), headers_(std::move(headers)), trailers_(std::move(trailers)) {}

ShadowRequest::~ShadowRequest() {
  if (handle_) handle_->cancel();
  if (encoder_) encoder_->resetStream();
}

void ShadowRequest::start(std::chrono::milliseconds timeout) {
  auto& loop = cluster_->eventLoop();
  start_ = loop.now();
  const auto& info = *cluster_->info();
  upstream::HostSharedPtr host = cluster_->chooseHost(nullptr);
  if (!host) {
    info.stats->upstream_cx_none_healthy.inc();
    finish(false);
    return;
  }
  if (!info.resources->requests.tryInc()) {
    info.stats->upstream_rq_pending_overflow.inc();
    finish(false);
    return;
  }
  holds_request_ = true;
  host_ = std::move(host);
  info.stats->upstream_rq_total.inc();
  info.stats->upstream_rq_active.inc();
  host_->stats().rq_total.fetch_add(1, std::memory_order_relaxed);
  host_->stats().rq_active.fetch_add(1, std::memory_order_relaxed);
  timer_ = loop.createTimer([this] {
    cluster_->info()->stats->upstream_rq_timeout.inc();
    finish(false);
  });
  timer_->enable(timeout);
  handle_ = cluster_->httpPool(host_).newStream(*this, *this);
}

void ShadowRequest::onPoolReady(upstream::RequestEncoder& encoder, const upstream::HostSharedPtr&) {
  handle_ = nullptr;
  encoder_ = &encoder;
  const bool has_body = body_.length() > 0;
  encoder.encodeHeaders(headers_, !has_body && !trailers_);
  if (encoder_ == nullptr) return;  // the write failed and reset us
  if (has_body) encoder.encodeData(body_, !trailers_);
  if (encoder_ != nullptr && trailers_) encoder.encodeTrailers(*trailers_);
}

void ShadowRequest::onPoolFailure(upstream::PoolFailureReason, std::string_view,
                                  const upstream::HostSharedPtr&) {
  handle_ = nullptr;
  finish(false);
}

void ShadowRequest::decodeHeaders(HeaderMap&& headers, bool end_stream) {
  uint32_t code = 0;
  for (char c : headers.status()) code = code * 10 + static_cast<uint32_t>(c - '0');
  auto& stats = *cluster_->info()->stats;
  stats.upstreamRqCode(code).inc();
  stats.upstreamRqClass(code).inc();
  (code >= 500 ? host_->stats().rq_error : host_->stats().rq_success)
      .fetch_add(1, std::memory_order_relaxed);
  if (end_stream) finish(true);
}

void ShadowRequest::decodeData(network::Buffer& data, bool end_stream) {
  data.drain(data.length());  // nobody reads a shadow's response
  if (end_stream) finish(true);
}

void ShadowRequest::onResetStream(upstream::StreamResetReason, std::string_view) {
  encoder_ = nullptr;
  cluster_->info()->stats->upstream_rq_rx_reset.inc();
  finish(false);
}

void ShadowRequest::finish(bool success) {
  if (finished_) return;
  finished_ = true;
  if (timer_) timer_->disable();
  if (handle_) {
    handle_->cancel();
    handle_ = nullptr;
  }
  if (encoder_ && !success) {
    auto* e = encoder_;
    encoder_ = nullptr;
    e->resetStream();
  }
  encoder_ = nullptr;
  const auto& info = *cluster_->info();
  if (success) {
    info.stats->upstream_rq_completed.inc();
    info.stats->upstream_rq_time.record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(cluster_->eventLoop().now() - start_)
            .count()));
  }
  if (holds_request_) {
    holds_request_ = false;
    info.resources->requests.dec();
    info.stats->upstream_rq_active.dec();
    host_->stats().rq_active.fetch_sub(1, std::memory_order_relaxed);
  }
  cluster_->finishDetached(self_);  // deleted after this event
}

}  // namespace sheave::router
