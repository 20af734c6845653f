#include "proxy/filters/istio_stats/istio_stats_filter.h"

#include <charconv>

#include "proxy/config/local_node.h"
#include "proxy/config/proto_json.h"
#include "proxy/filters/peer_metadata/workload_metadata.h"

namespace sheave::istio_stats {
namespace {

constexpr std::string_view kUnknown = "unknown";
constexpr std::string_view kLatest = "latest";

// Indexes into the HTTP label tuple.
enum Label : size_t {
  kReporter,
  kSourceWorkload,
  kSourceCanonicalService,
  kSourceCanonicalRevision,
  kSourceWorkloadNamespace,
  kSourcePrincipal,
  kSourceApp,
  kSourceVersion,
  kSourceCluster,
  kDestinationWorkload,
  kDestinationWorkloadNamespace,
  kDestinationPrincipal,
  kDestinationApp,
  kDestinationVersion,
  kDestinationService,
  kDestinationCanonicalService,
  kDestinationCanonicalRevision,
  kDestinationServiceName,
  kDestinationServiceNamespace,
  kDestinationCluster,
  kRequestProtocol,
  kResponseCode,
  kGrpcResponseStatus,
  kResponseFlags,
  kConnectionSecurityPolicy,
};

std::string_view orUnknown(std::string_view v) { return v.empty() ? kUnknown : v; }

// The first of a comma-joined SAN list (StreamInfo keeps them joined).
std::string_view firstSan(std::string_view sans) { return sans.substr(0, sans.find(',')); }

// "spiffe://<domain>/ns/<namespace>/sa/<account>" -> namespace.
std::string_view namespaceOfPrincipal(std::string_view principal) {
  const size_t at = principal.find("/ns/");
  if (at == std::string_view::npos) return {};
  std::string_view rest = principal.substr(at + 4);
  return rest.substr(0, rest.find('/'));
}

// Response codes as interned text: no formatting per request.
std::string_view codeText(uint32_t code) {
  static const std::array<std::string, 600> table = [] {
    std::array<std::string, 600> t;
    for (size_t i = 0; i < t.size(); ++i) t[i] = std::to_string(i);
    return t;
  }();
  static const std::string other = "0";
  return code < table.size() ? std::string_view(table[code]) : std::string_view(other);
}

std::string_view grpcStatusText(std::string_view s) {
  static const std::array<std::string, 17> table = [] {
    std::array<std::string, 17> t;
    for (size_t i = 0; i < t.size(); ++i) t[i] = std::to_string(i);
    return t;
  }();
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v >= table.size()) return {};
  return table[v];
}

const std::string& nodeString(const google::protobuf::Struct& s, std::string_view key) {
  static const std::string empty;
  auto it = s.fields().find(std::string(key));
  return it == s.fields().end() ? empty : it->second.string_value();
}

// Where the request went, as Istio names it: the service host of an
// "outbound|port|subset|host" cluster and its short name; Istio's special
// clusters by their own name.
void destinationService(const StreamInfo& info, std::string_view& host, std::string_view& name) {
  if (info.route_name == "block_all") {
    name = "BlackHoleCluster";
    return;
  }
  if (info.route_name == "allow_any") {
    name = "PassthroughCluster";
    return;
  }
  std::string_view cluster = info.upstream_cluster;
  if (cluster == "BlackHoleCluster" || cluster == "PassthroughCluster" ||
      cluster.starts_with("InboundPassthroughCluster")) {
    name = cluster;
    return;
  }
  if (!cluster.starts_with("outbound|")) return;
  const size_t last = cluster.rfind('|');
  std::string_view h = cluster.substr(last + 1);
  if (h.empty()) return;
  host = h;
  name = h.substr(0, h.find('.'));
}

std::string_view hostWithoutPort(std::string_view host) {
  if (host.starts_with('[')) {
    const size_t end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  const size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

}  // namespace

const std::array<std::string_view, kHttpLabelCount>& httpLabelNames() {
  static const std::array<std::string_view, kHttpLabelCount> names = {
      "reporter",
      "source_workload",
      "source_canonical_service",
      "source_canonical_revision",
      "source_workload_namespace",
      "source_principal",
      "source_app",
      "source_version",
      "source_cluster",
      "destination_workload",
      "destination_workload_namespace",
      "destination_principal",
      "destination_app",
      "destination_version",
      "destination_service",
      "destination_canonical_service",
      "destination_canonical_revision",
      "destination_service_name",
      "destination_service_namespace",
      "destination_cluster",
      "request_protocol",
      "response_code",
      "grpc_response_status",
      "response_flags",
      "connection_security_policy",
  };
  return names;
}

const std::array<std::string_view, kTcpLabelCount>& tcpLabelNames() {
  static const std::array<std::string_view, kTcpLabelCount> names = [] {
    std::array<std::string_view, kTcpLabelCount> out;
    size_t j = 0;
    for (size_t i = 0; i < kHttpLabelCount; ++i) {
      if (i == kResponseCode || i == kGrpcResponseStatus) continue;
      out[j++] = httpLabelNames()[i];
    }
    return out;
  }();
  return names;
}

Result<IstioMetrics> IstioMetrics::create(stats::Scope& scope, size_t max_series) {
  using Family = stats::LabeledFamily;
  const std::vector<std::string> http(httpLabelNames().begin(), httpLabelNames().end());
  const std::vector<std::string> tcp(tcpLabelNames().begin(), tcpLabelNames().end());
  auto make = [&](std::string name, Family::Type type, const std::vector<std::string>& labels,
                  stats::Histogram::Unit unit) {
    Family::Options o;
    o.name = std::move(name);
    o.type = type;
    o.label_names = labels;
    o.unit = unit;
    o.max_series = max_series;
    return scope.labeledFamily(std::move(o));
  };
  using Unit = stats::Histogram::Unit;
  IstioMetrics m;
  SHEAVE_ASSIGN_OR_RETURN(m.requests_total, make("istio_requests_total", Family::Type::kCounter,
                                                 http, Unit::kUnspecified));
  SHEAVE_ASSIGN_OR_RETURN(m.request_duration_milliseconds,
                          make("istio_request_duration_milliseconds", Family::Type::kHistogram,
                               http, Unit::kMilliseconds));
  SHEAVE_ASSIGN_OR_RETURN(
      m.request_bytes, make("istio_request_bytes", Family::Type::kHistogram, http, Unit::kBytes));
  SHEAVE_ASSIGN_OR_RETURN(
      m.response_bytes, make("istio_response_bytes", Family::Type::kHistogram, http, Unit::kBytes));
  SHEAVE_ASSIGN_OR_RETURN(
      m.request_messages_total,
      make("istio_request_messages_total", Family::Type::kCounter, http, Unit::kUnspecified));
  SHEAVE_ASSIGN_OR_RETURN(
      m.response_messages_total,
      make("istio_response_messages_total", Family::Type::kCounter, http, Unit::kUnspecified));
  SHEAVE_ASSIGN_OR_RETURN(
      m.tcp_sent_bytes_total,
      make("istio_tcp_sent_bytes_total", Family::Type::kCounter, tcp, Unit::kUnspecified));
  SHEAVE_ASSIGN_OR_RETURN(
      m.tcp_received_bytes_total,
      make("istio_tcp_received_bytes_total", Family::Type::kCounter, tcp, Unit::kUnspecified));
  SHEAVE_ASSIGN_OR_RETURN(
      m.tcp_connections_opened_total,
      make("istio_tcp_connections_opened_total", Family::Type::kCounter, tcp, Unit::kUnspecified));
  SHEAVE_ASSIGN_OR_RETURN(
      m.tcp_connections_closed_total,
      make("istio_tcp_connections_closed_total", Family::Type::kCounter, tcp, Unit::kUnspecified));
  return m;
}

LocalWorkload LocalWorkload::fromNode(const envoy::config::core::v3::Node& node) {
  const auto& md = node.metadata();
  const PeerWorkloadMetadata w = peer_metadata::workloadFromStruct(md);
  LocalWorkload out;
  out.workload_name = w.workload_name;
  out.namespace_name = w.namespace_name;
  out.canonical_name = w.canonical_name;
  out.canonical_revision = w.canonical_revision;
  out.app_name = w.app_name;
  out.app_version = w.app_version;
  out.cluster_id = nodeString(md, peer_metadata::kClusterIdKey);
  return out;
}

Result<std::shared_ptr<const IstioStatsConfig>> IstioStatsConfig::create(
    const ::stats::PluginConfig& proto, const envoy::config::core::v3::Node& node,
    stats::Scope& scope, std::string_view stat_prefix) {
  if (proto.definitions_size() > 0) {
    return invalidArgument("custom metric definitions are not supported").at("definitions");
  }
  auto config = std::make_shared<IstioStatsConfig>();
  for (int i = 0; i < proto.metrics_size(); ++i) {
    const auto& m = proto.metrics(i);
    const std::string where = "metrics[" + std::to_string(i) + "]";
    if (!m.dimensions().empty() || m.tags_to_remove_size() > 0 || !m.match().empty()) {
      // Changing the label set needs its own families; not done yet, and a
      // silently ignored override would make dashboards lie.
      return invalidArgument(
                 "only `drop` overrides are supported (dimensions, tags_to_remove "
                 "and match are not)")
          .at(where);
    }
    if (!m.drop()) continue;
    const std::string& n = m.name();
    const bool all = n.empty();
    if (all || n == "requests_total") config->drop_requests_total = true;
    if (all || n == "request_duration_milliseconds") config->drop_request_duration = true;
    if (all || n == "request_bytes") config->drop_request_bytes = true;
    if (all || n == "response_bytes") config->drop_response_bytes = true;
    if (all || n == "request_messages_total") config->drop_request_messages = true;
    if (all || n == "response_messages_total") config->drop_response_messages = true;
    if (all || n.starts_with("tcp_")) config->drop_tcp = true;
  }
  config->disable_host_header_fallback = proto.disable_host_header_fallback();
  if (proto.reporter() == ::stats::SERVER_GATEWAY) {
    config->reporter = Reporter::kServerGateway;
  } else {
    config->reporter =
        stat_prefix.starts_with("inbound") || stat_prefix.starts_with("InboundPassthroughCluster")
            ? Reporter::kServerSidecar
            : Reporter::kClientSidecar;
  }
  config->local = LocalWorkload::fromNode(node);
  SHEAVE_ASSIGN_OR_RETURN(config->metrics, IstioMetrics::create(scope));
  return std::shared_ptr<const IstioStatsConfig>(std::move(config));
}

void fillHttpLabels(const IstioStatsConfig& config, const StreamInfo& info, bool grpc,
                    LabelValues& out) {
  auto& v = out.http;
  const LocalWorkload& local = config.local;
  const bool server = config.reporter != Reporter::kClientSidecar;
  v[kReporter] = config.reporter == Reporter::kServerSidecar   ? "destination"
                 : config.reporter == Reporter::kServerGateway ? "waypoint"
                                                               : "source";
  const PeerWorkloadMetadata* peer = server ? info.downstream_peer.get() : info.upstream_peer.get();

  std::string_view service_host;
  std::string_view service_name;
  if (!config.disable_host_header_fallback && info.request_headers != nullptr) {
    if (const std::string* host = info.request_headers->get(":authority")) {
      service_host = hostWithoutPort(*host);
      service_name = service_host;
    }
  }
  destinationService(info, service_host, service_name);

  std::string_view peer_san;
  std::string_view local_san;
  std::string_view security = kUnknown;
  if (server) {
    peer_san = firstSan(info.downstream_peer_uri_san);
    local_san = firstSan(info.downstream_local_uri_san);
    security = !peer_san.empty() && !local_san.empty() ? "mutual_tls" : "none";
  } else {
    peer_san = firstSan(info.upstream_peer_uri_san);
    local_san = firstSan(info.upstream_local_uri_san);
  }
  std::string_view peer_namespace = namespaceOfPrincipal(peer_san);
  if (peer_namespace.empty() && peer != nullptr) peer_namespace = peer->namespace_name;

  auto peerField = [peer](std::string PeerWorkloadMetadata::*field,
                          std::string_view fallback = kUnknown) -> std::string_view {
    if (peer == nullptr || (peer->*field).empty()) return fallback;
    return peer->*field;
  };

  if (server) {
    v[kSourceWorkload] = peerField(&PeerWorkloadMetadata::workload_name);
    v[kSourceCanonicalService] = peerField(&PeerWorkloadMetadata::canonical_name);
    v[kSourceCanonicalRevision] = peerField(&PeerWorkloadMetadata::canonical_revision, kLatest);
    v[kSourceWorkloadNamespace] = orUnknown(peer_namespace);
    v[kSourcePrincipal] = orUnknown(peer_san);
    v[kSourceApp] = peerField(&PeerWorkloadMetadata::app_name);
    v[kSourceVersion] = peerField(&PeerWorkloadMetadata::app_version);
    v[kSourceCluster] = peerField(&PeerWorkloadMetadata::cluster_id);
    v[kDestinationWorkload] = local.workload_name;
    v[kDestinationWorkloadNamespace] = local.namespace_name;
    v[kDestinationPrincipal] = orUnknown(local_san);
    v[kDestinationApp] = local.app_name;
    v[kDestinationVersion] = local.app_version;
    v[kDestinationService] =
        service_host.empty() ? std::string_view(local.canonical_name) : service_host;
    v[kDestinationCanonicalService] = local.canonical_name;
    v[kDestinationCanonicalRevision] = local.canonical_revision;
    v[kDestinationServiceName] =
        service_name.empty() ? std::string_view(local.canonical_name) : service_name;
    v[kDestinationServiceNamespace] = local.namespace_name;
    v[kDestinationCluster] = local.cluster_id;
  } else {
    v[kSourceWorkload] = local.workload_name;
    v[kSourceCanonicalService] = local.canonical_name;
    v[kSourceCanonicalRevision] = local.canonical_revision;
    v[kSourceWorkloadNamespace] = local.namespace_name;
    v[kSourcePrincipal] = orUnknown(local_san);
    v[kSourceApp] = local.app_name;
    v[kSourceVersion] = local.app_version;
    v[kSourceCluster] = local.cluster_id;
    v[kDestinationWorkload] = peerField(&PeerWorkloadMetadata::workload_name);
    v[kDestinationWorkloadNamespace] = orUnknown(peer_namespace);
    v[kDestinationPrincipal] = orUnknown(peer_san);
    v[kDestinationApp] = peerField(&PeerWorkloadMetadata::app_name);
    v[kDestinationVersion] = peerField(&PeerWorkloadMetadata::app_version);
    v[kDestinationService] = orUnknown(service_host);
    v[kDestinationCanonicalService] = peerField(&PeerWorkloadMetadata::canonical_name);
    v[kDestinationCanonicalRevision] =
        peerField(&PeerWorkloadMetadata::canonical_revision, kLatest);
    v[kDestinationServiceName] = orUnknown(service_name);
    v[kDestinationServiceNamespace] = orUnknown(peer_namespace);
    v[kDestinationCluster] = peerField(&PeerWorkloadMetadata::cluster_id);
  }
  v[kRequestProtocol] = grpc ? "grpc" : "http";
  v[kResponseCode] = codeText(info.response_code.value_or(0));
  v[kGrpcResponseStatus] = {};
  if (grpc) {
    const std::string* status = nullptr;
    if (info.response_trailers != nullptr) status = info.response_trailers->get("grpc-status");
    if (status == nullptr && info.response_headers != nullptr) {
      status = info.response_headers->get("grpc-status");
    }
    if (status != nullptr) v[kGrpcResponseStatus] = grpcStatusText(*status);
  }
  if (info.response_flags.any()) {
    out.scratch_flags = info.response_flags.toShortString();
    v[kResponseFlags] = out.scratch_flags;
  } else {
    v[kResponseFlags] = "-";
  }
  v[kConnectionSecurityPolicy] = security;
}

http::FilterHeadersStatus IstioStatsFilter::decodeHeaders(HeaderMap& headers, bool) {
  const std::string* type = headers.get("content-type");
  grpc_ = type != nullptr && type->starts_with("application/grpc");
  return http::FilterHeadersStatus::kContinue;
}

http::FilterDataStatus IstioStatsFilter::decodeData(network::Buffer& data, bool) {
  if (grpc_ && !config_->drop_request_messages) request_messages_.add(data);
  return http::FilterDataStatus::kContinue;
}

void IstioStatsFilter::encodeData(const network::Buffer& data, bool) {
  if (grpc_ && !config_->drop_response_messages) response_messages_.add(data);
}

void GrpcMessageCounter::add(const network::Buffer& data) {
  // Slice by slice: message bodies are skipped, never copied.
  data.forEachSlice([this](std::string_view bytes) {
    size_t i = 0;
    while (i < bytes.size()) {
      if (frame_remaining_ > 0) {
        const uint64_t skip = std::min<uint64_t>(frame_remaining_, bytes.size() - i);
        frame_remaining_ -= skip;
        i += skip;
        continue;
      }
      prefix_[prefix_have_++] = static_cast<uint8_t>(bytes[i++]);
      if (prefix_have_ == prefix_.size()) {
        prefix_have_ = 0;
        ++messages_;
        frame_remaining_ = (uint64_t{prefix_[1]} << 24) | (uint64_t{prefix_[2]} << 16) |
                           (uint64_t{prefix_[3]} << 8) | uint64_t{prefix_[4]};
      }
    }
  });
}

void IstioStatsFilter::onDestroy() {
  if (reported_ || callbacks_ == nullptr) return;
  reported_ = true;
  const StreamInfo& info = callbacks_->streamInfo();
  LabelValues labels;
  fillHttpLabels(*config_, info, grpc_, labels);
  const auto& m = config_->metrics;
  const std::span<const std::string_view> values(labels.http);
  if (!config_->drop_requests_total) m.requests_total->inc(values);
  if (!config_->drop_request_duration) {
    // The connection manager stamps request_complete after the filters are
    // destroyed; the stream ends now.
    const auto elapsed = callbacks_->eventLoop().now() - info.start_time_monotonic;
    m.request_duration_milliseconds->record(
        values, static_cast<uint64_t>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  }
  if (!config_->drop_request_bytes) m.request_bytes->record(values, info.bytes_received);
  if (!config_->drop_response_bytes) m.response_bytes->record(values, info.bytes_sent);
  if (grpc_ && !config_->drop_request_messages) {
    m.request_messages_total->inc(values, request_messages_.messages());
  }
  if (grpc_ && !config_->drop_response_messages) {
    m.response_messages_total->inc(values, response_messages_.messages());
  }
}

void TcpStatsReporter::fill(const StreamInfo& info, LabelValues& out) const {
  fillHttpLabels(*config_, info, false, out);
  out.http[kRequestProtocol] = "tcp";
}

namespace {
std::array<std::string_view, kTcpLabelCount> tcpValues(const LabelValues& l) {
  std::array<std::string_view, kTcpLabelCount> out;
  size_t j = 0;
  for (size_t i = 0; i < kHttpLabelCount; ++i) {
    if (i == kResponseCode || i == kGrpcResponseStatus) continue;
    out[j++] = l.http[i];
  }
  return out;
}
}  // namespace

void TcpStatsReporter::onConnectionOpen(const StreamInfo& info) {
  if (opened_ || config_->drop_tcp) return;
  opened_ = true;
  LabelValues labels;
  fill(info, labels);
  const auto values = tcpValues(labels);
  config_->metrics.tcp_connections_opened_total->inc(values);
}

void TcpStatsReporter::onConnectionClose(const StreamInfo& info) {
  if (config_->drop_tcp) return;
  if (!opened_) onConnectionOpen(info);
  LabelValues labels;
  fill(info, labels);
  const auto values = tcpValues(labels);
  const auto& m = config_->metrics;
  m.tcp_sent_bytes_total->inc(values, info.bytes_sent);
  m.tcp_received_bytes_total->inc(values, info.bytes_received);
  m.tcp_connections_closed_total->inc(values);
}

void registerIstioStatsFilter(http::FilterRegistry& registry) {
  registry.add(
      std::string(kFilterTypeName),
      [](const google::protobuf::Any& any,
         http::FilterFactoryContext& context) -> Result<http::FilterFactoryCb> {
        auto proto = config::unpackTypedConfig<::stats::PluginConfig>(any, "typed_config");
        if (!proto.ok()) return std::move(proto).error();
        auto config = IstioStatsConfig::create(*proto, *config::localNode(), context.scope,
                                               context.stat_prefix);
        if (!config.ok()) return std::move(config).error();
        return http::FilterFactoryCb([config = *config](http::FilterChainBuilder& builder) {
          builder.addStreamFilter(std::make_unique<IstioStatsFilter>(config));
        });
      });
}

}  // namespace sheave::istio_stats
