#include "match/route_table.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include "match/field_path.h"
#include "match/fractional_percent.h"

namespace sheave {

namespace {

using envoy::config::route::v3::RouteAction;
using RouteProto = envoy::config::route::v3::Route;
using RouteMatchProto = envoy::config::route::v3::RouteMatch;

const std::string kEmpty;
constexpr std::string_view kCorsFilterName = "envoy.filters.http.cors";

std::string_view typeNameOf(std::string_view type_url) {
  const size_t slash = type_url.rfind('/');
  return slash == std::string_view::npos ? type_url : type_url.substr(slash + 1);
}

struct ParserRegistry {
  std::mutex mutex;
  std::map<std::string, PerFilterConfigParsers::Parser, std::less<>> parsers;
};

ParserRegistry& parserRegistry() {
  static ParserRegistry* registry = new ParserRegistry();  // never destroyed: used at exit
  return *registry;
}

Result<std::chrono::milliseconds> toMillis(const google::protobuf::Duration& d,
                                           const std::string& where) {
  if (d.seconds() < 0 || d.nanos() < 0) return invalidArgument("must not be negative").at(where);
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

// Envoy reads a DataSource at load time; so do we, so the request path never
// touches the file system.
Result<std::string> readDataSource(const envoy::config::core::v3::DataSource& ds,
                                   const std::string& where) {
  using DS = envoy::config::core::v3::DataSource;
  switch (ds.specifier_case()) {
    case DS::kInlineString:
      return ds.inline_string();
    case DS::kInlineBytes:
      return ds.inline_bytes();
    case DS::kFilename: {
      std::ifstream in(ds.filename(), std::ios::binary);
      if (!in) return ioError("cannot read file '" + ds.filename() + "'").at(where + ".filename");
      std::ostringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
    case DS::kEnvironmentVariable: {
      const char* v = std::getenv(ds.environment_variable().c_str());
      if (v == nullptr) {
        return invalidArgument("environment variable '" + ds.environment_variable() +
                               "' is not set")
            .at(where + ".environment_variable");
      }
      return std::string(v);
    }
    default:
      return std::string();
  }
}

bool isGrpcContentType(const std::string* ct) {
  if (ct == nullptr) return false;
  std::string_view v(*ct);
  constexpr std::string_view kGrpc = "application/grpc";
  if (!v.starts_with(kGrpc)) return false;
  return v.size() == kGrpc.size() || v[kGrpc.size()] == '+' || v[kGrpc.size()] == ';';
}

std::string_view pathWithoutQuery(std::string_view path) {
  return path.substr(0, path.find_first_of("?#"));
}

std::string_view trimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

uint64_t denominatorValue(envoy::type::v3::FractionalPercent::DenominatorType d) {
  switch (d) {
    case envoy::type::v3::FractionalPercent::TEN_THOUSAND:
      return 10000;
    case envoy::type::v3::FractionalPercent::MILLION:
      return 1000000;
    default:
      return 100;
  }
}

// Rewrites the matched part of `path` (or, with a regex, the whole path
// without query) and keeps the rest, query string included.
std::string rewriteWith(std::string_view path, std::string_view matched,
                        const std::string& prefix_rewrite,
                        const std::optional<RegexSubstitution>& regex_rewrite) {
  if (!prefix_rewrite.empty()) {
    std::string out = prefix_rewrite;
    out.append(path.substr(matched.size()));
    return out;
  }
  std::string_view no_query = pathWithoutQuery(path);
  std::string out = regex_rewrite->replaceAll(no_query);
  out.append(path.substr(no_query.size()));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Retry policy

Result<uint32_t> parseRetryOn(std::string_view list) {
  static const std::unordered_map<std::string_view, uint32_t> kNames = {
      {"5xx", RetryOn::k5xx},
      {"gateway-error", RetryOn::kGatewayError},
      {"reset", RetryOn::kReset},
      {"reset-before-request", RetryOn::kResetBeforeRequest},
      {"connect-failure", RetryOn::kConnectFailure},
      {"envoy-ratelimited", RetryOn::kEnvoyRateLimited},
      {"retriable-4xx", RetryOn::kRetriable4xx},
      {"refused-stream", RetryOn::kRefusedStream},
      {"retriable-status-codes", RetryOn::kRetriableStatusCodes},
      {"retriable-headers", RetryOn::kRetriableHeaders},
      {"http3-post-connect-failure", RetryOn::kHttp3PostConnectFailure},
      {"cancelled", RetryOn::kGrpcCancelled},
      {"deadline-exceeded", RetryOn::kGrpcDeadlineExceeded},
      {"internal", RetryOn::kGrpcInternal},
      {"resource-exhausted", RetryOn::kGrpcResourceExhausted},
      {"unavailable", RetryOn::kGrpcUnavailable},
  };
  uint32_t bits = 0;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view name = trimBlanks(list.substr(0, comma));
    if (!name.empty()) {
      auto it = kNames.find(name);
      if (it == kNames.end()) {
        return invalidArgument("unknown retry condition '" + std::string(name) + "'");
      }
      bits |= it->second;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return bits;
}

Result<RetryPolicy> RetryPolicy::create(const envoy::config::route::v3::RetryPolicy& config) {
  RetryPolicy p;
  auto bits = parseRetryOn(config.retry_on());
  if (!bits.ok()) return std::move(bits).error().at("retry_on");
  p.retry_on = *bits;
  if (config.has_num_retries()) p.num_retries = config.num_retries().value();
  if (config.has_per_try_timeout()) {
    SHEAVE_ASSIGN_OR_RETURN(auto t, toMillis(config.per_try_timeout(), "per_try_timeout"));
    if (t.count() > 0) p.per_try_timeout = t;
  }
  if (config.has_per_try_idle_timeout()) {
    SHEAVE_ASSIGN_OR_RETURN(auto t,
                            toMillis(config.per_try_idle_timeout(), "per_try_idle_timeout"));
    if (t.count() > 0) p.per_try_idle_timeout = t;
  }
  for (uint32_t code : config.retriable_status_codes()) p.retriable_status_codes.push_back(code);
  for (int i = 0; i < config.retriable_headers_size(); ++i) {
    auto m = HeaderMatcher::create(config.retriable_headers(i));
    if (!m.ok()) return nestError(std::move(m).error(), indexedField("retriable_headers", i));
    p.retriable_headers.push_back(std::move(m).value());
  }
  for (int i = 0; i < config.retriable_request_headers_size(); ++i) {
    auto m = HeaderMatcher::create(config.retriable_request_headers(i));
    if (!m.ok())
      return nestError(std::move(m).error(), indexedField("retriable_request_headers", i));
    p.retriable_request_headers.push_back(std::move(m).value());
  }
  if (config.has_retry_back_off()) {
    const auto& bo = config.retry_back_off();
    if (!bo.has_base_interval()) {
      return invalidArgument("is required").at("retry_back_off.base_interval");
    }
    SHEAVE_ASSIGN_OR_RETURN(auto base,
                            toMillis(bo.base_interval(), "retry_back_off.base_interval"));
    if (bo.base_interval().seconds() == 0 && bo.base_interval().nanos() == 0) {
      return invalidArgument("must be greater than zero").at("retry_back_off.base_interval");
    }
    // Envoy rounds sub-millisecond intervals up to 1 ms.
    if (base.count() == 0) base = std::chrono::milliseconds(1);
    p.base_interval = base;
    p.max_interval = base * 10;
    if (bo.has_max_interval()) {
      SHEAVE_ASSIGN_OR_RETURN(auto max, toMillis(bo.max_interval(), "retry_back_off.max_interval"));
      if (max < base) {
        return invalidArgument("must be greater than or equal to base_interval")
            .at("retry_back_off.max_interval");
      }
      p.max_interval = max;
    }
  }
  for (int i = 0; i < config.retry_host_predicate_size(); ++i) {
    const auto& pred = config.retry_host_predicate(i);
    if (pred.name().empty()) {
      return invalidArgument("must not be empty")
          .at(indexedField("retry_host_predicate", i) + ".name");
    }
    p.retry_host_predicates.push_back(pred.name());
  }
  if (config.host_selection_retry_max_attempts() != 0) {
    p.host_selection_retry_max_attempts = config.host_selection_retry_max_attempts();
  }
  if (config.has_retry_priority()) p.retry_priority = config.retry_priority().name();
  return p;
}

// ---------------------------------------------------------------------------
// Route entries

const std::string& WeightedClusterEntry::clusterName(const HeaderMap& request_headers) const {
  if (cluster_header.empty()) return name;
  const std::string* v = request_headers.get(cluster_header);
  return v ? *v : kEmpty;
}

const WeightedClusterEntry* RouteEntry::pickWeightedCluster(const HeaderMap& request_headers,
                                                            uint64_t random) const {
  if (weighted_clusters.empty() || total_weight == 0) return nullptr;
  uint64_t value = random;
  if (!random_value_header.empty() && request_headers.count(random_value_header) == 1) {
    std::string_view v = *request_headers.get(random_value_header);
    uint64_t parsed = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
    if (ec == std::errc() && ptr == v.data() + v.size() && !v.empty()) value = parsed;
  }
  const uint64_t selected = value % total_weight;
  uint64_t begin = 0;
  for (const auto& c : weighted_clusters) {
    const uint64_t end = begin + c.weight;
    if (selected >= begin && selected < end) return &c;
    begin = end;
  }
  return nullptr;  // unreachable: the weights sum to total_weight
}

const std::string& RouteEntry::pickCluster(const HeaderMap& request_headers,
                                           uint64_t random) const {
  switch (action) {
    case ActionKind::kCluster:
      return cluster;
    case ActionKind::kClusterHeader: {
      const std::string* v = request_headers.get(cluster_header);
      return v ? *v : kEmpty;
    }
    case ActionKind::kWeightedClusters: {
      const WeightedClusterEntry* c = pickWeightedCluster(request_headers, random);
      return c ? c->clusterName(request_headers) : kEmpty;
    }
    default:
      return kEmpty;
  }
}

std::string_view RouteEntry::matchedPath(std::string_view path_no_query) const {
  switch (path_kind) {
    case PathKind::kPrefix:
    case PathKind::kPath:
    case PathKind::kPathSeparatedPrefix:
      return path_no_query.substr(0, std::min(path.size(), path_no_query.size()));
    case PathKind::kRegex:
      return path_no_query;
    case PathKind::kConnect:
      return {};
  }
  return {};
}

std::optional<std::string> RouteEntry::rewrittenPath(std::string_view request_path) const {
  if (prefix_rewrite.empty() && !regex_rewrite) return std::nullopt;
  return rewriteWith(request_path, matchedPath(pathWithoutQuery(request_path)), prefix_rewrite,
                     regex_rewrite);
}

bool RouteEntry::matches(const HeaderMap& request_headers, std::optional<QueryParameters>& query,
                         uint64_t random) const {
  const std::string_view full_path = request_headers.path();
  const std::string_view p = pathWithoutQuery(full_path);
  switch (path_kind) {
    case PathKind::kPrefix:
      if (!(case_sensitive ? p.starts_with(path) : startsWithIgnoreCase(p, path))) return false;
      break;
    case PathKind::kPath:
      if (!(case_sensitive ? p == path : equalsIgnoreCase(p, path))) return false;
      break;
    case PathKind::kRegex:
      if (!regexFullMatch(*path_regex, p)) return false;
      break;
    case PathKind::kPathSeparatedPrefix: {
      if (p.size() < path.size()) return false;
      std::string_view head = p.substr(0, path.size());
      if (!(case_sensitive ? head == path : equalsIgnoreCase(head, path))) return false;
      if (p.size() != path.size() && p[path.size()] != '/') return false;
      break;
    }
    case PathKind::kConnect:
      if (request_headers.method() != "CONNECT") return false;
      break;
  }
  if (grpc_only && !isGrpcContentType(request_headers.get("content-type"))) return false;
  if (runtime_fraction && random % runtime_fraction->second >= runtime_fraction->first) {
    return false;
  }
  if (!matchAllHeaders(request_headers, headers)) return false;
  if (!query_parameters.empty()) {
    if (!query) query = QueryParameters::parse(full_path);
    for (const auto& qm : query_parameters) {
      if (!qm.match(*query)) return false;
    }
  }
  return true;
}

std::string_view stripPortFromHost(std::string_view host, std::optional<uint32_t> only_port) {
  size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) return host;
  // An IPv6 literal is bracketed; a colon inside the brackets is not a port.
  size_t bracket = host.rfind(']');
  if (bracket != std::string_view::npos && bracket > colon) return host;
  if (only_port) {
    std::string_view port = host.substr(colon + 1);
    uint32_t n = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || ptr != port.data() + port.size() || port.empty() || n != *only_port) {
      return host;
    }
  }
  return host.substr(0, colon);
}

namespace {

// Envoy's rule for a redirect that keeps the request's host: drop the port
// when a port_redirect is given, or when the scheme changes and the port was
// the default one of the request's scheme.
std::string_view redirectHost(std::string_view request_host, std::string_view new_scheme,
                              bool new_port, std::string_view request_scheme) {
  if (request_host.empty()) return request_host;
  size_t host_end;
  if (request_host[0] == '[') {
    host_end = request_host.rfind("]:");
    if (host_end != std::string_view::npos) host_end += 1;
  } else {
    host_end = request_host.rfind(':');
  }
  if (host_end == std::string_view::npos) return request_host;
  std::string_view port = request_host.substr(host_end);
  bool remove = new_port;
  if (new_scheme != request_scheme) {
    remove |= request_scheme == "https" && port == ":443";
    remove |= request_scheme == "http" && port == ":80";
  }
  return remove ? request_host.substr(0, host_end) : request_host;
}

}  // namespace

std::string RouteEntry::redirectLocation(const HeaderMap& h) const {
  if (!redirect) return {};
  const Redirect& r = *redirect;
  // The HCM sets x-forwarded-proto before routing; :scheme is the fallback
  // for callers (tests, `sheave explain`) that do not.
  std::string_view request_scheme;
  if (const std::string* xfp = h.get("x-forwarded-proto")) {
    request_scheme = *xfp;
  } else {
    request_scheme = h.scheme().empty() ? std::string_view("http") : h.scheme();
  }
  std::string_view scheme = !r.scheme_redirect.empty() ? std::string_view(r.scheme_redirect)
                            : r.https_redirect         ? std::string_view("https")
                                                       : request_scheme;
  std::string port = r.port_redirect ? ":" + std::to_string(r.port_redirect) : std::string();
  std::string_view authority = h.authority();
  if (authority.empty()) {
    if (const std::string* host = h.get("host")) authority = *host;
  }
  std::string_view host = !r.host_redirect.empty()
                              ? std::string_view(r.host_redirect)
                              : redirectHost(authority, scheme, !port.empty(), request_scheme);

  const std::string_view request_path = h.path();
  std::string path;
  if (!r.path_redirect.empty()) {
    path = r.path_redirect;
    if (!r.path_redirect_has_query) {
      size_t q = request_path.find('?');
      if (q != std::string_view::npos) path.append(request_path.substr(q));
    }
  } else if (!r.prefix_rewrite.empty() || r.regex_rewrite) {
    path = rewriteWith(request_path, matchedPath(pathWithoutQuery(request_path)), r.prefix_rewrite,
                       r.regex_rewrite);
  } else {
    path = request_path;
  }
  if (path.empty() || path[0] != '/') path.insert(path.begin(), '/');
  if (!r.path_redirect_has_query && r.strip_query) {
    size_t q = path.find('?');
    if (q != std::string::npos) path.resize(q);
  }
  std::string out;
  out.reserve(scheme.size() + 3 + host.size() + port.size() + path.size());
  out.append(scheme).append("://").append(host).append(port).append(path);
  return out;
}

// ---------------------------------------------------------------------------
// Match result

const std::string& RouteMatchResult::cluster(const HeaderMap& request_headers) const {
  if (route == nullptr) return kEmpty;
  if (weighted_cluster != nullptr) return weighted_cluster->clusterName(request_headers);
  if (route->action == RouteEntry::ActionKind::kWeightedClusters) return kEmpty;
  return route->pickCluster(request_headers, 0);
}

namespace {

template <typename Select>
void applyLevels(const RouteMatchResult& r, HeaderMap& headers, Select select) {
  const HeaderMutations* levels[4] = {
      r.weighted_cluster ? &select(*r.weighted_cluster) : nullptr,
      r.route ? &select(*r.route) : nullptr,
      r.virtual_host ? &select(*r.virtual_host) : nullptr,
      r.table ? &select(*r.table) : nullptr,
  };
  // Later levels overwrite earlier ones. By default the route configuration is
  // applied last and so wins; most_specific_header_mutations_wins reverses it.
  if (r.table != nullptr && r.table->mostSpecificHeaderMutationsWins()) {
    for (int i = 3; i >= 0; --i) {
      if (levels[i]) levels[i]->apply(headers);
    }
  } else {
    for (const HeaderMutations* l : levels) {
      if (l) l->apply(headers);
    }
  }
}

struct RequestSide {
  const HeaderMutations& operator()(const WeightedClusterEntry& e) const {
    return e.request_headers;
  }
  const HeaderMutations& operator()(const RouteEntry& e) const { return e.request_headers; }
  const HeaderMutations& operator()(const VirtualHostEntry& e) const { return e.request_headers; }
  const HeaderMutations& operator()(const RouteTable& t) const { return t.requestHeaders(); }
};

struct ResponseSide {
  const HeaderMutations& operator()(const WeightedClusterEntry& e) const {
    return e.response_headers;
  }
  const HeaderMutations& operator()(const RouteEntry& e) const { return e.response_headers; }
  const HeaderMutations& operator()(const VirtualHostEntry& e) const { return e.response_headers; }
  const HeaderMutations& operator()(const RouteTable& t) const { return t.responseHeaders(); }
};

}  // namespace

void RouteMatchResult::applyRequestHeaderMutations(HeaderMap& request_headers) const {
  applyLevels(*this, request_headers, RequestSide{});
}

void RouteMatchResult::applyResponseHeaderMutations(HeaderMap& response_headers) const {
  applyLevels(*this, response_headers, ResponseSide{});
}

std::array<const PerFilterConfig*, 3> RouteMatchResult::perFilterConfigs(
    std::string_view filter_name) const {
  auto lookup = [filter_name](const PerFilterConfigs& m) -> const PerFilterConfig* {
    if (m.empty()) return nullptr;
    auto it = m.find(filter_name);
    return it == m.end() ? nullptr : &it->second;
  };
  return {route ? lookup(route->per_filter_config) : nullptr,
          virtual_host ? lookup(virtual_host->per_filter_config) : nullptr,
          table ? lookup(table->perFilterConfig()) : nullptr};
}

const PerFilterConfig* RouteMatchResult::perFilterConfig(std::string_view filter_name) const {
  for (const PerFilterConfig* c : perFilterConfigs(filter_name)) {
    if (c != nullptr) return c;
  }
  return nullptr;
}

void RouteMatchResult::rewritePath(HeaderMap& request_headers) const {
  if (route == nullptr) return;
  auto rewritten = route->rewrittenPath(request_headers.path());
  if (rewritten) request_headers.set(":path", *rewritten);
}

void RouteMatchResult::rewriteHost(HeaderMap& request_headers) const {
  if (route == nullptr) return;
  if (!route->host_rewrite_literal.empty()) {
    request_headers.set(":authority", route->host_rewrite_literal);
  } else if (weighted_cluster != nullptr && !weighted_cluster->host_rewrite_literal.empty()) {
    request_headers.set(":authority", weighted_cluster->host_rewrite_literal);
  } else if (!route->host_rewrite_header.empty()) {
    const std::string* v = request_headers.get(route->host_rewrite_header);
    if (v != nullptr && !v->empty()) {
      std::string copy = *v;  // set() may invalidate v
      request_headers.set(":authority", copy);
    }
  }
}

// ---------------------------------------------------------------------------
// Building

namespace {

Result<std::vector<MirrorPolicy>> buildMirrorPolicies(
    const google::protobuf::RepeatedPtrField<
        envoy::config::route::v3::RouteAction::RequestMirrorPolicy>& config,
    const std::string& where) {
  std::vector<MirrorPolicy> out;
  for (int i = 0; i < config.size(); ++i) {
    const auto& m = config[i];
    const std::string at = indexedField(where, i);
    MirrorPolicy p;
    p.cluster = m.cluster();
    p.cluster_header = asciiLower(m.cluster_header());
    if (p.cluster.empty() == p.cluster_header.empty()) {
      return invalidArgument("exactly one of cluster and cluster_header is required").at(at);
    }
    if (m.has_runtime_fraction()) {
      SHEAVE_ASSIGN_OR_RETURN(p.fraction,
                              parseFractionalPercent(m.runtime_fraction().default_value(),
                                                     at + ".runtime_fraction.default_value"));
    }
    p.disable_shadow_host_suffix_append = m.disable_shadow_host_suffix_append();
    p.host_rewrite_literal = m.host_rewrite_literal();
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<RateLimitPolicy>> buildRateLimits(
    const google::protobuf::RepeatedPtrField<envoy::config::route::v3::RateLimit>& config,
    const std::string& where) {
  std::vector<RateLimitPolicy> out;
  for (int i = 0; i < config.size(); ++i) {
    SHEAVE_ASSIGN_OR_RETURN(auto policy,
                            RateLimitPolicy::create(config[i], indexedField(where, i)));
    out.push_back(std::move(policy));
  }
  return out;
}

Result<Redirect> buildRedirect(const envoy::config::route::v3::RedirectAction& config,
                               const std::string& where) {
  using RA = envoy::config::route::v3::RedirectAction;
  Redirect r;
  r.https_redirect = config.https_redirect();
  r.scheme_redirect = asciiLower(config.scheme_redirect());
  r.host_redirect = config.host_redirect();
  r.port_redirect = config.port_redirect();
  if (r.port_redirect > 65535) {
    return invalidArgument("must be a port number").at(where + ".port_redirect");
  }
  r.path_redirect = config.path_redirect();
  r.path_redirect_has_query = r.path_redirect.find('?') != std::string::npos;
  r.prefix_rewrite = config.prefix_rewrite();
  if (config.has_regex_rewrite()) {
    auto rr = RegexSubstitution::create(config.regex_rewrite());
    if (!rr.ok()) return nestError(std::move(rr).error(), where + ".regex_rewrite");
    r.regex_rewrite = std::move(rr).value();
  }
  switch (config.response_code()) {
    case RA::MOVED_PERMANENTLY:
      r.response_code = 301;
      break;
    case RA::FOUND:
      r.response_code = 302;
      break;
    case RA::SEE_OTHER:
      r.response_code = 303;
      break;
    case RA::TEMPORARY_REDIRECT:
      r.response_code = 307;
      break;
    case RA::PERMANENT_REDIRECT:
      r.response_code = 308;
      break;
    default:
      return invalidArgument("unknown value " + std::to_string(config.response_code()))
          .at(where + ".response_code");
  }
  r.strip_query = config.strip_query();
  return r;
}

Status buildMatch(const RouteMatchProto& m, const std::string& where, RouteEntry& e) {
  e.case_sensitive = !m.has_case_sensitive() || m.case_sensitive().value();
  switch (m.path_specifier_case()) {
    case RouteMatchProto::kPrefix:
      e.path_kind = RouteEntry::PathKind::kPrefix;
      e.path = m.prefix();
      break;
    case RouteMatchProto::kPath:
      e.path_kind = RouteEntry::PathKind::kPath;
      e.path = m.path();
      break;
    case RouteMatchProto::kSafeRegex: {
      e.path_kind = RouteEntry::PathKind::kRegex;
      auto regex = compileRegex(m.safe_regex());
      if (!regex.ok()) return std::move(regex).error().at(where + ".safe_regex.regex");
      e.path_regex = std::move(regex).value();
      break;
    }
    case RouteMatchProto::kPathSeparatedPrefix: {
      const std::string& p = m.path_separated_prefix();
      if (p.size() < 2 || p.find_first_of("?#") != std::string::npos || p.back() == '/') {
        return invalidArgument("'" + p + "' must not contain '?' or '#' nor end with '/'")
            .at(where + ".path_separated_prefix");
      }
      e.path_kind = RouteEntry::PathKind::kPathSeparatedPrefix;
      e.path = p;
      break;
    }
    case RouteMatchProto::kConnectMatcher:
      e.path_kind = RouteEntry::PathKind::kConnect;
      break;
    default:
      return invalidArgument(
                 "one of prefix, path, safe_regex, path_separated_prefix or connect_matcher is "
                 "required")
          .at(where);
  }
  if (m.has_tls_context()) {
    return invalidArgument("matching on the TLS context is not supported")
        .at(where + ".tls_context");
  }
  e.grpc_only = m.has_grpc();
  if (m.has_runtime_fraction()) {
    const auto& dv = m.runtime_fraction().default_value();
    e.runtime_fraction =
        std::make_pair(uint64_t{dv.numerator()}, denominatorValue(dv.denominator()));
  }
  for (int i = 0; i < m.headers_size(); ++i) {
    auto hm = HeaderMatcher::create(m.headers(i));
    if (!hm.ok()) return nestError(std::move(hm).error(), where + "." + indexedField("headers", i));
    e.headers.push_back(std::move(hm).value());
  }
  for (int i = 0; i < m.query_parameters_size(); ++i) {
    auto qm = QueryParameterMatcher::create(m.query_parameters(i));
    if (!qm.ok())
      return nestError(std::move(qm).error(), where + "." + indexedField("query_parameters", i));
    e.query_parameters.push_back(std::move(qm).value());
  }
  return okStatus();
}

Status buildWeightedClusters(const envoy::config::route::v3::WeightedCluster& wc,
                             const std::string& where, RouteEntry& e) {
  if (wc.clusters_size() == 0) {
    return invalidArgument("must have at least one cluster").at(where + ".clusters");
  }
  if (wc.has_use_hash_policy() && wc.use_hash_policy().value()) {
    return invalidArgument("is not supported").at(where + ".use_hash_policy");
  }
  uint64_t sum = 0;
  for (int i = 0; i < wc.clusters_size(); ++i) {
    const auto& c = wc.clusters(i);
    const std::string cw = where + "." + indexedField("clusters", i);
    WeightedClusterEntry w;
    if (c.name().empty() == c.cluster_header().empty()) {
      return invalidArgument("exactly one of name and cluster_header is required").at(cw);
    }
    w.name = c.name();
    w.cluster_header = asciiLower(c.cluster_header());
    w.weight = c.has_weight() ? c.weight().value() : 0;
    sum += w.weight;
    w.host_rewrite_literal = c.host_rewrite_literal();
    auto req = HeaderMutations::create(c.request_headers_to_add(), c.request_headers_to_remove(),
                                       "request_headers_to_add", "request_headers_to_remove");
    if (!req.ok()) return nestError(std::move(req).error(), cw);
    w.request_headers = std::move(req).value();
    auto resp = HeaderMutations::create(c.response_headers_to_add(), c.response_headers_to_remove(),
                                        "response_headers_to_add", "response_headers_to_remove");
    if (!resp.ok()) return nestError(std::move(resp).error(), cw);
    w.response_headers = std::move(resp).value();
    e.weighted_clusters.push_back(std::move(w));
  }
  if (sum == 0) {
    return invalidArgument("the sum of weights must be greater than 0").at(where + ".clusters");
  }
  if (sum > std::numeric_limits<uint32_t>::max()) {
    return invalidArgument("the sum of weights must not exceed 4294967295").at(where + ".clusters");
  }
  if (wc.has_total_weight() && wc.total_weight().value() > 0 && wc.total_weight().value() != sum) {
    return invalidArgument("is " + std::to_string(wc.total_weight().value()) +
                           " but the weights add up to " + std::to_string(sum))
        .at(where + ".total_weight");
  }
  e.total_weight = sum;
  e.random_value_header = asciiLower(wc.header_name());
  return okStatus();
}

Status buildRouteAction(const RouteAction& a, const std::string& where,
                        const std::optional<RetryPolicy>& vhost_retry, RouteEntry& e) {
  switch (a.cluster_specifier_case()) {
    case RouteAction::kCluster:
      if (a.cluster().empty()) return invalidArgument("must not be empty").at(where + ".cluster");
      e.action = RouteEntry::ActionKind::kCluster;
      e.cluster = a.cluster();
      break;
    case RouteAction::kClusterHeader:
      if (a.cluster_header().empty()) {
        return invalidArgument("must not be empty").at(where + ".cluster_header");
      }
      e.action = RouteEntry::ActionKind::kClusterHeader;
      e.cluster_header = asciiLower(a.cluster_header());
      break;
    case RouteAction::kWeightedClusters:
      e.action = RouteEntry::ActionKind::kWeightedClusters;
      SHEAVE_RETURN_IF_ERROR(
          buildWeightedClusters(a.weighted_clusters(), where + ".weighted_clusters", e));
      break;
    default:
      return invalidArgument("one of cluster, cluster_header or weighted_clusters is required")
          .at(where);
  }
  switch (a.cluster_not_found_response_code()) {
    case RouteAction::NOT_FOUND:
      e.cluster_not_found_response_code = 404;
      break;
    case RouteAction::INTERNAL_SERVER_ERROR:
      e.cluster_not_found_response_code = 500;
      break;
    default:
      e.cluster_not_found_response_code = 503;
      break;
  }
  if (!a.prefix_rewrite().empty() && a.has_regex_rewrite()) {
    return invalidArgument("only one of prefix_rewrite and regex_rewrite may be set").at(where);
  }
  e.prefix_rewrite = a.prefix_rewrite();
  if (a.has_regex_rewrite()) {
    auto rr = RegexSubstitution::create(a.regex_rewrite());
    if (!rr.ok()) return nestError(std::move(rr).error(), where + ".regex_rewrite");
    e.regex_rewrite = std::move(rr).value();
  }
  switch (a.host_rewrite_specifier_case()) {
    case RouteAction::kHostRewriteLiteral:
      e.host_rewrite_literal = a.host_rewrite_literal();
      break;
    case RouteAction::kAutoHostRewrite:
      e.auto_host_rewrite = a.auto_host_rewrite().value();
      break;
    case RouteAction::kHostRewriteHeader:
      e.host_rewrite_header = asciiLower(a.host_rewrite_header());
      break;
    case RouteAction::kHostRewritePathRegex:
      return invalidArgument("is not supported").at(where + ".host_rewrite_path_regex");
    default:
      break;
  }
  if (a.has_timeout()) {
    SHEAVE_ASSIGN_OR_RETURN(e.timeout, toMillis(a.timeout(), where + ".timeout"));
  }
  if (a.has_idle_timeout()) {
    SHEAVE_ASSIGN_OR_RETURN(auto t, toMillis(a.idle_timeout(), where + ".idle_timeout"));
    e.idle_timeout = t;
  }
  if (a.has_max_stream_duration() && a.max_stream_duration().has_max_stream_duration()) {
    SHEAVE_ASSIGN_OR_RETURN(auto t, toMillis(a.max_stream_duration().max_stream_duration(),
                                             where + ".max_stream_duration.max_stream_duration"));
    e.max_stream_duration = t;
  }
  if (a.has_max_grpc_timeout()) {
    SHEAVE_ASSIGN_OR_RETURN(auto t, toMillis(a.max_grpc_timeout(), where + ".max_grpc_timeout"));
    e.max_grpc_timeout = t;
  }
  if (a.has_grpc_timeout_offset()) {
    SHEAVE_ASSIGN_OR_RETURN(e.grpc_timeout_offset,
                            toMillis(a.grpc_timeout_offset(), where + ".grpc_timeout_offset"));
  }
  // The newer fields win over the deprecated ones, as in Envoy.
  if (a.max_stream_duration().has_grpc_timeout_header_max()) {
    const auto& header_max = a.max_stream_duration().grpc_timeout_header_max();
    SHEAVE_ASSIGN_OR_RETURN(
        auto t, toMillis(header_max, where + ".max_stream_duration.grpc_timeout_header_max"));
    e.max_grpc_timeout = t;
  }
  if (a.max_stream_duration().has_grpc_timeout_header_offset()) {
    SHEAVE_ASSIGN_OR_RETURN(e.grpc_timeout_offset,
                            toMillis(a.max_stream_duration().grpc_timeout_header_offset(),
                                     where + ".max_stream_duration.grpc_timeout_header_offset"));
  }
  // Envoy does not merge: a route-level policy replaces the virtual host's.
  if (a.has_retry_policy()) {
    auto rp = RetryPolicy::create(a.retry_policy());
    if (!rp.ok()) return nestError(std::move(rp).error(), where + ".retry_policy");
    e.retry_policy = std::move(rp).value();
  } else {
    e.retry_policy = vhost_retry;
  }
  SHEAVE_ASSIGN_OR_RETURN(e.hash_policy,
                          HashPolicy::create(a.hash_policy(), where + ".hash_policy"));
  SHEAVE_ASSIGN_OR_RETURN(e.rate_limits, buildRateLimits(a.rate_limits(), where + ".rate_limits"));
  SHEAVE_ASSIGN_OR_RETURN(
      e.mirror_policies,
      buildMirrorPolicies(a.request_mirror_policies(), where + ".request_mirror_policies"));
  for (int i = 0; i < a.upgrade_configs_size(); ++i) {
    const auto& u = a.upgrade_configs(i);
    const std::string uw = where + ".upgrade_configs[" + std::to_string(i) + "]";
    if (u.upgrade_type().empty())
      return invalidArgument("must not be empty").at(uw + ".upgrade_type");
    if (u.has_connect_config()) {
      return invalidArgument(
                 "terminating CONNECT is not supported (CONNECT is proxied to the upstream as is)")
          .at(uw + ".connect_config");
    }
    e.upgrade_configs.emplace_back(asciiLower(u.upgrade_type()),
                                   u.has_enabled() ? u.enabled().value() : true);
  }
  return okStatus();
}

// typed_per_filter_config (and, for routes and virtual hosts, the legacy
// `cors` field) parsed with the registered parsers.
template <typename Map>
Result<PerFilterConfigs> buildPerFilterConfigs(const Map& typed, const std::string& where) {
  PerFilterConfigs out;
  for (const auto& [name, any] : typed) {
    const std::string fw =
        (where.empty() ? "" : where + ".") + "typed_per_filter_config[" + name + "]";
    PerFilterConfig entry;
    if (typeNameOf(any.type_url()) == "envoy.config.route.v3.FilterConfig") {
      envoy::config::route::v3::FilterConfig wrapper;
      if (!any.UnpackTo(&wrapper)) {
        return invalidArgument("cannot be parsed as FilterConfig").at(fw);
      }
      entry.disabled = wrapper.disabled();
      entry.typed_config = wrapper.config();
    } else {
      entry.typed_config = any;
    }
    const std::string_view type = typeNameOf(entry.typed_config.type_url());
    if (!type.empty()) {
      if (auto parser = PerFilterConfigParsers::find(type)) {
        auto parsed = (*parser)(entry.typed_config);
        if (!parsed.ok()) return nestError(std::move(parsed).error(), fw);
        entry.parsed = std::move(parsed).value();
      }
    }
    out.emplace(name, std::move(entry));
  }
  return out;
}

template <typename Proto>
Status addLegacyCors(const Proto& config, const std::string& where, PerFilterConfigs& out) {
  if (!config.has_cors() || out.contains(kCorsFilterName)) return okStatus();
  PerFilterConfig entry;
  entry.typed_config.PackFrom(config.cors());
  if (auto parser = PerFilterConfigParsers::find(typeNameOf(entry.typed_config.type_url()))) {
    auto parsed = (*parser)(entry.typed_config);
    if (!parsed.ok()) return nestError(std::move(parsed).error(), where + ".cors");
    entry.parsed = std::move(parsed).value();
  }
  out.emplace(kCorsFilterName, std::move(entry));
  return okStatus();
}

Result<RouteEntry> buildRoute(const RouteProto& r, const std::string& where,
                              const std::optional<RetryPolicy>& vhost_retry,
                              uint32_t max_body_bytes) {
  RouteEntry e;
  e.name = r.name();
  if (!r.has_match()) return invalidArgument("is required").at(where + ".match");
  SHEAVE_RETURN_IF_ERROR(buildMatch(r.match(), where + ".match", e));
  switch (r.action_case()) {
    case RouteProto::kRoute:
      SHEAVE_RETURN_IF_ERROR(buildRouteAction(r.route(), where + ".route", vhost_retry, e));
      break;
    case RouteProto::kRedirect: {
      e.action = RouteEntry::ActionKind::kRedirect;
      SHEAVE_ASSIGN_OR_RETURN(e.redirect, buildRedirect(r.redirect(), where + ".redirect"));
      break;
    }
    case RouteProto::kDirectResponse: {
      const auto& dr = r.direct_response();
      const std::string dw = where + ".direct_response";
      if (dr.status() < 200 || dr.status() >= 600) {
        return invalidArgument("must be in [200, 600), got " + std::to_string(dr.status()))
            .at(dw + ".status");
      }
      if (dr.has_body_format()) {
        return invalidArgument("is not supported").at(dw + ".body_format");
      }
      DirectResponse d;
      d.status = dr.status();
      if (dr.has_body()) {
        SHEAVE_ASSIGN_OR_RETURN(d.body, readDataSource(dr.body(), dw + ".body"));
        if (d.body.size() > max_body_bytes) {
          return invalidArgument("is " + std::to_string(d.body.size()) +
                                 " bytes, more than max_direct_response_body_size_bytes (" +
                                 std::to_string(max_body_bytes) + ")")
              .at(dw + ".body");
        }
      }
      e.action = RouteEntry::ActionKind::kDirectResponse;
      e.direct_response = std::move(d);
      break;
    }
    default:
      return invalidArgument("one of route, redirect or direct_response is required").at(where);
  }
  auto req = HeaderMutations::create(r.request_headers_to_add(), r.request_headers_to_remove(),
                                     "request_headers_to_add", "request_headers_to_remove");
  if (!req.ok()) return nestError(std::move(req).error(), where);
  e.request_headers = std::move(req).value();
  auto resp = HeaderMutations::create(r.response_headers_to_add(), r.response_headers_to_remove(),
                                      "response_headers_to_add", "response_headers_to_remove");
  if (!resp.ok()) return nestError(std::move(resp).error(), where);
  e.response_headers = std::move(resp).value();
  auto filters = buildPerFilterConfigs(r.typed_per_filter_config(), where);
  if (!filters.ok()) return std::move(filters).error();
  e.per_filter_config = std::move(filters).value();
  if (r.has_route()) {
    SHEAVE_RETURN_IF_ERROR(addLegacyCors(r.route(), where + ".route", e.per_filter_config));
  }
  return e;
}

}  // namespace

Result<std::shared_ptr<const RouteTable>> RouteTable::create(
    const envoy::config::route::v3::RouteConfiguration& config) {
  std::shared_ptr<RouteTable> table(new RouteTable());
  table->name_ = config.name();
  table->ignore_port_in_host_matching_ = config.ignore_port_in_host_matching();
  table->most_specific_wins_ = config.most_specific_header_mutations_wins();
  for (const auto& h : config.internal_only_headers()) {
    table->internal_only_headers_.push_back(asciiLower(h));
  }
  const uint32_t max_body = config.has_max_direct_response_body_size_bytes()
                                ? config.max_direct_response_body_size_bytes().value()
                                : 4096;
  {
    auto req =
        HeaderMutations::create(config.request_headers_to_add(), config.request_headers_to_remove(),
                                "request_headers_to_add", "request_headers_to_remove");
    if (!req.ok()) return std::move(req).error();
    table->request_headers_ = std::move(req).value();
    auto resp = HeaderMutations::create(config.response_headers_to_add(),
                                        config.response_headers_to_remove(),
                                        "response_headers_to_add", "response_headers_to_remove");
    if (!resp.ok()) return std::move(resp).error();
    table->response_headers_ = std::move(resp).value();
    auto filters = buildPerFilterConfigs(config.typed_per_filter_config(), "");
    if (!filters.ok()) return std::move(filters).error();
    table->per_filter_config_ = std::move(filters).value();
  }

  // Which virtual host owns each domain, to name both in a duplicate error.
  std::unordered_map<std::string, std::string> domain_owner;
  for (int v = 0; v < config.virtual_hosts_size(); ++v) {
    const auto& vh = config.virtual_hosts(v);
    const std::string vw = indexedField("virtual_hosts", v);
    auto entry = std::make_unique<VirtualHostEntry>();
    entry->name = vh.name();
    entry->include_request_attempt_count = vh.include_request_attempt_count();
    entry->include_attempt_count_in_response = vh.include_attempt_count_in_response();
    if (vh.name().empty()) return invalidArgument("must not be empty").at(vw + ".name");
    if (vh.domains_size() == 0) {
      return invalidArgument("virtual host '" + vh.name() + "' must have at least one domain")
          .at(vw + ".domains");
    }
    std::optional<RetryPolicy> vhost_retry;
    if (vh.has_retry_policy()) {
      auto rp = RetryPolicy::create(vh.retry_policy());
      if (!rp.ok()) return nestError(std::move(rp).error(), vw + ".retry_policy");
      vhost_retry = std::move(rp).value();
    }
    auto req = HeaderMutations::create(vh.request_headers_to_add(), vh.request_headers_to_remove(),
                                       "request_headers_to_add", "request_headers_to_remove");
    if (!req.ok()) return nestError(std::move(req).error(), vw);
    entry->request_headers = std::move(req).value();
    auto resp =
        HeaderMutations::create(vh.response_headers_to_add(), vh.response_headers_to_remove(),
                                "response_headers_to_add", "response_headers_to_remove");
    if (!resp.ok()) return nestError(std::move(resp).error(), vw);
    entry->response_headers = std::move(resp).value();
    auto filters = buildPerFilterConfigs(vh.typed_per_filter_config(), vw);
    if (!filters.ok()) return std::move(filters).error();
    entry->per_filter_config = std::move(filters).value();
    SHEAVE_ASSIGN_OR_RETURN(entry->rate_limits,
                            buildRateLimits(vh.rate_limits(), vw + ".rate_limits"));
    SHEAVE_RETURN_IF_ERROR(addLegacyCors(vh, vw, entry->per_filter_config));

    for (int r = 0; r < vh.routes_size(); ++r) {
      auto route =
          buildRoute(vh.routes(r), vw + "." + indexedField("routes", r), vhost_retry, max_body);
      if (!route.ok()) return std::move(route).error();
      entry->routes.push_back(std::move(route).value());
    }
    SHEAVE_ASSIGN_OR_RETURN(auto vh_mirrors, buildMirrorPolicies(vh.request_mirror_policies(),
                                                                 vw + ".request_mirror_policies"));
    for (auto& route : entry->routes) {
      route.virtual_host = entry.get();
      // A route's own mirror policies replace the virtual host's.
      if (route.mirror_policies.empty() &&
          route.action != RouteEntry::ActionKind::kDirectResponse &&
          route.action != RouteEntry::ActionKind::kRedirect) {
        route.mirror_policies = vh_mirrors;
      }
    }

    for (int d = 0; d < vh.domains_size(); ++d) {
      std::string domain = asciiLower(vh.domains(d));
      const std::string dw = vw + "." + indexedField("domains", d);
      auto [it, inserted] = domain_owner.emplace(domain, vh.name());
      if (!inserted) {
        if (domain == "*") {
          return invalidArgument(
                     "only a single wildcard domain '*' is permitted (also in virtual "
                     "host '" +
                     it->second + "')")
              .at(dw);
        }
        return invalidArgument("duplicate domain '" + domain + "' (also in virtual host '" +
                               it->second + "')")
            .at(dw);
      }
      const VirtualHostEntry* ptr = entry.get();
      if (domain == "*") {
        table->default_ = ptr;
      } else if (!domain.empty() && domain.front() == '*') {
        std::string key = domain.substr(1);
        table->suffix_wildcards_[key.size()].emplace(std::move(key), ptr);
      } else if (!domain.empty() && domain.back() == '*') {
        std::string key = domain.substr(0, domain.size() - 1);
        table->prefix_wildcards_[key.size()].emplace(std::move(key), ptr);
      } else {
        table->exact_.emplace(std::move(domain), ptr);
      }
      entry->domains.push_back(vh.domains(d));
    }
    table->virtual_hosts_.push_back(std::move(entry));
  }
  return std::shared_ptr<const RouteTable>(std::move(table));
}

// ---------------------------------------------------------------------------
// Lookup

const VirtualHostEntry* RouteTable::findWildcard(
    std::string_view host,
    const std::map<size_t, std::unordered_map<std::string, const VirtualHostEntry*>,
                   std::greater<>>& table,
    bool suffix) const {
  std::string key;
  for (const auto& [len, by_key] : table) {
    // '>=': "*.foo.com" must not match ".foo.com" itself; the wildcard stands
    // for at least one character.
    if (len >= host.size()) continue;
    std::string_view part = suffix ? host.substr(host.size() - len) : host.substr(0, len);
    key.assign(part);
    auto it = by_key.find(key);
    if (it != by_key.end()) return it->second;
  }
  return nullptr;
}

const VirtualHostEntry* RouteTable::findVirtualHost(const HeaderMap& request_headers,
                                                    const HostPortPolicy& port_policy) const {
  if (exact_.empty() && suffix_wildcards_.empty() && prefix_wildcards_.empty()) return default_;
  const std::string* host_value = request_headers.get(":authority");
  if (host_value == nullptr) host_value = request_headers.get("host");
  if (host_value == nullptr) return nullptr;

  std::string_view host = *host_value;
  if (ignore_port_in_host_matching_ || port_policy.strip_any_host_port) {
    host = stripPortFromHost(host);
  } else if (port_policy.strip_matching_host_port) {
    host = stripPortFromHost(host, port_policy.strip_matching_host_port);
  }
  const std::string lower = asciiLower(host);
  if (auto it = exact_.find(lower); it != exact_.end()) return it->second;
  if (const VirtualHostEntry* v = findWildcard(lower, suffix_wildcards_, true)) return v;
  if (const VirtualHostEntry* v = findWildcard(lower, prefix_wildcards_, false)) return v;
  return default_;
}

RouteMatchResult RouteTable::route(const HeaderMap& request_headers, uint64_t random,
                                   const HostPortPolicy& port_policy) const {
  RouteMatchResult result;
  result.table = this;
  result.virtual_host = findVirtualHost(request_headers, port_policy);
  if (result.virtual_host == nullptr) return result;
  // Parsed on first use, at most once per request.
  std::optional<QueryParameters> query;
  for (const RouteEntry& r : result.virtual_host->routes) {
    if (!r.matches(request_headers, query, random)) continue;
    result.route = &r;
    if (r.action == RouteEntry::ActionKind::kWeightedClusters) {
      result.weighted_cluster = r.pickWeightedCluster(request_headers, random);
    }
    break;
  }
  return result;
}

void PerFilterConfigParsers::add(std::string type_name, Parser parser) {
  ParserRegistry& r = parserRegistry();
  std::lock_guard lock(r.mutex);
  r.parsers[std::move(type_name)] = std::move(parser);
}

std::optional<PerFilterConfigParsers::Parser> PerFilterConfigParsers::find(
    std::string_view type_name) {
  ParserRegistry& r = parserRegistry();
  std::lock_guard lock(r.mutex);
  auto it = r.parsers.find(type_name);
  if (it == r.parsers.end()) return std::nullopt;
  return it->second;
}

}  // namespace sheave
