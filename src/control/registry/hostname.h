#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sheave::control {

inline constexpr std::string_view kDefaultDomainSuffix = "cluster.local";

// The FQDN of a Kubernetes Service: "<name>.<namespace>.svc.<suffix>".
std::string serviceHostname(std::string_view name, std::string_view namespace_name,
                            std::string_view domain_suffix = kDefaultDomainSuffix);

// Istio's short-name rule for hosts in config (VirtualService, DestinationRule,
// Sidecar, ...): a name without a dot is relative to the namespace of the
// resource that wrote it ("reviews" in "default" is
// "reviews.default.svc.cluster.local"). Names with a dot, "*", wildcards and
// IP literals are already absolute and come back unchanged, which is why
// Istio recommends FQDNs.
std::string resolveHostname(std::string_view name, std::string_view namespace_name,
                            std::string_view domain_suffix = kDefaultDomainSuffix);

// The hostnames a name could mean to a client in namespace_name, most specific
// first, as Kubernetes' DNS search path (`<ns>.svc.<suffix> svc.<suffix>
// <suffix>`) would try them: "reviews.default" -> {"reviews.default",
// "reviews.default.svc.cluster.local", "reviews.default.cluster.local"}. A
// single label gives only resolveHostname()'s answer; a wildcard or IP only
// itself. Used to look a name up in the registry (RegistrySnapshot::resolve).
std::vector<std::string> hostnameCandidates(std::string_view name, std::string_view namespace_name,
                                            std::string_view domain_suffix = kDefaultDomainSuffix);

// "*" or "*.example.com".
bool isWildcardHostname(std::string_view name);

// An IPv4 or IPv6 literal (no port, no brackets, no CIDR).
bool isIpAddress(std::string_view text);

}  // namespace sheave::control
