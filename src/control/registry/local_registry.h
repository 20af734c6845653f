#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "control/model/config_set.h"
#include "control/registry/identity.h"
#include "control/registry/registry.h"
#include "control/registry/vip_allocator.h"

namespace sheave::control {

struct RegistryOptions {
  // Kubernetes' cluster domain: Services are <name>.<ns>.svc.<domain_suffix>.
  std::string domain_suffix = std::string(kDefaultDomainSuffix);
  // The trust domain of endpoint identities (spiffe://<trust_domain>/...).
  std::string trust_domain = std::string(kDefaultTrustDomain);
  // Where VIPs come from for services that declare no address (IPv4 CIDR).
  std::string vip_range = std::string(kDefaultVipRange);
};

// The pure part of LocalRegistry: the services and endpoints a ConfigSet
// describes (Kubernetes Services selecting WorkloadEntries, ServiceEntries),
// VIPs allocated. Fails only when options.vip_range is not a CIDR block;
// problems in the config become RegistrySnapshot::errors().
Result<RegistrySnapshot> buildRegistrySnapshot(const ConfigSet& config,
                                               const RegistryOptions& options,
                                               uint64_t version = 0);

// The registry built from configuration files: sheave-control loads a
// ConfigSet from --config DIR and calls update() on every reload.
class LocalRegistry final : public Registry {
 public:
  static Result<std::unique_ptr<LocalRegistry>> create(RegistryOptions options = {});

  const RegistryOptions& options() const { return options_; }

  // Replaces the content with what config describes. When anything changed,
  // publishes a new snapshot (version + 1) and calls the change handlers
  // before returning. Returns what changed (empty when nothing did).
  RegistryChange update(const ConfigSet& config);

  std::shared_ptr<const RegistrySnapshot> snapshot() const override;
  HandlerId addChangeHandler(ChangeHandler handler) override;
  void removeChangeHandler(HandlerId id) override;

 private:
  LocalRegistry(RegistryOptions options, Ipv4Range range);

  const RegistryOptions options_;
  const Ipv4Range range_;

  std::mutex update_mutex_;   // one update at a time, so versions and diffs line up
  mutable std::mutex mutex_;  // guards snapshot_ and handlers_
  std::shared_ptr<const RegistrySnapshot> snapshot_;
  std::vector<std::pair<HandlerId, std::shared_ptr<ChangeHandler>>> handlers_;
  HandlerId next_handler_id_ = 1;
};

}  // namespace sheave::control
