// Sheave's resilience and scope checks: retries that cannot all run
// (SHV0001), retries of requests that may not be safe to repeat (SHV0002),
// retries at several hops of a call chain (SHV0003), and proxies that get
// far more configuration than they use (SHV0011).
#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

#include "cli/analyze/analyzer.h"
#include "control/registry/hostname.h"

namespace sheave::cli {

using control::HTTPRoute;
using control::Resource;
using control::Service;
using control::VirtualService;

namespace {

std::string seconds(control::Duration d) { return control::formatDuration(d); }

void checkRetryTimeouts(AnalysisContext& c, const Resource<VirtualService>& vs) {
  for (size_t i = 0; i < vs.spec.http.size(); ++i) {
    const HTTPRoute& r = vs.spec.http[i];
    if (!r.retries || r.retries->attempts <= 0 || !r.retries->per_try_timeout || !r.timeout ||
        r.timeout->count() <= 0) {
      continue;
    }
    const auto per_try = *r.retries->per_try_timeout;
    const int64_t tries = int64_t{r.retries->attempts} + 1;
    if (per_try * tries <= *r.timeout) continue;
    const int64_t fit = per_try.count() > 0 ? std::max<int64_t>(1, *r.timeout / per_try) : tries;
    c.report(messages::kRetriesExceedRouteTimeout, vs,
             "rule #" + std::to_string(i) + " allows 1 + " + std::to_string(r.retries->attempts) +
                 " attempts of up to " + seconds(per_try) + " each (" + seconds(per_try * tries) +
                 ") but the route times out after " + seconds(*r.timeout) + ": at most " +
                 std::to_string(std::min(fit, tries)) +
                 " attempts can run. Raise timeout or lower attempts or perTryTimeout.");
  }
}

// Retry conditions that fire after the upstream may have acted on the
// request (as opposed to connect-failure, refused-stream, reset-before-request).
bool retriesAfterProcessing(std::string_view retry_on) {
  static const std::set<std::string, std::less<>> kAfter = {"5xx",
                                                            "gateway-error",
                                                            "reset",
                                                            "retriable-4xx",
                                                            "retriable-status-codes",
                                                            "retriable-headers",
                                                            "deadline-exceeded",
                                                            "internal",
                                                            "resource-exhausted",
                                                            "unavailable",
                                                            "cancelled"};
  size_t start = 0;
  while (start <= retry_on.size()) {
    size_t end = retry_on.find(',', start);
    if (end == std::string_view::npos) end = retry_on.size();
    std::string_view part = retry_on.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (kAfter.count(part) > 0) return true;
    // Istio accepts bare status codes ("503") as retriable-status-codes.
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char ch) {
          return std::isdigit(static_cast<unsigned char>(ch));
        })) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

bool idempotentMethod(std::string_view method) {
  static const std::set<std::string, std::less<>> kIdempotent = {"GET", "HEAD",   "OPTIONS",
                                                                 "PUT", "DELETE", "TRACE"};
  return kIdempotent.count(method) > 0;
}

bool carriesIdempotencyMarker(const control::HTTPMatchRequest& m) {
  for (const auto& [name, _] : m.headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (lower == "idempotency-key" || lower == "x-idempotency-key") return true;
  }
  return false;
}

bool onlySafeRequests(const HTTPRoute& r) {
  if (r.match.empty()) return false;
  return std::all_of(r.match.begin(), r.match.end(), [](const control::HTTPMatchRequest& m) {
    if (carriesIdempotencyMarker(m)) return true;
    return m.method && m.method->kind == control::StringMatch::Kind::kExact &&
           idempotentMethod(m.method->value);
  });
}

void checkNonIdempotentRetries(AnalysisContext& c, const Resource<VirtualService>& vs) {
  for (size_t i = 0; i < vs.spec.http.size(); ++i) {
    const HTTPRoute& r = vs.spec.http[i];
    if (!r.retries || r.retries->attempts <= 0 || r.retries->retry_on.empty()) continue;
    if (!retriesAfterProcessing(r.retries->retry_on) || onlySafeRequests(r)) continue;
    c.report(messages::kRetriesOnNonIdempotentRequests, vs,
             "rule #" + std::to_string(i) + " retries on \"" + r.retries->retry_on +
                 "\" for every method, POST and PATCH included: a request the upstream already "
                 "acted on may be sent again. Limit the route to idempotent methods "
                 "(match.method) or to requests carrying an Idempotency-Key header, or retry "
                 "only on connect-failure,refused-stream.");
  }
}

// --- Retry amplification along call chains.

struct Hop {
  std::string caller;                  // "istio-ingressgateway" or "<ns>/<local workload>"
  const Service* service;              // called
  int32_t attempts;                    // retries the caller's proxy makes (0: none configured)
  const Resource<VirtualService>* vs;  // where the retries are written
};

int32_t maxAttempts(const Resource<VirtualService>& vs, const Service* only_to,
                    const AnalysisContext& c) {
  int32_t best = 0;
  for (const auto& r : vs.spec.http) {
    if (!r.retries) continue;
    bool relevant = only_to == nullptr;
    for (const auto& d : r.route) {
      relevant = relevant || c.resolve(d.destination.host, vs.metadata.namespace_name) == only_to;
    }
    if (relevant) best = std::max(best, r.retries->attempts);
  }
  return best;
}

class CallGraph {
 public:
  explicit CallGraph(AnalysisContext& c) : c_(c) {}

