#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/accesslog/stream_info.h"

namespace google::protobuf {
class Struct;
}

namespace sheave::accesslog {

// Envoy's default access log format (used when an access log names none).
inline constexpr std::string_view kDefaultFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

struct FormatOptions {
  // SubstitutionFormatString.omit_empty_values: a missing value prints as ""
  // instead of "-" (text) or drops its key (JSON).
  bool omit_empty_values = false;
};

// Renders one log entry from a StreamInfo. Compiled once from configuration;
// format() runs on the worker when a stream ends, is const and thread-safe.
class Formatter {
 public:
  virtual ~Formatter() = default;
  // Appends the entry for `info` to `out`.
  virtual void format(const StreamInfo& info, std::string& out) const = 0;

  std::string format(const StreamInfo& info) const {
    std::string out;
    format(info, out);
    return out;
  }
};

struct CompiledFormat;

// An Envoy substitution format string ("%REQ(:PATH)% %RESPONSE_CODE%\n")
// compiled into literal and command-operator pieces. Missing values print
// "-". Unknown operators, operators with missing or unexpected parameters
// and unterminated operators are errors naming the position.
class TextFormatter : public Formatter {
 public:
  static Result<std::unique_ptr<TextFormatter>> create(std::string_view format,
                                                       FormatOptions options = {});
  ~TextFormatter() override;
  void format(const StreamInfo& info, std::string& out) const override;
  using Formatter::format;

 private:
  TextFormatter(std::unique_ptr<CompiledFormat> compiled, FormatOptions options);
  std::unique_ptr<CompiledFormat> compiled_;
  FormatOptions options_;
};

struct JsonNode;

// json_format: one JSON object per line. A string value that is exactly one
// operator keeps its type (numbers stay numbers, missing is null); any other
// string is rendered as text. Keys are written sorted, nested objects and
// lists are kept, non-string literals are copied.
class JsonFormatter : public Formatter {
 public:
  static Result<std::unique_ptr<JsonFormatter>> create(const google::protobuf::Struct& format,
                                                       FormatOptions options = {});
  ~JsonFormatter() override;
  void format(const StreamInfo& info, std::string& out) const override;
  using Formatter::format;

 private:
  JsonFormatter(std::unique_ptr<JsonNode> root, FormatOptions options);
  std::unique_ptr<JsonNode> root_;
  FormatOptions options_;
};

// "1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1"; anything else unchanged.
std::string_view addressWithoutPort(std::string_view address);

}  // namespace sheave::accesslog
