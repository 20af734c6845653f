#pragma once

#include <array>
#include <string_view>

#include "common/xds_type_urls.h"

namespace sheave::control::xds {

// Envoy's v3 resource type URLs (defined once for the server and the proxy's client).
using sheave::xds::kClusterType;
using sheave::xds::kEndpointType;
using sheave::xds::kListenerType;
using sheave::xds::kRouteType;
using sheave::xds::kSecretType;

// The order in which one push goes out on a connection. Envoy's xDS protocol
// asks for clusters before the endpoints that fill them, both before the
// listeners that route to them, and listeners before their route
// configurations, so a proxy never activates a reference it cannot resolve.
// Secrets go last as in Istio: Envoy keeps a cluster or listener warming until
// the secrets it names arrive, so their position does not make traffic fail.
inline constexpr std::array<std::string_view, 5> kPushOrder = {
    kClusterType, kEndpointType, kListenerType, kRouteType, kSecretType};

// Types whose state-of-the-world response is the whole set: a resource missing
// from a response is deleted by the client. For the others a response may
// carry only some of the subscribed resources.
inline constexpr bool isFullStateType(std::string_view type_url) {
  return type_url == kListenerType || type_url == kClusterType;
}

inline constexpr bool isKnownType(std::string_view type_url) {
  for (std::string_view t : kPushOrder) {
    if (t == type_url) {
      return true;
    }
  }
  return false;
}

// Position in kPushOrder; types outside it sort last.
inline constexpr size_t pushRank(std::string_view type_url) {
  for (size_t i = 0; i < kPushOrder.size(); ++i) {
    if (kPushOrder[i] == type_url) {
      return i;
    }
  }
  return kPushOrder.size();
}

// The short name used in logs and metrics (Istio's "cds", "eds", ...).
inline constexpr std::string_view shortTypeName(std::string_view type_url) {
  if (type_url == kListenerType) return "lds";
  if (type_url == kRouteType) return "rds";
  if (type_url == kClusterType) return "cds";
  if (type_url == kEndpointType) return "eds";
  if (type_url == kSecretType) return "sds";
  return "unknown";
}

}  // namespace sheave::control::xds