  void run() {
    std::set<const Resource<control::LocalWorkload>*> called;
    for (const auto& lw : c_.config().local_workloads) {
      for (const auto* s : c_.callsOf(lw)) {
        for (const auto* callee : c_.localWorkloadsOf(*s)) called.insert(callee);
      }
    }
    // The ingress gateway: every service its VirtualServices route to.
    std::vector<Hop> gateway_hops;
    for (const auto& vs : c_.config().virtual_services) {
      bool gateway_bound = std::any_of(vs.spec.gateways.begin(), vs.spec.gateways.end(),
                                       [](const std::string& g) { return g != "mesh"; });
      if (!gateway_bound) continue;
      for (const auto& r : vs.spec.http) {
        for (const auto& d : r.route) {
          const Service* s = c_.resolve(d.destination.host, vs.metadata.namespace_name);
          if (s == nullptr) continue;
          gateway_hops.push_back(Hop{"istio-ingressgateway", s, maxAttempts(vs, s, c_), &vs});
        }
      }
    }
    std::vector<Hop> path;
    for (const auto& hop : gateway_hops) walk(hop, path);
    for (const auto& lw : c_.config().local_workloads) {
      if (called.count(&lw) > 0) continue;
      for (const auto& hop : hopsFrom(lw)) walk(hop, path);
    }
  }

 private:
  std::vector<Hop> hopsFrom(const Resource<control::LocalWorkload>& lw) const {
    std::vector<Hop> out;
    const std::string caller = lw.metadata.namespace_name + "/" + lw.metadata.name;
    for (const auto* s : c_.callsOf(lw)) {
      Hop hop{caller, s, 0, nullptr};
      for (const auto* vs : c_.meshVirtualServicesFor(s->hostname)) {
        int32_t a = maxAttempts(*vs, nullptr, c_);
        if (a > hop.attempts) {
          hop.attempts = a;
          hop.vs = vs;
        }
      }
      out.push_back(hop);
    }
    return out;
  }

  void walk(const Hop& hop, std::vector<Hop>& path) {
    if (path.size() >= 12) return;
    for (const auto& h : path) {
      if (h.service == hop.service) return;  // a cycle
    }
    path.push_back(hop);
    bool extended = false;
    for (const auto* callee : c_.localWorkloadsOf(*hop.service)) {
      for (const auto& next : hopsFrom(*callee)) {
        extended = true;
        walk(next, path);
      }
    }
    if (!extended) evaluate(path);
    path.pop_back();
  }

