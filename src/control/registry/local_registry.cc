#include "control/registry/local_registry.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

#include "common/logging.h"
#include "control/registry/hostname.h"
#include "control/registry/identity.h"

namespace sheave::control {
namespace {

constexpr std::string_view kExportToAnnotation = "networking.istio.io/exportTo";

template <typename Spec>
ResourceError resourceError(const Resource<Spec>& resource, std::string_view field,
                            const std::string& message) {
  std::string text = resource.source.toString();
  if (!text.empty()) text += ": ";
  if (!field.empty()) text.append(field).append(": ");
  text += message;
  return ResourceError{resource.source, resource.kind, resource.metadata.namespace_name,
                       resource.metadata.name, invalidArgument(std::move(text))};
}

template <typename Spec>
std::string describe(const Resource<Spec>& resource) {
  std::string out =
      resource.kind + " " + resource.metadata.namespace_name + "/" + resource.metadata.name;
  const std::string where = resource.source.toString();
  if (!where.empty()) out += " (" + where + ")";
  return out;
}

bool selects(const std::map<std::string, std::string>& selector,
             const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector) {
    const auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

bool isUnixAddress(std::string_view address) { return address.rfind("unix://", 0) == 0; }

// An address an EDS endpoint can carry as is.
bool isEndpointAddress(std::string_view address) {
  return isIpAddress(address) || isUnixAddress(address);
}

// "10.0.0.1", "2001:db8::1" or a CIDR block "10.0.0.0/24".
bool isAddressOrCidr(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return isIpAddress(text);
  const std::string_view ip = text.substr(0, slash);
  const std::string_view len_text = text.substr(slash + 1);
  int len = -1;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc() || end != len_text.data() + len_text.size() || !isIpAddress(ip)) {
    return false;
  }
  const int max = ip.find(':') == std::string_view::npos ? 32 : 128;
  return len >= 0 && len <= max;
}

std::vector<std::string> splitExportTo(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// The port a workload listens on for one service port: its own mapping by
// the service port's name (WorkloadEntry.ports), else by a named Kubernetes
// targetPort, else the numeric targetPort, else the service port itself.
uint32_t workloadPort(const WorkloadEntry& workload, const ServicePortInfo& port) {
  if (isUnixAddress(workload.address)) return 0;
  if (!port.name.empty()) {
    if (const auto it = workload.ports.find(port.name); it != workload.ports.end()) {
      return it->second;
    }
  }
  if (!port.target_port_name.empty()) {
    if (const auto it = workload.ports.find(port.target_port_name); it != workload.ports.end()) {
      return it->second;
    }
  }
  return port.target_port != 0 ? port.target_port : port.port;
}

template <typename Spec>
bool resourceLess(const Resource<Spec>* a, const Resource<Spec>* b) {
  return std::tie(a->metadata.namespace_name, a->metadata.name) <
         std::tie(b->metadata.namespace_name, b->metadata.name);
}

bool sameErrors(const std::vector<ResourceError>& a, const std::vector<ResourceError>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const ResourceError& x, const ResourceError& y) {
                      return x.error.message() == y.error.message();
                    });
}

class SnapshotBuilder {
 public:
  SnapshotBuilder(const ConfigSet& config, const RegistryOptions& options, Ipv4Range range)
      : options_(options), range_(range) {
    for (const Resource<WorkloadEntry>& workload : config.workload_entries) {
      workloads_by_namespace_[workload.metadata.namespace_name].push_back(&workload);
    }
    for (auto& [ns, workloads] : workloads_by_namespace_) {
      std::sort(workloads.begin(), workloads.end(), resourceLess<WorkloadEntry>);
    }
    // Kubernetes Services first, then ServiceEntries, each by namespace/name:
    // which definition of a contested host wins must not depend on file names.
    std::vector<const Resource<KubernetesService>*> services;
    for (const auto& service : config.services) services.push_back(&service);
    std::sort(services.begin(), services.end(), resourceLess<KubernetesService>);
    for (const auto* service : services) addKubernetesService(*service);

    std::vector<const Resource<ServiceEntry>*> entries;
    for (const auto& entry : config.service_entries) entries.push_back(&entry);
    std::sort(entries.begin(), entries.end(), resourceLess<ServiceEntry>);
    for (const auto* entry : entries) addServiceEntry(*entry);

    allocateVips();
  }

