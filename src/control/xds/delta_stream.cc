#include "control/xds/delta_stream.h"

#include <fmt/format.h>

#include <algorithm>

namespace sheave::control::xds {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;

void DeltaStream::handleRequest(DeltaDiscoveryRequest& request, Clock::time_point received) {
  const std::string& type_url = request.type_url();
  if (!checkType(type_url)) {
    return;
  }
  auto it = types_.find(type_url);
  const bool first = it == types_.end();
  if (first) {
    TypeState fresh;
    // A first request that subscribes to nothing is a wildcard subscription.
    fresh.wildcard = request.resource_names_subscribe().empty();
    // initial_resource_versions: what the client kept from an earlier
    // stream; only resources that differ get sent.
    for (const auto& [name, version] : request.initial_resource_versions()) {
      fresh.client_versions.emplace(name, version);
    }
    std::lock_guard<std::mutex> lock(state_mu_);
    it = types_.emplace(type_url, std::move(fresh)).first;
  }
  TypeState& state = it->second;

  if (!first && !request.response_nonce().empty()) {
    if (request.response_nonce() == state.book.sent_nonce) {
      std::lock_guard<std::mutex> lock(state_mu_);
      noteAnswer(state.book, type_url,
                 request.has_error_detail() ? &request.error_detail() : nullptr, received);
    } else {
      // An answer to an older response says nothing about the current one.
      // Subscription changes in it still count: the client never repeats them.
      core_->updateStats([](XdsStats& s) { s.stale_requests++; });
      SHEAVE_LOG_DEBUG("xds: {} sent a stale nonce '{}' for {} (latest '{}')", proxy_id_,
                       request.response_nonce(), shortTypeName(type_url), state.book.sent_nonce);
    }
  }

  std::set<std::string> added;
  bool wildcard_added = false;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    for (const auto& name : request.resource_names_subscribe()) {
      if (name == "*") {
        wildcard_added = !state.wildcard;
        state.wildcard = true;
      } else if (state.names.insert(name).second) {
        added.insert(name);
      }
    }
    for (const auto& name : request.resource_names_unsubscribe()) {
      if (name == "*") {
        state.wildcard = false;
        // Resources held only through the wildcard are dropped by the client.
        for (auto v = state.client_versions.begin(); v != state.client_versions.end();) {
          v = state.names.count(v->first) != 0 ? std::next(v) : state.client_versions.erase(v);
        }
      } else {
        state.names.erase(name);
        added.erase(name);
        if (!state.wildcard) {
          state.client_versions.erase(name);
        }
      }
    }
  }
  if (first || wildcard_added || !added.empty()) {
    PushRequest subscribe;
    subscribe.reason = first ? "initial request" : "subscription change";
    subscribe.start = received;
    respond(type_url, state, subscribe, first, added, std::nullopt);
  }
}

void DeltaStream::handlePush(const PushRequest& push) {
  for (std::string_view type : kPushOrder) {
    auto it = types_.find(std::string(type));
    if (it == types_.end()) {
      continue;
    }
    if (!core_->provider().affects(*proxy_, type, push)) {
      continue;
    }
    if (!respond(it->first, it->second, push, false, {}, push.start)) {
      return;
    }
  }
}

bool DeltaStream::respond(const std::string& type_url, TypeState& state, const PushRequest& push,
                          bool force, const std::set<std::string>& announce,
                          std::optional<Clock::time_point> push_start) {
  std::vector<std::string> names;
  if (!state.wildcard) {
    names.assign(state.names.begin(), state.names.end());
  }
  std::vector<NamedResource> resources;
  if (state.wildcard || !names.empty()) {
    auto generated = core_->provider().generate(*proxy_, type_url, names, push);
    if (!generated.ok()) {
      failGeneration(type_url, generated.error());
      return false;
    }
    resources = std::move(generated).value();
  }

  DeltaDiscoveryResponse response;
  response.set_type_url(type_url);
  std::map<std::string, std::string> current;
  for (const auto& r : resources) {
    std::string version = fmt::format("{:016x}", hashResource(r.resource));
    auto held = state.client_versions.find(r.name);
    if (held == state.client_versions.end() || held->second != version) {
      auto* out = response.add_resources();
      out->set_name(r.name);
      out->set_version(version);
      *out->mutable_resource() = r.resource;
    }
    current.emplace(r.name, std::move(version));
  }
  std::set<std::string> removed;
  for (const auto& [name, version] : state.client_versions) {
    if (current.count(name) == 0) {
      removed.insert(name);
    }
  }
  for (const auto& name : announce) {
    if (current.count(name) == 0) {
      removed.insert(name);
    }
  }
  for (const auto& name : removed) {
    response.add_removed_resources(name);
  }
  if (!force && response.resources_size() == 0 && response.removed_resources_size() == 0) {
    return true;
  }

  std::string nonce = core_->nextNonce();
  std::string version;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    version = std::to_string(++state.book.version);
    noteSent(state.book, version, nonce, push_start);
    state.client_versions = std::move(current);
  }
  response.set_system_version_info(version);
  response.set_nonce(nonce);
  SHEAVE_LOG_DEBUG("xds: {} delta {} version {} ({} updated, {} removed, {})", proxy_id_,
                   shortTypeName(type_url), version, response.resources_size(),
                   response.removed_resources_size(), push.reason);
  countPush(type_url);
  send(std::move(response));
  return true;
}

void DeltaStream::fillTypes(std::vector<TypeStatus>& types) const {
  for (const auto& [type_url, state] : types_) {
    TypeStatus t;
    t.type_url = type_url;
    t.wildcard = state.wildcard;
    t.subscribed_names = state.names.size();
    t.resource_count = state.client_versions.size();
    fillBook(state.book, t);
    types.push_back(std::move(t));
  }
  std::sort(types.begin(), types.end(), [](const TypeStatus& a, const TypeStatus& b) {
    return pushRank(a.type_url) < pushRank(b.type_url);
  });
}

}  // namespace sheave::control::xds
