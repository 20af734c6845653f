#include "cli/explain/explain.h"

#include <algorithm>
#include <map>

#include "control/compiler/cluster_generator.h"
#include "control/compiler/endpoint_generator.h"
#include "control/compiler/proxy_resources.h"
#include "control/registry/identity.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "match/filter_chain_matcher.h"
#include "match/header_map.h"
#include "match/rbac/rbac_engine.h"
#include "match/route_table.h"

namespace sheave::cli {

using control::ProxyContext;
using control::PushContext;
namespace route = envoy::config::route::v3;
namespace hcm = envoy::extensions::filters::network::http_connection_manager::v3;

namespace {

struct Url {
  std::string host;
  uint16_t port = 80;
  std::string path = "/";
};

Result<Url> parseUrl(std::string_view text) {
  Url url;
  if (text.rfind("http://", 0) == 0) {
    text.remove_prefix(7);
  } else if (text.find("://") != std::string_view::npos) {
    return invalidArgument("only http:// URLs can be explained (the sidecar sees TLS as TCP)");
  }
  const size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos) url.path = std::string(text.substr(slash));
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    int port = std::atoi(std::string(authority.substr(colon + 1)).c_str());
    if (port <= 0 || port > 65535) return invalidArgument("bad port in " + std::string(text));
    url.port = static_cast<uint16_t>(port);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return invalidArgument("no host in " + std::string(text));
  url.host = std::string(authority);
  return url;
}

std::string istioConfig(const google::protobuf::Struct* metadata) {
  if (metadata == nullptr) return "";
  auto it = metadata->fields().find("config");
  if (it == metadata->fields().end()) return "";
  const std::string& path = it->second.string_value();
  // "/apis/networking.istio.io/v1/namespaces/<ns>/<kind>/<name>"
  const size_t ns_at = path.find("/namespaces/");
  if (ns_at == std::string::npos) return path;
  const size_t ns_start = ns_at + 12;
  const size_t ns_end = path.find('/', ns_start);
  const size_t name_at = path.rfind('/');
  return path.substr(ns_start, ns_end - ns_start) + "/" + path.substr(name_at + 1);
}

template <typename Resource>
std::string where(const Resource& r) {
  control::SourceLocation line = r.source;
  line.column = 0;
  return line.toString();
}

std::string describeVirtualService(const PushContext& push, const std::string& ns_name) {
  for (const auto& vs : push.config().virtual_services) {
    if (vs.metadata.namespace_name + "/" + vs.metadata.name == ns_name) {
      return "VirtualService " + ns_name + " (" + where(vs) + ")";
    }
  }
  return "VirtualService " + ns_name;
}

std::string describeDestinationRule(const PushContext& push, const std::string& ns_name) {
  for (const auto& dr : push.config().destination_rules) {
    if (dr.metadata.namespace_name + "/" + dr.metadata.name == ns_name) {
      return "DestinationRule " + ns_name + " (" + where(dr) + ")";
    }
  }
  return "DestinationRule " + ns_name;
}

std::string ms(std::chrono::milliseconds d) {
  if (d.count() == 0) return "none";
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

const route::Route* protoRoute(const route::RouteConfiguration& config,
                               const RouteMatchResult& result) {
  for (const auto& vh : config.virtual_hosts()) {
    if (vh.name() != result.virtual_host->name) continue;
    const size_t index = static_cast<size_t>(result.route - result.virtual_host->routes.data());
    if (index < static_cast<size_t>(vh.routes_size())) return &vh.routes(static_cast<int>(index));
  }
  return nullptr;
}

const google::protobuf::Struct* istioMetadata(const envoy::config::core::v3::Metadata& m) {
  auto it = m.filter_metadata().find("istio");
  return it == m.filter_metadata().end() ? nullptr : &it->second;
}

struct InboundOutcome {
  int status = 200;
  std::string verdict;
};

// The destination sidecar: its inbound filter chain for this connection and
// the authorization filters of that chain, evaluated as its proxy would.
InboundOutcome walkInbound(const PushContext& push, const ProxyContext& dest,
                           const std::string& address, uint32_t port, bool mtls,
                           const std::string& source_identity, const HeaderMap& headers,
                           ExplainStep& step) {
  std::vector<control::ResourceError> errors;
  const auto listeners = control::generateListeners(dest, push, &errors);
  const envoy::config::listener::v3::Listener* inbound = nullptr;
  for (const auto& l : listeners) {
    if (l.name() == "virtualInbound") inbound = &l;
  }
  if (inbound == nullptr) {
    step.lines.push_back("no virtualInbound listener");
    return {503, "refused: the destination's sidecar has no inbound listener (503 UF)"};
  }
  auto matcher = FilterChainMatcher::create(*inbound);
  if (!matcher.ok())
    return {503, "inbound listener does not compile: " + matcher.error().message()};
  std::vector<std::string> alpn;
  if (mtls) {
    alpn = {"istio-http/1.1", "istio", "http/1.1"};
  } else {
    alpn = {"http/1.1"};
  }
  auto dst = Address::parse(address, static_cast<uint16_t>(port));
  ConnectionView view;
  if (dst.ok()) view.destination = *dst;
  view.transport_protocol = mtls ? "tls" : "raw_buffer";
  view.application_protocols = alpn;
  auto chain_index = (*matcher)->match(view);
  if (!chain_index) {
    step.lines.push_back(std::string("no filter chain accepts a ") +
                         (mtls ? "mutual TLS" : "plaintext") + " connection to port " +
                         std::to_string(port));
    return {503, "refused: the destination closes the connection (503 UC/UF)"};
  }
  const auto& chain = *chain_index == FilterChainMatcher::kDefaultChain
                          ? inbound->default_filter_chain()
                          : inbound->filter_chains(static_cast<int>(*chain_index));
  step.lines.push_back("filter chain: " +
                       (chain.name().empty() ? std::string("(unnamed)") : chain.name()));
  if (!mtls) {
    step.lines.push_back("plaintext accepted (PeerAuthentication PERMISSIVE or DISABLE)");
  } else {
    step.lines.push_back("mutual TLS; the caller's identity is " + source_identity);
  }
  for (const auto& filter : chain.filters()) {
    hcm::HttpConnectionManager manager;
    if (!filter.typed_config().UnpackTo(&manager)) continue;
    for (const auto& http : manager.http_filters()) {
      envoy::extensions::filters::http::rbac::v3::RBAC rbac;
      if (!http.typed_config().UnpackTo(&rbac) || !rbac.has_rules()) continue;
      auto engine = rbac::RbacEngine::create(rbac.rules());
      if (!engine.ok()) continue;
      rbac::RbacRequest request;
      request.headers = &headers;
      request.path = headers.path();
      request.secure = mtls;
      std::vector<std::string> sans;
      if (mtls) sans.push_back(source_identity);
      request.peer_uri_sans = sans;
      if (auto ip = rbac::IpAddress::parse(address)) {
        request.destination_ip = *ip;
        request.destination_ip.port = static_cast<uint16_t>(port);
      }
      const auto result = (*engine)->evaluate(request);
      const bool deny = (*engine)->action() == rbac::RbacEngine::Action::kDeny;
      const bool allow = (*engine)->action() == rbac::RbacEngine::Action::kAllow;
      if (deny) {
        step.lines.push_back("DENY policies: " + (result.matched_policy_name.empty()
                                                      ? std::string("none matches")
                                                      : "matched " + result.matched_policy_name));
      } else if (allow) {
        step.lines.push_back("ALLOW policies: " + (result.matched_policy_name.empty()
                                                       ? std::string("none matches")
                                                       : "matched " + result.matched_policy_name));
      }
      if (!result.allowed) {
        return {403, "denied: 403 RBAC: access denied (" +
                         (deny ? "DENY " + result.matched_policy_name
                               : std::string("no ALLOW policy matches")) +
                         ")"};
      }
    }
  }
  return {200, ""};
}

// One upstream cluster of the route: the cluster sheave-control sends, its
// endpoints, and each destination workload's inbound filter chain and policies.
Explanation explainCluster(const PushContext& push, const ProxyContext& source,
                           const std::string& source_identity, const RouteEntry& r,
                           const std::string& cluster_name, const HeaderMap& headers) {
  Explanation out;
  const auto& registry = push.registry();

  // The cluster and its endpoints, as sheave-control sends them.
  ExplainStep cluster_step{"Cluster " + cluster_name, {}};
  if (cluster_name == "PassthroughCluster" || cluster_name == "BlackHoleCluster") {
    cluster_step.lines.push_back(cluster_name == "PassthroughCluster"
                                     ? "the host is not a mesh service: sent to its original "
                                       "destination unchanged (outboundTrafficPolicy ALLOW_ANY)"
                                     : "the host is not a mesh service and REGISTRY_ONLY drops it");
    out.steps.push_back(std::move(cluster_step));
    out.status = cluster_name == "PassthroughCluster" ? 0 : 502;
    out.verdict = cluster_name == "PassthroughCluster" ? "leaves the mesh (passthrough)"
                                                       : "blocked: 502 (BlackHoleCluster)";
    return out;
  }
  const auto clusters = control::generateClusters(source, push);
  const envoy::config::cluster::v3::Cluster* cluster = nullptr;
  for (const auto& c : clusters) {
    if (c.name() == cluster_name) cluster = &c;
  }
  if (cluster == nullptr) {
    cluster_step.lines.push_back(
        "sheave-control sends no cluster of that name (a subset no "
        "DestinationRule defines?)");
    out.steps.push_back(std::move(cluster_step));
    out.status = static_cast<int>(r.cluster_not_found_response_code);
    out.verdict = "no cluster: " + std::to_string(out.status) + " NC";
    return out;
  }
  const std::string dr = istioConfig(istioMetadata(cluster->metadata()));
  cluster_step.lines.push_back(dr.empty() ? std::string("no DestinationRule")
                                          : "policy from " + describeDestinationRule(push, dr));
  bool auto_mtls = false;
  for (const auto& m : cluster->transport_socket_matches()) {
    auto it = m.match().fields().find("tlsMode");
    if (it != m.match().fields().end() && it->second.string_value() == "istio") auto_mtls = true;
  }
  const bool tls_origination = cluster->has_transport_socket() &&
                               cluster->transport_socket().name() == "envoy.transport_sockets.tls";
  cluster_step.lines.push_back(auto_mtls ? "mutual TLS to endpoints with a sidecar (auto mTLS)"
                               : tls_origination ? "TLS origination (DestinationRule tls)"
                                                 : "plaintext (mTLS disabled for this host)");
  const auto assignments = control::generateEndpoints(source, push, {cluster_name});
  std::vector<std::pair<std::string, uint32_t>> endpoints;
  bool endpoint_mtls = false;
  for (const auto& a : assignments) {
    for (const auto& locality : a.endpoints()) {
      for (const auto& lb : locality.lb_endpoints()) {
        const auto& sa = lb.endpoint().address().socket_address();
        endpoints.emplace_back(sa.address(), sa.port_value());
        auto meta = lb.metadata().filter_metadata().find("envoy.transport_socket_match");
        if (meta != lb.metadata().filter_metadata().end()) {
          auto mode = meta->second.fields().find("tlsMode");
          endpoint_mtls = endpoint_mtls || (mode != meta->second.fields().end() &&
                                            mode->second.string_value() == "istio");
        }
      }
    }
  }
  if (cluster->type() == envoy::config::cluster::v3::Cluster::EDS || !assignments.empty()) {
    std::string list;
    for (const auto& [a, p] : endpoints)
      list += (list.empty() ? "" : ", ") + a + ":" + std::to_string(p);
    cluster_step.lines.push_back("endpoints: " + (list.empty() ? std::string("none") : list));
    if (endpoints.empty()) {
      out.steps.push_back(std::move(cluster_step));
      out.status = 503;
      out.verdict = "no healthy upstream: 503 UH (the subset's labels select no workload)";
      return out;
    }
  }
  out.steps.push_back(std::move(cluster_step));
  if (endpoints.empty()) {
    out.verdict = "leaves the mesh through " + cluster_name;
    return out;
  }

  // The destination's sidecar, for each distinct workload behind the endpoints.
  const bool mtls = auto_mtls && endpoint_mtls;
  std::map<std::string, InboundOutcome> outcomes;
  for (const auto& [address, port] : endpoints) {
    const control::Endpoint* found = nullptr;
    for (const auto& svc : registry.services()) {
      for (const auto& e : registry.endpoints(svc.hostname)) {
        if (e.address == address && e.port == port && !e.workload_name.empty()) found = &e;
      }
    }
    ExplainStep inbound{"Inbound at " + address + ":" + std::to_string(port), {}};
    if (found == nullptr) {
      inbound.lines.push_back("not a mesh workload: the request leaves the mesh");
      out.steps.push_back(std::move(inbound));
      continue;
    }
    inbound.title += " (" + found->workload_name + "." + found->namespace_name + "'s sidecar)";
    auto dest = proxyForWorkload(registry, found->namespace_name, found->workload_name, address);
    if (!dest.ok()) {
      inbound.lines.push_back(dest.error().message());
      out.steps.push_back(std::move(inbound));
      continue;
    }
    auto outcome = walkInbound(push, *dest, address, port, mtls, source_identity, headers, inbound);
    if (outcome.status == 200) {
      outcome.verdict = "allowed: reaches " + found->workload_name + "." + found->namespace_name +
                        " on port " + std::to_string(port);
    }
    inbound.lines.push_back("=> " + outcome.verdict);
    outcomes[found->workload_name] = outcome;
    out.steps.push_back(std::move(inbound));
  }
  if (outcomes.empty()) {
    out.verdict = "leaves the mesh";
    return out;
  }
  // Every endpoint's answer when they differ; one line when they agree.
  const auto& first = outcomes.begin()->second;
  const bool agree = std::all_of(outcomes.begin(), outcomes.end(),
                                 [&](const auto& o) { return o.second.status == first.status; });
  out.status = first.status;
  if (agree && first.status == 200) {
    std::string names;
    for (const auto& [name, _] : outcomes) names += (names.empty() ? "" : ", ") + name;
    out.verdict = "allowed: reaches " + names;
  } else if (agree) {
    out.verdict = first.verdict;
  } else {
    for (const auto& [name, o] : outcomes) {
      out.verdict += (out.verdict.empty() ? "" : "; ") + name + ": " + o.verdict;
      if (o.status != 200) out.status = o.status;
    }
  }
  return out;
}

}  // namespace

Result<ProxyContext> proxyForWorkload(const control::RegistrySnapshot& registry,
                                      const std::string& namespace_name, const std::string& name,
                                      const std::string& address, bool router) {
  envoy::config::core::v3::Node node;
  node.set_id(std::string(router ? "router~" : "sidecar~") + address + "~" + name + "." +
              namespace_name + "~" + namespace_name + ".svc." + registry.domainSuffix());
  SHEAVE_ASSIGN_OR_RETURN(ProxyContext proxy,
                          ProxyContext::fromNode(node, control::kDefaultTrustDomain));
  proxy.attachWorkload(registry, control::kDefaultTrustDomain);
  return proxy;
}

Result<Explanation> explainRequest(const PushContext& push, const ProxyContext& source,
                                   const ExplainRequest& request, uint64_t random) {
  SHEAVE_ASSIGN_OR_RETURN(Url url, parseUrl(request.url));
  Explanation out;
  const std::string source_identity =
      control::spiffeIdentity(source.namespace_name, source.service_account);

  ExplainStep from{"Source", {}};
  from.lines.push_back(source.pod_name + "." + source.namespace_name + " (" + source.ip() +
                       "), identity " + source_identity);
  out.steps.push_back(std::move(from));

  HeaderMap headers;
  headers.add(":method", request.method);
  headers.add(":scheme", "http");
  headers.add(":path", url.path);
  headers.add(":authority", url.port == 80 ? url.host : url.host + ":" + std::to_string(url.port));
  for (const auto& [k, v] : request.headers) headers.add(k, v);

  // Outbound: the route configuration of the port, matched as the proxy does.
  ExplainStep outbound{"Outbound route (" + source.pod_name + "'s sidecar)", {}};
  std::vector<control::ResourceError> errors;
  const auto configs = control::generateRoutes(source, push, {std::to_string(url.port)}, &errors);
  if (configs.empty()) {
    outbound.lines.push_back("no HTTP route configuration for port " + std::to_string(url.port) +
                             ": the port is not an HTTP port of any service this proxy sees");
    out.steps.push_back(std::move(outbound));
    out.status = 0;
    out.verdict = "not HTTP: the sidecar proxies port " + std::to_string(url.port) + " as TCP";
    return out;
  }
  const route::RouteConfiguration& config = configs.front();
  SHEAVE_ASSIGN_OR_RETURN(auto table, RouteTable::create(config));
  const auto result = table->route(headers, random);
  outbound.lines.push_back("route configuration \"" + config.name() + "\" (port " +
                           std::to_string(url.port) + ")");
  if (!result) {
    outbound.lines.push_back("no virtual host or route matches " + *headers.get(":authority") +
                             url.path);
    out.steps.push_back(std::move(outbound));
    out.status = 404;
    out.verdict = "no route: 404 NR";
    return out;
  }
  outbound.lines.push_back("virtual host \"" + result.virtual_host->name + "\"");
  const route::Route* proto = protoRoute(config, result);
  const std::string vs = proto != nullptr ? istioConfig(istioMetadata(proto->metadata())) : "";
  outbound.lines.push_back(
      "route " +
      (result.route->name.empty() ? std::string("(unnamed)") : "\"" + result.route->name + "\"") +
      (vs.empty() ? std::string(", the service's default route")
                  : ", from " + describeVirtualService(push, vs)));
  const auto& r = *result.route;
  if (r.direct_response) {
    out.steps.push_back(std::move(outbound));
    out.status = static_cast<int>(r.direct_response->status);
    out.verdict = "direct response " + std::to_string(out.status) + " from the route";
    return out;
  }
  if (r.redirect) {
    out.steps.push_back(std::move(outbound));
    out.status = 301;
    out.verdict = "redirect to " + r.redirectLocation(headers);
    return out;
  }
  if (!r.weighted_clusters.empty()) {
    std::string split;
    for (const auto& w : r.weighted_clusters) {
      split += (split.empty() ? "" : ", ") + w.name + " " + std::to_string(w.weight) + "/" +
               std::to_string(r.total_weight);
    }
    outbound.lines.push_back("weighted clusters: " + split);
  }
  outbound.lines.push_back(
      "timeout " + ms(r.timeout) + "; retries " +
      (r.retry_policy ? std::to_string(r.retry_policy->num_retries) +
                            (r.retry_policy->per_try_timeout
                                 ? " (per try " + ms(*r.retry_policy->per_try_timeout) + ")"
                                 : std::string())
                      : std::string("none")));
  if (r.per_filter_config.contains("envoy.filters.http.fault")) {
    outbound.lines.push_back(
        "fault injection is configured on this route (delays or aborts a "
        "share of requests)");
  }
  std::vector<std::pair<std::string, std::string>> branches;  // cluster, share
  if (r.weighted_clusters.empty()) {
    branches.emplace_back(result.cluster(headers), "");
  } else {
    for (const auto& w : r.weighted_clusters) {
      branches.emplace_back(
          w.name, std::to_string(w.weight * 100 / std::max<uint64_t>(1, r.total_weight)) + "%");
    }
  }
  out.steps.push_back(std::move(outbound));
  std::vector<std::string> verdicts;
  bool all_ok = true;
  int status = 0;
  for (const auto& [cluster_name, share] : branches) {
    Explanation branch = explainCluster(push, source, source_identity, r, cluster_name, headers);
    for (auto& step : branch.steps) {
      if (!share.empty()) step.title = "[" + share + "] " + step.title;
      out.steps.push_back(std::move(step));
    }
    verdicts.push_back((share.empty() ? "" : share + ": ") + branch.verdict);
    all_ok = all_ok && branch.status == 200;
    if (status == 0 || branch.status != 200) status = branch.status;
  }
  out.status = all_ok ? 200 : status;
  for (const auto& v : verdicts) out.verdict += (out.verdict.empty() ? "" : "; ") + v;
  return out;
}

std::string formatExplanation(const Explanation& e) {
  std::string out;
  for (const auto& step : e.steps) {
    out += step.title + "\n";
    for (const auto& line : step.lines) out += "   " + line + "\n";
  }
  out += "Verdict: " + e.verdict + "\n";
  return out;
}

}  // namespace sheave::cli