  RegistrySnapshot build(uint64_t version) && {
    // The same problem can be found once per selecting service; report it once.
    std::vector<ResourceError> errors;
    std::set<std::string> seen;
    for (ResourceError& error : errors_) {
      if (seen.insert(error.error.message()).second) errors.push_back(std::move(error));
    }
    return RegistrySnapshot(version, std::move(records_), std::move(errors),
                            options_.domain_suffix);
  }

 private:
  template <typename Spec>
  bool claimHostname(const std::string& hostname, const Resource<Spec>& resource) {
    const auto [it, inserted] = owners_.emplace(hostname, describe(resource));
    if (!inserted) {
      errors_.push_back(resourceError(resource, "",
                                      "host \"" + hostname + "\" is already defined by " +
                                          it->second + "; this definition is ignored"));
    }
    return inserted;
  }

  std::vector<const Resource<WorkloadEntry>*> selectWorkloads(
      const std::string& namespace_name, const std::map<std::string, std::string>& selector) {
    std::vector<const Resource<WorkloadEntry>*> out;
    const auto it = workloads_by_namespace_.find(namespace_name);
    if (it == workloads_by_namespace_.end()) return out;
    for (const auto* workload : it->second) {
      if (selects(selector, workload->spec.labels)) out.push_back(workload);
    }
    return out;
  }

  // One endpoint per service port for a selected WorkloadEntry resource.
  void addWorkloadEndpoints(ServiceRecord& record, const Resource<WorkloadEntry>& workload) {
    const WorkloadEntry& spec = workload.spec;
    // A WorkloadEntry without an address is reached through its network's
    // gateway, which the registry does not model yet.
    if (spec.address.empty()) return;
    if (record.service.resolution == Resolution::kClientSideLb &&
        !isEndpointAddress(spec.address)) {
      errors_.push_back(resourceError(
          workload, "spec.address",
          "\"" + spec.address + "\" is not an IP address or unix:// path, which service \"" +
              record.service.hostname + "\" needs; the endpoint is left out"));
      return;
    }
    for (const ServicePortInfo& port : record.service.ports) {
      Endpoint endpoint = endpointFrom(spec, port, workload.metadata.namespace_name,
                                       /*mesh_workload=*/true);
      endpoint.workload_name = workload.metadata.name;
      record.endpoints.push_back(std::move(endpoint));
    }
  }

  Endpoint endpointFrom(const WorkloadEntry& spec, const ServicePortInfo& port,
                        const std::string& namespace_name, bool mesh_workload) const {
    Endpoint endpoint;
    endpoint.address = spec.address;
    endpoint.port = workloadPort(spec, port);
    endpoint.service_port = port.port;
    endpoint.service_port_name = port.name;
    endpoint.namespace_name = namespace_name;
    endpoint.labels = spec.labels;
    endpoint.network = spec.network;
    endpoint.locality = spec.locality;
    endpoint.weight = spec.weight == 0 ? 1 : spec.weight;
    endpoint.service_account = spec.service_account;
    // Workloads in the mesh run as some service account, "default" unless
    // told otherwise; a host outside the mesh has no mesh identity.
    if (endpoint.service_account.empty() && mesh_workload) {
      endpoint.service_account = std::string(kDefaultServiceAccount);
    }
    if (!endpoint.service_account.empty()) {
      endpoint.identity =
          spiffeIdentity(namespace_name, endpoint.service_account, options_.trust_domain);
    }
    return endpoint;
  }

