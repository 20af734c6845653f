#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/model/duration.h"
#include "control/model/workload_selector.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// telemetry.istio.io Telemetry, field for field with Istio's API.

enum class WorkloadMode { kClientAndServer, kClient, kServer };
template <>
struct EnumTraits<WorkloadMode> {
  static constexpr std::array<std::pair<std::string_view, WorkloadMode>, 3> kNames{{
      {"CLIENT_AND_SERVER", WorkloadMode::kClientAndServer},
      {"CLIENT", WorkloadMode::kClient},
      {"SERVER", WorkloadMode::kServer},
  }};
};

struct ProviderRef {
  std::string name;
};

struct TracingSelector {
  WorkloadMode mode = WorkloadMode::kClientAndServer;
};

// CustomTag: oneof literal / environment / header.
struct CustomTag {
  struct Literal {
    std::string value;
  };
  struct Environment {
    std::string name;
    std::string default_value;
  };
  struct RequestHeader {
    std::string name;
    std::string default_value;
  };
  std::optional<Literal> literal;
  std::optional<Environment> environment;
  std::optional<RequestHeader> header;
};

struct Tracing {
  std::optional<TracingSelector> match;
  std::vector<ProviderRef> providers;
  std::optional<double> random_sampling_percentage;
  std::optional<bool> disable_span_reporting;
  std::map<std::string, CustomTag> custom_tags;
  std::optional<bool> use_request_id_for_trace_sampling;
};

enum class IstioMetric {
  kAllMetrics,
  kRequestCount,
  kRequestDuration,
  kRequestSize,
  kResponseSize,
  kTcpOpenedConnections,
  kTcpClosedConnections,
  kTcpSentBytes,
  kTcpReceivedBytes,
  kGrpcRequestMessages,
  kGrpcResponseMessages,
};
template <>
struct EnumTraits<IstioMetric> {
  static constexpr std::array<std::pair<std::string_view, IstioMetric>, 11> kNames{{
      {"ALL_METRICS", IstioMetric::kAllMetrics},
      {"REQUEST_COUNT", IstioMetric::kRequestCount},
      {"REQUEST_DURATION", IstioMetric::kRequestDuration},
      {"REQUEST_SIZE", IstioMetric::kRequestSize},
      {"RESPONSE_SIZE", IstioMetric::kResponseSize},
      {"TCP_OPENED_CONNECTIONS", IstioMetric::kTcpOpenedConnections},
      {"TCP_CLOSED_CONNECTIONS", IstioMetric::kTcpClosedConnections},
      {"TCP_SENT_BYTES", IstioMetric::kTcpSentBytes},
      {"TCP_RECEIVED_BYTES", IstioMetric::kTcpReceivedBytes},
      {"GRPC_REQUEST_MESSAGES", IstioMetric::kGrpcRequestMessages},
      {"GRPC_RESPONSE_MESSAGES", IstioMetric::kGrpcResponseMessages},
  }};
};

struct MetricSelector {
  std::optional<IstioMetric> metric;  // oneof metric_match
  std::string custom_metric;          // oneof metric_match
  WorkloadMode mode = WorkloadMode::kClientAndServer;
};

enum class TagOperation { kUpsert, kRemove };
template <>
struct EnumTraits<TagOperation> {
  static constexpr std::array<std::pair<std::string_view, TagOperation>, 2> kNames{{
      {"UPSERT", TagOperation::kUpsert},
      {"REMOVE", TagOperation::kRemove},
  }};
};

struct TagOverride {
  TagOperation operation = TagOperation::kUpsert;
  std::string value;  // a CEL expression
};

struct MetricsOverrides {
  std::optional<MetricSelector> match;
  std::optional<bool> disabled;
  std::map<std::string, TagOverride> tag_overrides;
};

struct Metrics {
  std::vector<ProviderRef> providers;
  std::vector<MetricsOverrides> overrides;
  std::optional<Duration> reporting_interval;
};

struct AccessLogSelector {
  WorkloadMode mode = WorkloadMode::kClientAndServer;
};

struct AccessLogFilter {
  std::string expression;  // a CEL expression
};

struct AccessLogging {
  std::optional<AccessLogSelector> match;
  std::vector<ProviderRef> providers;
  std::optional<bool> disabled;
  std::optional<AccessLogFilter> filter;
};

struct Telemetry {
  std::optional<WorkloadSelector> selector;
  std::optional<PolicyTargetReference> target_ref;
  std::vector<PolicyTargetReference> target_refs;
  std::vector<Tracing> tracing;
  std::vector<Metrics> metrics;
  std::vector<AccessLogging> access_logging;
};

}  // namespace sheave::control
