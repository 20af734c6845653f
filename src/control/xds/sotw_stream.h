#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "control/xds/ads_stream.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace sheave::control::xds {

// StreamAggregatedResources: state-of-the-world ADS.
class SotwStream final : public AdsStream<envoy::service::discovery::v3::DiscoveryRequest,
                                          envoy::service::discovery::v3::DiscoveryResponse> {
 public:
  using AdsStream::AdsStream;

 private:
  struct TypeState {
    TypeBook book;
    bool wildcard = false;
    // Envoy's legacy wildcard: the first request named nothing. It lasts
    // until the client names resources.
    bool legacy_wildcard = false;
    std::set<std::string> names;
    // Hash of each resource last sent, to send only what changed.
    std::unordered_map<std::string, uint64_t> sent;
  };

  void handleRequest(envoy::service::discovery::v3::DiscoveryRequest& request,
                     Clock::time_point received) override;
  void handlePush(const PushRequest& push) override;
  void fillTypes(std::vector<TypeStatus>& types) const override;

  // Generates and sends one type. `force` sends even when nothing changed
  // (answering a request); otherwise an unchanged type sends nothing.
  // False when the stream was closed by a provider error.
  bool respond(const std::string& type_url, TypeState& state, const PushRequest& push, bool force,
               std::optional<Clock::time_point> push_start);

  std::map<std::string, TypeState> types_;  // written under state_mu_ by the push thread
};

}  // namespace sheave::control::xds
