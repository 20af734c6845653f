#pragma once

#include <string>
#include <vector>

#include "cli/explain/explain.h"
#include "control/compiler/push_context.h"

namespace sheave::cli {

// A workload whose sidecar would get other xDS resources.
struct ProxyChange {
  std::string proxy;                 // "productpage-v1-0.default"
  std::vector<std::string> changes;  // "RDS 9080 changed", "CDS outbound|...|v4|... added"
};

// A request whose fate differs.
struct RequestChange {
  std::string request;  // "productpage-v1 GET http://reviews:9080/"
  std::string before, after;
};

struct SampleRequest {
  std::string from;  // a workload, as explain's --from
  ExplainRequest request;
  std::string describe() const;
};

struct MeshDiff {
  std::vector<ProxyChange> proxies;
  size_t unchanged_proxies = 0;
  std::vector<RequestChange> requests;
  size_t unchanged_requests = 0;
};

// `sheave diff`: compiles every workload's listeners, routes, clusters and
// endpoints under the `before` and the `after` configuration and compares them
// resource by resource; then runs explain on each sample request under both.
// Workloads are those registered in `after` (and `before`).
MeshDiff diffMeshes(const control::PushContext& before, const control::PushContext& after,
                    const std::vector<SampleRequest>& requests);

// One GET per (LocalWorkload, service it names in its command or environment)
// of `config`: "productpage-v1 GET http://reviews:9080/".
std::vector<SampleRequest> sampleRequests(const control::PushContext& push);

std::string formatMeshDiff(const MeshDiff& diff);

}  // namespace sheave::cli
