#include "proxy/accesslog/formatter.h"

#include "common/grpc_status_names.h"
#include "common/json_string.h"

#include <google/protobuf/struct.pb.h>
#include <unistd.h>

#include <charconv>
#include <ctime>
#include <map>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace sheave::accesslog {

namespace {

enum class Command {
  kStartTime,
  kReq,
  kResp,
  kTrailer,
  kResponseCode,
  kResponseCodeDetails,
  kConnectionTerminationDetails,
  kResponseFlags,
  kResponseFlagsLong,
  kBytesReceived,
  kBytesSent,
  kDuration,
  kRequestDuration,
  kRequestTxDuration,
  kResponseDuration,
  kResponseTxDuration,
  kUpstreamHost,
  kUpstreamRemoteAddressWithoutPort,
  kUpstreamCluster,
  kUpstreamLocalAddress,
  kUpstreamTransportFailureReason,
  kDownstreamRemoteAddress,
  kDownstreamRemoteAddressWithoutPort,
  kDownstreamDirectRemoteAddress,
  kDownstreamDirectRemoteAddressWithoutPort,
  kDownstreamLocalAddress,
  kDownstreamLocalAddressWithoutPort,
  kDownstreamPeerUriSan,
  kDownstreamPeerSubject,
  kDownstreamLocalUriSan,
  kUpstreamPeerUriSan,
  kUpstreamLocalUriSan,
  kRouteName,
  kProtocol,
  kUpstreamRequestAttemptCount,
  kRequestedServerName,
  kHostname,
  kConnectionId,
  kStreamId,
  kGrpcStatus,
  kGrpcStatusNumber,
};

enum class Params { kNone, kOptional, kRequired };

struct CommandSpec {
  std::string_view name;
  Command command;
  Params params;
};

constexpr CommandSpec kCommands[] = {
    {"START_TIME", Command::kStartTime, Params::kOptional},
    {"REQ", Command::kReq, Params::kRequired},
    {"RESP", Command::kResp, Params::kRequired},
    {"TRAILER", Command::kTrailer, Params::kRequired},
    {"RESPONSE_CODE", Command::kResponseCode, Params::kNone},
    {"RESPONSE_CODE_DETAILS", Command::kResponseCodeDetails, Params::kNone},
    {"CONNECTION_TERMINATION_DETAILS", Command::kConnectionTerminationDetails, Params::kNone},
    {"RESPONSE_FLAGS", Command::kResponseFlags, Params::kNone},
    {"RESPONSE_FLAGS_LONG", Command::kResponseFlagsLong, Params::kNone},
    {"BYTES_RECEIVED", Command::kBytesReceived, Params::kNone},
    {"BYTES_SENT", Command::kBytesSent, Params::kNone},
    {"DURATION", Command::kDuration, Params::kNone},
    {"REQUEST_DURATION", Command::kRequestDuration, Params::kNone},
    {"REQUEST_TX_DURATION", Command::kRequestTxDuration, Params::kNone},
    {"RESPONSE_DURATION", Command::kResponseDuration, Params::kNone},
    {"RESPONSE_TX_DURATION", Command::kResponseTxDuration, Params::kNone},
    {"UPSTREAM_HOST", Command::kUpstreamHost, Params::kNone},
    {"UPSTREAM_REMOTE_ADDRESS", Command::kUpstreamHost, Params::kNone},
    {"UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Command::kUpstreamRemoteAddressWithoutPort,
     Params::kNone},
    {"UPSTREAM_CLUSTER", Command::kUpstreamCluster, Params::kNone},
    {"UPSTREAM_LOCAL_ADDRESS", Command::kUpstreamLocalAddress, Params::kNone},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON", Command::kUpstreamTransportFailureReason, Params::kNone},
    {"DOWNSTREAM_REMOTE_ADDRESS", Command::kDownstreamRemoteAddress, Params::kNone},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Command::kDownstreamRemoteAddressWithoutPort,
     Params::kNone},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS", Command::kDownstreamDirectRemoteAddress, Params::kNone},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
     Command::kDownstreamDirectRemoteAddressWithoutPort, Params::kNone},
    {"DOWNSTREAM_LOCAL_ADDRESS", Command::kDownstreamLocalAddress, Params::kNone},
    {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", Command::kDownstreamLocalAddressWithoutPort,
     Params::kNone},
    {"DOWNSTREAM_PEER_URI_SAN", Command::kDownstreamPeerUriSan, Params::kNone},
    {"DOWNSTREAM_PEER_SUBJECT", Command::kDownstreamPeerSubject, Params::kNone},
    {"DOWNSTREAM_LOCAL_URI_SAN", Command::kDownstreamLocalUriSan, Params::kNone},
    {"UPSTREAM_PEER_URI_SAN", Command::kUpstreamPeerUriSan, Params::kNone},
    {"UPSTREAM_LOCAL_URI_SAN", Command::kUpstreamLocalUriSan, Params::kNone},
    {"ROUTE_NAME", Command::kRouteName, Params::kNone},
    {"PROTOCOL", Command::kProtocol, Params::kNone},
    {"UPSTREAM_REQUEST_ATTEMPT_COUNT", Command::kUpstreamRequestAttemptCount, Params::kNone},
    {"REQUESTED_SERVER_NAME", Command::kRequestedServerName, Params::kNone},
    {"HOSTNAME", Command::kHostname, Params::kNone},
    {"CONNECTION_ID", Command::kConnectionId, Params::kNone},
    {"STREAM_ID", Command::kStreamId, Params::kNone},
    {"GRPC_STATUS", Command::kGrpcStatus, Params::kOptional},
    {"GRPC_STATUS_NUMBER", Command::kGrpcStatusNumber, Params::kNone},
};

