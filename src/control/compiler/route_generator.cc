#include "control/compiler/route_generator.h"

#include "common/grpc_status_names.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "control/compiler/gateway_generator.h"
#include "control/compiler/names.h"
#include "control/registry/hostname.h"
#include "control/registry/protocol.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/extensions/filters/common/fault/v3/fault.pb.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.pb.h"
#include "envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.pb.h"
#include "envoy/type/matcher/v3/string.pb.h"
#include "envoy/type/v3/percent.pb.h"
#include "google/protobuf/struct.pb.h"

namespace sheave::control {
namespace {

namespace route = envoy::config::route::v3;
namespace core = envoy::config::core::v3;
using envoy::type::matcher::v3::StringMatcher;
using envoy::type::v3::FractionalPercent;

// Istio raises Envoy's 4 KiB limit to what its webhook accepts for a body.
constexpr uint32_t kMaxDirectResponseBodyBytes = 1024 * 1024;
constexpr const char* kDefaultRouteName = "default";
constexpr const char* kAllowAnyName = "allow_any";
constexpr const char* kBlockAllName = "block_all";
constexpr const char* kFaultFilter = "envoy.filters.http.fault";
constexpr const char* kCorsFilter = "envoy.filters.http.cors";
constexpr const char* kDefaultRetryOn =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
constexpr uint32_t kDefaultRetriableStatus = 503;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void setDuration(google::protobuf::Duration* out, Duration d) {
  out->set_seconds(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  out->set_nanos(static_cast<int32_t>(d.count() % 1000000000));
}

// "[::1]" for an IPv6 literal, so that appending ":port" stays parseable.
std::string ipv6Compliant(std::string_view host) {
  if (host.find(':') != std::string_view::npos && !host.starts_with('[')) {
    return "[" + std::string(host) + "]";
  }
  return std::string(host);
}

std::string domainName(std::string_view host, uint32_t port) {
  return ipv6Compliant(host) + ":" + std::to_string(port);
}

// Istio's host.Name.Matches for config hosts: "*" matches everything,
// "*.example.com" every name below example.com (and the same wildcard).
bool hostMatches(std::string_view pattern, std::string_view name) {
  if (pattern == name) return true;
  if (pattern == "*") return true;
  if (pattern.starts_with("*.")) {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    if (name.starts_with("*.")) name = name.substr(1);
    return name.size() >= suffix.size() && name.ends_with(suffix);
  }
  if (name.starts_with("*.")) return hostMatches(name, pattern);
  return false;
}

// Go's http.StatusText is non-empty exactly for these codes; Istio treats
// the numbers in retryOn that are real status codes as retriable statuses.
bool isKnownHttpStatus(int code) {
  static const std::set<int> kKnown = {
      100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301,
      302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409,
      410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428,
      429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511};
  return kKnown.count(code) > 0;
}

std::optional<std::string> decodeBase64(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+' || c == '-') {
      v = 62;
    } else if (c == '/' || c == '_') {
      v = 63;
    } else if (c == '=' || c == '\n' || c == '\r' || c == ' ') {
      continue;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

// Istio's Percent (0-100, fractional) as parts per million.
void setPercent(FractionalPercent* out, double percent) {
  out->set_numerator(static_cast<uint32_t>(percent * 10000));
  out->set_denominator(FractionalPercent::MILLION);
}

void setIntegerPercent(FractionalPercent* out, int64_t percent) {
  out->set_numerator(static_cast<uint32_t>(percent));
  out->set_denominator(FractionalPercent::HUNDRED);
}

// StringMatch -> Envoy StringMatcher; nullopt for an empty match.
std::optional<StringMatcher> toStringMatcher(const StringMatch& in) {
  StringMatcher out;
  switch (in.kind) {
    case StringMatch::Kind::kExact:
      out.set_exact(in.value);
      return out;
    case StringMatch::Kind::kPrefix:
      out.set_prefix(in.value);
      return out;
    case StringMatch::Kind::kRegex:
      out.mutable_safe_regex()->set_regex(in.value);
      return out;
    case StringMatch::Kind::kNone:
      break;
  }
  return std::nullopt;
}

// An empty match means "present"; so does regex "*", which is not RE2 but
// what users write for "any value" (Istio maps it the same way).
bool isPresentMatch(const StringMatch& in) {
  return in.kind == StringMatch::Kind::kNone ||
         (in.kind == StringMatch::Kind::kRegex && in.value == "*");
}

route::HeaderMatcher headerMatcher(const std::string& name, const StringMatch& in) {
  route::HeaderMatcher out;
  out.set_name(name);
  if (isPresentMatch(in)) {
    out.set_present_match(true);
  } else if (auto m = toStringMatcher(in)) {
    *out.mutable_string_match() = std::move(*m);
  }
  return out;
}

route::RouteAction::HashPolicy hashPolicy(const ConsistentHashLB& hash, bool* has_key) {
  route::RouteAction::HashPolicy out;
  *has_key = true;
  if (!hash.http_header_name.empty()) {
    out.mutable_header()->set_header_name(hash.http_header_name);
  } else if (hash.http_cookie) {
    auto* cookie = out.mutable_cookie();
    cookie->set_name(hash.http_cookie->name);
    if (hash.http_cookie->ttl) setDuration(cookie->mutable_ttl(), *hash.http_cookie->ttl);
    cookie->set_path(hash.http_cookie->path);
  } else if (hash.use_source_ip) {
    out.mutable_connection_properties()->set_source_ip(true);
  } else if (!hash.http_query_parameter_name.empty()) {
    out.mutable_query_parameter()->set_name(hash.http_query_parameter_name);
  } else {
    *has_key = false;
  }
  return out;
}

const ConsistentHashLB* consistentHashOf(const std::optional<TrafficPolicy>& policy) {
  if (policy && policy->load_balancer && policy->load_balancer->consistent_hash) {
    return &*policy->load_balancer->consistent_hash;
  }
  return nullptr;
}

const ConsistentHashLB* portConsistentHash(const std::optional<TrafficPolicy>& policy,
                                           uint32_t port) {
  if (!policy) return nullptr;
  for (const PortTrafficPolicy& p : policy->port_level_settings) {
    if (p.port && p.port->number == port) {
      if (p.load_balancer && p.load_balancer->consistent_hash) {
        return &*p.load_balancer->consistent_hash;
      }
      return nullptr;
    }
  }
  return nullptr;
}

// Envoy's previous_hosts predicate: a retry goes to another endpoint.
route::RetryPolicy::RetryHostPredicate previousHostsPredicate() {
  route::RetryPolicy::RetryHostPredicate out;
  out.set_name("envoy.retry_host_predicates.previous_hosts");
  out.mutable_typed_config()->PackFrom(
      envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate());
  return out;
}

// Istio's default retry policy; with consistent hashing a retry stays on
// the same host, so the previous-hosts predicate is left out.
route::RetryPolicy defaultRetryPolicy(bool consistent_hash) {
  route::RetryPolicy out;
  out.mutable_num_retries()->set_value(2);
  out.set_retry_on(kDefaultRetryOn);
  out.add_retriable_status_codes(kDefaultRetriableStatus);
  out.set_host_selection_retry_max_attempts(5);
  if (!consistent_hash) *out.add_retry_host_predicate() = previousHostsPredicate();
  return out;
}

// Istio's retry.ConvertPolicy: no retries field keeps the default, attempts
// 0 disables retries, otherwise the default with the user's overrides.
std::optional<route::RetryPolicy> retryPolicy(const std::optional<HTTPRetry>& in,
                                              bool consistent_hash) {
  route::RetryPolicy out = defaultRetryPolicy(consistent_hash);
  if (!in) return out;
  if (in->attempts <= 0) return std::nullopt;
  out.mutable_num_retries()->set_value(static_cast<uint32_t>(in->attempts));
  if (!in->retry_on.empty()) {
    std::string retry_on;
    out.clear_retriable_status_codes();
    std::string_view rest = in->retry_on;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view part = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
      if (part.empty()) continue;
      bool numeric = part.size() <= 3 && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
      if (numeric && isKnownHttpStatus(std::stoi(std::string(part)))) {
        out.add_retriable_status_codes(static_cast<uint32_t>(std::stoi(std::string(part))));
        continue;
      }
      if (!retry_on.empty()) retry_on += ',';
      retry_on += part;
    }
    if (out.retriable_status_codes_size() > 0 &&
        retry_on.find("retriable-status-codes") == std::string::npos) {
      retry_on += retry_on.empty() ? "retriable-status-codes" : ",retriable-status-codes";
    }
    out.set_retry_on(retry_on);
  }
  if (in->per_try_timeout) setDuration(out.mutable_per_try_timeout(), *in->per_try_timeout);
  if (in->retry_remote_localities.value_or(false)) {
    auto* priority = out.mutable_retry_priority();
    priority->set_name("envoy.retry_priorities.previous_priorities");
    envoy::extensions::retry::priority::previous_priorities::v3::PreviousPrioritiesConfig config;
    config.set_update_frequency(2);
    priority->mutable_typed_config()->PackFrom(config);
  }
  return out;
}

// No timeout unless the VirtualService sets one (Envoy's own default is 15s,
// which Istio turns off); gRPC deadlines are capped by the same value.
void setTimeout(route::RouteAction* action, std::optional<Duration> timeout, bool proxyless) {
  Duration d = timeout.value_or(Duration::zero());
  setDuration(action->mutable_timeout(), d);
  if (proxyless) {
    setDuration(action->mutable_max_stream_duration()->mutable_max_stream_duration(), d);
  } else {
    setDuration(action->mutable_max_grpc_timeout(), d);
  }
}

struct HeaderOps {
  google::protobuf::RepeatedPtrField<core::HeaderValueOption> request_add;
  google::protobuf::RepeatedPtrField<core::HeaderValueOption> response_add;
  std::vector<std::string> request_remove;
  std::vector<std::string> response_remove;
  std::string authority;
};

bool isInternalHeader(std::string_view key) { return key.starts_with(':') || lower(key) == "host"; }

bool isAuthorityHeader(std::string_view key) {
  std::string k = lower(key);
  return k == ":authority" || k == "host";
}

// Pseudo-headers and Host cannot be set as headers; an authority given that
// way becomes a host rewrite instead, as in Istio.
void appendHeaders(const std::map<std::string, std::string>& headers, bool append,
                   google::protobuf::RepeatedPtrField<core::HeaderValueOption>* out,
                   std::string* authority) {
  for (const auto& [key, value] : headers) {
    if (isAuthorityHeader(key) && authority != nullptr) *authority = value;
    if (isInternalHeader(key)) continue;
    core::HeaderValueOption* option = out->Add();
    option->mutable_header()->set_key(key);
    option->mutable_header()->set_value(value);
    option->set_append_action(append ? core::HeaderValueOption::APPEND_IF_EXISTS_OR_ADD
                                     : core::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  }
}

HeaderOps translateHeaders(const Headers& headers) {
  HeaderOps ops;
  std::string set_authority;
  std::string add_authority;
  if (headers.request) {
    appendHeaders(headers.request->set, false, &ops.request_add, &set_authority);
    appendHeaders(headers.request->add, true, &ops.request_add, &add_authority);
    for (const std::string& k : headers.request->remove) {
      if (!isInternalHeader(k)) ops.request_remove.push_back(k);
    }
  }
  if (headers.response) {
    appendHeaders(headers.response->set, false, &ops.response_add, nullptr);
    appendHeaders(headers.response->add, true, &ops.response_add, nullptr);
    for (const std::string& k : headers.response->remove) {
      if (!isInternalHeader(k)) ops.response_remove.push_back(k);
    }
  }
  ops.authority = !set_authority.empty() ? set_authority : add_authority;
  return ops;
}

template <typename Target>
void applyHeaderOps(const HeaderOps& ops, Target* out) {
  for (const auto& h : ops.request_add) *out->add_request_headers_to_add() = h;
  for (const auto& h : ops.response_add) *out->add_response_headers_to_add() = h;
  for (const auto& h : ops.request_remove) out->add_request_headers_to_remove(h);
  for (const auto& h : ops.response_remove) out->add_response_headers_to_remove(h);
}

// A route that matches every request: nothing after it can be reached.
bool isCatchAllRoute(const route::Route& r) {
  const route::RouteMatch& m = r.match();
  bool catchall = false;
  switch (m.path_specifier_case()) {
    case route::RouteMatch::kPrefix:
      catchall = m.prefix() == "/";
      break;
    case route::RouteMatch::kPathSeparatedPrefix:
      catchall = m.path_separated_prefix() == "/";
      break;
    case route::RouteMatch::kSafeRegex:
      catchall = m.safe_regex().regex() == ".*";
      break;
    default:
      break;
  }
  return catchall && m.headers_size() == 0 && m.query_parameters_size() == 0;
}

std::string traceOperation(std::string_view host, uint32_t port) {
  return std::string(host) + ":" + std::to_string(port) + "/*";
}

// What Istio's RouteMatch translation makes of one HTTPMatchRequest (none: "/").
route::RouteMatch translateMatch(const HTTPMatchRequest* in) {
  route::RouteMatch out;
  out.set_prefix("/");
  if (in == nullptr) return out;

  std::vector<route::HeaderMatcher> headers;
  for (const auto& [name, match] : in->headers) headers.push_back(headerMatcher(name, match));
  for (const auto& [name, match] : in->without_headers) {
    route::HeaderMatcher h = headerMatcher(name, match);
    h.set_invert_match(true);
    // treat_missing_header_as_empty cannot be combined with present_match.
    if (!isPresentMatch(match)) h.set_treat_missing_header_as_empty(true);
    headers.push_back(std::move(h));
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.name() < b.name(); });
  for (auto& h : headers) *out.add_headers() = std::move(h);

  if (in->uri) {
    switch (in->uri->kind) {
      case StringMatch::Kind::kExact:
        out.set_path(in->uri->value);
        break;
      case StringMatch::Kind::kPrefix:
        out.set_prefix(in->uri->value);
        break;
      case StringMatch::Kind::kRegex:
        out.mutable_safe_regex()->set_regex(in->uri->value);
        break;
      case StringMatch::Kind::kNone:
        break;
    }
  }
  out.mutable_case_sensitive()->set_value(!in->ignore_uri_case);
  if (in->method) *out.add_headers() = headerMatcher(":method", *in->method);
  if (in->authority) *out.add_headers() = headerMatcher(":authority", *in->authority);
  if (in->scheme) *out.add_headers() = headerMatcher(":scheme", *in->scheme);
  for (const auto& [name, match] : in->query_params) {
    route::QueryParameterMatcher* q = out.add_query_parameters();
    q->set_name(name);
    if (isPresentMatch(match)) {
      q->set_present_match(true);
    } else if (auto m = toStringMatcher(match)) {
      *q->mutable_string_match() = std::move(*m);
    }
  }
  return out;
}

// gateway_keys empty: the proxy is a sidecar (the "mesh" gateway).
bool sourceMatches(const HTTPMatchRequest* match, const ProxyContext& proxy,
                   const std::vector<std::string>& gateway_keys, std::string_view vs_namespace) {
  if (match == nullptr) return true;
  if (!match->gateways.empty()) {
    if (!gateway_keys.empty()) return namesGateway(match->gateways, vs_namespace, gateway_keys);
    return std::find(match->gateways.begin(), match->gateways.end(), "mesh") !=
           match->gateways.end();
  }
  for (const auto& [key, value] : match->source_labels) {
    auto it = proxy.labels.find(key);
    if (it == proxy.labels.end() || it->second != value) return false;
  }
  return match->source_namespace.empty() || match->source_namespace == proxy.namespace_name;
}

// Host header forms under which a Kubernetes service is reachable from the
// proxy's namespace (Istio's alternative virtual hosts): "reviews",
// "reviews.default", "reviews.default.svc" from the same namespace, only the
// namespace-qualified ones from elsewhere. port 0: without ":port" variants.
std::vector<std::string> altHosts(const std::string& hostname, uint32_t port,
                                  const std::string& proxy_domain) {
  std::vector<std::string> out;
  const size_t id = proxy_domain.find(".svc.");
  if (id == std::string::npos) return out;
  if (!hostname.ends_with(proxy_domain.substr(id))) return out;
  const size_t ih = hostname.find(".svc.");
  if (ih == std::string::npos || ih == 0) return out;
  const size_t ns = hostname.find('.');
  if (ns + 1 >= hostname.size() || ns + 1 > ih) return out;
  auto add = [&](const std::string& h) {
    out.push_back(h);
    if (port != 0) out.push_back(domainName(h, port));
  };
  if (hostname.substr(ns + 1, ih - ns - 1) == proxy_domain.substr(0, id)) {
    add(hostname.substr(0, ns));
    add(hostname.substr(0, ih) + ".svc");
    add(hostname.substr(0, ih));
  } else {
    add(hostname.substr(0, ih));
    add(hostname.substr(0, ih) + ".svc");
  }
  return out;
}

class OutboundBuilder {
 public:
  OutboundBuilder(const OutboundRouteInputs& in, std::vector<ResourceError>* errors)
      : in_(in), errors_(errors) {
    if (in.mesh != nullptr) mesh_ = *in.mesh;
    if (in.proxy != nullptr) proxy_ = *in.proxy;
    proxy_domain_ = proxy_.dns_domain;
    if (proxy_domain_.empty() && !proxy_.namespace_name.empty()) {
      proxy_domain_ = proxy_.namespace_name + ".svc." + mesh_.domain_suffix;
    }
    for (const Service* s : in.services) {
      if (s != nullptr) services_.emplace(lower(s->hostname), s);
    }
  }

  route::RouteConfiguration build() {
    if (!in_.gateway_keys.empty()) return buildGateway();
    route::RouteConfiguration config;
    config.set_name(outboundRouteName(in_.port));

    std::vector<VirtualHostSource> sources = collectSources();
    for (const VirtualHostSource& source : sources) {
      for (const Service* s : source.services) {
        known_fqdns_.insert(domainName(s->hostname, in_.port));
        known_fqdns_.insert(s->hostname);
      }
    }
    std::vector<route::VirtualHost> vhosts;
    for (VirtualHostSource& source : sources) {
      for (const std::string& host : source.other_hosts) {
        addVirtualHost(lower(host), nullptr, source, &vhosts);
      }
      for (const Service* s : source.services) addVirtualHost(s->hostname, s, source, &vhosts);
    }
    std::stable_sort(vhosts.begin(), vhosts.end(),
                     [](const auto& a, const auto& b) { return a.name() < b.name(); });
    for (auto& vh : vhosts) *config.add_virtual_hosts() = std::move(vh);
    *config.add_virtual_hosts() = catchAllVirtualHost();

    config.mutable_validate_clusters()->set_value(false);
    config.mutable_max_direct_response_body_size_bytes()->set_value(kMaxDirectResponseBodyBytes);
    config.set_ignore_port_in_host_matching(true);
    return config;
  }

 private:
  // Whether a gateway server host ("*", "*.example.com", "a.example.com")
  // admits a VirtualService host.
  static bool serverAdmits(std::string_view server_host, std::string_view vs_host) {
    if (server_host == "*") return true;
    if (server_host.starts_with("*.") && !vs_host.starts_with("*")) {
      return vs_host.ends_with(server_host.substr(1));
    }
    return server_host == vs_host;
  }

  route::RouteConfiguration buildGateway() {
    route::RouteConfiguration config;
    config.set_name(gatewayRouteName(in_.port));
    for (const Resource<VirtualService>* vs : in_.virtual_services) {
      std::vector<std::string> hosts;
      for (const std::string& h : vs->spec.hosts) {
        std::string host = lower(h);
        for (const std::string& server_host : in_.gateway_hosts) {
          if (serverAdmits(lower(server_host), host)) {
            hosts.push_back(host);
            break;
          }
        }
      }
      if (hosts.empty() || !virtualServiceIsValid(*vs)) continue;
      std::vector<route::Route> routes = buildRoutes(*vs);
      if (routes.empty()) continue;
      for (const std::string& host : hosts) {
        std::string name = domainName(host, in_.port);
        if (!vhost_names_.insert(name).second) {
          error(*vs, "hosts",
                "host " + host +
                    " is already routed on this gateway by an earlier "
                    "VirtualService; this one is ignored for it");
          continue;
        }
        route::VirtualHost* vh = config.add_virtual_hosts();
        vh->set_name(name);
        vh->add_domains(host);
        if (host != "*") vh->add_domains(host + ":*");
        for (const route::Route& r : routes) *vh->add_routes() = r;
        vh->set_include_request_attempt_count(true);
      }
    }
    config.mutable_validate_clusters()->set_value(false);
    config.mutable_max_direct_response_body_size_bytes()->set_value(kMaxDirectResponseBodyBytes);
    return config;
  }

  // The routes one group of hosts shares: a VirtualService's on this port,
  // or the default route of a service that has none.
  struct VirtualHostSource {
    std::vector<const Service*> services;
    std::vector<std::string> other_hosts;  // VirtualService hosts outside the registry
    std::vector<route::Route> routes;
  };

  void error(const Resource<VirtualService>& vs, const std::string& path,
             const std::string& message) {
    if (errors_ == nullptr) return;
    std::string text = vs.source.toString();
    if (!text.empty()) text += ": ";
    if (!path.empty()) text += path + ": ";
    errors_->push_back(ResourceError{vs.source, "VirtualService", vs.metadata.namespace_name,
                                     vs.metadata.name, invalidArgument(text + message)});
  }

  std::string fqdn(std::string_view host, const Resource<VirtualService>& vs) const {
    return lower(resolveHostname(host, vs.metadata.namespace_name, mesh_.domain_suffix));
  }

  // Every VirtualService host this config serves is claimed by exactly one
  // VirtualService: an exact host by the first in precedence order, a
  // service matched only by wildcards by the most specific wildcard.
  std::map<std::string, const Resource<VirtualService>*> claimServices() {
    std::map<std::string, const Resource<VirtualService>*> claims;
    std::map<std::string, size_t> wildcard_length;
    for (const Resource<VirtualService>* vs : in_.virtual_services) {
      for (const std::string& h : vs->spec.hosts) {
        std::string host = fqdn(h, *vs);
        if (isWildcardHostname(host)) continue;
        auto it = services_.find(host);
        if (it == services_.end()) continue;
        auto [claim, inserted] = claims.emplace(host, vs);
        if (!inserted && claim->second != vs) {
          error(*vs, "hosts",
                "host " + host + " is already routed by VirtualService " +
                    claim->second->metadata.namespace_name + "/" + claim->second->metadata.name +
                    "; this one is ignored for it");
        }
      }
    }
    for (const Resource<VirtualService>* vs : in_.virtual_services) {
      for (const std::string& h : vs->spec.hosts) {
        std::string host = fqdn(h, *vs);
        if (!isWildcardHostname(host)) continue;
        for (const auto& [name, service] : services_) {
          if (!hostMatches(host, name)) continue;
          auto existing = claims.find(name);
          if (existing != claims.end() && wildcard_length.count(name) == 0) continue;
          if (existing == claims.end() || host.size() > wildcard_length[name]) {
            claims[name] = vs;
            wildcard_length[name] = host.size();
          }
        }
      }
    }
    return claims;
  }

  std::vector<VirtualHostSource> collectSources() {
    std::vector<VirtualHostSource> out;
    std::map<std::string, const Resource<VirtualService>*> claims = claimServices();
    std::set<std::string> routed;
    for (const Resource<VirtualService>* vs : in_.virtual_services) {
      VirtualHostSource source;
      bool selected = false;
      for (const std::string& h : vs->spec.hosts) {
        std::string host = fqdn(h, *vs);
        bool matches_any = false;
        for (const auto& [name, service] : services_) {
          if (!hostMatches(host, name)) continue;
          matches_any = true;
          auto claim = claims.find(name);
          if (claim != claims.end() && claim->second == vs &&
              std::find(source.services.begin(), source.services.end(), service) ==
                  source.services.end()) {
            source.services.push_back(service);
          }
        }
        selected = selected || matches_any;
        if (!matches_any) source.other_hosts.push_back(host);
      }
      // Istio keeps hosts outside the registry only on port 80, where plain
      // HTTP to external names arrives.
      if (!selected && in_.port != 80) continue;
      if (source.services.empty() && source.other_hosts.empty()) continue;
      if (!virtualServiceIsValid(*vs)) continue;
      source.routes = buildRoutes(*vs);
      if (source.routes.empty()) continue;
      for (const Service* s : source.services) routed.insert(lower(s->hostname));
      out.push_back(std::move(source));
    }
    for (const auto& [name, service] : services_) {
      if (routed.count(name) > 0) continue;
      VirtualHostSource source;
      source.services.push_back(service);
      source.routes.push_back(defaultRoute(*service));
      out.push_back(std::move(source));
    }
    return out;
  }

  // Domains are not repeated across virtual hosts (Envoy rejects that), and a
  // short form never shadows a real FQDN ("foo.com" from "foo.com.cluster.local").
  void addVirtualHost(const std::string& hostname, const Service* service,
                      const VirtualHostSource& source, std::vector<route::VirtualHost>* out) {
    std::string name = domainName(hostname, in_.port);
    if (!vhost_names_.insert(name).second) return;
    std::vector<std::string> domains;
    std::vector<std::string> alt;
    const uint32_t port_suffix = in_.proxyless_grpc ? in_.port : 0;
    auto appendDomainPort = [&](const std::string& d) {
      domains.push_back(ipv6Compliant(d));
      if (port_suffix != 0) domains.push_back(domainName(d, port_suffix));
    };
    if (service == nullptr) {
      appendDomainPort(hostname);
    } else {
      appendDomainPort(hostname);
      alt = altHosts(hostname, port_suffix, proxy_domain_);
      domains.insert(domains.end(), alt.begin(), alt.end());
      if (service->resolution == Resolution::kPassthrough &&
          service->origin == ServiceOrigin::kKubernetesService) {
        const size_t n = domains.size();
        for (size_t i = 0; i < n; ++i) domains.push_back("*." + domains[i]);
      }
      std::vector<std::string> addresses;
      if (!service->vip.empty()) addresses.push_back(service->vip);
      for (const std::string& a : service->addresses) {
        if (isIpAddress(a) && std::find(addresses.begin(), addresses.end(), a) == addresses.end()) {
          addresses.push_back(a);
        }
      }
      for (const std::string& a : addresses) {
        if (a != "0.0.0.0") appendDomainPort(a);
      }
    }
    std::vector<std::string> kept;
    for (const std::string& d : domains) {
      std::string key = lower(d);
      if (domains_.count(key) > 0) continue;
      if (std::find(alt.begin(), alt.end(), d) != alt.end() && known_fqdns_.count(d) > 0) continue;
      kept.push_back(d);
      domains_.insert(key);
    }
    if (kept.empty()) return;
    route::VirtualHost vh;
    vh.set_name(name);
    for (const std::string& d : kept) vh.add_domains(d);
    for (const route::Route& r : source.routes) *vh.add_routes() = r;
    vh.set_include_request_attempt_count(true);
    out->push_back(std::move(vh));
  }

  route::VirtualHost catchAllVirtualHost() const {
    route::VirtualHost vh;
    route::Route* r = vh.add_routes();
    r->mutable_match()->set_prefix("/");
    if (in_.outbound_policy == OutboundTrafficPolicyMode::kAllowAny) {
      vh.set_name(kAllowAnyName);
      r->set_name(kAllowAnyName);
      route::RouteAction* action = r->mutable_route();
      action->set_cluster(std::string(kPassthroughClusterName));
      setDuration(action->mutable_timeout(), Duration::zero());
      setDuration(action->mutable_max_grpc_timeout(), Duration::zero());
    } else {
      vh.set_name(kBlockAllName);
      r->set_name(kBlockAllName);
      r->mutable_direct_response()->set_status(502);
    }
    vh.add_domains("*");
    vh.set_include_request_attempt_count(true);
    return vh;
  }

  const ConsistentHashLB* hashForService(const Service& service) const {
    if (!in_.destination_rule) return nullptr;
    const Resource<DestinationRule>* dr = in_.destination_rule(service.hostname);
    if (dr == nullptr) return nullptr;
    const ConsistentHashLB* port_hash = portConsistentHash(dr->spec.traffic_policy, in_.port);
    return port_hash != nullptr ? port_hash : consistentHashOf(dr->spec.traffic_policy);
  }

  // Subset and port-level settings refine the DestinationRule's hash key,
  // the most specific one winning.
  const ConsistentHashLB* hashForDestination(const std::string& host,
                                             const Destination& dest) const {
    if (!in_.destination_rule) return nullptr;
    const Resource<DestinationRule>* dr = in_.destination_rule(host);
    if (dr == nullptr) return nullptr;
    const ConsistentHashLB* hash = consistentHashOf(dr->spec.traffic_policy);
    const ConsistentHashLB* pls =
        dest.port ? portConsistentHash(dr->spec.traffic_policy, dest.port->number) : nullptr;
    const ConsistentHashLB* subset_hash = nullptr;
    const ConsistentHashLB* subset_pls = nullptr;
    for (const Subset& s : dr->spec.subsets) {
      if (s.name != dest.subset) continue;
      subset_hash = consistentHashOf(s.traffic_policy);
      if (dest.port) subset_pls = portConsistentHash(s.traffic_policy, dest.port->number);
      break;
    }
    if (subset_pls != nullptr) return subset_pls;
    if (subset_hash != nullptr) return subset_hash;
    if (pls != nullptr) return pls;
    return hash;
  }

  route::Route defaultRoute(const Service& service) const {
    route::Route r;
    r.set_name(kDefaultRouteName);
    r.mutable_match()->set_prefix("/");
    r.mutable_decorator()->set_operation(traceOperation(service.hostname, in_.port));
    route::RouteAction* action = r.mutable_route();
    action->set_cluster(outboundClusterName(in_.port, "", service.hostname));
    setDuration(action->mutable_timeout(), Duration::zero());
    *action->mutable_retry_policy() = defaultRetryPolicy(false);
    if (const ConsistentHashLB* hash = hashForService(service)) {
      bool has_key = false;
      auto policy = hashPolicy(*hash, &has_key);
      if (has_key) *action->add_hash_policy() = std::move(policy);
    }
    setDuration(action->mutable_max_grpc_timeout(), Duration::zero());
    return r;
  }

  // Patterns Envoy would reject make the whole RDS resource fail, so a
  // VirtualService carrying one is left out (Istio's webhook rejects it).
  bool virtualServiceIsValid(const Resource<VirtualService>& vs) {
    if (!in_.check_regex) return true;
    bool valid = true;
    auto check = [&](const std::string& path, const StringMatch& m) {
      if (m.kind != StringMatch::Kind::kRegex) return;
      Status s = in_.check_regex(m.value);
      if (!s.ok()) {
        error(vs, path,
              "invalid regex \"" + m.value + "\": " + s.error().message() +
                  "; the VirtualService is ignored");
        valid = false;
      }
    };
    for (size_t i = 0; i < vs.spec.http.size(); ++i) {
      const HTTPRoute& rule = vs.spec.http[i];
      const std::string base = "http[" + std::to_string(i) + "]";
      for (size_t j = 0; j < rule.match.size(); ++j) {
        const HTTPMatchRequest& m = rule.match[j];
        const std::string mp = base + ".match[" + std::to_string(j) + "]";
        if (m.uri) check(mp + ".uri", *m.uri);
        if (m.method) check(mp + ".method", *m.method);
        if (m.authority) check(mp + ".authority", *m.authority);
        if (m.scheme) check(mp + ".scheme", *m.scheme);
        for (const auto& [k, v] : m.headers) {
          if (!isPresentMatch(v)) check(mp + ".headers." + k, v);
        }
        for (const auto& [k, v] : m.without_headers) {
          if (!isPresentMatch(v)) check(mp + ".withoutHeaders." + k, v);
        }
        for (const auto& [k, v] : m.query_params) {
          if (!isPresentMatch(v)) check(mp + ".queryParams." + k, v);
        }
      }
      if (rule.rewrite && rule.rewrite->uri_regex_rewrite) {
        check(base + ".rewrite.uriRegexRewrite.match",
              StringMatch{StringMatch::Kind::kRegex, rule.rewrite->uri_regex_rewrite->match});
      }
      if (rule.cors_policy) {
        for (size_t j = 0; j < rule.cors_policy->allow_origins.size(); ++j) {
          check(base + ".corsPolicy.allowOrigins[" + std::to_string(j) + "]",
                rule.cors_policy->allow_origins[j]);
        }
      }
    }
    return valid;
  }

  std::vector<route::Route> buildRoutes(const Resource<VirtualService>& vs) {
    std::vector<route::Route> out;
    for (size_t i = 0; i < vs.spec.http.size(); ++i) {
      const HTTPRoute& rule = vs.spec.http[i];
      const std::string path = "http[" + std::to_string(i) + "]";
      if (rule.delegate) {
        error(vs, path + ".delegate",
              "delegate VirtualServices are not supported; the rule is ignored");
        continue;
      }
      bool catchall = false;
      if (rule.match.empty()) {
        if (auto r = translateRoute(vs, rule, path, nullptr)) out.push_back(std::move(*r));
        catchall = true;
      } else {
        for (const HTTPMatchRequest& m : rule.match) {
          auto r = translateRoute(vs, rule, path, &m);
          if (!r) continue;
          out.push_back(std::move(*r));
          if (isCatchAllRoute(out.back())) {
            catchall = true;
            break;
          }
        }
      }
      if (catchall) break;
    }
    return out;
  }

  // The cluster a destination names: its port, else the service's only
  // port, else the listener port.
  std::string destinationCluster(const Resource<VirtualService>& vs, const Destination& dest,
                                 const std::string& path) {
    std::string host = fqdn(dest.host, vs);
    const Service* service = in_.registry != nullptr ? in_.registry->findService(host) : nullptr;
    if (service == nullptr) {
      auto it = services_.find(host);
      if (it != services_.end()) service = it->second;
    }
    uint32_t port = in_.port;
    if (dest.port) {
      port = dest.port->number;
    } else if (service != nullptr && service->ports.size() == 1) {
      port = service->ports.front().port;
    }
    if (service == nullptr && !isWildcardHostname(host)) {
      std::string message = "destination host " + host + " is not in the service registry";
      if (in_.registry != nullptr) {
        if (const Service* guess = in_.registry->resolve(dest.host, vs.metadata.namespace_name)) {
          message += " (did you mean " + guess->hostname + "?)";
        }
      }
      error(vs, path + ".host", message + "; requests to it fail with 503 NC");
    } else if (service != nullptr && dest.port && service->findPort(dest.port->number) == nullptr) {
      error(vs, path + ".port.number",
            "service " + host + " has no port " + std::to_string(dest.port->number));
    }
    if (service != nullptr && !dest.subset.empty() && in_.destination_rule) {
      const Resource<DestinationRule>* dr = in_.destination_rule(host);
      bool found = false;
      if (dr != nullptr) {
        for (const Subset& s : dr->spec.subsets) found = found || s.name == dest.subset;
      }
      if (!found) {
        error(vs, path + ".subset",
              "subset " + dest.subset + " of " + host + " is not defined by any DestinationRule");
      }
    }
    return outboundClusterName(port, dest.subset, host);
  }

  std::optional<route::Route> translateRoute(const Resource<VirtualService>& vs,
                                             const HTTPRoute& rule, const std::string& path,
                                             const HTTPMatchRequest* match) {
    if (match != nullptr && match->port != 0 && match->port != in_.port) return std::nullopt;
    if (!sourceMatches(match, proxy_, in_.gateway_keys, vs.metadata.namespace_name)) {
      return std::nullopt;
    }

    route::Route out;
    std::string name = rule.name;
    if (match != nullptr && !match->name.empty()) name += "." + match->name;
    out.set_name(name);
    *out.mutable_match() = translateMatch(match);
    auto& fields = *(*out.mutable_metadata()->mutable_filter_metadata())["istio"].mutable_fields();
    fields["config"].set_string_value("/apis/" + vs.api_version + "/namespaces/" +
                                      vs.metadata.namespace_name + "/virtual-service/" +
                                      vs.metadata.name);
    if (match != nullptr && !match->stat_prefix.empty()) out.set_stat_prefix(match->stat_prefix);

    std::string authority;
    if (rule.headers) {
      HeaderOps ops = translateHeaders(*rule.headers);
      applyHeaderOps(ops, &out);
      authority = ops.authority;
    }

    if (rule.redirect) {
      if (!applyRedirect(vs, *rule.redirect, path, &out)) return std::nullopt;
    } else if (rule.direct_response) {
      if (!applyDirectResponse(vs, *rule.direct_response, path, &out)) return std::nullopt;
    } else if (!applyDestinations(vs, rule, path, authority, &out)) {
      return std::nullopt;
    }

    out.mutable_decorator()->set_operation(routeOperation(out, vs.metadata.name));
    // Istio's route metadata: which VirtualService wrote the route (istioctl and
    // `sheave proxy-config routes` show it).
    (*(*out.mutable_metadata()->mutable_filter_metadata())["istio"].mutable_fields())["config"]
        .set_string_value("/apis/networking.istio.io/v1/namespaces/" + vs.metadata.namespace_name +
                          "/virtual-service/" + vs.metadata.name);
    if (rule.fault) {
      if (auto fault = translateFault(vs, *rule.fault, path)) {
        (*out.mutable_typed_per_filter_config())[kFaultFilter].PackFrom(*fault);
      }
    }
    if (rule.cors_policy) {
      (*out.mutable_typed_per_filter_config())[kCorsFilter].PackFrom(
          translateCors(*rule.cors_policy));
    }
    return out;
  }

  std::string routeOperation(const route::Route& r, const std::string& vs_name) const {
    std::string path = "/*";
    const route::RouteMatch& m = r.match();
    switch (m.path_specifier_case()) {
      case route::RouteMatch::kPrefix:
        path = m.prefix() + "*";
        break;
      case route::RouteMatch::kPath:
        path = m.path();
        break;
      case route::RouteMatch::kSafeRegex:
        path = m.safe_regex().regex();
        break;
      default:
        break;
    }
    if (r.has_route() && r.route().cluster_specifier_case() == route::RouteAction::kCluster) {
      // "outbound|9080|v1|reviews.default.svc.cluster.local" -> "reviews...:9080".
      const std::string& c = r.route().cluster();
      size_t a = c.find('|');
      size_t b = a == std::string::npos ? a : c.find('|', a + 1);
      size_t d = b == std::string::npos ? b : c.find('|', b + 1);
      if (d != std::string::npos && c.compare(0, a, "outbound") == 0) {
        return c.substr(d + 1) + ":" + c.substr(a + 1, b - a - 1) + path;
      }
    }
    return vs_name + ":" + std::to_string(in_.port) + path;
  }

  bool applyRedirect(const Resource<VirtualService>& vs, const HTTPRedirect& redirect,
                     const std::string& path, route::Route* out) {
    route::RedirectAction* action = out->mutable_redirect();
    action->set_host_redirect(redirect.authority);
    action->set_path_redirect(redirect.uri);
    if (!redirect.scheme.empty()) action->set_scheme_redirect(redirect.scheme);
    if (redirect.port != 0 || redirect.derive_port) {
      if (redirect.port != 0) {
        action->set_port_redirect(redirect.port);
      } else if (*redirect.derive_port == RedirectPortSelection::kFromRequestPort) {
        // Envoy cannot copy the request's port, but this configuration only
        // ever serves one port.
        action->set_port_redirect(in_.port);
      }
      // A sidecar never terminates TLS, so the scheme defaults to http.
      const std::string scheme = redirect.scheme.empty() ? "http" : redirect.scheme;
      if ((action->port_redirect() == 80 && scheme == "http") ||
          (action->port_redirect() == 443 && scheme == "https")) {
        action->set_port_redirect(0);
      }
    }
    switch (redirect.redirect_code) {
      case 0:
      case 301:
        action->set_response_code(route::RedirectAction::MOVED_PERMANENTLY);
        break;
      case 302:
        action->set_response_code(route::RedirectAction::FOUND);
        break;
      case 303:
        action->set_response_code(route::RedirectAction::SEE_OTHER);
        break;
      case 307:
        action->set_response_code(route::RedirectAction::TEMPORARY_REDIRECT);
        break;
      case 308:
        action->set_response_code(route::RedirectAction::PERMANENT_REDIRECT);
        break;
      default:
        error(vs, path + ".redirect.redirectCode",
              "redirect code " + std::to_string(redirect.redirect_code) +
                  " is not supported (301, 302, 303, 307, 308); the route is ignored");
        return false;
    }
    return true;
  }

  bool applyDirectResponse(const Resource<VirtualService>& vs, const HTTPDirectResponse& in,
                           const std::string& path, route::Route* out) {
    route::DirectResponseAction* action = out->mutable_direct_response();
    action->set_status(in.status);
    if (in.body) {
      if (in.body->string) {
        action->mutable_body()->set_inline_string(*in.body->string);
      } else if (in.body->bytes) {
        std::optional<std::string> bytes = decodeBase64(*in.body->bytes);
        if (!bytes) {
          error(vs, path + ".directResponse.body.bytes", "not valid base64; the route is ignored");
          return false;
        }
        action->mutable_body()->set_inline_bytes(*bytes);
      }
    }
    return true;
  }

  std::optional<core::RuntimeFractionalPercent> mirrorFraction(std::optional<double> percentage,
                                                               std::optional<uint32_t> percent) {
    core::RuntimeFractionalPercent out;
    if (percentage) {
      if (*percentage <= 0) return std::nullopt;
      setPercent(out.mutable_default_value(), *percentage);
    } else if (percent) {
      if (*percent == 0) return std::nullopt;
      setIntegerPercent(out.mutable_default_value(), *percent);
    } else {
      setIntegerPercent(out.mutable_default_value(), 100);
    }
    return out;
  }

  void addMirror(const Resource<VirtualService>& vs, const Destination& dest,
                 const core::RuntimeFractionalPercent& fraction, const std::string& path,
                 route::RouteAction* action) {
    auto* policy = action->add_request_mirror_policies();
    policy->set_cluster(destinationCluster(vs, dest, path));
    *policy->mutable_runtime_fraction() = fraction;
    policy->mutable_trace_sampled()->set_value(false);
  }

  void addHash(const std::string& host, const Destination& dest, route::RouteAction* action,
               bool* consistent) {
    const ConsistentHashLB* hash = hashForDestination(host, dest);
    if (hash == nullptr) return;
    if (consistent != nullptr) *consistent = true;
    bool has_key = false;
    auto policy = hashPolicy(*hash, &has_key);
    if (has_key) *action->add_hash_policy() = std::move(policy);
  }

  bool applyDestinations(const Resource<VirtualService>& vs, const HTTPRoute& rule,
                         const std::string& path, std::string authority, route::Route* out) {
    if (rule.route.empty()) {
      error(vs, path + ".route", "no destination, redirect or directResponse; the rule is ignored");
      return false;
    }
    route::RouteAction* action = out->mutable_route();
    setTimeout(action, rule.timeout, in_.proxyless_grpc);

    if (rule.rewrite) {
      if (rule.rewrite->uri_regex_rewrite) {
        auto* rewrite = action->mutable_regex_rewrite();
        rewrite->mutable_pattern()->set_regex(rule.rewrite->uri_regex_rewrite->match);
        rewrite->set_substitution(rule.rewrite->uri_regex_rewrite->rewrite);
      } else if (!rule.rewrite->uri.empty()) {
        // With an exact path match Envoy's prefix_rewrite replaces the whole path.
        action->set_prefix_rewrite(rule.rewrite->uri);
      }
      if (!rule.rewrite->authority.empty()) authority = rule.rewrite->authority;
    }
    if (!authority.empty()) action->set_host_rewrite_literal(authority);

    if (rule.mirror) {
      if (auto fraction = mirrorFraction(rule.mirror_percentage, rule.mirror_percent)) {
        addMirror(vs, *rule.mirror, *fraction, path + ".mirror", action);
      }
    }
    for (size_t i = 0; i < rule.mirrors.size(); ++i) {
      const HTTPMirrorPolicy& m = rule.mirrors[i];
      if (auto fraction = mirrorFraction(m.percentage, std::nullopt)) {
        addMirror(vs, m.destination, *fraction,
                  path + ".mirrors[" + std::to_string(i) + "].destination", action);
      }
    }

    bool consistent_hash = false;
    if (rule.route.size() == 1) {
      const HTTPRouteDestination& dst = rule.route.front();
      const std::string dpath = path + ".route[0].destination";
      action->set_cluster(destinationCluster(vs, dst.destination, dpath));
      if (dst.headers) {
        HeaderOps ops = translateHeaders(*dst.headers);
        applyHeaderOps(ops, out);
        // A destination's authority yields to the rule's own rewrite.
        if (!ops.authority.empty() && action->host_rewrite_specifier_case() ==
                                          route::RouteAction::HOST_REWRITE_SPECIFIER_NOT_SET) {
          action->set_host_rewrite_literal(ops.authority);
        }
      }
      addHash(fqdn(dst.destination.host, vs), dst.destination, action, &consistent_hash);
    } else {
      auto* weighted = action->mutable_weighted_clusters();
      for (size_t i = 0; i < rule.route.size(); ++i) {
        const HTTPRouteDestination& dst = rule.route[i];
        // A zero weight takes no traffic; Envoy needs no entry for it.
        if (dst.weight == 0) continue;
        const std::string dpath = path + ".route[" + std::to_string(i) + "].destination";
        auto* cw = weighted->add_clusters();
        cw->set_name(destinationCluster(vs, dst.destination, dpath));
        cw->mutable_weight()->set_value(static_cast<uint32_t>(dst.weight));
        if (dst.headers) {
          HeaderOps ops = translateHeaders(*dst.headers);
          applyHeaderOps(ops, cw);
          if (!ops.authority.empty()) cw->set_host_rewrite_literal(ops.authority);
        }
        addHash(fqdn(dst.destination.host, vs), dst.destination, action, nullptr);
      }
      if (weighted->clusters_size() == 0) {
        error(vs, path + ".route",
              "every destination has weight 0, so no traffic can be routed; the rule is ignored");
        return false;
      }
    }
    if (auto policy = retryPolicy(rule.retries, consistent_hash)) {
      *action->mutable_retry_policy() = std::move(*policy);
    }
    return true;
  }

  std::optional<envoy::extensions::filters::http::fault::v3::HTTPFault> translateFault(
      const Resource<VirtualService>& vs, const HTTPFaultInjection& in, const std::string& path) {
    envoy::extensions::filters::http::fault::v3::HTTPFault out;
    if (in.delay) {
      if (in.delay->fixed_delay) {
        auto* delay = out.mutable_delay();
        if (in.delay->percentage) {
          setPercent(delay->mutable_percentage(), *in.delay->percentage);
        } else {
          setIntegerPercent(delay->mutable_percentage(), in.delay->percent);
        }
        setDuration(delay->mutable_fixed_delay(), *in.delay->fixed_delay);
      } else {
        error(vs, path + ".fault.delay",
              "only fixedDelay is supported (not exponentialDelay); the delay is ignored");
      }
    }
    if (in.abort) {
      auto* abort = out.mutable_abort();
      if (in.abort->percentage) setPercent(abort->mutable_percentage(), *in.abort->percentage);
      if (in.abort->http_status != 0) {
        abort->set_http_status(static_cast<uint32_t>(in.abort->http_status));
      } else if (!in.abort->grpc_status.empty()) {
        if (auto code = grpcStatusCodeOf(in.abort->grpc_status)) {
          abort->set_grpc_status(*code);
        } else {
          error(vs, path + ".fault.abort.grpcStatus",
                "unknown gRPC status \"" + in.abort->grpc_status + "\"; the abort is ignored");
          out.clear_abort();
        }
      } else {
        error(vs, path + ".fault.abort",
              "only httpStatus and grpcStatus aborts are supported; the abort is ignored");
        out.clear_abort();
      }
    }
    if (!out.has_delay() && !out.has_abort()) return std::nullopt;
    return out;
  }

  static envoy::extensions::filters::http::cors::v3::CorsPolicy translateCors(
      const CorsPolicy& in) {
    envoy::extensions::filters::http::cors::v3::CorsPolicy out;
    out.mutable_forward_not_matching_preflights()->set_value(in.unmatched_preflights !=
                                                             UnmatchedPreflights::kIgnore);
    if (!in.allow_origins.empty()) {
      for (const StringMatch& m : in.allow_origins) {
        if (auto sm = toStringMatcher(m)) *out.add_allow_origin_string_match() = std::move(*sm);
      }
    } else {
      for (const std::string& o : in.allow_origin)
        out.add_allow_origin_string_match()->set_exact(o);
    }
    auto* enabled = out.mutable_filter_enabled()->mutable_default_value();
    enabled->set_numerator(100);
    enabled->set_denominator(FractionalPercent::HUNDRED);
    if (in.allow_credentials) out.mutable_allow_credentials()->set_value(*in.allow_credentials);
    auto join = [](const std::vector<std::string>& items) {
      std::string s;
      for (const std::string& i : items) s += (s.empty() ? "" : ",") + i;
      return s;
    };
    out.set_allow_headers(join(in.allow_headers));
    out.set_allow_methods(join(in.allow_methods));
    out.set_expose_headers(join(in.expose_headers));
    if (in.max_age) {
      out.set_max_age(
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*in.max_age).count()));
    }
    return out;
  }

