#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/resource.h"
#include "control/registry/hostname.h"
#include "control/registry/service.h"

namespace sheave::control {

// A service and its endpoints, the unit a registry implementation hands to
// RegistrySnapshot.
struct ServiceRecord {
  Service service;
  std::vector<Endpoint> endpoints;
};

// Everything a registry knows at one moment: immutable once built, shared
// by shared_ptr<const RegistrySnapshot> with the compiler and the xDS layer,
// and replaced as a whole on every change. Output order is deterministic:
// services by hostname, endpoints by (service port, address, port, workload).
class RegistrySnapshot {
 public:
  RegistrySnapshot() = default;
  // Sorts and indexes records. Records are expected to have unique hostnames;
  // if not, the first one in input order is kept.
  RegistrySnapshot(uint64_t version, std::vector<ServiceRecord> records,
                   std::vector<ResourceError> errors,
                   std::string domain_suffix = std::string(kDefaultDomainSuffix));

  // Increases with every change a registry publishes; 0 is the empty start.
  uint64_t version() const { return version_; }
  const std::string& domainSuffix() const { return domain_suffix_; }

  // Every service, sorted by hostname.
  const std::vector<Service>& services() const { return services_; }
  // By exact FQDN ("reviews.default.svc.cluster.local"), or nullptr.
  const Service* findService(std::string_view hostname) const;
  // The services whose VIP or one of whose declared addresses is address,
  // sorted by hostname (a ServiceEntry with several hosts shares its
  // addresses between them).
  std::vector<const Service*> findServicesByAddress(std::string_view address) const;
  // A name as a client in namespace_name would mean it ("reviews",
  // "reviews.default", "reviews.default.svc", or an FQDN); see
  // hostnameCandidates(). nullptr when none of the candidates is a service.
  const Service* resolve(std::string_view name, std::string_view namespace_name) const;

  // All endpoints of a service (empty for an unknown hostname).
  const std::vector<Endpoint>& endpoints(std::string_view hostname) const;
  // The endpoints serving one service port.
  std::vector<Endpoint> endpoints(std::string_view hostname, uint32_t service_port) const;

  // Problems found while building (a bad clusterIP, a duplicate host, an
  // exhausted VIP range, an endpoint a STATIC service cannot use): the
  // offending part is left out, everything else is in the snapshot.
  const std::vector<ResourceError>& errors() const { return errors_; }

 private:
  uint64_t version_ = 0;
  std::string domain_suffix_ = std::string(kDefaultDomainSuffix);
  std::vector<Service> services_;
  std::vector<std::vector<Endpoint>> endpoints_;  // parallel to services_
  std::map<std::string, size_t, std::less<>> by_hostname_;
  std::map<std::string, std::vector<size_t>, std::less<>> by_address_;
  std::vector<ResourceError> errors_;
};

// What changed between two snapshots, hostnames sorted. A service whose
// definition (ports, VIP, resolution, ...) changed is in `updated` whether or
// not its endpoints changed too; `endpoints_changed` lists services whose only
// change is their endpoints, which the xDS layer can push as EDS at once.
struct RegistryChange {
  std::shared_ptr<const RegistrySnapshot> previous;
  std::shared_ptr<const RegistrySnapshot> current;
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<std::string> updated;
  std::vector<std::string> endpoints_changed;

  bool empty() const {
    return added.empty() && removed.empty() && updated.empty() && endpoints_changed.empty();
  }
};

// Fills added/removed/updated/endpoints_changed from two snapshots.
RegistryChange diffSnapshots(std::shared_ptr<const RegistrySnapshot> previous,
                             std::shared_ptr<const RegistrySnapshot> current);

}  // namespace sheave::control
