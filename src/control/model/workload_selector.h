#pragma once

#include <map>
#include <string>

namespace sheave::control {

// istio.type.v1beta1.WorkloadSelector: the workloads (by label) a policy
// applies to. Empty matchLabels selects every workload in the namespace.
struct WorkloadSelector {
  std::map<std::string, std::string> match_labels;
};

// istio.networking.v1.WorkloadSelector (ServiceEntry, Sidecar): the same
// selection, but Istio spells the field `labels` there, not `matchLabels`.
struct NetworkingWorkloadSelector : WorkloadSelector {};

// istio.type.v1beta1.PolicyTargetReference: a policy attached to a Gateway
// API resource or a Service instead of a label selector.
struct PolicyTargetReference {
  std::string group;
  std::string kind;
  std::string name;
  std::string namespace_name;  // "namespace"
};

}  // namespace sheave::control
