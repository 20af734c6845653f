#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/random.h"
#include "common/result.h"
#include "envoy/config/core/v3/base.pb.h"
#include "proxy/grpc/async_client.h"
#include "proxy/network/event_loop.h"

namespace google::protobuf {
class Any;
}

namespace sheave::config {

inline constexpr std::string_view kAdsMethod =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

// The client side of ADS, state of the world (Envoy's `api_type: GRPC` for
// ads_config): one gRPC stream to the management server carries every
// subscribed type. Each response is handed to its type's watcher; a watcher
// that accepts it is ACKed with the response's version, one that refuses it
// is NACKed with the error, and the last accepted config stays in force.
// When the stream fails the client keeps what it has and reconnects with
// jittered exponential back-off, asking for the versions it last accepted.
class AdsClient : public grpc::AsyncStreamCallbacks {
 public:
  class Watcher {
   public:
    virtual ~Watcher() = default;
    // Every resource of the type (LDS, CDS) or the subscribed ones that
    // changed (RDS, EDS), unwrapped from envoy.service.discovery.v3.Resource.
    // An error NACKs the response; its message goes to the server.
    virtual Status onConfigUpdate(const std::vector<const google::protobuf::Any*>& resources,
                                  const std::string& version_info) = 0;
  };

  struct Options {
    std::chrono::milliseconds backoff_base{500};
    std::chrono::milliseconds backoff_max{30000};
    grpc::AsyncClientOptions grpc;
  };

  // pick_address: where the management server is right now (a host of the
  // ads_config cluster); nullopt while it has none, which counts as a failed
  // attempt.
  AdsClient(network::EventLoop& loop, envoy::config::core::v3::Node node,
            std::function<std::optional<Address>()> pick_address, RandomGenerator& random,
            Options options);
  ~AdsClient() override;

  // Adds a type to the stream. names empty: wildcard (every resource of the type).
  void subscribe(const std::string& type_url, Watcher& watcher, std::vector<std::string> names);
  // Changes the names of a named subscription (EDS, RDS); sends a request if they changed.
  void updateResourceNames(const std::string& type_url, std::vector<std::string> names);
  void start();

  bool connected() const { return connected_; }
  struct TypeStatus {
    std::string version_info;  // last accepted
    std::string nonce;         // of the last response
    std::string last_error;    // of the last NACK, empty after an ACK
    uint64_t accepted = 0;
    uint64_t rejected = 0;
  };
  const TypeStatus* typeStatus(const std::string& type_url) const;
  void setConnectedCallback(std::function<void(bool)> cb) { on_connected_ = std::move(cb); }

  // grpc::AsyncStreamCallbacks
  void onReceiveInitialMetadata(HeaderMap&& metadata) override;
  void onReceiveMessage(std::string&& message) override;
  void onReceiveTrailingMetadata(HeaderMap&& metadata) override;
  void onRemoteClose(grpc::StatusCode code, std::string message) override;

 private:
  struct Subscription {
    Watcher* watcher = nullptr;
    std::vector<std::string> names;  // empty: wildcard
    TypeStatus status;
  };

  void connect();
  void scheduleReconnect();
  void sendRequest(const std::string& type_url, const std::string* error_detail);

  network::EventLoop& loop_;
  envoy::config::core::v3::Node node_;
  std::function<std::optional<Address>()> pick_address_;
  RandomGenerator& random_;
  Options options_;
  std::map<std::string, Subscription> subscriptions_;
  std::vector<std::string> order_;  // subscription order: the order of the first requests
  std::unique_ptr<grpc::AsyncClient> client_;
  std::unique_ptr<grpc::AsyncStream> stream_;
  std::unique_ptr<network::Timer> retry_timer_;
  std::chrono::milliseconds backoff_{0};
  bool started_ = false;
  bool connected_ = false;  // a response arrived on the current stream
  bool node_sent_ = false;  // the node goes in the first request of a stream only
  std::function<void(bool)> on_connected_;
};

}  // namespace sheave::config