  void addKubernetesService(const Resource<KubernetesService>& resource) {
    const KubernetesService& spec = resource.spec;
    const std::string& ns = resource.metadata.namespace_name;
    ServiceRecord record;
    Service& service = record.service;
    service.hostname = serviceHostname(resource.metadata.name, ns, options_.domain_suffix);
    service.namespace_name = ns;
    service.resource_name = resource.metadata.name;
    service.origin = ServiceOrigin::kKubernetesService;
    service.source = resource.source;
    service.labels = resource.metadata.labels;
    if (const auto it = resource.metadata.annotations.find(std::string(kExportToAnnotation));
        it != resource.metadata.annotations.end()) {
      service.export_to = splitExportTo(it->second);
    }

    for (const KubernetesServicePort& kport : spec.ports) {
      ServicePortInfo port;
      port.name = kport.name;
      port.port = static_cast<uint32_t>(kport.port);
      port.protocol = protocolForServicePort(kport);
      port.target_port = static_cast<uint32_t>(kport.target_port.number);
      port.target_port_name = kport.target_port.name;
      service.ports.push_back(std::move(port));
    }

    const bool external_name = spec.type == "ExternalName";
    if (external_name) {
      service.resolution = Resolution::kDnsLb;
      service.mesh_external = true;
    } else if (spec.cluster_ip == "None") {
      service.headless = true;
      service.resolution = Resolution::kPassthrough;
    } else {
      std::vector<std::string> ips = spec.cluster_ips;
      if (ips.empty() && !spec.cluster_ip.empty()) ips.push_back(spec.cluster_ip);
      for (const std::string& ip : ips) {
        if (isIpAddress(ip)) {
          service.addresses.push_back(ip);
        } else {
          errors_.push_back(resourceError(resource, "spec.clusterIP",
                                          "\"" + ip + "\" is not an IP address; ignored"));
        }
      }
      if (!service.addresses.empty()) service.vip = service.addresses.front();
    }

    if (!claimHostname(service.hostname, resource)) return;

    if (external_name) {
      if (!spec.external_name.empty()) {
        for (const ServicePortInfo& port : service.ports) {
          Endpoint endpoint;
          endpoint.address = spec.external_name;
          endpoint.port = port.port;
          endpoint.service_port = port.port;
          endpoint.service_port_name = port.name;
          endpoint.namespace_name = ns;
          record.endpoints.push_back(std::move(endpoint));
        }
      }
    } else if (!spec.selector.empty()) {
      // Kubernetes semantics: a Service without a selector selects nothing.
      for (const auto* workload : selectWorkloads(ns, spec.selector)) {
        addWorkloadEndpoints(record, *workload);
      }
    }
    records_.push_back(std::move(record));
  }

