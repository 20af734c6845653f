// YAML decoders and Istio's cheap semantic checks for security.istio.io and
// telemetry.istio.io.
#include <charconv>

#include "control/model/decoders.h"

namespace sheave::control {

namespace {

void requireNonEmpty(MapReader& m, std::string_view key, bool empty) {
  if (!m.decoder().failed() && empty) m.failField(key, "required");
}

}  // namespace

// --- PeerAuthentication -----------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            PeerAuthenticationMutualTLS& out) {
  MapReader m(d, n, path);
  m.field("mode", out.mode);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, PeerAuthentication& out) {
  MapReader m(d, n, path);
  m.field("selector", out.selector);
  m.field("mtls", out.mtls);
  // portLevelMtls is keyed by port number; YAML writes the keys as text.
  if (const YAML::Node* ports = m.find("portLevelMtls"); ports != nullptr && !d.failed()) {
    const std::string ports_path = m.pathOf("portLevelMtls");
    std::map<std::string, PeerAuthenticationMutualTLS> by_text;
    decode(d, *ports, ports_path, by_text);
    for (auto it = ports->begin(); it != ports->end() && !d.failed(); ++it) {
      const std::string& key = it->first.Scalar();
      uint32_t port = 0;
      const auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), port);
      if (ec != std::errc() || ptr != key.data() + key.size() || port == 0 || port > 65535) {
        d.fail(it->first, childPath(ports_path, key), "expected a port number as key");
        break;
      }
      out.port_level_mtls[port] = by_text[key];
    }
  }
  m.ignore("portLevelMtls");
  m.finish();
  if (!d.failed() && !out.port_level_mtls.empty() &&
      (!out.selector || out.selector->match_labels.empty())) {
    m.failField("portLevelMtls", "portLevelMtls requires a workload selector");
  }
}

