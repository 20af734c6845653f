#pragma once

#include <memory>
#include <vector>

#include "common/result.h"
#include "proxy/accesslog/access_log_sink.h"
#include "proxy/accesslog/formatter.h"
#include "proxy/accesslog/stream_info.h"

namespace envoy::config::accesslog::v3 {
class AccessLog;
class AccessLogFilter;
}  // namespace envoy::config::accesslog::v3
namespace envoy::config::core::v3 {
class SubstitutionFormatString;
}

namespace sheave::accesslog {

// Decides whether a finished stream is logged (envoy.config.accesslog.v3.AccessLogFilter).
class AccessLogFilter {
 public:
  virtual ~AccessLogFilter() = default;
  virtual bool evaluate(const StreamInfo& info) const = 0;
};

// ComparisonFilter.Op.
enum class ComparisonOp { kEq, kGe, kLe, kNe };

// Response code (0 when none was sent) compared with `value`.
class StatusCodeFilter : public AccessLogFilter {
 public:
  StatusCodeFilter(ComparisonOp op, uint32_t value) : op_(op), value_(value) {}
  bool evaluate(const StreamInfo& info) const override;

 private:
  ComparisonOp op_;
  uint32_t value_;
};

// Total duration in milliseconds compared with `value`; false while the
// stream has no duration.
class DurationFilter : public AccessLogFilter {
 public:
  DurationFilter(ComparisonOp op, uint64_t value_ms) : op_(op), value_ms_(value_ms) {}
  bool evaluate(const StreamInfo& info) const override;

 private:
  ComparisonOp op_;
  uint64_t value_ms_;
};

// Any of `flags` set; with no flags listed, any flag at all.
class ResponseFlagFilter : public AccessLogFilter {
 public:
  explicit ResponseFlagFilter(ResponseFlags flags) : flags_(flags) {}
  bool evaluate(const StreamInfo& info) const override;

 private:
  ResponseFlags flags_;
};

class NotHealthCheckFilter : public AccessLogFilter {
 public:
  bool evaluate(const StreamInfo& info) const override { return !info.health_check_request; }
};

class AndFilter : public AccessLogFilter {
 public:
  explicit AndFilter(std::vector<std::unique_ptr<AccessLogFilter>> filters)
      : filters_(std::move(filters)) {}
  bool evaluate(const StreamInfo& info) const override;

 private:
  std::vector<std::unique_ptr<AccessLogFilter>> filters_;
};

class OrFilter : public AccessLogFilter {
 public:
  explicit OrFilter(std::vector<std::unique_ptr<AccessLogFilter>> filters)
      : filters_(std::move(filters)) {}
  bool evaluate(const StreamInfo& info) const override;

 private:
  std::vector<std::unique_ptr<AccessLogFilter>> filters_;
};

// One configured access log: filter, formatter, sink. Immutable and shared
// by every worker; log() formats into a per-thread buffer and hands the line
// to the sink, which never blocks.
class AccessLog {
 public:
  AccessLog(std::unique_ptr<AccessLogFilter> filter, std::unique_ptr<Formatter> formatter,
            std::shared_ptr<AccessLogSink> sink)
      : filter_(std::move(filter)), formatter_(std::move(formatter)), sink_(std::move(sink)) {}

  void log(const StreamInfo& info) const;

 private:
  std::unique_ptr<AccessLogFilter> filter_;  // null: log everything
  std::unique_ptr<Formatter> formatter_;
  std::shared_ptr<AccessLogSink> sink_;
};

// Type URLs of the supported access loggers.
inline constexpr std::string_view kFileAccessLogType =
    "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
inline constexpr std::string_view kStdoutAccessLogType =
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
inline constexpr std::string_view kStderrAccessLogType =
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";

// Builds from configuration, on the main thread. Errors carry the field path
// (relative to the message passed in). Unsupported filters (runtime,
// traceable, header, grpc_status, extension) are errors rather than being
// silently ignored.
Result<std::unique_ptr<AccessLogFilter>> accessLogFilterFromProto(
    const envoy::config::accesslog::v3::AccessLogFilter& proto);
// SubstitutionFormatString; text_format_source reads inline_string,
// inline_bytes, filename or environment_variable.
Result<std::unique_ptr<Formatter>> formatterFromProto(
    const envoy::config::core::v3::SubstitutionFormatString& proto);
Result<std::unique_ptr<AccessLog>> accessLogFromProto(
    const envoy::config::accesslog::v3::AccessLog& proto, AccessLogManager& manager);

}  // namespace sheave::accesslog