  const OutboundRouteInputs& in_;
  std::vector<ResourceError>* errors_;
  MeshConfig mesh_;
  ProxyContext proxy_;
  std::string proxy_domain_;
  std::map<std::string, const Service*> services_;  // by lower-cased hostname
  std::set<std::string> known_fqdns_;
  std::set<std::string> domains_;  // lower-cased, across all virtual hosts
  std::set<std::string> vhost_names_;
};

}  // namespace

envoy::config::route::v3::RouteConfiguration buildOutboundRouteConfiguration(
    const OutboundRouteInputs& inputs, std::vector<ResourceError>* errors) {
  return OutboundBuilder(inputs, errors).build();
}

envoy::config::route::v3::RouteConfiguration buildInboundRouteConfiguration(
    const ProxyContext& proxy, uint32_t port) {
  const ProxyContext::ServiceInstance* instance = nullptr;
  for (const auto& si : proxy.service_instances) {
    uint32_t target = si.target_port != 0 ? si.target_port : si.service_port;
    if (target == port) {
      instance = &si;
      break;
    }
  }
  const std::string cluster = inboundClusterName(port);
  route::RouteConfiguration config;
  config.set_name(cluster);
  config.mutable_validate_clusters()->set_value(false);
  route::VirtualHost* vh = config.add_virtual_hosts();
  const uint32_t service_port = instance != nullptr ? instance->service_port : port;
  vh->set_name("inbound|http|" + std::to_string(service_port));
  vh->add_domains("*");
  route::Route* r = vh->add_routes();
  r->set_name(kDefaultRouteName);
  r->mutable_match()->set_prefix("/");
  if (instance != nullptr && instance->service != nullptr) {
    r->mutable_decorator()->set_operation(
        traceOperation(instance->service->hostname, instance->service_port));
  }
  route::RouteAction* action = r->mutable_route();
  action->set_cluster(cluster);
  setDuration(action->mutable_timeout(), Duration::zero());
  auto* msd = action->mutable_max_stream_duration();
  setDuration(msd->mutable_max_stream_duration(), Duration::zero());
  setDuration(msd->mutable_grpc_timeout_header_max(), Duration::zero());
  // Retrying a request that never reached the app is safe; for gRPC streams
  // even that is not, so they get no retry policy.
  if (instance == nullptr || !isGrpc(instance->protocol)) {
    action->mutable_retry_policy()->set_retry_on("reset-before-request");
    action->mutable_retry_policy()->mutable_num_retries()->set_value(2);
  }
  return config;
}

}  // namespace sheave::control
