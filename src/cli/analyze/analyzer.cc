#include "cli/analyze/analyzer.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "control/compiler/peer_authentication_policy.h"
#include "control/registry/hostname.h"

namespace sheave::cli {

using control::ConfigSet;
using control::RegistrySnapshot;
using control::Resource;
using control::Service;

std::string formatLabels(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ",";
    out += k + "=" + v;
  }
  return out;
}

bool labelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

namespace {

// A WorkloadEntry that `sheave up` generated for replica <index> of a
// LocalWorkload is named "<local workload>-<index>" in its namespace.
const Resource<control::LocalWorkload>* generatingLocalWorkload(
    const ConfigSet& config, const Resource<control::WorkloadEntry>& entry) {
  const std::string& name = entry.metadata.name;
  for (const auto& lw : config.local_workloads) {
    if (lw.metadata.namespace_name != entry.metadata.namespace_name) continue;
    const std::string& base = lw.metadata.name;
    if (name.size() <= base.size() + 1 || name.compare(0, base.size(), base) != 0 ||
        name[base.size()] != '-') {
      continue;
    }
    const std::string index = name.substr(base.size() + 1);
    if (std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return &lw;
    }
  }
  return nullptr;
}

// Pieces of a command line or environment value that could be host names:
// split at separators, with a URL's scheme, user, port and path removed.
std::vector<std::string> hostCandidates(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  auto separator = [](char c) {
    return c == ' ' || c == ',' || c == ';' || c == '\t' || c == '\n' || c == '=' || c == '"' ||
           c == '\'';
  };
  while (i < text.size()) {
    while (i < text.size() && separator(text[i])) ++i;
    size_t j = i;
    while (j < text.size() && !separator(text[j])) ++j;
    std::string_view token = text.substr(i, j - i);
    i = j;
    if (auto scheme = token.find("://"); scheme != std::string_view::npos) {
      token.remove_prefix(scheme + 3);
    }
    if (auto at = token.find('@'); at != std::string_view::npos) token.remove_prefix(at + 1);
    token = token.substr(0, token.find_first_of("/:?#"));
    if (token.empty() || token.front() == '-' || token.front() == '.') continue;
    out.emplace_back(token);
  }
  return out;
}

}  // namespace

AnalysisContext::AnalysisContext(const ConfigSet& config, const RegistrySnapshot& registry,
                                 const AnalyzeOptions& options)
    : config_(config), registry_(registry), options_(options) {
  for (const auto& we : config.workload_entries) {
    workloads_.push_back(AnalyzedWorkload{we.metadata.namespace_name, we.metadata.name,
                                          we.spec.labels, we.spec.service_account, we.spec.address,
                                          &we, generatingLocalWorkload(config, we)});
  }
}

std::vector<const AnalyzedWorkload*> AnalysisContext::selected(
    const std::map<std::string, std::string>* match_labels, std::string_view namespace_name) const {
  std::vector<const AnalyzedWorkload*> out;
  const bool mesh_wide = namespace_name == options_.root_namespace &&
                         (match_labels == nullptr || match_labels->empty());
  for (const auto& w : workloads_) {
    if (!mesh_wide && w.namespace_name != namespace_name) continue;
    if (match_labels != nullptr && !labelsMatch(*match_labels, w.labels)) continue;
    out.push_back(&w);
  }
  return out;
}

std::vector<const AnalyzedWorkload*> AnalysisContext::workloadsOf(const Service& service) const {
  std::set<std::pair<std::string, std::string>> names;
  for (const auto& e : registry_.endpoints(service.hostname)) {
    if (!e.workload_name.empty()) names.emplace(e.namespace_name, e.workload_name);
  }
  std::vector<const AnalyzedWorkload*> out;
  for (const auto& w : workloads_) {
    if (names.count({w.namespace_name, w.name}) > 0) out.push_back(&w);
  }
  return out;
}

