#pragma once

#include <string>
#include <string_view>

namespace sheave::control {

inline constexpr std::string_view kDefaultTrustDomain = "cluster.local";
inline constexpr std::string_view kDefaultServiceAccount = "default";

// The SPIFFE ID Istio gives a workload:
// "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>". An empty
// service account is Kubernetes' "default" one.
std::string spiffeIdentity(std::string_view namespace_name, std::string_view service_account,
                           std::string_view trust_domain = kDefaultTrustDomain);

}  // namespace sheave::control
