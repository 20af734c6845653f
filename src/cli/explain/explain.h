#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "control/compiler/proxy_context.h"
#include "control/compiler/push_context.h"

namespace sheave::cli {

struct ExplainRequest {
  std::string url;  // http://reviews:9080/reviews/1
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ExplainStep {
  std::string title;               // "Outbound route", "Cluster", ...
  std::vector<std::string> lines;  // what decided, with the resource and file:line
};

struct Explanation {
  std::vector<ExplainStep> steps;
  int status = 0;       // what the caller gets: 200 when it reaches the application
  std::string verdict;  // "allowed: ...", "denied: 403 ...", "no route: 404 NR", ...
};

// `sheave explain`: the request walked through the configuration sheave-control
// compiles for the source proxy and for the destination's, with the proxy's
// own matching code (src/match: RouteTable, FilterChainMatcher, RbacEngine):
// outbound route and the VirtualService that wrote it, retries and timeout,
// cluster and DestinationRule, endpoints, mutual TLS, the destination's
// inbound filter chain and its authorization policies, and the verdict.
// `random` picks among weighted clusters as the proxy's random value would.
Result<Explanation> explainRequest(const control::PushContext& push,
                                   const control::ProxyContext& source,
                                   const ExplainRequest& request, uint64_t random);

// The ProxyContext of a registered workload, as if its sidecar (or, for a
// gateway, its router proxy) had connected.
Result<control::ProxyContext> proxyForWorkload(const control::RegistrySnapshot& registry,
                                               const std::string& namespace_name,
                                               const std::string& name, const std::string& address,
                                               bool router = false);

std::string formatExplanation(const Explanation& explanation);

}  // namespace sheave::cli