  void addServiceEntry(const Resource<ServiceEntry>& resource) {
    const ServiceEntry& spec = resource.spec;
    const std::string& ns = resource.metadata.namespace_name;

    Service base;
    base.namespace_name = ns;
    base.resource_name = resource.metadata.name;
    base.origin = ServiceOrigin::kServiceEntry;
    base.source = resource.source;
    base.labels = resource.metadata.labels;
    base.export_to = spec.export_to;
    base.subject_alt_names = spec.subject_alt_names;
    base.mesh_external = spec.location == ServiceEntryLocation::kMeshExternal;
    switch (spec.resolution) {
      case ServiceEntryResolution::kNone:
        base.resolution = Resolution::kPassthrough;
        break;
      case ServiceEntryResolution::kStatic:
        base.resolution = Resolution::kClientSideLb;
        break;
      case ServiceEntryResolution::kDns:
        base.resolution = Resolution::kDnsLb;
        break;
      case ServiceEntryResolution::kDnsRoundRobin:
        base.resolution = Resolution::kDnsRoundRobin;
        break;
    }
    for (size_t i = 0; i < spec.addresses.size(); ++i) {
      const std::string& address = spec.addresses[i];
      if (isAddressOrCidr(address)) {
        base.addresses.push_back(address);
      } else {
        errors_.push_back(
            resourceError(resource, "spec.addresses[" + std::to_string(i) + "]",
                          "\"" + address + "\" is not an IP address or CIDR block; ignored"));
      }
    }
    if (!base.addresses.empty()) base.vip = base.addresses.front();
    for (const ServicePort& sport : spec.ports) {
      ServicePortInfo port;
      port.name = sport.name;
      port.port = sport.number;
      // ServiceEntry ports declare their protocol; the name carries no meaning.
      port.protocol = parseProtocol(sport.protocol);
      port.target_port = sport.target_port;
      base.ports.push_back(std::move(port));
    }

    // Endpoints are the same for every host of the entry; build them once.
    std::vector<Endpoint> shared;
    for (size_t i = 0; i < spec.endpoints.size(); ++i) {
      const WorkloadEntry& inline_endpoint = spec.endpoints[i];
      if (base.resolution == Resolution::kClientSideLb &&
          !isEndpointAddress(inline_endpoint.address)) {
        errors_.push_back(resourceError(
            resource, "spec.endpoints[" + std::to_string(i) + "].address",
            "\"" + inline_endpoint.address +
                "\" is not an IP address or unix:// path, which resolution STATIC needs; the "
                "endpoint is left out"));
        continue;
      }
      for (const ServicePortInfo& port : base.ports) {
        shared.push_back(endpointFrom(inline_endpoint, port, ns, !base.mesh_external));
      }
    }
    const bool selector = spec.workload_selector.has_value();

    std::set<std::string> seen_hosts;
    for (const std::string& host : spec.hosts) {
      if (!seen_hosts.insert(host).second) continue;
      ServiceRecord record;
      record.service = base;
      record.service.hostname = host;
      if (!claimHostname(host, resource)) continue;
      record.endpoints = shared;
      if (selector) {
        for (const auto* workload : selectWorkloads(ns, spec.workload_selector->match_labels)) {
          addWorkloadEndpoints(record, *workload);
        }
      } else if (spec.endpoints.empty() && !isWildcardHostname(host) &&
                 (base.resolution == Resolution::kDnsLb ||
                  base.resolution == Resolution::kDnsRoundRobin)) {
        // DNS without endpoints: the proxy resolves the host itself.
        for (const ServicePortInfo& port : record.service.ports) {
          Endpoint endpoint;
          endpoint.address = host;
          endpoint.port = port.target_port != 0 ? port.target_port : port.port;
          endpoint.service_port = port.port;
          endpoint.service_port_name = port.name;
          endpoint.namespace_name = ns;
          record.endpoints.push_back(std::move(endpoint));
        }
      }
      records_.push_back(std::move(record));
    }
  }

  // Services that declare no address get one from the range, in hostname
  // order so that collisions resolve the same way every time.
  void allocateVips() {
    VipAllocator allocator(range_);
    for (const ServiceRecord& record : records_) {
      for (const std::string& address : record.service.addresses) allocator.reserve(address);
    }
    std::vector<ServiceRecord*> ordered;
    for (ServiceRecord& record : records_) ordered.push_back(&record);
    std::sort(ordered.begin(), ordered.end(), [](const ServiceRecord* a, const ServiceRecord* b) {
      return a->service.hostname < b->service.hostname;
    });
    for (ServiceRecord* record : ordered) {
      Service& service = record->service;
      // As Istio: no VIP for headless services, NONE resolution (the caller's
      // own destination address is used) or wildcard hosts (no single name).
      if (!service.vip.empty() || service.headless ||
          service.resolution == Resolution::kPassthrough || isWildcardHostname(service.hostname)) {
        continue;
      }
      std::optional<std::string> vip = allocator.allocate(service.hostname);
      if (!vip) {
        std::string message = service.source.toString();
        if (!message.empty()) message += ": ";
        message += "the VIP range " + range_.toString() + " is exhausted; host \"" +
                   service.hostname + "\" gets no VIP";
        const char* kind =
            service.origin == ServiceOrigin::kServiceEntry ? "ServiceEntry" : "Service";
        errors_.push_back(ResourceError{service.source, kind, service.namespace_name,
                                        service.resource_name,
                                        invalidArgument(std::move(message))});
        continue;
      }
      service.vip = std::move(*vip);
      service.vip_allocated = true;
    }
  }