// Envoy's CAMEL_STRING spellings of gRPC's codes (note "Canceled").
constexpr std::string_view kGrpcCamelNames[] = {
    "Ok",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

std::optional<uint64_t> grpcStatusIn(const HeaderMap* headers) {
  if (headers == nullptr) return std::nullopt;
  const std::string* value = headers->get("grpc-status");
  if (value == nullptr || value->empty()) return std::nullopt;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (ec != std::errc() || p != value->data() + value->size()) return std::nullopt;
  return n;
}

// Envoy's order: the trailers' grpc-status, the headers' (Trailers-Only),
// else what the HTTP status means to a gRPC client. Only for gRPC requests.
std::optional<uint64_t> grpcStatusOf(const StreamInfo& info) {
  const HeaderMap* request = info.request_headers;
  const std::string* type = request ? request->get("content-type") : nullptr;
  if (type == nullptr || !type->starts_with("application/grpc")) return std::nullopt;
  if (auto s = grpcStatusIn(info.response_trailers)) return s;
  if (auto s = grpcStatusIn(info.response_headers)) return s;
  if (!info.response_code || *info.response_code == 0) return std::nullopt;
  switch (*info.response_code) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

// One piece of a START_TIME format: strftime text, fractional seconds, or
// epoch seconds (Envoy's %f / %Nf / %s / %ENS extensions).
struct TimeSegment {
  enum class Kind { kStrftime, kFraction, kEpochSeconds } kind;
  std::string text;  // kStrftime
  int digits = 0;    // kFraction
};

std::vector<TimeSegment> compileTimeFormat(std::string_view f) {
  std::vector<TimeSegment> out;
  std::string text;
  auto flushText = [&] {
    if (!text.empty()) out.push_back({TimeSegment::Kind::kStrftime, std::move(text), 0});
    text.clear();
  };
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%' || i + 1 >= f.size()) {
      text.push_back(f[i]);
      continue;
    }
    const char next = f[i + 1];
    if (next == 'f') {
      flushText();
      out.push_back({TimeSegment::Kind::kFraction, "", 9});
      i += 1;
    } else if (next >= '1' && next <= '9' && i + 2 < f.size() && f[i + 2] == 'f') {
      flushText();
      out.push_back({TimeSegment::Kind::kFraction, "", next - '0'});
      i += 2;
    } else if (next == 's') {
      flushText();
      out.push_back({TimeSegment::Kind::kEpochSeconds, "", 0});
      i += 1;
    } else if (next == 'E' && i + 3 < f.size() && f[i + 2] >= '1' && f[i + 2] <= '9' &&
               f[i + 3] == 'S') {
      // absl's %E3S: seconds with 3 fractional digits.
      text += "%S.";
      flushText();
      out.push_back({TimeSegment::Kind::kFraction, "", f[i + 2] - '0'});
      i += 3;
    } else {
      text.push_back('%');
      text.push_back(next);  // includes "%%"
      i += 1;
    }
  }
  flushText();
  return out;
}