// --- AuthorizationPolicy ----------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Source& out) {
  MapReader m(d, n, path);
  m.field("principals", out.principals);
  m.field("notPrincipals", out.not_principals);
  m.field("requestPrincipals", out.request_principals);
  m.field("notRequestPrincipals", out.not_request_principals);
  m.field("namespaces", out.namespaces);
  m.field("notNamespaces", out.not_namespaces);
  m.field("ipBlocks", out.ip_blocks);
  m.field("notIpBlocks", out.not_ip_blocks);
  m.field("remoteIpBlocks", out.remote_ip_blocks);
  m.field("notRemoteIpBlocks", out.not_remote_ip_blocks);
  m.field("serviceAccounts", out.service_accounts);
  m.field("notServiceAccounts", out.not_service_accounts);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Operation& out) {
  MapReader m(d, n, path);
  m.field("hosts", out.hosts);
  m.field("notHosts", out.not_hosts);
  m.field("ports", out.ports);
  m.field("notPorts", out.not_ports);
  m.field("methods", out.methods);
  m.field("notMethods", out.not_methods);
  m.field("paths", out.paths);
  m.field("notPaths", out.not_paths);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Condition& out) {
  MapReader m(d, n, path);
  m.field("key", out.key);
  m.field("values", out.values);
  m.field("notValues", out.not_values);
  m.finish();
  requireNonEmpty(m, "key", out.key.empty());
  if (!d.failed() && out.values.empty() && out.not_values.empty()) {
    d.fail(n, path, "a condition needs values or notValues");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Rule::From& out) {
  MapReader m(d, n, path);
  m.field("source", out.source);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Rule::To& out) {
  MapReader m(d, n, path);
  m.field("operation", out.operation);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Rule& out) {
  MapReader m(d, n, path);
  m.field("from", out.from);
  m.field("to", out.to);
  m.field("when", out.when);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ExtensionProvider& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, AuthorizationPolicy& out) {
  MapReader m(d, n, path);
  m.field("selector", out.selector);
  m.field("targetRef", out.target_ref);
  m.field("targetRefs", out.target_refs);
  m.field("rules", out.rules);
  m.field("action", out.action);
  m.field("provider", out.provider);
  m.finish();
  m.atMostOne({"selector", "targetRef", "targetRefs"});
  if (d.failed()) return;
  if (out.action == AuthorizationAction::kCustom && !out.provider) {
    m.failField("provider", "action CUSTOM requires a provider");
  } else if (out.action != AuthorizationAction::kCustom && out.provider) {
    m.failField("provider", "a provider is only allowed with action CUSTOM");
  }
}

// --- RequestAuthentication --------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, JWTHeader& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("prefix", out.prefix);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ClaimToHeader& out) {
  MapReader m(d, n, path);
  m.field("header", out.header);
  m.field("claim", out.claim);
  m.finish();
  requireNonEmpty(m, "header", out.header.empty());
  requireNonEmpty(m, "claim", out.claim.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, JWTRule& out) {
  MapReader m(d, n, path);
  m.field("issuer", out.issuer);
  m.field("audiences", out.audiences);
  m.field("jwksUri", out.jwks_uri);
  m.field("jwks", out.jwks);
  m.field("fromHeaders", out.from_headers);
  m.field("fromParams", out.from_params);
  m.field("fromCookies", out.from_cookies);
  m.field("outputPayloadToHeader", out.output_payload_to_header);
  m.field("forwardOriginalToken", out.forward_original_token);
  m.field("outputClaimToHeaders", out.output_claim_to_headers);
  m.field("timeout", out.timeout);
  m.finish();
  requireNonEmpty(m, "issuer", out.issuer.empty());
  m.atMostOne({"jwksUri", "jwks"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, RequestAuthentication& out) {
  MapReader m(d, n, path);
  m.field("selector", out.selector);
  m.field("targetRef", out.target_ref);
  m.field("targetRefs", out.target_refs);
  m.field("jwtRules", out.jwt_rules);
  m.finish();
  m.atMostOne({"selector", "targetRef", "targetRefs"});
}

// --- Telemetry --------------------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ProviderRef& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, TracingSelector& out) {
  MapReader m(d, n, path);
  m.field("mode", out.mode);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, CustomTag::Literal& out) {
  MapReader m(d, n, path);
  m.field("value", out.value);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, CustomTag::Environment& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("defaultValue", out.default_value);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path,
            CustomTag::RequestHeader& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("defaultValue", out.default_value);
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, CustomTag& out) {
  MapReader m(d, n, path);
  m.field("literal", out.literal);
  m.field("environment", out.environment);
  m.field("header", out.header);
  m.finish();
  m.exactlyOne({"literal", "environment", "header"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Tracing& out) {
  MapReader m(d, n, path);
  m.field("match", out.match);
  m.field("providers", out.providers);
  m.field("randomSamplingPercentage", out.random_sampling_percentage);
  m.field("disableSpanReporting", out.disable_span_reporting);
  m.field("customTags", out.custom_tags);
  m.field("useRequestIdForTraceSampling", out.use_request_id_for_trace_sampling);
  m.finish();
  if (!d.failed() && out.random_sampling_percentage &&
      (*out.random_sampling_percentage < 0 || *out.random_sampling_percentage > 100)) {
    m.failField("randomSamplingPercentage", "must be in [0, 100]");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, MetricSelector& out) {
  MapReader m(d, n, path);
  m.field("metric", out.metric);
  m.field("customMetric", out.custom_metric);
  m.field("mode", out.mode);
  m.finish();
  m.atMostOne({"metric", "customMetric"});
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, TagOverride& out) {
  MapReader m(d, n, path);
  m.field("operation", out.operation);
  m.field("value", out.value);
  m.finish();
  if (!d.failed() && out.operation == TagOperation::kUpsert && out.value.empty()) {
    m.failField("value", "UPSERT needs a value");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, MetricsOverrides& out) {
  MapReader m(d, n, path);
  m.field("match", out.match);
  m.field("disabled", out.disabled);
  m.field("tagOverrides", out.tag_overrides);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Metrics& out) {
  MapReader m(d, n, path);
  m.field("providers", out.providers);
  m.field("overrides", out.overrides);
  m.field("reportingInterval", out.reporting_interval);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, AccessLogSelector& out) {
  MapReader m(d, n, path);
  m.field("mode", out.mode);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, AccessLogFilter& out) {
  MapReader m(d, n, path);
  m.field("expression", out.expression);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, AccessLogging& out) {
  MapReader m(d, n, path);
  m.field("match", out.match);
  m.field("providers", out.providers);
  m.field("disabled", out.disabled);
  m.field("filter", out.filter);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, Telemetry& out) {
  MapReader m(d, n, path);
  m.field("selector", out.selector);
  m.field("targetRef", out.target_ref);
  m.field("targetRefs", out.target_refs);
  m.field("tracing", out.tracing);
  m.field("metrics", out.metrics);
  m.field("accessLogging", out.access_logging);
  m.finish();
  m.atMostOne({"selector", "targetRef", "targetRefs"});
}

// --- Kubernetes -------------------------------------------------------------

void decode(Decoder& d, const YAML::Node& n, const std::string& path, IntOrString& out) {
  if (n.IsScalar() && (n.Tag() == "?" || n.Tag().empty())) {
    const std::string& s = n.Scalar();
    int32_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && ptr == s.data() + s.size()) {
      out.number = v;
      return;
    }
  }
  decode(d, n, path, out.name);
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, KubernetesServicePort& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("protocol", out.protocol);
  m.field("appProtocol", out.app_protocol);
  m.field("port", out.port);
  m.field("targetPort", out.target_port);
  m.field("nodePort", out.node_port);
  m.finish();
  if (d.failed()) return;
  if (out.port < 1 || out.port > 65535) {
    m.failField("port", "port must be in [1, 65535], got " + std::to_string(out.port));
  } else if (out.protocol != "TCP" && out.protocol != "UDP" && out.protocol != "SCTP") {
    m.failField("protocol", "protocol must be TCP, UDP or SCTP, got \"" + out.protocol + "\"");
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, KubernetesService& out) {
  MapReader m(d, n, path);
  m.field("selector", out.selector);
  m.field("ports", out.ports);
  m.field("clusterIP", out.cluster_ip);
  m.field("clusterIPs", out.cluster_ips);
  m.field("type", out.type);
  m.field("externalName", out.external_name);
  // Kubernetes fields with no meaning for the mesh: accepted, not kept.
  for (std::string_view key :
       {"sessionAffinity", "sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy",
        "publishNotReadyAddresses", "externalTrafficPolicy", "internalTrafficPolicy",
        "loadBalancerIP", "loadBalancerSourceRanges", "loadBalancerClass", "externalIPs",
        "healthCheckNodePort", "allocateLoadBalancerNodePorts", "trafficDistribution"}) {
    m.ignore(key);
  }
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, KubernetesNamespace&) {
  MapReader m(d, n, path);
  m.ignore("finalizers");
}

void decode(Decoder& d, const YAML::Node& n, const std::string& path, ObjectMeta& out) {
  MapReader m(d, n, path);
  m.field("name", out.name);
  m.field("namespace", out.namespace_name);
  m.field("labels", out.labels);
  m.field("annotations", out.annotations);
  for (std::string_view key : {"generation", "resourceVersion", "uid", "creationTimestamp",
                               "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
                               "ownerReferences", "finalizers", "selfLink"}) {
    m.ignore(key);
  }
  m.finish();
  requireNonEmpty(m, "name", out.name.empty());
}

}  // namespace sheave::control
