#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/stats/counter.h"
#include "proxy/stats/gauge.h"
#include "proxy/stats/histogram.h"
#include "proxy/stats/labeled_family.h"

namespace sheave::stats {

class StatNode;
class StatRegistry;

// A name prefix under which stats are created, e.g. "cluster.api_service".
// Lookups take the registry's lock and happen at config load; the request
// path keeps the returned references.
//
// Lifetime: a stat lives in the node of its name's prefix (everything up to
// the last '.'), and a scope keeps alive the node of its own prefix and every
// node it created a stat in. So a reference obtained from a scope is valid for
// as long as the scope lives; whoever keeps such references (a cluster, a
// listener, a filter config) keeps the scope's shared_ptr next to them, and an
// in-flight request that pins the old snapshot pins the old scope and its
// stats. Two scopes that create the same name share one stat object, so a
// cluster re-added by xDS keeps counting where the old one stopped. When the
// last scope holding a node dies, the node's stats are freed and disappear
// from the Store's output.
class Scope {
 public:
  virtual ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name, Gauge::ImportMode mode = Gauge::ImportMode::kAccumulate);
  Histogram& histogram(std::string_view name,
                       Histogram::Unit unit = Histogram::Unit::kMilliseconds);

  // A hint before creating many stats in this scope at once (a cluster's ~45):
  // room for them is set aside in one piece instead of several small blocks.
  // Stats that already exist (a cluster re-added by xDS) leave the room unused.
  void reserve(uint32_t counters, uint32_t gauges, uint32_t histograms);

  // A labelled metric family, shared by name across the whole store (not
  // prefixed by this scope: its name is what Prometheus shows) and kept for
  // the store's life. Config load time, like the other lookups.
  Result<std::shared_ptr<LabeledFamily>> labeledFamily(LabeledFamily::Options options);

  // A child scope named prefix() + "." + `prefix`. The child does not keep
  // its parent alive, and the parent does not keep the child alive.
  std::shared_ptr<Scope> createScope(std::string_view prefix);

  // Without a trailing dot; empty for the root.
  const std::string& prefix() const;

  // How many blocks this scope's own stats take (tests check reserve() hints).
  size_t blockCount() const;

 protected:
  Scope(std::shared_ptr<StatRegistry> registry, std::string_view prefix);

  const std::shared_ptr<StatRegistry>& registry() const { return registry_; }

 private:
  std::string fullName(std::string_view name) const;
  // The node for `prefix`, pinned by this scope. Caller holds the registry mutex.
  StatNode& nodeLocked(std::string_view prefix);

  std::shared_ptr<StatRegistry> registry_;
  std::shared_ptr<StatNode> node_;
  std::vector<std::shared_ptr<StatNode>> others_;  // guarded by the registry mutex
};

// Envoy's stat name sanitizing: ':' (IPv6 addresses, "host:port") becomes
// '_', NUL bytes are dropped, and leading/trailing dots are trimmed.
std::string sanitizeStatName(std::string_view name);

}  // namespace sheave::stats
