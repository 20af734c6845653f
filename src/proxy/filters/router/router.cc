#include "proxy/filters/router/router.h"

#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "common/logging.h"
#include "proxy/accesslog/downstream_connection_info.h"
#include "proxy/filters/router/shadow_request.h"
#include "proxy/grpc/status.h"
#include "proxy/network/connection.h"

namespace sheave::router {

using upstream::PoolFailureReason;
using upstream::StreamResetReason;

namespace {

// Envoy's access-log detail for a reset: the reason with blanks turned into
// underscores, and the transport failure after a '|'.
std::string resetDetails(std::string_view prefix, StreamResetReason reason,
                         std::string_view transport_failure) {
  std::string out(prefix);
  out += '{';
  std::string body(upstream::resetReasonName(reason));
  if (!transport_failure.empty()) {
    body += '|';
    body += transport_failure;
  }
  std::replace(body.begin(), body.end(), ' ', '_');
  out += body;
  out += '}';
  return out;
}

bool isGrpcRequest(const HeaderMap& headers) {
  const std::string* type = headers.get("content-type");
  return type != nullptr && type->starts_with("application/grpc");
}

// Resets after which the upstream is known not to have processed the request.
bool neverProcessed(StreamResetReason reason) {
  return reason == StreamResetReason::kGoAwayRefused ||
         reason == StreamResetReason::kRemoteRefusedStream;
}

bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

}  // namespace

// One attempt: a stream on one upstream connection.
class Router::UpstreamRequest : public upstream::ResponseDecoder, public upstream::PoolCallbacks {
 public:
  UpstreamRequest(Router& parent, upstream::HostSharedPtr host)
      : parent_(parent), host_(std::move(host)), start_(parent.callbacks_->eventLoop().now()) {}

  ~UpstreamRequest() override {
    if (handle_) handle_->cancel();
    releaseCounts();
  }

  void start() {
    const auto& info = *parent_.cluster_->info();
    auto& stats = *info.stats;
    if (!info.resources->requests.tryInc()) {
      // Envoy counts a refused max_requests like a pending overflow.
      stats.upstream_rq_pending_overflow.inc();
      parent_.onPoolFailure(*this, PoolFailureReason::kOverflow, "overflow");
      return;
    }
    holds_request_ = true;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    host_->stats().rq_total.fetch_add(1, std::memory_order_relaxed);
    host_->stats().rq_active.fetch_add(1, std::memory_order_relaxed);
    if (parent_.per_try_timeout_.count() > 0) {
      per_try_timer_ =
          parent_.callbacks_->eventLoop().createTimer([this] { parent_.onPerTryTimeout(*this); });
    }
    const bool downstream_http2 = parent_.callbacks_->streamInfo().protocol == "HTTP/2";
    handle_ = parent_.cluster_->httpPool(host_, downstream_http2, parent_.upgrade_)
                  .newStream(*this, *this);
  }

  // The request body as it streams in (not used when the router keeps the
  // whole body for retries: then onPoolReady sends the kept copy).
  void acceptData(network::Buffer& data, bool end_stream) {
    if (encoder_) {
      encoder_->encodeData(data, end_stream);
      return;
    }
    pending_body_.move(data);
    pending_end_stream_ = end_stream;
  }
  void acceptTrailers(const HeaderMap& trailers) {
    if (encoder_) encoder_->encodeTrailers(trailers);
  }
  void movePending(network::Buffer& from) { pending_body_.move(from); }
  bool ready() const { return encoder_ != nullptr; }

  void reset() {
    if (handle_) {
      handle_->cancel();
      handle_ = nullptr;
    }
    if (encoder_) {
      auto* e = encoder_;
      encoder_ = nullptr;
      e->resetStream();
    }
    if (per_try_timer_) per_try_timer_->disable();
  }

  void readDisable(bool disable) {
    if (encoder_) encoder_->readDisable(disable);
  }