const std::vector<TimeSegment>& defaultTimeFormat() {
  static const std::vector<TimeSegment> f = compileTimeFormat("%Y-%m-%dT%H:%M:%E3SZ");
  return f;
}

void appendTime(std::chrono::system_clock::time_point t, const std::vector<TimeSegment>& segments,
                std::string& out) {
  const auto since_epoch = t.time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs);
  if (nanos.count() < 0) {
    secs -= std::chrono::seconds(1);
    nanos += std::chrono::seconds(1);
  }
  const std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  for (const TimeSegment& seg : segments) {
    switch (seg.kind) {
      case TimeSegment::Kind::kStrftime: {
        char buf[256];
        const size_t n = std::strftime(buf, sizeof(buf), seg.text.c_str(), &tm);
        out.append(buf, n);
        break;
      }
      case TimeSegment::Kind::kFraction: {
        const std::string nine = fmt::format("{:09d}", nanos.count());
        out.append(nine, 0, static_cast<size_t>(seg.digits));
        break;
      }
      case TimeSegment::Kind::kEpochSeconds:
        out += std::to_string(secs.count());
        break;
    }
  }
}

struct Operator {
  Command command;
  std::string main_header;  // lower-case
  std::string alt_header;   // lower-case, may be empty
  std::optional<size_t> max_length;
  std::vector<TimeSegment> time_format;  // empty: Envoy's default
};

// A formatted value before it becomes text or JSON.
struct FieldValue {
  enum class Kind { kMissing, kNumber, kString } kind = Kind::kMissing;
  uint64_t number = 0;
  std::string_view str;
  std::string storage;

  void setNumber(uint64_t n) {
    kind = Kind::kNumber;
    number = n;
  }
  void setString(std::string_view s) {
    if (s.empty()) return;  // Envoy logs empty values as missing
    kind = Kind::kString;
    str = s;
  }
  void setOwned(std::string s) {
    if (s.empty()) return;
    storage = std::move(s);
    kind = Kind::kString;
    str = storage;
  }
};

std::optional<uint64_t> toMillis(const std::optional<StreamInfo::Duration>& d) {
  if (!d) return std::nullopt;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
}

const std::string& hostname() {
  static const std::string name = [] {
    char buf[256] = {};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return std::string();
    return std::string(buf);
  }();
  return name;
}

void headerValue(const HeaderMap* headers, const Operator& op, FieldValue& v) {
  if (headers == nullptr) return;
  const std::string* value = headers->get(op.main_header);
  if (value == nullptr && !op.alt_header.empty()) value = headers->get(op.alt_header);
  if (value != nullptr) v.setString(*value);
}