std::vector<const Resource<control::LocalWorkload>*> AnalysisContext::localWorkloadsOf(
    const Service& service) const {
  std::vector<const Resource<control::LocalWorkload>*> out;
  for (const auto* w : workloadsOf(service)) {
    if (w->local != nullptr && std::find(out.begin(), out.end(), w->local) == out.end()) {
      out.push_back(w->local);
    }
  }
  return out;
}

const Service* AnalysisContext::resolve(std::string_view host,
                                        std::string_view namespace_name) const {
  return registry_.resolve(host, namespace_name);
}

control::MutualTLSMode AnalysisContext::mtlsMode(const AnalyzedWorkload& workload) const {
  return control::PeerAuthenticationPolicy::forWorkload(config_.peer_authentications,
                                                        options_.root_namespace,
                                                        workload.namespace_name, workload.labels)
      .mode();
}

const Resource<control::DestinationRule>* AnalysisContext::destinationRuleFor(
    const Service& service, std::string_view client_namespace) const {
  const std::string namespaces[] = {std::string(client_namespace), service.namespace_name,
                                    options_.root_namespace};
  for (const auto& ns : namespaces) {
    for (const auto& dr : config_.destination_rules) {
      if (dr.metadata.namespace_name != ns) continue;
      if (control::resolveHostname(dr.spec.host, dr.metadata.namespace_name,
                                   registry_.domainSuffix()) == service.hostname) {
        return &dr;
      }
    }
  }
  return nullptr;
}

std::vector<const Service*> AnalysisContext::callsOf(
    const Resource<control::LocalWorkload>& workload) const {
  std::vector<std::string> texts = workload.spec.command;
  for (const auto& [_, value] : workload.spec.env) texts.push_back(value);
  std::vector<const Service*> out;
  for (const auto& text : texts) {
    for (const auto& host : hostCandidates(text)) {
      const Service* s = registry_.resolve(host, workload.metadata.namespace_name);
      if (s != nullptr && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
  }
  return out;
}

std::vector<const Resource<control::VirtualService>*> AnalysisContext::meshVirtualServicesFor(
    const std::string& hostname) const {
  std::vector<const Resource<control::VirtualService>*> out;
  for (const auto& vs : config_.virtual_services) {
    const auto& gws = vs.spec.gateways;
    if (!gws.empty() && std::find(gws.begin(), gws.end(), "mesh") == gws.end()) continue;
    for (const auto& h : vs.spec.hosts) {
      if (control::resolveHostname(h, vs.metadata.namespace_name, registry_.domainSuffix()) ==
          hostname) {
        out.push_back(&vs);
        break;
      }
    }
  }
  return out;
}

void AnalysisContext::reportOn(const MessageType& type, ResourceRef resource, std::string text) {
  messages_.push_back(AnalysisMessage{&type, std::move(resource), std::move(text)});
}

std::vector<AnalysisMessage> AnalysisContext::takeMessages() { return std::move(messages_); }

std::vector<AnalysisMessage> analyze(const ConfigSet& config, const RegistrySnapshot& registry,
                                     const AnalyzeOptions& options) {
  AnalysisContext context(config, registry, options);
  for (const auto& e : config.errors) {
    context.reportOn(messages::kSchemaValidationError,
                     ResourceRef{e.kind, e.namespace_name, e.name, e.source},
                     "Schema validation error: " + e.error.message());
  }
  for (const auto& e : registry.errors()) {
    context.reportOn(messages::kSchemaValidationError,
                     ResourceRef{e.kind, e.namespace_name, e.name, e.source},
                     "Schema validation error: " + e.error.message());
  }
  runNetworkingChecks(context);
  runSecurityChecks(context);
  runResilienceChecks(context);
  auto out = context.takeMessages();
  std::stable_sort(out.begin(), out.end(), [](const AnalysisMessage& a, const AnalysisMessage& b) {
    return std::tie(a.resource.source.file, a.resource.source.line, a.type->code) <
           std::tie(b.resource.source.file, b.resource.source.line, b.type->code);
  });
  return out;
}

}  // namespace sheave::cli
