#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "control/xds/resource_provider.h"
#include "control/xds/xds_status.h"

namespace grpc {
class Server;
class ServerCredentials;
class Service;
}  // namespace grpc

namespace sheave::control::xds {

class ServerCore;
class AdsService;

struct XdsOptions {
  // Istio's PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX.
  std::chrono::milliseconds debounce_after{100};
  std::chrono::milliseconds debounce_max{1000};
  // Streams one peer IP may hold open at once; 0 = no limit. Simulated
  // proxies in the benchmark and a local mesh share one address, so the
  // default does not limit.
  size_t max_streams_per_peer = 0;
};

// The ADS server: envoy.service.discovery.v3.AggregatedDiscoveryService, SotW
// and delta, over gRPC's callback API (no thread per stream). Generation runs
// on one push thread; see README.md for the state machine and threading.
class XdsServer {
 public:
  XdsServer(ResourceProvider& provider, XdsOptions options = {});
  ~XdsServer();
  XdsServer(const XdsServer&) = delete;
  XdsServer& operator=(const XdsServer&) = delete;

  // Another gRPC service on the same port (Istio serves its CA on the xDS port); before start().
  // Not owned; must outlive the server.
  void addService(grpc::Service* service) { extra_services_.push_back(service); }
  // Listens on `address` ("127.0.0.1:15010", "127.0.0.1:0", "[::1]:0"); plaintext unless
  // `credentials` (TLS, Istio's 15012) are given.
  Status start(const std::string& address,
               std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);
  // The bound port, useful after start() with port 0.
  int port() const { return port_; }
  // Closes every stream and stops the push thread; the provider is not called
  // after it returns. Idempotent.
  void stop();

  // Asks for a push; thread-safe, returns at once. Configuration requests
  // are debounced, endpoint-only ones go out immediately.
  void push(PushRequest request);

  std::vector<ConnectionStatus> connections() const;
  XdsStats stats() const;

 private:
  std::shared_ptr<ServerCore> core_;
  std::unique_ptr<AdsService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<grpc::Service*> extra_services_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace sheave::control::xds