  const upstream::HostSharedPtr& host() const { return host_; }
  bool reusedConnection() const { return reused_; }
  bool responseStarted() const { return response_started_; }
  std::chrono::milliseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        parent_.callbacks_->eventLoop().now() - start_);
  }

  // upstream::PoolCallbacks
  void onPoolReady(upstream::RequestEncoder& encoder,
                   const upstream::HostSharedPtr& host) override {
    handle_ = nullptr;
    encoder_ = &encoder;
    reused_ = encoder.reusedConnection();
    if (const auto& od = parent_.cluster_->info()->outlier_detection) {
      upstream::reportLocalOrigin(*od, *host, upstream::LocalOriginEvent::kSuccess);
    }
    auto& info = parent_.callbacks_->streamInfo();
    // The upstream's certificate (Istio's destination_principal on the client side) and ours.
    setUpstreamConnectionInfo(encoder.connection(), info);
    if (per_try_timer_) per_try_timer_->enable(parent_.per_try_timeout_);
    Router& router = parent_;
    const bool has_body = router.buffer_body_for_retry_ ? router.retry_body_.length() > 0
                                                        : pending_body_.length() > 0;
    const bool complete = router.request_complete_;
    const bool has_trailers = router.request_trailers_.has_value();
    encoder.encodeHeaders(*router.request_headers_, complete && !has_body && !has_trailers);
    if (encoder_ == nullptr) return;  // the write failed and reset us
    if (router.buffer_body_for_retry_) {
      if (has_body || (complete && !has_trailers)) {
        network::Buffer copy;
        copy.add(router.retry_body_);
        if (has_body) encoder.encodeData(copy, complete && !has_trailers);
      }
    } else if (has_body) {
      encoder.encodeData(pending_body_, pending_end_stream_ && !has_trailers);
    }
    if (encoder_ && complete && has_trailers) encoder.encodeTrailers(*router.request_trailers_);
  }

  void onPoolFailure(PoolFailureReason reason, std::string_view details,
                     const upstream::HostSharedPtr& host) override {
    handle_ = nullptr;
    parent_.onPoolFailure(*this, reason, details);
  }

  // upstream::ResponseDecoder
  void decode1xxHeaders(HeaderMap&& headers) override {
    // 100 Continue was already sent by the connection manager.
    if (headers.status() != "100") parent_.callbacks_->encode1xxHeaders(std::move(headers));
  }
  void decodeHeaders(HeaderMap&& headers, bool end_stream) override {
    response_started_ = true;
    if (per_try_timer_) per_try_timer_->disable();
    if (end_stream) onComplete(true);
    parent_.onUpstreamHeaders(*this, std::move(headers), end_stream);
  }
  void decodeData(network::Buffer& data, bool end_stream) override {
    if (end_stream) onComplete(true);
    parent_.onUpstreamData(data, end_stream);
  }
  void decodeTrailers(HeaderMap&& trailers) override {
    onComplete(true);
    parent_.onUpstreamTrailers(std::move(trailers));
  }
  void onResetStream(StreamResetReason reason, std::string_view details) override {
    encoder_ = nullptr;
    if (per_try_timer_) per_try_timer_->disable();
    parent_.cluster_->info()->stats->upstream_rq_rx_reset.inc();
    onComplete(false);
    parent_.onUpstreamReset(*this, reason, details);
  }
  void onAboveWriteBufferHighWatermark() override {
    parent_.callbacks_->onDecoderFilterAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    parent_.callbacks_->onDecoderFilterBelowWriteBufferLowWatermark();
  }

  void recordResponse(uint32_t code) {
    auto& stats = *parent_.cluster_->info()->stats;
    stats.upstreamRqCode(code).inc();
    stats.upstreamRqClass(code).inc();
    auto& hs = host_->stats();
    (code >= 500 ? hs.rq_error : hs.rq_success).fetch_add(1, std::memory_order_relaxed);
    if (const auto& od = parent_.cluster_->info()->outlier_detection) {
      upstream::reportHttpStatus(*od, *host_, code);
    }
  }

 private:
  void onComplete(bool success) {
    if (complete_) return;
    complete_ = true;
    // Whatever happened, the pool owns the connection again.
    encoder_ = nullptr;
    if (success) {
      auto& stats = *parent_.cluster_->info()->stats;
      stats.upstream_rq_completed.inc();
      stats.upstream_rq_time.record(static_cast<uint64_t>(elapsed().count()));
    }
    releaseCounts();
  }

  void releaseCounts() {
    if (!holds_request_) return;
    holds_request_ = false;
    const auto& info = *parent_.cluster_->info();
    info.resources->requests.dec();
    info.stats->upstream_rq_active.dec();
    host_->stats().rq_active.fetch_sub(1, std::memory_order_relaxed);
  }

  Router& parent_;
  upstream::HostSharedPtr host_;
  std::chrono::steady_clock::time_point start_;
  upstream::Cancellable* handle_ = nullptr;
  upstream::RequestEncoder* encoder_ = nullptr;
  std::unique_ptr<network::Timer> per_try_timer_;
  network::Buffer pending_body_;
  bool pending_end_stream_ = false;
  bool holds_request_ = false;
  bool response_started_ = false;
  bool complete_ = false;
  bool reused_ = false;
};

