// YAML decoders and Istio's cheap semantic checks for networking.istio.io.
#include <set>

#include "control/model/decoders.h"

namespace sheave::control {

namespace {

void requireNonEmpty(MapReader& m, std::string_view key, bool empty) {
  if (!m.decoder().failed() && empty) m.failField(key, "required");
}

// A WorkloadEntry-style `ports` map (port name -> number).
void checkPortMap(MapReader& m, std::string_view key,
                  const std::map<std::string, uint32_t>& ports) {
  if (m.decoder().failed()) return;
  for (const auto& [name, port] : ports) {
    if (port == 0 || port > 65535) {
      const YAML::Node node = *m.find(key);
      m.decoder().fail(node[name], childPath(m.pathOf(key), name),
                       "port must be in [1, 65535], got " + std::to_string(port));
      return;
    }
  }
}

void checkPort(MapReader& m, std::string_view key, uint32_t port) {
  if (!m.decoder().failed() && m.has(key) && (port == 0 || port > 65535)) {
    m.failField(key, "port must be in [1, 65535], got " + std::to_string(port));
  }
}

// Weights of a route with several destinations must each be in [0, 100] and
// add up to 100, as Istio validates them.
template <typename Dest>
void checkWeights(Decoder& d, MapReader& m, const std::vector<Dest>& route) {
  const YAML::Node* list = m.find("route");
  if (d.failed() || list == nullptr) return;
  int64_t sum = 0;
  for (size_t i = 0; i < route.size(); ++i) {
    const int32_t w = route[i].weight;
    if (w < 0 || w > 100) {
      const YAML::Node item = (*list)[i];
      d.fail(item["weight"], childPath(indexPath(m.pathOf("route"), i), "weight"),
             "weight must be in [0, 100], got " + std::to_string(w));
      return;
    }
    sum += w;
  }
  if (route.size() > 1 && sum != 100) {
    d.fail(*list, m.pathOf("route"),
           "weights of the destinations must add up to 100, got " + std::to_string(sum));
  }
}

}  // namespace

// --- shared -----------------------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, WorkloadSelector& out) {
  MapReader m(d, n, path);
  m.field("matchLabels", out.match_labels);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            NetworkingWorkloadSelector& out) {
  MapReader m(d, n, path);
  m.field("labels", out.match_labels);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, PolicyTargetReference& out) {
  MapReader m(d, n, path);
  m.field("group", out.group);
  m.field("kind", out.kind);
  m.field("name", out.name);
  m.field("namespace", out.namespace_name);
  m.finish();
  requireNonEmpty(m, "kind", out.kind.empty());
  requireNonEmpty(m, "name", out.name.empty());
}

