#include "proxy/accesslog/access_log.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "envoy/config/accesslog/v3/accesslog.pb.h"
#include "envoy/config/core/v3/substitution_format_string.pb.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"

namespace sheave::accesslog {
namespace {

template <typename T>
bool compare(ComparisonOp op, T actual, T expected) {
  switch (op) {
    case ComparisonOp::kEq:
      return actual == expected;
    case ComparisonOp::kGe:
      return actual >= expected;
    case ComparisonOp::kLe:
      return actual <= expected;
    case ComparisonOp::kNe:
      return actual != expected;
  }
  return false;
}

Result<ComparisonOp> comparisonOp(int op) {
  using Proto = envoy::config::accesslog::v3::ComparisonFilter;
  switch (op) {
    case Proto::EQ:
      return ComparisonOp::kEq;
    case Proto::GE:
      return ComparisonOp::kGe;
    case Proto::LE:
      return ComparisonOp::kLe;
    case Proto::NE:
      return ComparisonOp::kNe;
    default:
      return invalidArgument("unknown comparison op " + std::to_string(op)).at("comparison.op");
  }
}

Result<std::string> readDataSource(const envoy::config::core::v3::DataSource& source) {
  using DataSource = envoy::config::core::v3::DataSource;
  switch (source.specifier_case()) {
    case DataSource::kInlineString:
      return source.inline_string();
    case DataSource::kInlineBytes:
      return source.inline_bytes();
    case DataSource::kFilename: {
      std::ifstream in(source.filename(), std::ios::binary);
      if (!in) return ioError("cannot read '" + source.filename() + "'").at("filename");
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
    case DataSource::kEnvironmentVariable: {
      const char* v = std::getenv(source.environment_variable().c_str());
      if (v == nullptr) {
        return invalidArgument("environment variable '" + source.environment_variable() +
                               "' is not set")
            .at("environment_variable");
      }
      return std::string(v);
    }
    default:
      return invalidArgument("no data source set");
  }
}

Result<std::unique_ptr<Formatter>> textFormatter(std::string_view format, FormatOptions options) {
  SHEAVE_ASSIGN_OR_RETURN(auto f, TextFormatter::create(format, options));
  return std::unique_ptr<Formatter>(std::move(f));
}

Result<std::unique_ptr<Formatter>> jsonFormatter(const google::protobuf::Struct& format,
                                                 FormatOptions options) {
  SHEAVE_ASSIGN_OR_RETURN(auto f, JsonFormatter::create(format, options));
  return std::unique_ptr<Formatter>(std::move(f));
}

}  // namespace

bool StatusCodeFilter::evaluate(const StreamInfo& info) const {
  return compare<uint32_t>(op_, info.response_code.value_or(0), value_);
}

bool DurationFilter::evaluate(const StreamInfo& info) const {
  if (!info.request_complete) return false;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*info.request_complete);
  return compare<uint64_t>(op_, static_cast<uint64_t>(ms.count()), value_ms_);
}

bool ResponseFlagFilter::evaluate(const StreamInfo& info) const {
  if (!flags_.any()) return info.response_flags.any();
  return info.response_flags.intersects(flags_);
}

bool AndFilter::evaluate(const StreamInfo& info) const {
  for (const auto& f : filters_) {
    if (!f->evaluate(info)) return false;
  }
  return true;
}

bool OrFilter::evaluate(const StreamInfo& info) const {
  for (const auto& f : filters_) {
    if (f->evaluate(info)) return true;
  }
  return false;
}

void AccessLog::log(const StreamInfo& info) const {
  if (filter_ && !filter_->evaluate(info)) return;
  // Reused per worker thread so a log line costs no allocation once warm.
  thread_local std::string line;
  line.clear();
  formatter_->format(info, line);
  sink_->write(line);
}

Result<std::unique_ptr<AccessLogFilter>> accessLogFilterFromProto(
    const envoy::config::accesslog::v3::AccessLogFilter& proto) {
  using Proto = envoy::config::accesslog::v3::AccessLogFilter;
  auto list =
      [](const auto& filters,
         const std::string& field) -> Result<std::vector<std::unique_ptr<AccessLogFilter>>> {
    std::vector<std::unique_ptr<AccessLogFilter>> out;
    for (int i = 0; i < filters.size(); ++i) {
      auto f = accessLogFilterFromProto(filters[i]);
      if (!f.ok()) return std::move(f).error().at(field + "[" + std::to_string(i) + "]");
      out.push_back(std::move(f).value());
    }
    return out;
  };
  switch (proto.filter_specifier_case()) {
    case Proto::kStatusCodeFilter: {
      const auto& c = proto.status_code_filter().comparison();
      auto op = comparisonOp(c.op());
      if (!op.ok()) return std::move(op).error().at("status_code_filter");
      return std::unique_ptr<AccessLogFilter>(
          std::make_unique<StatusCodeFilter>(*op, c.value().default_value()));
    }
    case Proto::kDurationFilter: {
      const auto& c = proto.duration_filter().comparison();
      auto op = comparisonOp(c.op());
      if (!op.ok()) return std::move(op).error().at("duration_filter");
      return std::unique_ptr<AccessLogFilter>(
          std::make_unique<DurationFilter>(*op, c.value().default_value()));
    }
    case Proto::kNotHealthCheckFilter:
      return std::unique_ptr<AccessLogFilter>(std::make_unique<NotHealthCheckFilter>());
    case Proto::kResponseFlagFilter: {
      ResponseFlags flags;
      const auto& names = proto.response_flag_filter().flags();
      for (int i = 0; i < names.size(); ++i) {
        auto flag = responseFlagFromShortString(names[i]);
        if (!flag) {
          return invalidArgument("unknown response flag '" + names[i] + "'")
              .at("response_flag_filter.flags[" + std::to_string(i) + "]");
        }
        flags.set(*flag);
      }
      return std::unique_ptr<AccessLogFilter>(std::make_unique<ResponseFlagFilter>(flags));
    }
    case Proto::kAndFilter: {
      SHEAVE_ASSIGN_OR_RETURN(auto filters,
                              list(proto.and_filter().filters(), "and_filter.filters"));
      return std::unique_ptr<AccessLogFilter>(std::make_unique<AndFilter>(std::move(filters)));
    }
    case Proto::kOrFilter: {
      SHEAVE_ASSIGN_OR_RETURN(auto filters, list(proto.or_filter().filters(), "or_filter.filters"));
      return std::unique_ptr<AccessLogFilter>(std::make_unique<OrFilter>(std::move(filters)));
    }
    case Proto::kTraceableFilter:
      return invalidArgument("traceable_filter is not supported");
    case Proto::kRuntimeFilter:
      return invalidArgument("runtime_filter is not supported");
    case Proto::kHeaderFilter:
      return invalidArgument("header_filter is not supported");
    case Proto::kGrpcStatusFilter:
      return invalidArgument("grpc_status_filter is not supported");
    case Proto::kExtensionFilter:
      return invalidArgument("extension_filter is not supported");
    case Proto::FILTER_SPECIFIER_NOT_SET:
      break;
  }
  return invalidArgument("no filter set");
}

Result<std::unique_ptr<Formatter>> formatterFromProto(
    const envoy::config::core::v3::SubstitutionFormatString& proto) {
  using Proto = envoy::config::core::v3::SubstitutionFormatString;
  FormatOptions options;
  options.omit_empty_values = proto.omit_empty_values();
  if (proto.formatters_size() > 0) {
    return invalidArgument("formatter extensions are not supported").at("formatters");
  }
  switch (proto.format_case()) {
    case Proto::kTextFormat: {
      auto f = textFormatter(proto.text_format(), options);
      if (!f.ok()) return std::move(f).error().at("text_format");
      return f;
    }
    case Proto::kTextFormatSource: {
      auto text = readDataSource(proto.text_format_source());
      if (!text.ok()) return std::move(text).error().at("text_format_source");
      auto f = textFormatter(*text, options);
      if (!f.ok()) return std::move(f).error().at("text_format_source");
      return f;
    }
    case Proto::kJsonFormat: {
      auto f = jsonFormatter(proto.json_format(), options);
      if (!f.ok()) return std::move(f).error().at("json_format");
      return f;
    }
    case Proto::FORMAT_NOT_SET:
      break;
  }
  return textFormatter(kDefaultFormat, options);
}

Result<std::unique_ptr<AccessLog>> accessLogFromProto(
    const envoy::config::accesslog::v3::AccessLog& proto, AccessLogManager& manager) {
  std::unique_ptr<AccessLogFilter> filter;
  if (proto.has_filter()) {
    auto f = accessLogFilterFromProto(proto.filter());
    if (!f.ok()) return std::move(f).error().at("filter");
    filter = std::move(f).value();
  }
  if (!proto.has_typed_config()) {
    return invalidArgument("access log '" + proto.name() + "' has no typed_config");
  }
  const auto& any = proto.typed_config();
  std::unique_ptr<Formatter> formatter;
  std::string path;
  if (any.type_url() == kFileAccessLogType) {
    envoy::extensions::access_loggers::file::v3::FileAccessLog file;
    if (!any.UnpackTo(&file))
      return invalidArgument("cannot decode FileAccessLog").at("typed_config");
    using File = envoy::extensions::access_loggers::file::v3::FileAccessLog;
    path = file.path();
    if (path.empty()) return invalidArgument("must not be empty").at("typed_config.path");
    Result<std::unique_ptr<Formatter>> f = invalidArgument("");
    switch (file.access_log_format_case()) {
      case File::kFormat:
        f = textFormatter(file.format().empty() ? kDefaultFormat : file.format(), {});
        break;
      case File::kJsonFormat:
        f = jsonFormatter(file.json_format(), {});
        break;
      case File::kTypedJsonFormat:
        f = jsonFormatter(file.typed_json_format(), {});
        break;
      case File::kLogFormat:
        f = formatterFromProto(file.log_format());
        if (!f.ok()) return std::move(f).error().at("typed_config.log_format");
        break;
      case File::ACCESS_LOG_FORMAT_NOT_SET:
        f = textFormatter(kDefaultFormat, {});
        break;
    }
    if (!f.ok()) return std::move(f).error().at("typed_config");
    formatter = std::move(f).value();
  } else if (any.type_url() == kStdoutAccessLogType || any.type_url() == kStderrAccessLogType) {
    envoy::extensions::access_loggers::stream::v3::StdoutAccessLog stream;
    // StdoutAccessLog and StderrAccessLog share their wire layout.
    if (!stream.ParseFromString(any.value())) {
      return invalidArgument("cannot decode " + any.type_url()).at("typed_config");
    }
    path = any.type_url() == kStdoutAccessLogType ? "/dev/stdout" : "/dev/stderr";
    auto f = stream.has_log_format() ? formatterFromProto(stream.log_format())
                                     : textFormatter(kDefaultFormat, {});
    if (!f.ok()) return std::move(f).error().at("typed_config.log_format");
    formatter = std::move(f).value();
  } else {
    return invalidArgument("unsupported access logger type '" + any.type_url() + "'")
        .at("typed_config");
  }
  SHEAVE_ASSIGN_OR_RETURN(auto sink, manager.file(path));
  return std::make_unique<AccessLog>(std::move(filter), std::move(formatter), std::move(sink));
}

}  // namespace sheave::accesslog