Router::Router(std::shared_ptr<const RouterConfig> config,
               upstream::ThreadLocalClusterManager& clusters)
    : config_(std::move(config)), clusters_(clusters) {}

Router::~Router() = default;

http::FilterHeadersStatus Router::decodeHeaders(HeaderMap& headers, bool end_stream) {
  auto& info = callbacks_->streamInfo();
  const RouteMatchResult& match = callbacks_->route();
  request_headers_ = &headers;
  request_complete_ = end_stream;
  start_ = callbacks_->eventLoop().now();
  if (!match.route) {
    info.setResponseFlag(ResponseFlag::kNoRouteFound);
    callbacks_->sendLocalReply(404, "", "route_not_found");
    return http::FilterHeadersStatus::kStopIteration;
  }
  route_ = match.route;
  if (route_->direct_response) {
    callbacks_->sendLocalReply(static_cast<int>(route_->direct_response->status),
                               route_->direct_response->body, "direct_response");
    return http::FilterHeadersStatus::kStopIteration;
  }
  if (route_->redirect) {
    HeaderMap response;
    response.add(":status", std::to_string(route_->redirect->response_code));
    response.add("location", route_->redirectLocation(headers));
    response.add("content-length", "0");
    match.applyResponseHeaderMutations(response);
    info.response_code_details = "direct_response";
    callbacks_->encodeHeaders(std::move(response), true);
    return http::FilterHeadersStatus::kStopIteration;
  }
  const std::string& cluster_name = match.cluster(headers);
  cluster_ = cluster_name.empty() ? nullptr : clusters_.get(cluster_name);
  info.upstream_cluster = cluster_name;
  if (cluster_ == nullptr) {
    info.setResponseFlag(ResponseFlag::kNoClusterFound);
    callbacks_->sendLocalReply(static_cast<int>(route_->cluster_not_found_response_code), "",
                               "cluster_not_found");
    return http::FilterHeadersStatus::kStopIteration;
  }

  // Request rewriting, in Envoy's order: route header mutations, then path
  // and host rewrites.
  match.applyRequestHeaderMutations(headers);
  if (auto path = route_->rewrittenPath(headers.path())) {
    headers.set("x-envoy-original-path", headers.path());
    headers.set(":path", *path);
  }
  match.rewriteHost(headers);

  grpc_request_ = isGrpcRequest(headers);
  timeout_ = route_->timeout;
  if (grpc_request_ && route_->max_grpc_timeout) {
    // Envoy's rule: the client's grpc-timeout (less the offset) is the
    // request's timeout, capped at max_grpc_timeout unless that is 0.
    std::chrono::milliseconds grpc_timeout{0};
    if (const std::string* t = headers.get("grpc-timeout")) {
      if (auto parsed = grpc::parseGrpcTimeout(*t); parsed.ok()) grpc_timeout = *parsed;
    }
    if (route_->grpc_timeout_offset.count() > 0 && route_->grpc_timeout_offset < grpc_timeout) {
      grpc_timeout -= route_->grpc_timeout_offset;
    }
    const auto max = *route_->max_grpc_timeout;
    if (max.count() != 0 && (grpc_timeout.count() == 0 || grpc_timeout > max)) grpc_timeout = max;
    timeout_ = grpc_timeout;
  }
  if (const std::string* t = headers.get("x-envoy-upstream-rq-timeout-ms")) {
    uint64_t ms = 0;
    auto [p, ec] = std::from_chars(t->data(), t->data() + t->size(), ms);
    if (ec == std::errc() && p == t->data() + t->size()) timeout_ = std::chrono::milliseconds(ms);
    headers.remove("x-envoy-upstream-rq-timeout-ms");
  }
  // An upgrade (the connection manager keeps Upgrade only on the upgrades it accepted, and
  // CONNECT is one) streams a tunnel: nothing to replay for a retry or to copy for a mirror.
  upgrade_ = headers.has("upgrade") || headers.method() == "CONNECT";
  retry_policy_ = route_->retry_policy && !upgrade_ ? &*route_->retry_policy : nullptr;
  if (retry_policy_) {
    retries_left_ = retry_policy_->num_retries;
    if (retry_policy_->per_try_timeout) per_try_timeout_ = *retry_policy_->per_try_timeout;
    buffer_body_for_retry_ = !end_stream && retries_left_ > 0;
  }
  if (grpc_request_ && route_->max_grpc_timeout) {
    // The upstream learns the deadline the proxy enforces (per try, if shorter).
    auto expected = per_try_timeout_.count() > 0 ? per_try_timeout_ : timeout_;
    if (expected.count() > 0) headers.set("grpc-timeout", grpc::formatGrpcTimeout(expected));
  }
  if (!config_->suppress_envoy_headers) {
    auto expected = per_try_timeout_.count() > 0 ? per_try_timeout_ : timeout_;
    if (expected.count() > 0) {
      headers.set("x-envoy-expected-rq-timeout-ms", std::to_string(expected.count()));
    }
  }
  if (end_stream && timeout_.count() > 0) {
    global_timer_ = callbacks_->eventLoop().createTimer([this] { onGlobalTimeout(); });
    global_timer_->enable(timeout_);
  }
  callbacks_->addDownstreamWatermarkCallbacks(*this);
  if (!upgrade_) pickShadows(headers);
  if (end_stream) sendShadows();
  startAttempt();
  return http::FilterHeadersStatus::kStopIteration;
}

