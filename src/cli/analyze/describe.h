#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/analyze/analyzer.h"
#include "common/result.h"

namespace sheave::cli {

// What describe prints (`text`), and the same facts as one document for `-o json|yaml`.
struct Description {
  std::string text;
  nlohmann::json doc;
};

// `sheave describe pod NAME`: one workload replica ("productpage-v1-0",
// "productpage-v1-0.default", or a LocalWorkload name for its first replica)
// with its identity and address, the services it belongs to, the
// DestinationRules (and matching subsets), VirtualServices, effective mTLS
// mode, AuthorizationPolicies, RequestAuthentications, Sidecar and Telemetry
// that apply to it, each with file:line, and the analyzer's messages about
// any of them. `messages` is analyze()'s output for the same configuration.
Result<Description> describeWorkload(const AnalysisContext& context, std::string_view name,
                                     const std::vector<AnalysisMessage>& messages);

// `sheave describe service NAME` ("reviews", "reviews.default" or an FQDN):
// hostname, address, ports and protocols, endpoints with the subsets each
// falls in, DestinationRule, the VirtualServices that route to it, and the
// policies on its workloads.
Result<Description> describeService(const AnalysisContext& context, std::string_view name,
                                    const std::vector<AnalysisMessage>& messages);

}  // namespace sheave::cli
