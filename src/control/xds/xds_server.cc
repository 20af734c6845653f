#include "control/xds/xds_server.h"

#include <grpcpp/grpcpp.h>

#include "control/xds/delta_stream.h"
#include "control/xds/server_core.h"
#include "control/xds/sotw_stream.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace sheave::control::xds {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

class AdsService final : public AggregatedDiscoveryService::CallbackService {
 public:
  explicit AdsService(std::shared_ptr<ServerCore> core) : core_(std::move(core)) {}

  grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse>* StreamAggregatedResources(
      grpc::CallbackServerContext* context) override {
    auto stream = std::make_shared<SotwStream>(core_, context, false);
    stream->start();
    return stream.get();
  }

  grpc::ServerBidiReactor<DeltaDiscoveryRequest, DeltaDiscoveryResponse>* DeltaAggregatedResources(
      grpc::CallbackServerContext* context) override {
    auto stream = std::make_shared<DeltaStream>(core_, context, true);
    stream->start();
    return stream.get();
  }

 private:
  std::shared_ptr<ServerCore> core_;
};

XdsServer::XdsServer(ResourceProvider& provider, XdsOptions options)
    : core_(std::make_shared<ServerCore>(provider, options)),
      service_(std::make_unique<AdsService>(core_)) {}

XdsServer::~XdsServer() { stop(); }

Status XdsServer::start(const std::string& address,
                        std::shared_ptr<grpc::ServerCredentials> credentials) {
  if (server_) {
    return invalidArgument("the xDS server is already started");
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, credentials ? credentials : grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service_.get());
  for (grpc::Service* service : extra_services_) builder.RegisterService(service);
  // Envoy and gRPC clients keep ADS streams open for hours: probe idle
  // connections so dead proxies are noticed, and let clients ping.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return Error(ErrorCode::kUnavailable, "cannot listen for xDS on " + address);
  }
  port_ = port;
  core_->startPushThread();
  return okStatus();
}

void XdsServer::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  // The push thread first: after it stops, nothing calls the provider.
  core_->stopPushThread();
  if (server_) {
    // Cancels the open streams; their reactors finish and are released.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    server_->Wait();
    server_.reset();
  }
}

void XdsServer::push(PushRequest request) { core_->push(std::move(request)); }

std::vector<ConnectionStatus> XdsServer::connections() const { return core_->connections(); }

XdsStats XdsServer::stats() const { return core_->stats(); }

}  // namespace sheave::control::xds