void Router::pickShadows(const HeaderMap& headers) {
  for (const MirrorPolicy& policy : route_->mirror_policies) {
    if (!policy.fraction.enabled(callbacks_->random().next())) continue;
    std::string name = policy.cluster;
    if (!policy.cluster_header.empty()) {
      const std::string* value = headers.get(policy.cluster_header);
      if (value == nullptr) continue;
      name = *value;
    }
    // A mirror cluster that does not exist drops its copies, as in Envoy.
    if (const auto& cluster = clusters_.get(name)) shadows_.push_back(Shadow{&policy, cluster});
  }
}

namespace {

// "reviews:9080" -> "reviews-shadow:9080" (Envoy puts the suffix before the port).
std::string shadowHost(std::string_view host) {
  size_t port = std::string_view::npos;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close != std::string_view::npos && close + 1 < host.size()) port = close + 1;
  } else {
    port = host.rfind(':');
  }
  if (port == std::string_view::npos) return std::string(host) + "-shadow";
  return std::string(host.substr(0, port)) + "-shadow" + std::string(host.substr(port));
}

}  // namespace

void Router::sendShadows() {
  const std::chrono::milliseconds timeout =
      timeout_.count() > 0 ? timeout_ : std::chrono::milliseconds(15000);
  for (const Shadow& shadow : shadows_) {
    HeaderMap headers = *request_headers_;
    if (!shadow.policy->host_rewrite_literal.empty()) {
      headers.set(":authority", shadow.policy->host_rewrite_literal);
    }
    if (!shadow.policy->disable_shadow_host_suffix_append) {
      headers.set(":authority", shadowHost(headers.authority()));
    }
    ShadowRequest::send(*shadow.cluster, std::move(headers), shadow_body_, request_trailers_,
                        timeout);
  }
  shadows_.clear();
  shadow_body_.drain(shadow_body_.length());
}

void Router::startAttempt() {
  upstream::LbContext context;
  context.attempted_hosts = &attempted_hosts_;
  // ORIGINAL_DST clusters connect to where the client meant to go.
  context.downstream_local_address = &callbacks_->connection().localAddress();
  if (retry_policy_) {
    context.host_selection_retry_max_attempts = static_cast<uint32_t>(
        std::max<int64_t>(retry_policy_->host_selection_retry_max_attempts, 1));
  }
  if (attempt_count_ == 0 && !route_->hash_policy.empty()) {
    hash_key_ = route_->hash_policy.generateHash(
        *request_headers_, &callbacks_->connection().remoteAddress(),
        [this](const HashPolicyEntry& cookie) { return addDownstreamSetCookie(cookie); });
  }
  context.hash_key = hash_key_;
  upstream::HostSharedPtr host = cluster_->chooseHost(&context);
  if (!host) {
    sendNoHealthyUpstream();
    return;
  }
  ++attempt_count_;
  auto& info = callbacks_->streamInfo();
  info.upstream_host = host->address().asString();
  info.attempt_count = attempt_count_;
  attempted_hosts_.push_back(host.get());
  if (route_->virtual_host && route_->virtual_host->include_request_attempt_count) {
    request_headers_->set("x-envoy-attempt-count", std::to_string(attempt_count_));
  }
  upstream_ = std::make_unique<UpstreamRequest>(*this, std::move(host));
  upstream_->start();
}