  void evaluate(const std::vector<Hop>& path) {
    size_t retrying = 0;
    size_t last = 0;
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i].attempts > 0) {
        ++retrying;
        last = i;
      }
    }
    if (retrying < 2) return;
    std::string chain = path.front().caller;
    std::string factors;
    int64_t factor = 1;
    for (size_t i = 0; i <= last; ++i) {
      const auto& h = path[i];
      chain += " -> " + h.service->hostname;
      if (h.attempts > 0) {
        chain += " (" + std::to_string(h.attempts) + " retries)";
        factor *= h.attempts + 1;
        factors += (factors.empty() ? "" : " x ") + std::to_string(h.attempts + 1);
      }
    }
    if (!reported_.insert(chain).second) return;
    c_.report(messages::kRetryAmplification, *path[last].vs,
              "retries at " + std::to_string(retrying) + " hops of the call chain " + chain +
                  ": one failing request can become " + factors + " = " + std::to_string(factor) +
                  " requests to " + path[last].service->hostname +
                  ". Retry at one hop only (usually the one nearest the caller).");
  }

  AnalysisContext& c_;
  std::set<std::string> reported_;
};

// --- Configuration scope.

bool sidecarScopes(const AnalysisContext& c, const AnalyzedWorkload& w) {
  for (const auto& sc : c.config().sidecars) {
    const auto* labels =
        sc.spec.workload_selector ? &sc.spec.workload_selector->match_labels : nullptr;
    if (labels == nullptr || labels->empty()) {
      if (sc.metadata.namespace_name == w.namespace_name ||
          sc.metadata.namespace_name == c.options().root_namespace) {
        return true;
      }
    } else if (sc.metadata.namespace_name == w.namespace_name && labelsMatch(*labels, w.labels)) {
      return true;
    }
  }
  return false;
}

// Clusters a proxy gets for a service: one per port, plus one per port and
// subset.
size_t clusterEstimate(const AnalysisContext& c, const Service& s, std::string_view ns) {
  size_t subsets = 0;
  if (const auto* dr = c.destinationRuleFor(s, ns)) subsets = dr->spec.subsets.size();
  return std::max<size_t>(1, s.ports.size()) * (1 + subsets);
}

void checkConfigScope(AnalysisContext& c) {
  constexpr size_t kMinServices = 8;
  const auto& services = c.registry().services();
  if (services.size() < kMinServices) return;
  std::set<const Resource<control::LocalWorkload>*> done;
  for (const auto& w : c.workloads()) {
    if (w.local == nullptr || !done.insert(w.local).second || sidecarScopes(c, w)) continue;
    // Without a single call in its configuration there is no evidence of what it uses.
    const auto calls = c.callsOf(*w.local);
    if (calls.empty() || calls.size() * 4 > services.size()) continue;
    size_t clusters = 0;
    for (const auto& s : services) clusters += clusterEstimate(c, s, w.namespace_name);
    size_t used_clusters = 0;
    std::string hosts;
    for (const auto* s : calls) {
      used_clusters += clusterEstimate(c, *s, w.namespace_name);
      hosts += (hosts.empty() ? "" : ", ") + s->namespace_name + "/" + s->hostname;
    }
    c.reportOn(
        messages::kConfigScopeTooWide,
        ResourceRef{w.local->kind, w.local->metadata.namespace_name, w.local->metadata.name,
                    w.local->source},
        "its sidecar receives every service of the mesh (" + std::to_string(services.size()) +
            " services, about " + std::to_string(clusters) + " clusters) but calls " +
            std::to_string(calls.size()) + " (" + std::to_string(used_clusters) +
            " clusters). A Sidecar with workloadSelector " + formatLabels(w.local->spec.labels) +
            " and egress hosts [" + (hosts.empty() ? std::string("istio-system/*") : hosts) +
            "] would send it only those.");
  }
}

}  // namespace

void runResilienceChecks(AnalysisContext& context) {
  for (const auto& vs : context.config().virtual_services) {
    checkRetryTimeouts(context, vs);
    checkNonIdempotentRetries(context, vs);
  }
  CallGraph(context).run();
  checkConfigScope(context);
}

}  // namespace sheave::cli
