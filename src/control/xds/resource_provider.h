#pragma once

#include <google/protobuf/any.pb.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "envoy/config/core/v3/base.pb.h"

namespace sheave::control::xds {

// Why a push happens (Istio's PushRequest). Requests that arrive while a push
// waits are merged into one.
struct PushRequest {
  // A configuration change; false means only endpoints changed (EDS), which
  // goes out at once instead of waiting for the configuration debounce.
  bool full = true;
  // Hostnames whose endpoints changed, for endpoint-only pushes.
  std::set<std::string> services;
  std::string reason;
  // When the change was seen, for convergence-time metrics. A default value
  // means unknown; push() then stamps it.
  std::chrono::steady_clock::time_point start{};

  // Folds `other` in: full if either is, the union of services, both reasons,
  // the earlier start (convergence is measured from the first change).
  void merge(const PushRequest& other);
};

// One resource as it goes on the wire. `resource` is packed by the provider;
// its serialized bytes are hashed to tell which resources changed, so the
// provider should serialize deterministically.
struct NamedResource {
  std::string name;
  google::protobuf::Any resource;
};

// What a connecting proxy proved, for the provider to decide who it is. The node it sends is
// only a hint: identity comes from these.
struct PeerCredentials {
  std::string address;  // "ipv4:127.0.0.1:40000"-style peer, for logs and Istio's IP lookup
  // The client certificate chain (PEM) that the TLS handshake verified; empty on plaintext or
  // without a client certificate.
  std::vector<std::string> cert_chain_pem;
  std::string bearer_token;  // from `authorization: Bearer ...`; empty when not sent
};

// The provider's per-proxy state (who the proxy is, what it may see). The
// server holds it for the life of the stream and passes it back.
class ProxyHandle {
 public:
  virtual ~ProxyHandle() = default;
};

// What the control plane implements for the ADS server. It knows nothing of
// gRPC. The server calls every method from its one push thread, never
// concurrently, so an implementation needs no locking of its own.
class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;

  // First request of a stream: identify the proxy from its Node and what it proved. An error
  // closes the stream with the error's message: UNAUTHENTICATED / PERMISSION_DENIED for those
  // codes, INVALID_ARGUMENT otherwise.
  virtual Result<std::shared_ptr<ProxyHandle>> connect(const envoy::config::core::v3::Node& node,
                                                       const PeerCredentials& peer) = 0;

  // Resources of one type for one proxy; `names` are the subscribed names,
  // empty for a wildcard subscription. Names that do not exist are left out.
  // An error closes this proxy's stream; other proxies are unaffected.
  virtual Result<std::vector<NamedResource>> generate(ProxyHandle& proxy, std::string_view type_url,
                                                      const std::vector<std::string>& names,
                                                      const PushRequest& request) = 0;

  // Whether a push may change this type for this proxy; false skips the
  // generation work.
  virtual bool affects(ProxyHandle& proxy, std::string_view type_url,
                       const PushRequest& request) = 0;

  // Called once per debounced push, before any generate() for it: the place
  // to build the push context the following generate() calls read.
  virtual void beginPush(const PushRequest& request) = 0;
};

}  // namespace sheave::control::xds