std::string Router::addDownstreamSetCookie(const HashPolicyEntry& cookie) {
  // As Envoy: one value per downstream connection (its two addresses hashed),
  // so streams racing on one connection get the same cookie.
  const auto& connection = callbacks_->connection();
  const std::string key =
      connection.remoteAddress().asString() + connection.localAddress().asString();
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(XXH64(key.data(), key.size(), 0)));
  downstream_set_cookies_.push_back(makeSetCookieValue(cookie, hex));
  return hex;
}

void Router::sendNoHealthyUpstream() {
  auto& info = callbacks_->streamInfo();
  info.setResponseFlag(ResponseFlag::kNoHealthyUpstream);
  cluster_->info()->stats->upstream_cx_none_healthy.inc();
  cleanupAttempt();
  callbacks_->sendLocalReply(503, "no healthy upstream", "no_healthy_upstream");
}

http::FilterDataStatus Router::decodeData(network::Buffer& data, bool end_stream) {
  request_complete_ = end_stream;
  if (!shadows_.empty()) {
    if (shadow_body_.length() + data.length() > callbacks_->bufferLimit()) {
      shadows_.clear();  // too big to copy: no mirror for this request
      shadow_body_.drain(shadow_body_.length());
    } else {
      shadow_body_.add(data);
      if (end_stream) sendShadows();
    }
  }
  if (end_stream && timeout_.count() > 0 && !global_timer_) {
    global_timer_ = callbacks_->eventLoop().createTimer([this] { onGlobalTimeout(); });
    global_timer_->enable(timeout_);
  }
  if (buffer_body_for_retry_) {
    if (retry_body_.length() + data.length() > callbacks_->bufferLimit()) {
      // Too big to keep: no more retries for this request, stream it.
      buffer_body_for_retry_ = false;
      retries_left_ = 0;
      if (upstream_ && !upstream_->ready()) {
        upstream_->movePending(retry_body_);
      } else {
        retry_body_.drain(retry_body_.length());
      }
    } else {
      retry_body_.add(data);
      if (upstream_ && upstream_->ready()) {
        upstream_->acceptData(data, end_stream);
      } else {
        data.drain(data.length());
      }
      return http::FilterDataStatus::kStopIterationNoBuffer;
    }
  }
  if (upstream_) {
    upstream_->acceptData(data, end_stream);
  } else {
    data.drain(data.length());
  }
  return http::FilterDataStatus::kStopIterationNoBuffer;
}

http::FilterTrailersStatus Router::decodeTrailers(HeaderMap& trailers) {
  request_complete_ = true;
  request_trailers_ = trailers;
  if (!shadows_.empty()) sendShadows();
  if (timeout_.count() > 0 && !global_timer_) {
    global_timer_ = callbacks_->eventLoop().createTimer([this] { onGlobalTimeout(); });
    global_timer_->enable(timeout_);
  }
  if (upstream_) upstream_->acceptTrailers(*request_trailers_);
  return http::FilterTrailersStatus::kStopIteration;
}

void Router::onDestroy() {
  destroyed_ = true;
  if (global_timer_) global_timer_->disable();
  if (retry_timer_) retry_timer_->disable();
  releaseRetry();
  if (upstream_) {
    // The client went away (or the stream ended): abandon the attempt.
    if (!upstream_->responseStarted() || !request_complete_) {
      cluster_->info()->stats->upstream_rq_tx_reset.inc();
    }
    upstream_->reset();
    upstream_.reset();
  }
  if (callbacks_ && route_) callbacks_->removeDownstreamWatermarkCallbacks(*this);
}

void Router::cleanupAttempt() {
  if (upstream_) {
    upstream_->reset();
    // Destroyed later: we may be inside one of its callbacks.
    callbacks_->eventLoop().deferredDelete(std::move(upstream_));
  }
}

