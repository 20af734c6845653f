#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy/stats/counter.h"
#include "proxy/stats/gauge.h"
#include "proxy/stats/histogram.h"

namespace sheave::stats {

class StatRegistry;

// A name prefix under which stats are created, e.g. "cluster.api_service".
// Lookups take a lock and happen at config load; the request path keeps the
// returned references.
//
// Lifetime: a scope holds a strong reference to every stat it handed out, so
// a reference obtained from a scope is valid for as long as the scope lives.
// Whoever keeps such references (a cluster, a listener, a filter config)
// therefore keeps the scope's shared_ptr next to them; an in-flight request
// that pins the old snapshot pins the old scope and its stats. Two scopes
// that create the same name share one stat object, so a cluster re-added by
// xDS keeps counting where the old one stopped. When the last scope holding
// a stat dies the stat is freed and disappears from the Store's output.
class Scope {
 public:
  virtual ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name, Gauge::ImportMode mode = Gauge::ImportMode::kAccumulate);
  Histogram& histogram(std::string_view name,
                       Histogram::Unit unit = Histogram::Unit::kMilliseconds);

  // A child scope named prefix() + "." + `prefix`. The child does not keep
  // its parent alive, and the parent does not keep the child alive.
  std::shared_ptr<Scope> createScope(std::string_view prefix);

  // Without a trailing dot; empty for the root.
  const std::string& prefix() const { return prefix_; }

 protected:
  Scope(std::shared_ptr<StatRegistry> registry, std::string prefix);

  const std::shared_ptr<StatRegistry>& registry() const { return registry_; }

 private:
  std::string fullName(std::string_view name) const;

  std::shared_ptr<StatRegistry> registry_;
  const std::string prefix_;

  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Counter>> counters_;
  std::unordered_map<std::string, std::shared_ptr<Gauge>> gauges_;
  std::unordered_map<std::string, std::shared_ptr<Histogram>> histograms_;
};

// Envoy's stat name sanitizing: ':' (IPv6 addresses, "host:port") becomes
// '_', NUL bytes are dropped, and leading/trailing dots are trimmed.
std::string sanitizeStatName(std::string_view name);

}  // namespace sheave::stats
