#include "proxy/config/ads_client.h"

#include <algorithm>

#include "common/logging.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace sheave::config {
namespace {

constexpr std::string_view kResourceWrapperType =
    "type.googleapis.com/envoy.service.discovery.v3.Resource";

}  // namespace

AdsClient::AdsClient(network::EventLoop& loop, envoy::config::core::v3::Node node,
                     std::function<std::optional<Address>()> pick_address, RandomGenerator& random,
                     Options options)
    : loop_(loop),
      node_(std::move(node)),
      pick_address_(std::move(pick_address)),
      random_(random),
      options_(std::move(options)) {}

AdsClient::~AdsClient() {
  // The stream first: it must not call back into a half-destroyed client.
  stream_.reset();
  client_.reset();
}

void AdsClient::subscribe(const std::string& type_url, Watcher& watcher,
                          std::vector<std::string> names) {
  auto& sub = subscriptions_[type_url];
  const bool fresh = sub.watcher == nullptr;
  sub.watcher = &watcher;
  std::sort(names.begin(), names.end());
  sub.names = std::move(names);
  if (fresh) order_.push_back(type_url);
  if (stream_ != nullptr) sendRequest(type_url, nullptr);
}

void AdsClient::updateResourceNames(const std::string& type_url, std::vector<std::string> names) {
  auto it = subscriptions_.find(type_url);
  if (it == subscriptions_.end()) return;
  std::sort(names.begin(), names.end());
  if (names == it->second.names) return;
  it->second.names = std::move(names);
  if (stream_ != nullptr) sendRequest(type_url, nullptr);
}

void AdsClient::start() {
  if (started_) return;
  started_ = true;
  retry_timer_ = loop_.createTimer([this] { connect(); });
  connect();
}

const AdsClient::TypeStatus* AdsClient::typeStatus(const std::string& type_url) const {
  auto it = subscriptions_.find(type_url);
  return it == subscriptions_.end() ? nullptr : &it->second.status;
}

void AdsClient::connect() {
  stream_.reset();
  auto address = pick_address_();
  if (!address) {
    SHEAVE_LOG_WARN("ads: the management server's cluster has no host yet");
    scheduleReconnect();
    return;
  }
  if (client_ == nullptr || !(client_->address() == *address)) {
    client_ = std::make_unique<grpc::AsyncClient>(loop_, *address, options_.grpc);
  }
  node_sent_ = false;
  stream_ = client_->start(kAdsMethod, *this, HeaderMap(), std::nullopt);
  // The server learns every subscription again, with the versions this
  // client already has, so an unchanged config is not sent twice.
  for (const auto& type_url : order_) sendRequest(type_url, nullptr);
}

void AdsClient::scheduleReconnect() {
  // Full jitter: a fleet of proxies that lost the same server comes back
  // spread over the interval instead of all at once.
  auto base = options_.backoff_base;
  backoff_ = backoff_.count() == 0 ? base : std::min(backoff_ * 2, options_.backoff_max);
  auto delay = std::chrono::milliseconds(
      base.count() / 2 +
      static_cast<int64_t>(random_.next() % static_cast<uint64_t>(backoff_.count() + 1)));
  SHEAVE_LOG_INFO("ads: reconnecting in {} ms", delay.count());
  retry_timer_->enable(delay);
}

void AdsClient::sendRequest(const std::string& type_url, const std::string* error_detail) {
  if (stream_ == nullptr || stream_->closed()) return;
  const auto& sub = subscriptions_[type_url];
  envoy::service::discovery::v3::DiscoveryRequest request;
  if (!node_sent_) {
    *request.mutable_node() = node_;
    node_sent_ = true;
  }
  request.set_type_url(type_url);
  request.set_version_info(sub.status.version_info);
  request.set_response_nonce(sub.status.nonce);
  for (const auto& name : sub.names) request.add_resource_names(name);
  if (error_detail != nullptr) {
    request.mutable_error_detail()->set_code(
        static_cast<int32_t>(grpc::StatusCode::kInvalidArgument));
    request.mutable_error_detail()->set_message(*error_detail);
  }
  if (auto status = stream_->sendMessage(request.SerializeAsString(), false); !status.ok()) {
    SHEAVE_LOG_WARN("ads: cannot send the {} request: {}", type_url, status.error().message());
  }
}

void AdsClient::onReceiveInitialMetadata(HeaderMap&&) {}

void AdsClient::onReceiveMessage(std::string&& message) {
  envoy::service::discovery::v3::DiscoveryResponse response;
  if (!response.ParseFromString(message)) {
    SHEAVE_LOG_WARN("ads: ignoring a DiscoveryResponse that does not decode");
    return;
  }
  if (!connected_) {
    connected_ = true;
    backoff_ = std::chrono::milliseconds(0);
    SHEAVE_LOG_INFO("ads: connected to {}", client_->address().asString());
    if (on_connected_) on_connected_(true);
  }
  auto it = subscriptions_.find(response.type_url());
  if (it == subscriptions_.end()) {
    SHEAVE_LOG_WARN("ads: ignoring a response for unsubscribed type '{}'", response.type_url());
    return;
  }
  auto& sub = it->second;
  sub.status.nonce = response.nonce();
  // Unwrap envoy.service.discovery.v3.Resource; check every resource is of
  // the response's type before the watcher sees any.
  std::vector<envoy::service::discovery::v3::Resource> wrappers;
  wrappers.reserve(response.resources_size());
  std::vector<const google::protobuf::Any*> resources;
  std::string error;
  for (const auto& any : response.resources()) {
    if (any.type_url() == kResourceWrapperType) {
      auto& wrapper = wrappers.emplace_back();
      if (!any.UnpackTo(&wrapper)) {
        error = "a Resource wrapper does not decode";
        break;
      }
      resources.push_back(&wrapper.resource());
    } else {
      resources.push_back(&any);
    }
    if (resources.back()->type_url() != response.type_url()) {
      error = "resource of type '" + resources.back()->type_url() + "' in a '" +
              response.type_url() + "' response";
      break;
    }
  }
  if (error.empty()) {
    auto status = sub.watcher->onConfigUpdate(resources, response.version_info());
    if (!status.ok()) error = status.error().message();
  }
  if (error.empty()) {
    sub.status.version_info = response.version_info();
    sub.status.last_error.clear();
    ++sub.status.accepted;
    sendRequest(response.type_url(), nullptr);
    return;
  }
  // NACK: the version stays the last accepted one.
  ++sub.status.rejected;
  sub.status.last_error = error;
  SHEAVE_LOG_WARN("ads: rejected {} version {}: {}", response.type_url(), response.version_info(),
                  error);
  sendRequest(response.type_url(), &error);
}

void AdsClient::onReceiveTrailingMetadata(HeaderMap&&) {}

void AdsClient::onRemoteClose(grpc::StatusCode code, std::string message) {
  SHEAVE_LOG_WARN("ads: stream closed ({} {}); keeping the last accepted config",
                  grpc::statusName(code), message);
  if (connected_) {
    connected_ = false;
    if (on_connected_) on_connected_(false);
  }
  // The gRPC client allows destroying the stream from its own callback.
  stream_.reset();
  scheduleReconnect();
}

}  // namespace sheave::config