bool Router::retryOnStatus(uint32_t status) const {
  if (!retry_policy_) return false;
  const uint32_t on = retry_policy_->retry_on;
  if ((on & RetryOn::k5xx) && status >= 500) return true;
  if ((on & RetryOn::kGatewayError) && status >= 502 && status <= 504) return true;
  if ((on & RetryOn::kRetriable4xx) && status == 409) return true;
  if (on & RetryOn::kRetriableStatusCodes) {
    const auto& codes = retry_policy_->retriable_status_codes;
    if (std::find(codes.begin(), codes.end(), status) != codes.end()) return true;
  }
  return false;
}

bool Router::retryOnReset(StreamResetReason reason) const {
  if (!retry_policy_) return false;
  const uint32_t on = retry_policy_->retry_on;
  if (reason == StreamResetReason::kOverflow) return false;
  if (on & (RetryOn::k5xx | RetryOn::kGatewayError | RetryOn::kReset)) return true;
  if ((on & RetryOn::kConnectFailure) && reason == StreamResetReason::kConnectionFailure) {
    return true;
  }
  if ((on & RetryOn::kRefusedStream) && neverProcessed(reason)) return true;
  if ((on & RetryOn::kResetBeforeRequest) &&
      (reason == StreamResetReason::kConnectionFailure || neverProcessed(reason))) {
    return true;
  }
  return false;
}

bool Router::retryOnGrpcStatus(const HeaderMap& headers) const {
  if (!retry_policy_ || !grpc_request_) return false;
  const uint32_t on = retry_policy_->retry_on;
  constexpr uint32_t kAnyGrpc = RetryOn::kGrpcCancelled | RetryOn::kGrpcDeadlineExceeded |
                                RetryOn::kGrpcInternal | RetryOn::kGrpcResourceExhausted |
                                RetryOn::kGrpcUnavailable;
  if ((on & kAnyGrpc) == 0) return false;
  const std::string* value = headers.get("grpc-status");
  if (value == nullptr) return false;
  const auto code = grpc::parseGrpcStatus(*value);
  if (!code) return false;
  switch (*code) {
    case grpc::StatusCode::kCancelled:
      return (on & RetryOn::kGrpcCancelled) != 0;
    case grpc::StatusCode::kDeadlineExceeded:
      return (on & RetryOn::kGrpcDeadlineExceeded) != 0;
    case grpc::StatusCode::kInternal:
      return (on & RetryOn::kGrpcInternal) != 0;
    case grpc::StatusCode::kResourceExhausted:
      return (on & RetryOn::kGrpcResourceExhausted) != 0;
    case grpc::StatusCode::kUnavailable:
      return (on & RetryOn::kGrpcUnavailable) != 0;
    default:
      return false;
  }
}

std::chrono::milliseconds Router::backoff() {
  // Envoy's fully jittered exponential back-off: uniform in
  // [0, (2^n - 1) * base), capped at max_interval.
  const auto base = retry_policy_->base_interval.count();
  const auto max = retry_policy_->max_interval.count();
  const uint32_t n = std::min<uint32_t>(attempt_count_, 16);
  uint64_t upper = static_cast<uint64_t>(base) * ((1ULL << n) - 1);
  upper = std::min<uint64_t>(upper, static_cast<uint64_t>(max));
  if (upper == 0) return std::chrono::milliseconds(0);
  auto& random = callbacks_->random();
  return std::chrono::milliseconds(random.uniform(upper));
}

bool Router::scheduleRetry() {
  if (retries_left_ == 0) {
    retry_limit_exceeded_ = true;
    return false;
  }
  const auto& info = *cluster_->info();
  // As Envoy: a retry holds its unit of the retries circuit breaker (or of
  // the retry budget) from this decision until the next one or the end of
  // the request, so the limit bounds retries in flight, not just in back-off.
  releaseRetry();
  if (!info.resources->retries.tryInc()) {
    info.stats->upstream_rq_retry_overflow.inc();
    return false;
  }
  holds_retry_ = true;
  --retries_left_;
  info.stats->upstream_rq_retry.inc();
  cleanupAttempt();
  retry_timer_ = callbacks_->eventLoop().createTimer([this] { doRetry(); });
  retry_timer_->enable(backoff());
  return true;
}

void Router::releaseRetry() {
  if (!holds_retry_) return;
  holds_retry_ = false;
  cluster_->info()->resources->retries.dec();
}

void Router::doRetry() {
  if (destroyed_) return;
  startAttempt();
}

