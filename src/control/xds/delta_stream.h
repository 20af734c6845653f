#pragma once

#include <map>
#include <set>
#include <string>

#include "control/xds/ads_stream.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace sheave::control::xds {

// DeltaAggregatedResources: incremental ADS. The server tracks which version
// of each resource the client holds and sends only the difference.
class DeltaStream final : public AdsStream<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                                           envoy::service::discovery::v3::DeltaDiscoveryResponse> {
 public:
  using AdsStream::AdsStream;

 private:
  struct TypeState {
    TypeBook book;
    bool wildcard = false;
    std::set<std::string> names;
    // What the client holds, as far as we know: name -> version (the hash
    // of the serialized resource, in hex).
    std::map<std::string, std::string> client_versions;
  };

  void handleRequest(envoy::service::discovery::v3::DeltaDiscoveryRequest& request,
                     Clock::time_point received) override;
  void handlePush(const PushRequest& push) override;
  void fillTypes(std::vector<TypeStatus>& types) const override;

  // `announce` are names just subscribed: those that do not exist are
  // reported in removed_resources, Envoy's way of saying "no such resource".
  bool respond(const std::string& type_url, TypeState& state, const PushRequest& push, bool force,
               const std::set<std::string>& announce, std::optional<Clock::time_point> push_start);

  std::map<std::string, TypeState> types_;
};

}  // namespace sheave::control::xds
