#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/model/authorization_policy.h"
#include "control/model/destination_rule.h"
#include "control/model/gateway.h"
#include "control/model/kubernetes.h"
#include "control/model/local_workload.h"
#include "control/model/peer_authentication.h"
#include "control/model/request_authentication.h"
#include "control/model/resource.h"
#include "control/model/service_entry.h"
#include "control/model/sidecar.h"
#include "control/model/telemetry.h"
#include "control/model/virtual_service.h"
#include "control/model/workload_entry.h"

namespace sheave::control {

// Every resource loaded from a set of YAML files, by kind, in load order
// (files sorted by path, then document order), plus the resources that were
// rejected. A rejected resource is absent from the typed lists; everything
// else still applies.
struct ConfigSet {
  std::vector<Resource<VirtualService>> virtual_services;
  std::vector<Resource<DestinationRule>> destination_rules;
  std::vector<Resource<ServiceEntry>> service_entries;
  std::vector<Resource<WorkloadEntry>> workload_entries;
  std::vector<Resource<Sidecar>> sidecars;
  std::vector<Resource<Gateway>> gateways;
  std::vector<Resource<PeerAuthentication>> peer_authentications;
  std::vector<Resource<AuthorizationPolicy>> authorization_policies;
  std::vector<Resource<RequestAuthentication>> request_authentications;
  std::vector<Resource<Telemetry>> telemetries;
  std::vector<Resource<KubernetesService>> services;
  std::vector<Resource<KubernetesNamespace>> namespaces;
  std::vector<Resource<LocalWorkload>> local_workloads;  // for `sheave up` only

  std::vector<ResourceError> errors;

  // Number of accepted resources, all kinds together.
  size_t resourceCount() const;

  // Appends other's resources and errors. A resource whose kind, namespace
  // and name are already present is rejected into errors ("duplicate ...,
  // first defined at file:line"); the first one wins.
  void merge(ConfigSet&& other);
};

// Parses a multi-document YAML text ("---" separated). source_name is the
// file name used in locations and messages. Never fails as a whole: each
// document either becomes a typed resource or a ResourceError, including a
// document that is not valid YAML.
ConfigSet parseDocuments(std::string_view text, std::string_view source_name);

// Reads and parses one file. Fails only when the file cannot be read.
Result<ConfigSet> loadFile(const std::filesystem::path& path);

// Every *.yaml / *.yml file below dir (recursively, sorted by path), merged.
// Fails only when dir is not a readable directory; an unreadable file inside
// becomes a ResourceError.
Result<ConfigSet> loadDirectory(const std::filesystem::path& dir);

}  // namespace sheave::control