void Router::onPoolFailure(UpstreamRequest& request, PoolFailureReason reason,
                           std::string_view details) {
  StreamResetReason reset = reason == PoolFailureReason::kOverflow
                                ? StreamResetReason::kOverflow
                                : StreamResetReason::kConnectionFailure;
  onUpstreamReset(request, reset, details);
}

void Router::onUpstreamReset(UpstreamRequest& request, StreamResetReason reason,
                             std::string_view details) {
  const auto& od = cluster_->info()->outlier_detection;
  if (od && reason != StreamResetReason::kOverflow && request.host()) {
    upstream::reportLocalOrigin(*od, *request.host(),
                                reason == StreamResetReason::kConnectionFailure
                                    ? upstream::LocalOriginEvent::kConnectFailed
                                    : upstream::LocalOriginEvent::kReset);
  }
  auto& info = callbacks_->streamInfo();
  if (reason != StreamResetReason::kOverflow) info.upstream_transport_failure_reason = details;
  if (request.responseStarted() || response_started_) {
    // Part of the response is already with the client: all we can do is end it.
    info.setResponseFlag(ResponseFlag::kUpstreamConnectionTermination);
    info.response_code_details =
        resetDetails("upstream_reset_after_response_started", reason, details);
    cleanupAttempt();
    callbacks_->resetStream();
    return;
  }
  // A keep-alive connection the upstream closed (a clean FIN, no response
  // byte) just as we reused it: the server timed the idle connection out
  // before it saw the request, so one transparent retry on a fresh
  // connection is safe for idempotent requests (the 503 UC race), whatever
  // the retry policy says. A reset (RST) may come after the server read the
  // request, so only the retry policy may retry that.
  //
  // An HTTP/2 stream above the last_stream_id of a GOAWAY was never seen by
  // the upstream at all (RFC 9113 6.8): one transparent retry, any method.
  const bool goaway_refused = reason == StreamResetReason::kGoAwayRefused;
  if (((reason == StreamResetReason::kConnectionTermination && request.reusedConnection() &&
        details.empty() && isIdempotent(request_headers_->method())) ||
       goaway_refused) &&
      !used_transparent_retry_ && (request_complete_ || buffer_body_for_retry_)) {
    used_transparent_retry_ = true;
    attempted_hosts_.pop_back();  // the same host is fine: it is the connection that died
    cleanupAttempt();
    startAttempt();
    return;
  }
  if (reason != StreamResetReason::kOverflow && retryOnReset(reason) &&
      (request_complete_ || buffer_body_for_retry_) && scheduleRetry()) {
    return;
  }
  replyAfterReset(reason, details);
}

void Router::replyAfterReset(StreamResetReason reason, std::string_view details) {
  auto& info = callbacks_->streamInfo();
  switch (reason) {
    case StreamResetReason::kConnectionFailure:
      info.setResponseFlag(ResponseFlag::kUpstreamConnectionFailure);
      break;
    case StreamResetReason::kOverflow:
      info.setResponseFlag(ResponseFlag::kUpstreamOverflow);
      break;
    case StreamResetReason::kProtocolError:
      info.setResponseFlag(ResponseFlag::kUpstreamProtocolError);
      break;
    case StreamResetReason::kConnectionTermination:
    case StreamResetReason::kLocalReset:
      info.setResponseFlag(ResponseFlag::kUpstreamConnectionTermination);
      break;
    case StreamResetReason::kRemoteReset:
    case StreamResetReason::kRemoteRefusedStream:
    case StreamResetReason::kGoAwayRefused:
      info.setResponseFlag(ResponseFlag::kUpstreamRemoteReset);
      break;
  }
  if (retry_limit_exceeded_) info.setResponseFlag(ResponseFlag::kUpstreamRetryLimitExceeded);
  std::string body = "upstream connect error or disconnect/reset before headers. ";
  body += attempt_count_ > 1 ? "retried and the latest reset reason: " : "reset reason: ";
  body += upstream::resetReasonName(reason);
  if (!details.empty() && reason != StreamResetReason::kOverflow) {
    body += ", transport failure reason: ";
    body += details;
  }
  cleanupAttempt();
  const std::string code_details =
      resetDetails("upstream_reset_before_response_started", reason,
                   reason == StreamResetReason::kOverflow ? std::string_view() : details);
  callbacks_->sendLocalReply(reason == StreamResetReason::kProtocolError ? 502 : 503, body,
                             code_details);
}

