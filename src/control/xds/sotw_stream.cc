#include "control/xds/sotw_stream.h"

#include <algorithm>

namespace sheave::control::xds {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

namespace {

// Splits a request's names into the named set and whether "*" was among them.
std::pair<std::set<std::string>, bool> requestedNames(const DiscoveryRequest& request) {
  std::set<std::string> names;
  bool star = false;
  for (const auto& n : request.resource_names()) {
    if (n == "*") {
      star = true;
    } else {
      names.insert(n);
    }
  }
  return {std::move(names), star};
}

}  // namespace

void SotwStream::handleRequest(DiscoveryRequest& request, Clock::time_point received) {
  const std::string& type_url = request.type_url();
  if (!checkType(type_url)) {
    return;
  }
  auto [names, star] = requestedNames(request);
  auto it = types_.find(type_url);
  if (it == types_.end()) {
    // First request for this type on this stream (a new subscription or a
    // reconnect): always answered, whatever nonce or version it carries.
    TypeState fresh;
    fresh.legacy_wildcard = request.resource_names().empty();
    fresh.wildcard = fresh.legacy_wildcard || star;
    fresh.names = std::move(names);
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      it = types_.emplace(type_url, std::move(fresh)).first;
    }
    PushRequest initial;
    initial.reason = "initial request";
    initial.start = received;
    respond(type_url, it->second, initial, true, std::nullopt);
    return;
  }
  TypeState& state = it->second;
  if (request.response_nonce() != state.book.sent_nonce) {
    // Envoy's rule: a request that does not answer the latest response is
    // stale, the client will send another after reading that response. A
    // nonce we never sent is treated the same way.
    core_->updateStats([](XdsStats& s) { s.stale_requests++; });
    SHEAVE_LOG_DEBUG("xds: {} sent a stale nonce '{}' for {} (latest '{}'); ignored", proxy_id_,
                     request.response_nonce(), shortTypeName(type_url), state.book.sent_nonce);
    return;
  }
  bool wildcard = star || (request.resource_names().empty() && state.legacy_wildcard);
  bool changed = wildcard != state.wildcard || names != state.names;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    noteAnswer(state.book, type_url, request.has_error_detail() ? &request.error_detail() : nullptr,
               received);
    if (changed) {
      if (!request.resource_names().empty()) {
        state.legacy_wildcard = false;
      }
      state.wildcard = wildcard;
      // Forget the hashes of names no longer watched, so a later
      // resubscription sends them again.
      if (!wildcard) {
        for (auto h = state.sent.begin(); h != state.sent.end();) {
          h = names.count(h->first) != 0 ? std::next(h) : state.sent.erase(h);
        }
      }
      state.names = std::move(names);
    }
  }
  if (changed) {
    PushRequest resubscribe;
    resubscribe.reason = "subscription change";
    resubscribe.start = received;
    respond(type_url, state, resubscribe, true, std::nullopt);
  }
}

void SotwStream::handlePush(const PushRequest& push) {
  for (std::string_view type : kPushOrder) {
    auto it = types_.find(std::string(type));
    if (it == types_.end()) {
      continue;  // never subscribed on this stream
    }
    if (!core_->provider().affects(*proxy_, type, push)) {
      continue;
    }
    if (!respond(it->first, it->second, push, false, push.start)) {
      return;
    }
  }
}

bool SotwStream::respond(const std::string& type_url, TypeState& state, const PushRequest& push,
                         bool force, std::optional<Clock::time_point> push_start) {
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

  std::unordered_map<std::string, uint64_t> hashes;
  hashes.reserve(resources.size());
  for (const auto& r : resources) {
    hashes[r.name] = hashResource(r.resource);
  }
  const bool full_state = isFullStateType(type_url);
  std::vector<const NamedResource*> out;
  if (full_state) {
    // Listeners and clusters: any response is the whole set, and a resource
    // left out is deleted, so send all or (nothing changed) nothing.
    if (force || hashes != state.sent) {
      for (const auto& r : resources) {
        out.push_back(&r);
      }
    } else {
      return true;
    }
  } else {
    // Routes, endpoints, secrets: a response may carry a subset, so a push
    // carries only what changed; an answer to a request carries everything.
    for (const auto& r : resources) {
      auto prev = state.sent.find(r.name);
      if (force || prev == state.sent.end() || prev->second != hashes[r.name]) {
        out.push_back(&r);
      }
    }
    if (out.empty() && !force) {
      return true;
    }
  }

  DiscoveryResponse response;
  response.set_type_url(type_url);
  std::string nonce = core_->nextNonce();
  std::string version;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    version = std::to_string(++state.book.version);
    noteSent(state.book, version, nonce, push_start);
    state.sent = std::move(hashes);
  }
  response.set_version_info(version);
  response.set_nonce(nonce);
  response.mutable_resources()->Reserve(static_cast<int>(out.size()));
  for (const NamedResource* r : out) {
    *response.add_resources() = r->resource;
  }
  SHEAVE_LOG_DEBUG("xds: {} {} version {} ({} of {} resources, {})", proxy_id_,
                   shortTypeName(type_url), version, out.size(), resources.size(), push.reason);
  countPush(type_url);
  send(std::move(response));
  return true;
}

void SotwStream::fillTypes(std::vector<TypeStatus>& types) const {
  for (const auto& [type_url, state] : types_) {
    TypeStatus t;
    t.type_url = type_url;
    t.wildcard = state.wildcard;
    t.subscribed_names = state.names.size();
    t.resource_count = state.sent.size();
    fillBook(state.book, t);
    types.push_back(std::move(t));
  }
  std::sort(types.begin(), types.end(), [](const TypeStatus& a, const TypeStatus& b) {
    return pushRank(a.type_url) < pushRank(b.type_url);
  });
}

}  // namespace sheave::control::xds
