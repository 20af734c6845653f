#include "control/registry/registry_snapshot.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace sheave::control {
namespace {

bool endpointLess(const Endpoint& a, const Endpoint& b) {
  return std::tie(a.service_port, a.address, a.port, a.namespace_name, a.workload_name) <
         std::tie(b.service_port, b.address, b.port, b.namespace_name, b.workload_name);
}

const std::vector<Endpoint>& noEndpoints() {
  static const std::vector<Endpoint> kEmpty;
  return kEmpty;
}

}  // namespace

RegistrySnapshot::RegistrySnapshot(uint64_t version, std::vector<ServiceRecord> records,
                                   std::vector<ResourceError> errors, std::string domain_suffix)
    : version_(version), domain_suffix_(std::move(domain_suffix)), errors_(std::move(errors)) {
  std::stable_sort(records.begin(), records.end(),
                   [](const ServiceRecord& a, const ServiceRecord& b) {
                     return a.service.hostname < b.service.hostname;
                   });
  records.erase(std::unique(records.begin(), records.end(),
                            [](const ServiceRecord& a, const ServiceRecord& b) {
                              return a.service.hostname == b.service.hostname;
                            }),
                records.end());
  services_.reserve(records.size());
  endpoints_.reserve(records.size());
  for (ServiceRecord& record : records) {
    const size_t index = services_.size();
    std::sort(record.service.ports.begin(), record.service.ports.end(),
              [](const ServicePortInfo& a, const ServicePortInfo& b) { return a.port < b.port; });
    std::sort(record.endpoints.begin(), record.endpoints.end(), endpointLess);
    by_hostname_.emplace(record.service.hostname, index);
    std::vector<std::string> keys = record.service.addresses;
    if (!record.service.vip.empty()) keys.push_back(record.service.vip);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (std::string& key : keys) by_address_[std::move(key)].push_back(index);
    services_.push_back(std::move(record.service));
    endpoints_.push_back(std::move(record.endpoints));
  }
}

const Service* RegistrySnapshot::findService(std::string_view hostname) const {
  const auto it = by_hostname_.find(hostname);
  return it == by_hostname_.end() ? nullptr : &services_[it->second];
}

std::vector<const Service*> RegistrySnapshot::findServicesByAddress(
    std::string_view address) const {
  std::vector<const Service*> out;
  const auto it = by_address_.find(address);
  if (it == by_address_.end()) return out;
  // Indices were pushed in hostname order, so the result is sorted already.
  for (const size_t index : it->second) out.push_back(&services_[index]);
  return out;
}

const Service* RegistrySnapshot::resolve(std::string_view name,
                                         std::string_view namespace_name) const {
  for (const std::string& candidate : hostnameCandidates(name, namespace_name, domain_suffix_)) {
    if (const Service* service = findService(candidate)) return service;
  }
  return nullptr;
}

const std::vector<Endpoint>& RegistrySnapshot::endpoints(std::string_view hostname) const {
  const auto it = by_hostname_.find(hostname);
  return it == by_hostname_.end() ? noEndpoints() : endpoints_[it->second];
}

std::vector<Endpoint> RegistrySnapshot::endpoints(std::string_view hostname,
                                                  uint32_t service_port) const {
  std::vector<Endpoint> out;
  for (const Endpoint& endpoint : endpoints(hostname)) {
    if (endpoint.service_port == service_port) out.push_back(endpoint);
  }
  return out;
}

RegistryChange diffSnapshots(std::shared_ptr<const RegistrySnapshot> previous,
                             std::shared_ptr<const RegistrySnapshot> current) {
  RegistryChange change;
  const std::vector<Service>& before = previous->services();
  const std::vector<Service>& after = current->services();
  // Both lists are sorted by hostname: one merge pass.
  size_t i = 0;
  size_t j = 0;
  while (i < before.size() || j < after.size()) {
    if (j == after.size() || (i < before.size() && before[i].hostname < after[j].hostname)) {
      change.removed.push_back(before[i++].hostname);
    } else if (i == before.size() || after[j].hostname < before[i].hostname) {
      change.added.push_back(after[j++].hostname);
    } else {
      const std::string& hostname = after[j].hostname;
      if (!(before[i] == after[j])) {
        change.updated.push_back(hostname);
      } else if (previous->endpoints(hostname) != current->endpoints(hostname)) {
        change.endpoints_changed.push_back(hostname);
      }
      ++i;
      ++j;
    }
  }
  change.previous = std::move(previous);
  change.current = std::move(current);
  return change;
}

}  // namespace sheave::control