  const RegistryOptions& options_;
  const Ipv4Range range_;
  std::map<std::string, std::vector<const Resource<WorkloadEntry>*>> workloads_by_namespace_;
  std::map<std::string, std::string> owners_;  // hostname -> the resource that defined it
  std::vector<ServiceRecord> records_;
  std::vector<ResourceError> errors_;
};

}  // namespace

Result<RegistrySnapshot> buildRegistrySnapshot(const ConfigSet& config,
                                               const RegistryOptions& options, uint64_t version) {
  SHEAVE_ASSIGN_OR_RETURN(const Ipv4Range range, Ipv4Range::parse(options.vip_range));
  return SnapshotBuilder(config, options, range).build(version);
}

Result<std::unique_ptr<LocalRegistry>> LocalRegistry::create(RegistryOptions options) {
  SHEAVE_ASSIGN_OR_RETURN(const Ipv4Range range, Ipv4Range::parse(options.vip_range));
  if (options.domain_suffix.empty()) return invalidArgument("the domain suffix must not be empty");
  if (options.trust_domain.empty()) return invalidArgument("the trust domain must not be empty");
  return std::unique_ptr<LocalRegistry>(new LocalRegistry(std::move(options), range));
}

LocalRegistry::LocalRegistry(RegistryOptions options, Ipv4Range range)
    : options_(std::move(options)),
      range_(range),
      snapshot_(std::make_shared<const RegistrySnapshot>(
          0, std::vector<ServiceRecord>{}, std::vector<ResourceError>{}, options_.domain_suffix)) {}

RegistryChange LocalRegistry::update(const ConfigSet& config) {
  std::lock_guard update_lock(update_mutex_);
  std::shared_ptr<const RegistrySnapshot> previous = snapshot();
  auto next = std::make_shared<const RegistrySnapshot>(
      SnapshotBuilder(config, options_, range_).build(previous->version() + 1));
  RegistryChange change = diffSnapshots(previous, next);
  if (change.empty() && sameErrors(previous->errors(), next->errors())) {
    // Nothing a consumer could see changed: keep the version (and the old snapshot).
    change.current = previous;
    return change;
  }
  std::vector<std::shared_ptr<ChangeHandler>> handlers;
  {
    std::lock_guard lock(mutex_);
    snapshot_ = next;
    for (const auto& [id, handler] : handlers_) handlers.push_back(handler);
  }
  if (!change.empty()) {
    SHEAVE_LOG_DEBUG("registry v{}: {} added, {} removed, {} updated, {} endpoint changes",
                     next->version(), change.added.size(), change.removed.size(),
                     change.updated.size(), change.endpoints_changed.size());
    for (const auto& handler : handlers) (*handler)(change);
  }
  return change;
}

std::shared_ptr<const RegistrySnapshot> LocalRegistry::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

Registry::HandlerId LocalRegistry::addChangeHandler(ChangeHandler handler) {
  std::lock_guard lock(mutex_);
  const HandlerId id = next_handler_id_++;
  handlers_.emplace_back(id, std::make_shared<ChangeHandler>(std::move(handler)));
  return id;
}

void LocalRegistry::removeChangeHandler(HandlerId id) {
  std::lock_guard lock(mutex_);
  std::erase_if(handlers_, [id](const auto& entry) { return entry.first == id; });
}

}  // namespace sheave::control