void evaluate(const Operator& op, const StreamInfo& info, FieldValue& v) {
  auto setMillis = [&v](const std::optional<StreamInfo::Duration>& d) {
    if (auto ms = toMillis(d)) v.setNumber(*ms);
  };
  switch (op.command) {
    case Command::kStartTime: {
      std::string s;
      appendTime(info.start_time, op.time_format.empty() ? defaultTimeFormat() : op.time_format, s);
      v.setOwned(std::move(s));
      break;
    }
    case Command::kReq:
      headerValue(info.request_headers, op, v);
      break;
    case Command::kResp:
      headerValue(info.response_headers, op, v);
      break;
    case Command::kTrailer:
      headerValue(info.response_trailers, op, v);
      break;
    case Command::kResponseCode:
      // Envoy logs 0 when no response was sent (and for TCP).
      v.setNumber(info.response_code.value_or(0));
      break;
    case Command::kResponseCodeDetails:
      v.setString(info.response_code_details);
      break;
    case Command::kConnectionTerminationDetails:
      v.setString(info.connection_termination_details);
      break;
    case Command::kResponseFlags:
      v.setOwned(info.response_flags.toShortString());
      break;
    case Command::kResponseFlagsLong:
      v.setOwned(info.response_flags.toLongString());
      break;
    case Command::kBytesReceived:
      v.setNumber(info.bytes_received);
      break;
    case Command::kBytesSent:
      v.setNumber(info.bytes_sent);
      break;
    case Command::kDuration:
      setMillis(info.request_complete);
      break;
    case Command::kRequestDuration:
      setMillis(info.last_downstream_rx_byte_received);
      break;
    case Command::kRequestTxDuration:
      setMillis(info.last_upstream_tx_byte_sent);
      break;
    case Command::kResponseDuration:
      setMillis(info.first_upstream_rx_byte_received);
      break;
    case Command::kResponseTxDuration:
      if (info.last_downstream_tx_byte_sent && info.first_upstream_rx_byte_received) {
        setMillis(*info.last_downstream_tx_byte_sent - *info.first_upstream_rx_byte_received);
      }
      break;
    case Command::kUpstreamHost:
      v.setString(info.upstream_host);
      break;
    case Command::kUpstreamRemoteAddressWithoutPort:
      v.setString(addressWithoutPort(info.upstream_host));
      break;
    case Command::kUpstreamCluster:
      v.setString(info.upstream_cluster);
      break;
    case Command::kUpstreamLocalAddress:
      v.setString(info.upstream_local_address);
      break;
    case Command::kUpstreamTransportFailureReason:
      v.setString(info.upstream_transport_failure_reason);
      break;
    case Command::kDownstreamRemoteAddress:
      v.setString(info.downstream_remote_address);
      break;
    case Command::kDownstreamRemoteAddressWithoutPort:
      v.setString(addressWithoutPort(info.downstream_remote_address));
      break;
    case Command::kDownstreamDirectRemoteAddress:
      v.setString(info.downstream_direct_remote_address);
      break;
    case Command::kDownstreamDirectRemoteAddressWithoutPort:
      v.setString(addressWithoutPort(info.downstream_direct_remote_address));
      break;
    case Command::kDownstreamLocalAddress:
      v.setString(info.downstream_local_address);
      break;
    case Command::kDownstreamLocalAddressWithoutPort:
      v.setString(addressWithoutPort(info.downstream_local_address));
      break;
    case Command::kDownstreamPeerUriSan:
      v.setString(info.downstream_peer_uri_san);
      break;
    case Command::kDownstreamPeerSubject:
      v.setString(info.downstream_peer_subject);
      break;
    case Command::kDownstreamLocalUriSan:
      v.setString(info.downstream_local_uri_san);
      break;
    case Command::kUpstreamPeerUriSan:
      v.setString(info.upstream_peer_uri_san);
      break;
    case Command::kUpstreamLocalUriSan:
      v.setString(info.upstream_local_uri_san);
      break;
    case Command::kRouteName:
      v.setString(info.route_name);
      break;
    case Command::kProtocol:
      v.setString(info.protocol);
      break;
    case Command::kGrpcStatusNumber:
      if (auto s = grpcStatusOf(info)) v.setNumber(*s);
      break;
    case Command::kGrpcStatus: {
      auto s = grpcStatusOf(info);
      if (!s) break;
      if (op.main_header == "number") {
        v.setNumber(*s);
      } else if (*s < std::size(kGrpcCamelNames)) {
        v.setString(op.main_header == "snake_string" ? kGrpcStatusNames[*s] : kGrpcCamelNames[*s]);
      } else {
        v.setNumber(*s);  // a code gRPC does not define: as a number
      }
      break;
    }
    case Command::kUpstreamRequestAttemptCount:
      v.setNumber(info.attempt_count.value_or(0));
      break;
    case Command::kRequestedServerName:
      v.setString(info.requested_server_name);
      break;
    case Command::kHostname:
      v.setString(hostname());
      break;
    case Command::kConnectionId:
      v.setNumber(info.connection_id.value_or(0));
      break;
    case Command::kStreamId:
      v.setString(info.request_id);
      break;
  }
  if (v.kind == FieldValue::Kind::kString && op.max_length && v.str.size() > *op.max_length) {
    v.str = v.str.substr(0, *op.max_length);
  }
}

