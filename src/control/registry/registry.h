#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "control/registry/registry_snapshot.h"

namespace sheave::control {

// The service registry: where services, their ports and their endpoints come
// from. LocalRegistry builds it from YAML files; a Kubernetes API watcher
// will be the second implementation. Readers take a snapshot and keep it for
// as long as they work on it (one push), so lookups never race an update.
class Registry {
 public:
  using ChangeHandler = std::function<void(const RegistryChange&)>;
  using HandlerId = uint64_t;

  virtual ~Registry() = default;

  // The current content; never null (an empty snapshot before the first load).
  virtual std::shared_ptr<const RegistrySnapshot> snapshot() const = 0;

  // Called after every change that altered a service or an endpoint, on the
  // thread that made the change, once snapshot() already returns the new
  // content, in the order handlers were added. A handler may add or remove
  // handlers (that takes effect from the next change) but must not trigger
  // another update of the same registry from inside the call.
  virtual HandlerId addChangeHandler(ChangeHandler handler) = 0;
  virtual void removeChangeHandler(HandlerId id) = 0;
};

}  // namespace sheave::control
