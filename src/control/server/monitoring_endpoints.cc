#include "control/server/monitoring_endpoints.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <map>
#include <set>

#include "common/json_string.h"
#include "control/xds/type_urls.h"
#include "control/xds/xds_server.h"

namespace sheave::control {
namespace {

HttpResponse json(std::string body) {
  HttpResponse r;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.body.push_back('\n');
  return r;
}

HttpResponse text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.body.push_back('\n');
  return r;
}

void field(std::string& out, std::string_view name, std::string_view value, bool comma = true) {
  if (comma) out += ',';
  appendJsonString(out, name);
  out += ':';
  appendJsonString(out, value);
}

std::string protoJson(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(msg, &out, options);
  if (!status.ok()) {
    std::string err = "{\"error\":";
    appendJsonString(err, std::string(status.message()));
    return err + "}";
  }
  return out;
}

// Istio's syncz names the types by their xDS names.
std::string_view istioTypeName(std::string_view type_url) {
  if (type_url == xds::kClusterType) return "cluster";
  if (type_url == xds::kListenerType) return "listener";
  if (type_url == xds::kRouteType) return "route";
  if (type_url == xds::kEndpointType) return "endpoint";
  if (type_url == xds::kSecretType) return "secret";
  return "unknown";
}

void histogram(std::string& out, std::string_view name, std::string_view help,
               const xds::Histogram& h) {
  out += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
  out += "# TYPE " + std::string(name) + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    out += std::string(name) + "_bucket{le=\"" + fmt::format("{}", h.bounds[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  out += std::string(name) + "_sum " + fmt::format("{}", h.sum) + "\n";
  out += std::string(name) + "_count " + std::to_string(h.count) + "\n";
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
  out += "# TYPE " + std::string(name) + " " + std::string(type) + "\n";
}

struct ErrorRecord {
  std::string phase;  // parse, registry, push, compile
  const ResourceError* error;
};

std::vector<ErrorRecord> allErrors(const PushContext& push,
                                   const std::vector<ResourceError>& compiler) {
  std::vector<ErrorRecord> out;
  for (const auto& e : push.config().errors) out.push_back({"parse", &e});
  for (const auto& e : push.registry().errors()) out.push_back({"registry", &e});
  for (const auto& e : push.errors()) out.push_back({"push", &e});
  for (const auto& e : compiler) out.push_back({"compile", &e});
  return out;
}

}  // namespace

MonitoringEndpoints::MonitoringEndpoints(MeshProvider& provider, const xds::XdsServer* xds)
    : provider_(provider), xds_(xds) {}

void MonitoringEndpoints::install(HttpServer& http) {
  http.addHandler("/ready", [this](const HttpRequest&) { return ready(); });
  http.addHandler("/metrics", [this](const HttpRequest&) { return metrics(); });
  http.addHandler("/debug/syncz", [this](const HttpRequest&) { return syncz(); });
  http.addHandler("/debug/config_dump", [this](const HttpRequest& r) { return configDump(r); });
  http.addHandler("/debug/configz", [this](const HttpRequest&) { return configz(); });
}

HttpResponse MonitoringEndpoints::ready() const {
  if (!ready_.load()) return text(503, "not ready");
  return text(200, "ready");
}

HttpResponse MonitoringEndpoints::metrics() const {
  xds::XdsStats stats = xds_ != nullptr ? xds_->stats() : xds::XdsStats{};
  auto push = provider_.latestPushContext();
  size_t compiler_errors = provider_.compilerErrors().size();
  std::string out;
  metric(out, "pilot_xds", "gauge", "Number of endpoints connected to this pilot using XDS.");
  out += "pilot_xds{version=\"sheave-0.1.0\"} " + std::to_string(stats.connected_proxies) + "\n";
  metric(out, "pilot_xds_pushes", "counter",
         "Pilot build and send errors for lds, rds, cds and eds.");
  for (std::string_view type : {"cds", "eds", "lds", "rds", "sds"}) {
    auto it = stats.pushes.find(std::string(type));
    out += "pilot_xds_pushes{type=\"" + std::string(type) + "\"} " +
           std::to_string(it == stats.pushes.end() ? 0 : it->second) + "\n";
  }
  metric(out, "pilot_total_xds_rejects", "counter",
         "Total number of XDS responses from pilot rejected by proxy.");
  for (std::string_view type : {"cds", "eds", "lds", "rds", "sds"}) {
    auto it = stats.nacks.find(std::string(type));
    out += "pilot_total_xds_rejects{type=\"" + std::string(type) + "\"} " +
           std::to_string(it == stats.nacks.end() ? 0 : it->second) + "\n";
  }
  metric(out, "pilot_total_xds_internal_errors", "counter",
         "Total number of internal XDS errors in pilot.");
  out += "pilot_total_xds_internal_errors " + std::to_string(stats.provider_errors) + "\n";
  metric(out, "pilot_xds_expired_nonce", "counter",
         "Total number of XDS requests with an expired nonce.");
  out += "pilot_xds_expired_nonce " + std::to_string(stats.stale_requests) + "\n";
  metric(out, "pilot_push_triggers", "counter", "Total number of times a push was triggered.");
  out += "pilot_push_triggers " + std::to_string(stats.push_rounds) + "\n";
  histogram(out, "pilot_xds_push_time",
            "Total time in seconds Pilot takes to push lds, rds, cds and eds.", stats.push_time);
  histogram(
      out, "pilot_proxy_convergence_time",
      "Delay in seconds between config change and a proxy receiving all required configuration.",
      stats.convergence);
  metric(out, "pilot_services", "gauge", "Total services known to pilot.");
  out += "pilot_services " + std::to_string(push->registry().services().size()) + "\n";
  metric(out, "pilot_virt_services", "gauge", "Total virtual services known to pilot.");
  out += "pilot_virt_services " + std::to_string(push->config().virtual_services.size()) + "\n";
  metric(out, "sheave_config_resources", "gauge", "Configuration resources loaded and accepted.");
  out += "sheave_config_resources " + std::to_string(push->config().resourceCount()) + "\n";
  metric(out, "sheave_config_errors", "gauge",
         "Configuration problems by phase (parse, registry, push, compile); see /debug/configz.");
  out += "sheave_config_errors{phase=\"parse\"} " + std::to_string(push->config().errors.size()) +
         "\n";
  out += "sheave_config_errors{phase=\"registry\"} " +
         std::to_string(push->registry().errors().size()) + "\n";
  out += "sheave_config_errors{phase=\"push\"} " + std::to_string(push->errors().size()) + "\n";
  out += "sheave_config_errors{phase=\"compile\"} " + std::to_string(compiler_errors) + "\n";
  metric(out, "sheave_xds_rejected_streams", "counter",
         "ADS streams refused (per-peer limit, or no valid node).");
  out += "sheave_xds_rejected_streams " + std::to_string(stats.rejected_streams) + "\n";
  for (const auto& source : metrics_sources_) out += source();
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::move(out);
  return r;
}

HttpResponse MonitoringEndpoints::syncz() const {
  std::vector<xds::ConnectionStatus> conns;
  if (xds_ != nullptr) conns = xds_->connections();
  std::string out = "[";
  bool first = true;
  for (const xds::ConnectionStatus& c : conns) {
    if (!first) out += ',';
    first = false;
    out += '{';
    field(out, "proxy", c.proxy_id, false);
    field(out, "connection_id", c.connection_id);
    field(out, "peer", c.peer);
    field(out, "protocol", c.delta ? "delta" : "sotw");
    auto since =
        std::chrono::duration_cast<std::chrono::seconds>(c.connected_at.time_since_epoch()).count();
    out += ",\"connected_at\":" + std::to_string(since);
    for (const xds::TypeStatus& t : c.types) {
      std::string name(istioTypeName(t.type_url));
      field(out, name + "_sent", t.sent_version);
      field(out, name + "_acked", t.acked_version);
    }
    out += ",\"types\":[";
    for (size_t i = 0; i < c.types.size(); ++i) {
      const xds::TypeStatus& t = c.types[i];
      if (i > 0) out += ',';
      out += '{';
      field(out, "type_url", t.type_url, false);
      out += std::string(",\"wildcard\":") + (t.wildcard ? "true" : "false");
      out += ",\"subscribed_names\":" + std::to_string(t.subscribed_names);
      field(out, "sent_version", t.sent_version);
      field(out, "sent_nonce", t.sent_nonce);
      field(out, "acked_version", t.acked_version);
      out += std::string(",\"nacked\":") + (t.nacked ? "true" : "false");
      field(out, "last_nack", t.last_nack);
      out += ",\"nacks\":" + std::to_string(t.nacks);
      out += ",\"resources\":" + std::to_string(t.resource_count);
      out += '}';
    }
    out += "]}";
  }
  out += ']';
  return json(std::move(out));
}

HttpResponse MonitoringEndpoints::configDump(const HttpRequest& request) const {
  auto id = request.query.find("proxyID");
  if (id == request.query.end() || id->second.empty()) {
    return text(400, "proxyID is required: /debug/config_dump?proxyID=<node id>");
  }
  std::vector<xds::ConnectionStatus> conns;
  if (xds_ != nullptr) conns = xds_->connections();
  const xds::ConnectionStatus* connected = nullptr;
  for (const auto& c : conns) {
    if (c.proxy_id == id->second) connected = &c;
  }
  Result<ProxyResources> resources = provider_.resourcesFor(id->second);
  if (!resources.ok()) {
    return text(404, "unknown proxy " + id->second + ": " + resources.error().message());
  }
  if (!resources->attached && connected == nullptr) {
    return text(404, "unknown proxy " + id->second +
                         ": not connected and no registered workload at its address");
  }
  auto version = [&](std::string_view type_url) -> std::string {
    if (connected == nullptr) return "";
    for (const auto& t : connected->types) {
      if (t.type_url == type_url) return t.sent_version;
    }
    return "";
  };
  std::string out = "{\"configs\":[";
  // Envoy's admin order: clusters, endpoints, listeners, routes.
  out += "{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\"";
  out += ",\"dynamic_active_clusters\":[";
  for (size_t i = 0; i < resources->clusters.size(); ++i) {
    if (i > 0) out += ',';
    out += '{';
    field(out, "version_info", version(xds::kClusterType), false);
    out += ",\"cluster\":" + protoJson(packDeterministic(resources->clusters[i])) + "}";
  }
  out += "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump\"";
  out += ",\"dynamic_endpoint_configs\":[";
  for (size_t i = 0; i < resources->endpoints.size(); ++i) {
    if (i > 0) out += ',';
    out += '{';
    field(out, "version_info", version(xds::kEndpointType), false);
    out += ",\"endpoint_config\":" + protoJson(packDeterministic(resources->endpoints[i])) + "}";
  }
  out += "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\"";
  out += ",\"dynamic_listeners\":[";
  for (size_t i = 0; i < resources->listeners.size(); ++i) {
    if (i > 0) out += ',';
    out += '{';
    field(out, "name", resources->listeners[i].name(), false);
    out += ",\"active_state\":{";
    field(out, "version_info", version(xds::kListenerType), false);
    out += ",\"listener\":" + protoJson(packDeterministic(resources->listeners[i])) + "}}";
  }
  out += "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3.RoutesConfigDump\"";
  out += ",\"dynamic_route_configs\":[";
  for (size_t i = 0; i < resources->routes.size(); ++i) {
    if (i > 0) out += ',';
    out += '{';
    field(out, "version_info", version(xds::kRouteType), false);
    out += ",\"route_config\":" + protoJson(packDeterministic(resources->routes[i])) + "}";
  }
  out += "]}]}";
  return json(std::move(out));
}

HttpResponse MonitoringEndpoints::configz() const {
  auto push = provider_.latestPushContext();
  std::vector<ResourceError> compiler = provider_.compilerErrors();
  std::vector<ErrorRecord> errors = allErrors(*push, compiler);
  // Errors attached to the resource they name (kind/namespace/name).
  std::map<std::string, std::vector<const ErrorRecord*>> by_resource;
  for (const ErrorRecord& e : errors) {
    by_resource[e.error->kind + "/" + e.error->namespace_name + "/" + e.error->name].push_back(&e);
  }
  auto errorJson = [](const ErrorRecord& e) {
    std::string out = "{";
    field(out, "phase", e.phase, false);
    field(out, "kind", e.error->kind);
    field(out, "namespace", e.error->namespace_name);
    field(out, "name", e.error->name);
    field(out, "source", e.error->source.toString());
    field(out, "message", e.error->error.message());
    return out + "}";
  };
  std::string out = "{\"resources\":[";
  bool first = true;
  auto add = [&](const auto& list) {
    for (const auto& r : list) {
      if (!first) out += ',';
      first = false;
      out += '{';
      field(out, "kind", r.kind, false);
      field(out, "api_version", r.api_version);
      field(out, "namespace", r.metadata.namespace_name);
      field(out, "name", r.metadata.name);
      field(out, "source", r.source.toString());
      auto it = by_resource.find(r.kind + "/" + r.metadata.namespace_name + "/" + r.metadata.name);
      if (it != by_resource.end()) {
        out += ",\"errors\":[";
        for (size_t i = 0; i < it->second.size(); ++i) {
          if (i > 0) out += ',';
          out += errorJson(*it->second[i]);
        }
        out += ']';
      }
      out += '}';
    }
  };
  const ConfigSet& c = push->config();
  add(c.services);
  add(c.namespaces);
  add(c.service_entries);
  add(c.workload_entries);
  add(c.virtual_services);
  add(c.destination_rules);
  add(c.sidecars);
  add(c.gateways);
  add(c.peer_authentications);
  add(c.authorization_policies);
  add(c.request_authentications);
  add(c.telemetries);
  out += "],\"errors\":[";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) out += ',';
    out += errorJson(errors[i]);
  }
  out += "],\"summary\":{\"resources\":" + std::to_string(c.resourceCount()) +
         ",\"errors\":" + std::to_string(errors.size()) +
         ",\"services\":" + std::to_string(push->registry().services().size()) +
         ",\"registry_version\":" + std::to_string(push->registry().version()) + "}}";
  return json(std::move(out));
}

}  // namespace sheave::control