void appendText(const FieldValue& v, const FormatOptions& options, std::string& out) {
  switch (v.kind) {
    case FieldValue::Kind::kMissing:
      if (!options.omit_empty_values) out.push_back('-');
      break;
    case FieldValue::Kind::kNumber: {
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v.number);
      out.append(buf, end);
      break;
    }
    case FieldValue::Kind::kString:
      out.append(v.str);
      break;
  }
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Error formatError(std::string_view format, size_t pos, const std::string& what) {
  return invalidArgument("access log format '" + std::string(format) + "': " + what +
                         " at position " + std::to_string(pos));
}

}  // namespace

struct CompiledFormat {
  struct Piece {
    std::string literal;
    std::optional<Operator> op;
  };
  std::vector<Piece> pieces;

  bool singleOperator() const { return pieces.size() == 1 && pieces[0].op.has_value(); }

  void appendText(const StreamInfo& info, const FormatOptions& options, std::string& out) const {
    for (const Piece& piece : pieces) {
      if (!piece.op) {
        out += piece.literal;
        continue;
      }
      FieldValue v;
      evaluate(*piece.op, info, v);
      accesslog::appendText(v, options, out);
    }
  }

  static Result<std::unique_ptr<CompiledFormat>> compile(std::string_view format) {
    auto compiled = std::make_unique<CompiledFormat>();
    std::string literal;
    size_t i = 0;
    while (i < format.size()) {
      if (format[i] != '%') {
        literal.push_back(format[i++]);
        continue;
      }
      const size_t start = i;
      if (i + 1 < format.size() && format[i + 1] == '%') {
        literal.push_back('%');
        i += 2;
        continue;
      }
      size_t j = i + 1;
      while (j < format.size() && ((format[j] >= 'A' && format[j] <= 'Z') ||
                                   (format[j] >= '0' && format[j] <= '9') || format[j] == '_')) {
        ++j;
      }
      const std::string_view name = format.substr(i + 1, j - i - 1);
      if (name.empty()) {
        return formatError(format, start, "expected a command operator or '%%' after '%'");
      }
      std::optional<std::string_view> params;
      if (j < format.size() && format[j] == '(') {
        const size_t close = format.find(')', j);
        if (close == std::string_view::npos) {
          return formatError(format, j, "unterminated '(' of " + std::string(name));
        }
        params = format.substr(j + 1, close - j - 1);
        j = close + 1;
      }
      std::optional<size_t> max_length;
      if (j < format.size() && format[j] == ':') {
        size_t k = j + 1;
        while (k < format.size() && format[k] >= '0' && format[k] <= '9') ++k;
        size_t length = 0;
        auto [ptr, ec] = std::from_chars(format.data() + j + 1, format.data() + k, length);
        if (k == j + 1 || ec != std::errc()) {
          return formatError(format, j, "expected a length after ':' of " + std::string(name));
        }
        max_length = length;
        j = k;
      }
      if (j >= format.size() || format[j] != '%') {
        return formatError(
            format, start,
            "unterminated command operator " + std::string(name) + " (expected '%')");
      }
      const CommandSpec* spec = nullptr;
      for (const CommandSpec& c : kCommands) {
        if (c.name == name) spec = &c;
      }
      if (spec == nullptr) {
        return formatError(format, start, "unknown command operator " + std::string(name));
      }
      if (spec->params == Params::kRequired && (!params || params->empty())) {
        return formatError(
            format, start,
            std::string(name) + " needs a parameter, e.g. " + std::string(name) + "(:path)");
      }
      if (spec->params == Params::kNone && params) {
        return formatError(format, start, std::string(name) + " takes no parameter");
      }
      Operator op{spec->command, "", "", max_length, {}};
      if (spec->command == Command::kStartTime) {
        if (params && !params->empty()) op.time_format = compileTimeFormat(*params);
      } else if (spec->command == Command::kGrpcStatus) {
        op.main_header = params ? toLower(*params) : "camel_string";
        if (op.main_header != "camel_string" && op.main_header != "snake_string" &&
            op.main_header != "number") {
          return formatError(format, start,
                             "GRPC_STATUS takes CAMEL_STRING, SNAKE_STRING or NUMBER");
        }
      } else if (params) {
        const size_t q = params->find('?');
        op.main_header = toLower(params->substr(0, q));
        if (q != std::string_view::npos) {
          op.alt_header = toLower(params->substr(q + 1));
          if (op.alt_header.find('?') != std::string::npos || op.main_header.empty() ||
              op.alt_header.empty()) {
            return formatError(format, start,
                               "expected " + std::string(name) + "(header) or " +
                                   std::string(name) + "(header?alternative)");
          }
        }
      }
      if (!literal.empty()) compiled->pieces.push_back({std::move(literal), std::nullopt});
      literal.clear();
      compiled->pieces.push_back({"", std::move(op)});
      i = j + 1;
    }
    if (!literal.empty()) compiled->pieces.push_back({std::move(literal), std::nullopt});
    return compiled;
  }
};

