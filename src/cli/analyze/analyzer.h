#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/analyze/message.h"
#include "control/model/config_set.h"
#include "control/model/peer_authentication.h"
#include "control/registry/registry_snapshot.h"

namespace sheave::cli {

struct AnalyzeOptions {
  // Where mesh-wide policy lives (PeerAuthentication, AuthorizationPolicy).
  std::string root_namespace = "istio-system";
};

// Checks a whole configuration, as `sheave analyze` does: Istio's analyzer
// messages where Istio has the check, Sheave's SHV checks for the failure
// modes no other analyzer looks for. `registry` is built from the same
// config (with the WorkloadEntries `sheave up` would generate for
// LocalWorkloads). Messages come sorted by file, line and code. Pure: no I/O.
std::vector<AnalysisMessage> analyze(const control::ConfigSet& config,
                                     const control::RegistrySnapshot& registry,
                                     const AnalyzeOptions& options = {});

// --- What the checks share (analyzer.cc); the checks are split by subject
// into networking_checks.cc, security_checks.cc and resilience_checks.cc.

// A workload instance: a WorkloadEntry, with the LocalWorkload it was
// generated from when there is one.
struct AnalyzedWorkload {
  std::string namespace_name;
  std::string name;
  std::map<std::string, std::string> labels;
  std::string service_account;
  std::string address;
  const control::Resource<control::WorkloadEntry>* entry = nullptr;
  const control::Resource<control::LocalWorkload>* local = nullptr;
};

class AnalysisContext {
 public:
  AnalysisContext(const control::ConfigSet& config, const control::RegistrySnapshot& registry,
                  const AnalyzeOptions& options);

  const control::ConfigSet& config() const { return config_; }
  const control::RegistrySnapshot& registry() const { return registry_; }
  const AnalyzeOptions& options() const { return options_; }
  const std::vector<AnalyzedWorkload>& workloads() const { return workloads_; }

  // The workloads a policy's selector picks in `namespace_name`; no selector
  // picks the whole namespace, or the whole mesh in the root namespace.
  std::vector<const AnalyzedWorkload*> selected(
      const std::map<std::string, std::string>* match_labels,
      std::string_view namespace_name) const;
  // The workloads behind a service (its endpoints' WorkloadEntries).
  std::vector<const AnalyzedWorkload*> workloadsOf(const control::Service& service) const;
  // The LocalWorkloads behind a service.
  std::vector<const control::Resource<control::LocalWorkload>*> localWorkloadsOf(
      const control::Service& service) const;
  // A host as written in a resource of namespace_name, or nullptr.
  const control::Service* resolve(std::string_view host, std::string_view namespace_name) const;
  // The effective PeerAuthentication mode of a workload (never kUnset).
  control::MutualTLSMode mtlsMode(const AnalyzedWorkload& workload) const;
  // The DestinationRule for a service's hostname that a client in
  // `client_namespace` uses (its own namespace's first, then the
  // service's, then the root namespace's), or nullptr.
  const control::Resource<control::DestinationRule>* destinationRuleFor(
      const control::Service& service, std::string_view client_namespace) const;
  // The services a LocalWorkload calls: every service named by a host in
  // its command or environment ("http://reviews:9080", "ratings.default").
  std::vector<const control::Service*> callsOf(
      const control::Resource<control::LocalWorkload>& workload) const;
  // VirtualServices that apply to sidecars (the mesh gateway) for a hostname.
  std::vector<const control::Resource<control::VirtualService>*> meshVirtualServicesFor(
      const std::string& hostname) const;

  template <typename Spec>
  void report(const MessageType& type, const control::Resource<Spec>& resource, std::string text) {
    reportOn(type,
             ResourceRef{resource.kind, resource.metadata.namespace_name, resource.metadata.name,
                         resource.source},
             std::move(text));
  }
  void reportOn(const MessageType& type, ResourceRef resource, std::string text);
  std::vector<AnalysisMessage> takeMessages();

 private:
  const control::ConfigSet& config_;
  const control::RegistrySnapshot& registry_;
  const AnalyzeOptions& options_;
  std::vector<AnalyzedWorkload> workloads_;
  std::vector<AnalysisMessage> messages_;
};

void runNetworkingChecks(AnalysisContext& context);
void runSecurityChecks(AnalysisContext& context);
void runResilienceChecks(AnalysisContext& context);

// "app=reviews,version=v4", sorted by key.
std::string formatLabels(const std::map<std::string, std::string>& labels);
// Whether labels carries every key/value of selector (an empty selector
// matches everything).
bool labelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels);

}  // namespace sheave::cli