void Router::onPerTryTimeout(UpstreamRequest& request) {
  cluster_->info()->stats->upstream_rq_per_try_timeout.inc();
  request.host()->stats().rq_timeout.fetch_add(1, std::memory_order_relaxed);
  if (const auto& od = cluster_->info()->outlier_detection) {
    upstream::reportLocalOrigin(*od, *request.host(), upstream::LocalOriginEvent::kTimeout);
  }
  if (retryOnReset(StreamResetReason::kLocalReset) && scheduleRetry()) return;
  auto& info = callbacks_->streamInfo();
  info.setResponseFlag(ResponseFlag::kUpstreamRequestTimeout);
  if (retry_limit_exceeded_) info.setResponseFlag(ResponseFlag::kUpstreamRetryLimitExceeded);
  cleanupAttempt();
  callbacks_->sendLocalReply(504, "upstream request timeout", "upstream_per_try_timeout");
}

void Router::onGlobalTimeout() {
  cluster_->info()->stats->upstream_rq_timeout.inc();
  if (upstream_ && upstream_->host()) {
    upstream_->host()->stats().rq_timeout.fetch_add(1, std::memory_order_relaxed);
    if (const auto& od = cluster_->info()->outlier_detection) {
      upstream::reportLocalOrigin(*od, *upstream_->host(), upstream::LocalOriginEvent::kTimeout);
    }
  }
  auto& info = callbacks_->streamInfo();
  info.setResponseFlag(ResponseFlag::kUpstreamRequestTimeout);
  if (retry_timer_) retry_timer_->disable();
  releaseRetry();
  cleanupAttempt();
  if (response_started_) {
    info.response_code_details = "upstream_response_timeout";
    callbacks_->resetStream();
    return;
  }
  callbacks_->sendLocalReply(504, "upstream request timeout", "upstream_response_timeout");
}

void Router::onUpstreamHeaders(UpstreamRequest& request, HeaderMap&& headers, bool end_stream) {
  uint32_t status = 0;
  std::string_view s = headers.status();
  std::from_chars(s.data(), s.data() + s.size(), status);
  request.recordResponse(status);
  // gRPC: only a Trailers-Only response (grpc-status in the headers) can be
  // retried; a status in trailers comes after the response started.
  if ((retryOnStatus(status) || retryOnGrpcStatus(headers)) &&
      (request_complete_ || buffer_body_for_retry_)) {
    if (scheduleRetry()) return;
  }
  auto& info = callbacks_->streamInfo();
  if (retry_limit_exceeded_) {
    info.setResponseFlag(ResponseFlag::kUpstreamRetryLimitExceeded);
    cluster_->info()->stats->upstream_rq_retry_limit_exceeded.inc();
  }
  if (attempt_count_ > 1) cluster_->info()->stats->upstream_rq_retry_success.inc();
  response_started_ = true;
  if (!config_->suppress_envoy_headers) {
    headers.set("x-envoy-upstream-service-time", std::to_string(request.elapsed().count()));
  }
  if (route_->virtual_host && route_->virtual_host->include_attempt_count_in_response) {
    headers.set("x-envoy-attempt-count", std::to_string(attempt_count_));
  }
  for (const std::string& cookie : downstream_set_cookies_) headers.add("set-cookie", cookie);
  callbacks_->route().applyResponseHeaderMutations(headers);
  info.response_code_details = "via_upstream";
  if (end_stream) onUpstreamComplete();
  callbacks_->encodeHeaders(std::move(headers), end_stream);
}

void Router::onUpstreamData(network::Buffer& data, bool end_stream) {
  if (!response_started_) return;  // the body of a response we retry instead
  if (end_stream) onUpstreamComplete();
  callbacks_->encodeData(data, end_stream);
}

void Router::onUpstreamTrailers(HeaderMap&& trailers) {
  if (!response_started_) return;
  onUpstreamComplete();
  callbacks_->encodeTrailers(std::move(trailers));
}

void Router::onUpstreamComplete() {
  if (global_timer_) global_timer_->disable();
}

void Router::onAboveWriteBufferHighWatermark() {
  downstream_above_watermark_ = true;
  if (upstream_) upstream_->readDisable(true);
}

void Router::onBelowWriteBufferLowWatermark() {
  downstream_above_watermark_ = false;
  if (upstream_) upstream_->readDisable(false);
}

}  // namespace sheave::router