// --- VirtualService ---------------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, StringMatch& out) {
  MapReader m(d, n, path);
  static constexpr std::pair<std::string_view, StringMatch::Kind> kKinds[] = {
      {"exact", StringMatch::Kind::kExact},
      {"prefix", StringMatch::Kind::kPrefix},
      {"regex", StringMatch::Kind::kRegex},
  };
  for (const auto& [key, kind] : kKinds) {
    if (m.has(key)) out.kind = kind;
    m.field(key, out.value);
  }
  m.finish();
  m.atMostOne({"exact", "prefix", "regex"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, PortSelector& out) {
  MapReader m(d, n, path);
  m.field("number", out.number);
  m.finish();
  checkPort(m, "number", out.number);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Destination& out) {
  MapReader m(d, n, path);
  m.field("host", out.host);
  m.field("subset", out.subset);
  m.field("port", out.port);
  m.finish();
  requireNonEmpty(m, "host", out.host.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HeaderOperations& out) {
  MapReader m(d, n, path);
  m.field("set", out.set);
  m.field("add", out.add);
  m.field("remove", out.remove);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Headers& out) {
  MapReader m(d, n, path);
  m.field("request", out.request);
  m.field("response", out.response);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPMatchRequest& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("uri", out.uri);
  m.field("scheme", out.scheme);
  m.field("method", out.method);
  m.field("authority", out.authority);
  m.field("headers", out.headers);
  m.field("port", out.port);
  m.field("sourceLabels", out.source_labels);
  m.field("gateways", out.gateways);
  m.field("queryParams", out.query_params);
  m.field("ignoreUriCase", out.ignore_uri_case);
  m.field("withoutHeaders", out.without_headers);
  m.field("sourceNamespace", out.source_namespace);
  m.field("statPrefix", out.stat_prefix);
  m.finish();
  checkPort(m, "port", out.port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPRouteDestination& out) {
  MapReader m(d, n, path);
  m.field("destination", out.destination);
  m.field("weight", out.weight);
  m.field("headers", out.headers);
  m.finish();
  requireNonEmpty(m, "destination", !m.has("destination"));
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, RouteDestination& out) {
  MapReader m(d, n, path);
  m.field("destination", out.destination);
  m.field("weight", out.weight);
  m.finish();
  requireNonEmpty(m, "destination", !m.has("destination"));
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPRedirect& out) {
  MapReader m(d, n, path);
  m.field("uri", out.uri);
  m.field("authority", out.authority);
  m.field("port", out.port);
  m.field("derivePort", out.derive_port);
  m.field("scheme", out.scheme);
  m.field("redirectCode", out.redirect_code);
  m.finish();
  m.atMostOne({"port", "derivePort"});
  checkPort(m, "port", out.port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPBody& out) {
  MapReader m(d, n, path);
  m.field("string", out.string);
  m.field("bytes", out.bytes);
  m.finish();
  m.atMostOne({"string", "bytes"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPDirectResponse& out) {
  MapReader m(d, n, path);
  m.field("status", out.status);
  m.field("body", out.body);
  m.finish();
  if (!d.failed() && (out.status < 200 || out.status > 599)) {
    m.failField("status", "status must be in [200, 599], got " + std::to_string(out.status));
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Delegate& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("namespace", out.namespace_name);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, RegexRewrite& out) {
  MapReader m(d, n, path);
  m.field("match", out.match);
  m.field("rewrite", out.rewrite);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPRewrite& out) {
  MapReader m(d, n, path);
  m.field("uri", out.uri);
  m.field("authority", out.authority);
  m.field("uriRegexRewrite", out.uri_regex_rewrite);
  m.finish();
  m.atMostOne({"uri", "uriRegexRewrite"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPRetry& out) {
  MapReader m(d, n, path);
  m.field("attempts", out.attempts);
  m.field("perTryTimeout", out.per_try_timeout);
  m.field("retryOn", out.retry_on);
  m.field("retryRemoteLocalities", out.retry_remote_localities);
  m.finish();
  if (!d.failed() && out.attempts < 0) m.failField("attempts", "attempts must not be negative");
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            HTTPFaultInjection::Delay& out) {
  MapReader m(d, n, path);
  m.field("fixedDelay", out.fixed_delay);
  m.field("exponentialDelay", out.exponential_delay);
  m.percent("percentage", out.percentage);
  m.field("percent", out.percent);
  m.finish();
  m.exactlyOne({"fixedDelay", "exponentialDelay"});
  if (!d.failed() && (out.percent < 0 || out.percent > 100)) {
    m.failField("percent", "percent must be in [0, 100]");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            HTTPFaultInjection::Abort& out) {
  MapReader m(d, n, path);
  m.field("httpStatus", out.http_status);
  m.field("grpcStatus", out.grpc_status);
  m.field("http2Error", out.http2_error);
  m.percent("percentage", out.percentage);
  m.finish();
  m.exactlyOne({"httpStatus", "grpcStatus", "http2Error"});
  if (!d.failed() && m.has("httpStatus") && (out.http_status < 200 || out.http_status > 599)) {
    m.failField("httpStatus",
                "httpStatus must be in [200, 599], got " + std::to_string(out.http_status));
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPFaultInjection& out) {
  MapReader m(d, n, path);
  m.field("delay", out.delay);
  m.field("abort", out.abort);
  m.finish();
  if (!d.failed() && !out.delay && !out.abort) {
    d.fail(n, path, "a fault needs a delay, an abort or both");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPMirrorPolicy& out) {
  MapReader m(d, n, path);
  m.field("destination", out.destination);
  m.percent("percentage", out.percentage);
  m.finish();
  requireNonEmpty(m, "destination", !m.has("destination"));
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, CorsPolicy& out) {
  MapReader m(d, n, path);
  m.field("allowOrigins", out.allow_origins);
  m.field("allowOrigin", out.allow_origin);
  m.field("allowMethods", out.allow_methods);
  m.field("allowHeaders", out.allow_headers);
  m.field("exposeHeaders", out.expose_headers);
  m.field("maxAge", out.max_age);
  m.field("allowCredentials", out.allow_credentials);
  m.field("unmatchedPreflights", out.unmatched_preflights);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, HTTPRoute& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("match", out.match);
  m.field("route", out.route);
  m.field("redirect", out.redirect);
  m.field("directResponse", out.direct_response);
  m.field("delegate", out.delegate);
  m.field("rewrite", out.rewrite);
  m.field("timeout", out.timeout);
  m.field("retries", out.retries);
  m.field("fault", out.fault);
  m.field("mirror", out.mirror);
  m.percent("mirrorPercentage", out.mirror_percentage);
  m.field("mirrorPercent", out.mirror_percent);
  m.field("mirrors", out.mirrors);
  m.field("corsPolicy", out.cors_policy);
  m.field("headers", out.headers);
  m.finish();
  m.exactlyOne({"route", "redirect", "directResponse", "delegate"});
  m.atMostOne({"mirror", "mirrors"});
  m.atMostOne({"mirrorPercentage", "mirrorPercent"});
  if (!d.failed() && out.redirect && out.rewrite) {
    m.failField("rewrite", "a route with a redirect cannot also rewrite");
  }
  checkWeights(d, m, out.route);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, L4MatchAttributes& out) {
  MapReader m(d, n, path);
  m.field("destinationSubnets", out.destination_subnets);
  m.field("port", out.port);
  m.field("sourceSubnet", out.source_subnet);
  m.field("sourceLabels", out.source_labels);
  m.field("gateways", out.gateways);
  m.field("sourceNamespace", out.source_namespace);
  m.finish();
  checkPort(m, "port", out.port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, TLSMatchAttributes& out) {
  MapReader m(d, n, path);
  m.field("sniHosts", out.sni_hosts);
  m.field("destinationSubnets", out.destination_subnets);
  m.field("port", out.port);
  m.field("sourceLabels", out.source_labels);
  m.field("gateways", out.gateways);
  m.field("sourceNamespace", out.source_namespace);
  m.finish();
  requireNonEmpty(m, "sniHosts", out.sni_hosts.empty());
  checkPort(m, "port", out.port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, TCPRoute& out) {
  MapReader m(d, n, path);
  m.field("match", out.match);
  m.field("route", out.route);
  m.finish();
  requireNonEmpty(m, "route", out.route.empty());
  checkWeights(d, m, out.route);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, TLSRoute& out) {
  MapReader m(d, n, path);
  m.field("match", out.match);
  m.field("route", out.route);
  m.finish();
  requireNonEmpty(m, "match", out.match.empty());
  requireNonEmpty(m, "route", out.route.empty());
  checkWeights(d, m, out.route);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, VirtualService& out) {
  MapReader m(d, n, path);
  m.field("hosts", out.hosts);
  m.field("gateways", out.gateways);
  m.field("http", out.http);
  m.field("tls", out.tls);
  m.field("tcp", out.tcp);
  m.field("exportTo", out.export_to);
  m.finish();
  if (d.failed()) return;
  if (out.http.empty() && out.tcp.empty() && out.tls.empty()) {
    d.fail(n, path, "a VirtualService needs at least one http, tcp or tls route");
    return;
  }
  // No hosts makes a delegate, which is bound to its parent, not to gateways.
  if (out.hosts.empty() && !out.gateways.empty()) {
    m.failField("gateways", "a delegate VirtualService (no hosts) must not set gateways");
    return;
  }
  for (size_t i = 0; i < out.hosts.size(); ++i) {
    if (out.hosts[i].empty()) {
      d.fail((*m.find("hosts"))[i], indexPath(m.pathOf("hosts"), i), "host must not be empty");
      return;
    }
  }
}

// --- DestinationRule --------------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            LocalityLoadBalancerSetting::Distribute& out) {
  MapReader m(d, n, path);
  m.field("from", out.from);
  m.field("to", out.to);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            LocalityLoadBalancerSetting::Failover& out) {
  MapReader m(d, n, path);
  m.field("from", out.from);
  m.field("to", out.to);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            LocalityLoadBalancerSetting& out) {
  MapReader m(d, n, path);
  m.field("distribute", out.distribute);
  m.field("failover", out.failover);
  m.field("failoverPriority", out.failover_priority);
  m.field("enabled", out.enabled);
  m.finish();
  m.atMostOne({"distribute", "failover"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            ConsistentHashLB::HTTPCookie& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("path", out.path);
  m.field("ttl", out.ttl);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            ConsistentHashLB::RingHash& out) {
  MapReader m(d, n, path);
  m.field("minimumRingSize", out.minimum_ring_size);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            ConsistentHashLB::MagLev& out) {
  MapReader m(d, n, path);
  m.field("tableSize", out.table_size);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ConsistentHashLB& out) {
  MapReader m(d, n, path);
  m.field("httpHeaderName", out.http_header_name);
  m.field("httpCookie", out.http_cookie);
  m.field("useSourceIp", out.use_source_ip);
  m.field("httpQueryParameterName", out.http_query_parameter_name);
  m.field("ringHash", out.ring_hash);
  m.field("maglev", out.maglev);
  m.field("minimumRingSize", out.minimum_ring_size);
  m.finish();
  m.exactlyOne({"httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"});
  m.atMostOne({"ringHash", "maglev", "minimumRingSize"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, LoadBalancerSettings& out) {
  MapReader m(d, n, path);
  m.field("simple", out.simple);
  m.field("consistentHash", out.consistent_hash);
  m.field("localityLbSetting", out.locality_lb_setting);
  m.field("warmupDurationSecs", out.warmup_duration_secs);
  m.finish();
  m.atMostOne({"simple", "consistentHash"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            ConnectionPoolSettings::TCPSettings::TcpKeepalive& out) {
  MapReader m(d, n, path);
  m.field("probes", out.probes);
  m.field("time", out.time);
  m.field("interval", out.interval);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            ConnectionPoolSettings::TCPSettings& out) {
  MapReader m(d, n, path);
  m.field("maxConnections", out.max_connections);
  m.field("connectTimeout", out.connect_timeout);
  m.field("tcpKeepalive", out.tcp_keepalive);
  m.field("maxConnectionDuration", out.max_connection_duration);
  m.field("idleTimeout", out.idle_timeout);
  m.finish();
  if (!d.failed() && out.max_connections < 0) {
    m.failField("maxConnections", "must not be negative");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            ConnectionPoolSettings::HTTPSettings& out) {
  MapReader m(d, n, path);
  m.field("http1MaxPendingRequests", out.http1_max_pending_requests);
  m.field("http2MaxRequests", out.http2_max_requests);
  m.field("maxRequestsPerConnection", out.max_requests_per_connection);
  m.field("maxRetries", out.max_retries);
  m.field("idleTimeout", out.idle_timeout);
  m.field("h2UpgradePolicy", out.h2_upgrade_policy);
  m.field("useClientProtocol", out.use_client_protocol);
  m.field("maxConcurrentStreams", out.max_concurrent_streams);
  m.finish();
  for (const auto& [key, value] : {std::pair<std::string_view, int32_t>{
                                       "http1MaxPendingRequests", out.http1_max_pending_requests},
                                   {"http2MaxRequests", out.http2_max_requests},
                                   {"maxRequestsPerConnection", out.max_requests_per_connection},
                                   {"maxRetries", out.max_retries},
                                   {"maxConcurrentStreams", out.max_concurrent_streams}}) {
    if (!d.failed() && value < 0) m.failField(key, "must not be negative");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ConnectionPoolSettings& out) {
  MapReader m(d, n, path);
  m.field("tcp", out.tcp);
  m.field("http", out.http);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, OutlierDetection& out) {
  MapReader m(d, n, path);
  m.field("consecutiveErrors", out.consecutive_errors);
  m.field("splitExternalLocalOriginErrors", out.split_external_local_origin_errors);
  m.field("consecutiveLocalOriginFailures", out.consecutive_local_origin_failures);
  m.field("consecutiveGatewayErrors", out.consecutive_gateway_errors);
  m.field("consecutive5xxErrors", out.consecutive_5xx_errors);
  m.field("interval", out.interval);
  m.field("baseEjectionTime", out.base_ejection_time);
  m.field("maxEjectionPercent", out.max_ejection_percent);
  m.field("minHealthPercent", out.min_health_percent);
  m.finish();
  if (!d.failed() && (out.max_ejection_percent < 0 || out.max_ejection_percent > 100)) {
    m.failField("maxEjectionPercent", "must be in [0, 100]");
  }
  if (!d.failed() && (out.min_health_percent < 0 || out.min_health_percent > 100)) {
    m.failField("minHealthPercent", "must be in [0, 100]");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ClientTLSSettings& out) {
  MapReader m(d, n, path);
  m.field("mode", out.mode);
  m.field("clientCertificate", out.client_certificate);
  m.field("privateKey", out.private_key);
  m.field("caCertificates", out.ca_certificates);
  m.field("credentialName", out.credential_name);
  m.field("subjectAltNames", out.subject_alt_names);
  m.field("sni", out.sni);
  m.field("insecureSkipVerify", out.insecure_skip_verify);
  m.field("caCrl", out.ca_crl);
  m.finish();
  // With MUTUAL the client needs its own certificate from files or a secret.
  if (!d.failed() && out.mode == ClientTLSMode::kMutual && out.credential_name.empty() &&
      (out.client_certificate.empty() || out.private_key.empty())) {
    m.failField("mode", "MUTUAL needs credentialName, or both clientCertificate and privateKey");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, TunnelSettings& out) {
  MapReader m(d, n, path);
  m.field("protocol", out.protocol);
  m.field("targetHost", out.target_host);
  m.field("targetPort", out.target_port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ProxyProtocol& out) {
  MapReader m(d, n, path);
  m.field("version", out.version);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, PortTrafficPolicy& out) {
  MapReader m(d, n, path);
  m.field("port", out.port);
  m.field("loadBalancer", out.load_balancer);
  m.field("connectionPool", out.connection_pool);
  m.field("outlierDetection", out.outlier_detection);
  m.field("tls", out.tls);
  m.finish();
  requireNonEmpty(m, "port", !out.port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, TrafficPolicy& out) {
  MapReader m(d, n, path);
  m.field("loadBalancer", out.load_balancer);
  m.field("connectionPool", out.connection_pool);
  m.field("outlierDetection", out.outlier_detection);
  m.field("tls", out.tls);
  m.field("portLevelSettings", out.port_level_settings);
  m.field("tunnel", out.tunnel);
  m.field("proxyProtocol", out.proxy_protocol);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Subset& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("labels", out.labels);
  m.field("trafficPolicy", out.traffic_policy);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, DestinationRule& out) {
  MapReader m(d, n, path);
  m.field("host", out.host);
  m.field("trafficPolicy", out.traffic_policy);
  m.field("subsets", out.subsets);
  m.field("exportTo", out.export_to);
  m.field("workloadSelector", out.workload_selector);
  m.finish();
  requireNonEmpty(m, "host", out.host.empty());
  if (d.failed()) return;
  std::set<std::string> names;
  for (size_t i = 0; i < out.subsets.size(); ++i) {
    if (!names.insert(out.subsets[i].name).second) {
      const YAML::Node item = (*m.find("subsets"))[i];
      d.fail(item["name"], childPath(indexPath(m.pathOf("subsets"), i), "name"),
             "duplicate subset name \"" + out.subsets[i].name + "\"");
      return;
    }
  }
}

// --- ServiceEntry, WorkloadEntry --------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, WorkloadEntry& out) {
  MapReader m(d, n, path);
  m.field("address", out.address);
  m.field("ports", out.ports);
  m.field("labels", out.labels);
  m.field("network", out.network);
  m.field("locality", out.locality);
  m.field("weight", out.weight);
  m.field("serviceAccount", out.service_account);
  m.finish();
  checkPortMap(m, "ports", out.ports);
}

// sheave.io LocalWorkload: the launcher's part of a workload (see local_workload.h).
void decode(Decoder& d, const YAML::Node& n, const std::string& path, LocalWorkload& out) {
  MapReader m(d, n, path);
  m.field("command", out.command);
  m.field("env", out.env);
  m.field("replicas", out.replicas);
  m.field("serviceAccount", out.service_account);
  m.field("labels", out.labels);
  m.field("ports", out.ports);
  m.field("holdApplicationUntilProxyStarts", out.hold_application_until_proxy_starts);
  m.finish();
  requireNonEmpty(m, "command", out.command.empty() || out.command.front().empty());
  checkPortMap(m, "ports", out.ports);
  if (!d.failed() && out.replicas > 64) {
    m.failField("replicas",
                "must be in [0, 64] on one machine, got " + std::to_string(out.replicas));
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ServicePort& out) {
  MapReader m(d, n, path);
  m.field("number", out.number);
  m.field("protocol", out.protocol);
  m.field("name", out.name);
  m.field("targetPort", out.target_port);
  m.finish();
  requireNonEmpty(m, "number", !m.has("number"));
  checkPort(m, "number", out.number);
  checkPort(m, "targetPort", out.target_port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ServiceEntry& out) {
  MapReader m(d, n, path);
  m.field("hosts", out.hosts);
  m.field("addresses", out.addresses);
  m.field("ports", out.ports);
  m.field("location", out.location);
  m.field("resolution", out.resolution);
  m.field("endpoints", out.endpoints);
  m.field("workloadSelector", out.workload_selector);
  m.field("exportTo", out.export_to);
  m.field("subjectAltNames", out.subject_alt_names);
  m.finish();
  requireNonEmpty(m, "hosts", out.hosts.empty());
  m.atMostOne({"endpoints", "workloadSelector"});
}

// --- Gateway ----------------------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Port& out) {
  MapReader m(d, n, path);
  m.field("number", out.number);
  m.field("protocol", out.protocol);
  m.field("name", out.name);
  m.field("targetPort", out.target_port);
  m.finish();
  requireNonEmpty(m, "number", !m.has("number"));
  checkPort(m, "number", out.number);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ServerTLSSettings& out) {
  MapReader m(d, n, path);
  m.field("httpsRedirect", out.https_redirect);
  m.field("mode", out.mode);
  m.field("serverCertificate", out.server_certificate);
  m.field("privateKey", out.private_key);
  m.field("caCertificates", out.ca_certificates);
  m.field("caCrl", out.ca_crl);
  m.field("credentialName", out.credential_name);
  m.field("credentialNames", out.credential_names);
  m.field("subjectAltNames", out.subject_alt_names);
  m.field("verifyCertificateSpki", out.verify_certificate_spki);
  m.field("verifyCertificateHash", out.verify_certificate_hash);
  m.field("minProtocolVersion", out.min_protocol_version);
  m.field("maxProtocolVersion", out.max_protocol_version);
  m.field("cipherSuites", out.cipher_suites);
  m.finish();
  m.atMostOne({"credentialName", "credentialNames"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Server& out) {
  MapReader m(d, n, path);
  m.field("port", out.port);
  m.field("bind", out.bind);
  m.field("hosts", out.hosts);
  m.field("tls", out.tls);
  m.field("defaultEndpoint", out.default_endpoint);
  m.field("name", out.name);
  m.finish();
  requireNonEmpty(m, "port", !out.port);
  requireNonEmpty(m, "hosts", out.hosts.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Gateway& out) {
  MapReader m(d, n, path);
  m.field("servers", out.servers);
  m.field("selector", out.selector);
  m.finish();
  requireNonEmpty(m, "servers", out.servers.empty());
}

// --- Sidecar ----------------------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, SidecarPort& out) {
  MapReader m(d, n, path);
  m.field("number", out.number);
  m.field("protocol", out.protocol);
  m.field("name", out.name);
  m.field("targetPort", out.target_port);
  m.finish();
  checkPort(m, "number", out.number);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, IstioIngressListener& out) {
  MapReader m(d, n, path);
  m.field("port", out.port);
  m.field("bind", out.bind);
  m.field("captureMode", out.capture_mode);
  m.field("defaultEndpoint", out.default_endpoint);
  m.field("tls", out.tls);
  m.field("connectionPool", out.connection_pool);
  m.finish();
  requireNonEmpty(m, "port", !out.port);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, IstioEgressListener& out) {
  MapReader m(d, n, path);
  m.field("port", out.port);
  m.field("bind", out.bind);
  m.field("captureMode", out.capture_mode);
  m.field("hosts", out.hosts);
  m.finish();
  requireNonEmpty(m, "hosts", out.hosts.empty());
  if (d.failed()) return;
  for (size_t i = 0; i < out.hosts.size(); ++i) {
    const std::string& h = out.hosts[i];
    const size_t slash = h.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == h.size()) {
      d.fail((*m.find("hosts"))[i], indexPath(m.pathOf("hosts"), i),
             "expected namespace/dnsName (e.g. \"./*\", \"istio-system/*\"), got \"" + h + "\"");
      return;
    }
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, OutboundTrafficPolicy& out) {
  MapReader m(d, n, path);
  m.field("mode", out.mode);
  m.field("egressProxy", out.egress_proxy);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Sidecar& out) {
  MapReader m(d, n, path);
  m.field("workloadSelector", out.workload_selector);
  m.field("ingress", out.ingress);
  m.field("egress", out.egress);
  m.field("inboundConnectionPool", out.inbound_connection_pool);
  m.field("outboundTrafficPolicy", out.outbound_traffic_policy);
}

}  // namespace sheave::control