std::string_view addressWithoutPort(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close != std::string_view::npos) return address.substr(1, close - 1);
    return address;
  }
  const size_t colon = address.rfind(':');
  // More than one colon without brackets is a bare IPv6 address.
  if (colon == std::string_view::npos || address.find(':') != colon) return address;
  return address.substr(0, colon);
}

TextFormatter::TextFormatter(std::unique_ptr<CompiledFormat> compiled, FormatOptions options)
    : compiled_(std::move(compiled)), options_(options) {}
TextFormatter::~TextFormatter() = default;

Result<std::unique_ptr<TextFormatter>> TextFormatter::create(std::string_view format,
                                                             FormatOptions options) {
  SHEAVE_ASSIGN_OR_RETURN(auto compiled, CompiledFormat::compile(format));
  return std::unique_ptr<TextFormatter>(new TextFormatter(std::move(compiled), options));
}

void TextFormatter::format(const StreamInfo& info, std::string& out) const {
  compiled_->appendText(info, options_, out);
}

struct JsonNode {
  enum class Kind { kLiteral, kFormat, kObject, kList } kind = Kind::kLiteral;
  std::string literal_json;                // kLiteral: already-encoded JSON
  std::unique_ptr<CompiledFormat> format;  // kFormat
  std::vector<std::pair<std::string, std::unique_ptr<JsonNode>>> children;  // kObject (sorted)
  std::vector<std::unique_ptr<JsonNode>> items;                             // kList

  // Returns false when the node is a missing value that omit_empty_values drops.
  bool append(const StreamInfo& info, const FormatOptions& options, std::string& out) const {
    switch (kind) {
      case Kind::kLiteral:
        out += literal_json;
        return true;
      case Kind::kFormat: {
        if (!format->singleOperator()) {
          std::string text;
          format->appendText(info, options, text);
          appendJsonString(out, text);
          return true;
        }
        FieldValue v;
        evaluate(*format->pieces[0].op, info, v);
        switch (v.kind) {
          case FieldValue::Kind::kMissing:
            if (options.omit_empty_values) return false;
            out += "null";
            return true;
          case FieldValue::Kind::kNumber:
            out += std::to_string(v.number);
            return true;
          case FieldValue::Kind::kString:
            appendJsonString(out, v.str);
            return true;
        }
        return true;
      }
      case Kind::kObject: {
        out.push_back('{');
        bool first = true;
        for (const auto& [key, child] : children) {
          const size_t mark = out.size();
          if (!first) out.push_back(',');
          appendJsonString(out, key);
          out.push_back(':');
          if (child->append(info, options, out)) {
            first = false;
          } else {
            out.resize(mark);
          }
        }
        out.push_back('}');
        return true;
      }
      case Kind::kList: {
        out.push_back('[');
        bool first = true;
        for (const auto& item : items) {
          const size_t mark = out.size();
          if (!first) out.push_back(',');
          if (item->append(info, options, out)) {
            first = false;
          } else {
            out.resize(mark);
          }
        }
        out.push_back(']');
        return true;
      }
    }
    return true;
  }

  static Result<std::unique_ptr<JsonNode>> compile(const google::protobuf::Value& value,
                                                   const std::string& path) {
    auto node = std::make_unique<JsonNode>();
    switch (value.kind_case()) {
      case google::protobuf::Value::kStringValue: {
        node->kind = Kind::kFormat;
        auto compiled = CompiledFormat::compile(value.string_value());
        if (!compiled.ok()) return std::move(compiled).error().at(path);
        node->format = std::move(compiled).value();
        break;
      }
      case google::protobuf::Value::kNumberValue:
        node->literal_json = fmt::format("{}", value.number_value());
        break;
      case google::protobuf::Value::kBoolValue:
        node->literal_json = value.bool_value() ? "true" : "false";
        break;
      case google::protobuf::Value::kStructValue: {
        auto child = compileStruct(value.struct_value(), path);
        if (!child.ok()) return std::move(child).error();
        return std::move(child).value();
      }
      case google::protobuf::Value::kListValue: {
        node->kind = Kind::kList;
        const auto& list = value.list_value().values();
        for (int i = 0; i < list.size(); ++i) {
          auto item = compile(list[i], path + "[" + std::to_string(i) + "]");
          if (!item.ok()) return std::move(item).error();
          node->items.push_back(std::move(item).value());
        }
        break;
      }
      default:
        node->literal_json = "null";
        break;
    }
    return node;
  }

  static Result<std::unique_ptr<JsonNode>> compileStruct(const google::protobuf::Struct& s,
                                                         const std::string& path) {
    auto node = std::make_unique<JsonNode>();
    node->kind = Kind::kObject;
    // protobuf maps have no order; sort keys for a stable line layout.
    std::map<std::string, const google::protobuf::Value*> sorted;
    for (const auto& [key, value] : s.fields()) sorted.emplace(key, &value);
    for (const auto& [key, value] : sorted) {
      auto child = compile(*value, path.empty() ? key : path + "." + key);
      if (!child.ok()) return std::move(child).error();
      node->children.emplace_back(key, std::move(child).value());
    }
    return node;
  }
};

JsonFormatter::JsonFormatter(std::unique_ptr<JsonNode> root, FormatOptions options)
    : root_(std::move(root)), options_(options) {}
JsonFormatter::~JsonFormatter() = default;

Result<std::unique_ptr<JsonFormatter>> JsonFormatter::create(const google::protobuf::Struct& format,
                                                             FormatOptions options) {
  SHEAVE_ASSIGN_OR_RETURN(auto root, JsonNode::compileStruct(format, "json_format"));
  return std::unique_ptr<JsonFormatter>(new JsonFormatter(std::move(root), options));
}

void JsonFormatter::format(const StreamInfo& info, std::string& out) const {
  root_->append(info, options_, out);
  out.push_back('\n');
}

}  // namespace sheave::accesslog
