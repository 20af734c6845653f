#include "proxy/http/http1/parser.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace sheave::http1 {
namespace {

// Envoy's response code details, so access logs and stats read the same as Envoy's.
constexpr std::string_view kCodecError = "http1.codec_error";
constexpr std::string_view kInvalidCharacters = "http1.invalid_characters";
constexpr std::string_view kHeadersTooLarge = "http1.headers_too_large";
constexpr std::string_view kTooManyHeaders = "http1.too_many_headers";
constexpr std::string_view kInvalidUrl = "http1.invalid_url";
constexpr std::string_view kInvalidScheme = "http1.invalid_scheme";
constexpr std::string_view kInvalidTransferEncoding = "http1.invalid_transfer_encoding";
constexpr std::string_view kChunkedContentLength = "http1.content_length_and_chunked_not_allowed";
constexpr std::string_view kTransferEncodingNotAllowed = "http1.transfer_encoding_not_allowed";
constexpr std::string_view kContentLengthNotAllowed = "http1.content_length_not_allowed";
constexpr std::string_view kBodyDisallowed = "http1.body_disallowed";
constexpr std::string_view kMissingHost = "missing_host_header";

struct CharTables {
  bool tchar[256];        // RFC 9110 5.6.2 token characters
  bool field_value[256];  // field-vchar, SP and HTAB (obs-text included)
  bool target[256];       // request-target bytes: visible ASCII and obs-text
  bool authority[256];    // RFC 3986 reg-name / IP-literal / port characters
  int8_t hex[256];
};

constexpr CharTables makeCharTables() {
  CharTables t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    t.tchar[c] = alpha || digit;
    t.field_value[c] = (c >= 0x20 && c != 0x7f) || c == '\t';
    t.target[c] = c > 0x20 && c != 0x7f;
    t.authority[c] = alpha || digit;
    t.hex[c] = digit                    ? static_cast<int8_t>(c - '0')
               : (c >= 'a' && c <= 'f') ? static_cast<int8_t>(c - 'a' + 10)
               : (c >= 'A' && c <= 'F') ? static_cast<int8_t>(c - 'A' + 10)
                                        : static_cast<int8_t>(-1);
  }
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t.tchar[static_cast<unsigned char>(c)] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:[]%")) {
    t.authority[static_cast<unsigned char>(c)] = true;
  }
  return t;
}

constexpr CharTables kChars = makeCharTables();

inline unsigned char uc(char c) { return static_cast<unsigned char>(c); }
inline bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 5.6.1),
// trimmed of whitespace. Stops early, returning false, when fn does.
template <typename Fn>
bool forEachListElement(std::string_view list, Fn&& fn) {
  while (true) {
    const size_t comma = list.find(',');
    std::string_view element = trimOws(list.substr(0, comma));
    if (!element.empty() && !fn(element)) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

// Length of the prefix of `s` made of bytes allowed by `table`, which must refuse every byte
// below `min_byte` except HTAB, and DEL, and allow the other bytes up to 0xff. Eight bytes at a
// time (SWAR), since field values and targets are most of a header block: a block is checked
// byte by byte only when it holds a byte below min_byte or a DEL.
size_t allowedPrefix(std::string_view s, uint8_t min_byte, const bool (&table)[256]) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  size_t i = 0;
  while (i + 8 <= s.size()) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    const uint64_t below = (w - kOnes * min_byte) & ~w & kHigh;
    const uint64_t x = w ^ (kOnes * 0x7f);
    const uint64_t del = (x - kOnes) & ~x & kHigh;
    if ((below | del) != 0) {
      for (size_t j = i; j < i + 8; ++j) {
        if (!table[uc(s[j])]) return j;
      }
    }
    i += 8;
  }
  for (; i < s.size(); ++i) {
    if (!table[uc(s[i])]) return i;
  }
  return s.size();
}

bool allOf(std::string_view s, const bool (&table)[256]) {
  for (char c : s) {
    if (!table[uc(c)]) return false;
  }
  return true;
}

// "HTTP/1.1" -> 1, "HTTP/1.0" -> 0; kVersionMalformed when it is not HTTP-version at all,
// kVersionUnsupported when it is but not 1.x (answered with 505).
constexpr int kVersionMalformed = -1;
constexpr int kVersionUnsupported = -2;
int versionMinor(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
      v[7] < '0' || v[7] > '9') {
    return kVersionMalformed;
  }
  if (v[5] != '1' || v[7] > '1') return kVersionUnsupported;
  return v[7] - '0';
}

// RFC 9112 3.2.3 authority-form: uri-host ":" port.
bool isAuthorityForm(std::string_view target) {
  const size_t colon = target.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == target.size()) return false;
  for (size_t i = colon + 1; i < target.size(); ++i) {
    if (target[i] < '0' || target[i] > '9') return false;
  }
  return allOf(target, kChars.authority);
}

}  // namespace

Parser::Parser(Mode mode, const Limits& limits, ParserCallbacks& callbacks)
    : mode_(mode), limits_(limits), callbacks_(callbacks) {}

bool Parser::fail(int status, std::string_view details, std::string_view message, uint64_t offset) {
  error_ = ParseError{status, details, message, offset};
  return false;
}

bool Parser::messageInProgress() const { return started_ || !line_buf_.empty(); }

ParseResult Parser::parse(std::string_view data) {
  if (error_) return ParseResult{0, error_};
  size_t pos = 0;
  const size_t n = data.size();
  bool ok = true;
  while (ok && pos < n && !paused_) {
    switch (state_) {
      case State::kStartLine:
      case State::kHeaderLines:
      case State::kTrailerLines:
        ok = consumeLines(data, pos);
        break;
      case State::kBodyLength: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - pos));
        const size_t at = pos;
        pos += take;
        remaining_ -= take;
        callbacks_.onBody(data.substr(at, take));
        if (remaining_ == 0) completeMessage();
        break;
      }
      case State::kBodyUntilClose: {
        const size_t at = pos;
        pos = n;
        callbacks_.onBody(data.substr(at));
        break;
      }
      case State::kChunkData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - pos));
        const size_t at = pos;
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kChunkDataCr;
        callbacks_.onBody(data.substr(at, take));
        break;
      }
      case State::kChunkDataCr:
        if (data[pos] != '\r') {
          ok = fail(badStatus(400), kCodecError, "chunk data not followed by CRLF",
                    stream_offset_ + pos);
          break;
        }
        ++pos;
        state_ = State::kChunkDataLf;
        break;
      case State::kChunkDataLf:
        if (data[pos] != '\n') {
          ok = fail(badStatus(400), kCodecError, "chunk data not followed by CRLF",
                    stream_offset_ + pos);
          break;
        }
        ++pos;
        state_ = State::kChunkSize;
        chunk_line_bytes_ = 0;
        chunk_size_seen_digit_ = false;
        break;
      default:
        ok = consumeChunkLine(data, pos);
        break;
    }
  }
  stream_offset_ += pos;
  return ParseResult{pos, error_};
}

bool Parser::consumeLines(std::string_view data, size_t& pos) {
  const size_t n = data.size();
  while (pos < n && !paused_ && isLineState(state_)) {
    const char* start = data.data() + pos;
    const size_t avail = n - pos;
    const void* lf = std::memchr(start, '\n', avail);
    const size_t seg = lf ? static_cast<size_t>(static_cast<const char*>(lf) - start) + 1 : avail;

    // Checked before the line is complete, so an endless line is refused as soon as it
    // passes the limit rather than buffered.
    const size_t before = block_bytes_;
    block_bytes_ += seg;
    if (block_bytes_ > limits_.max_header_bytes) {
      return fail(badStatus(431), kHeadersTooLarge, "header block larger than the limit",
                  stream_offset_ + pos + (limits_.max_header_bytes - before));
    }

    if (lf == nullptr) {
      if (line_buf_.empty()) line_offset_ = stream_offset_ + pos;
      line_buf_.append(start, avail);
      pos = n;
      return true;
    }

    std::string_view line;
    uint64_t line_offset;
    if (line_buf_.empty()) {
      line = std::string_view(start, seg - 1);
      line_offset = stream_offset_ + pos;
    } else {
      line_buf_.append(start, seg - 1);
      line = line_buf_;
      line_offset = line_offset_;
    }
    pos += seg;

    if (line.empty() || line.back() != '\r') {
      return fail(badStatus(400), kCodecError, "line ends with a bare LF",
                  line_offset + line.size());
    }
    line.remove_suffix(1);
    const bool ok = onLine(line, line_offset);
    line_buf_.clear();
    if (!ok) return false;
  }
  return true;
}

bool Parser::consumeChunkLine(std::string_view data, size_t& pos) {
  const size_t n = data.size();
  while (pos < n) {
    const char c = data[pos];
    const uint64_t at = stream_offset_ + pos;
    if (++chunk_line_bytes_ > limits_.max_header_bytes) {
      return fail(badStatus(400), kCodecError, "chunk size line too long", at);
    }
    const bool ws = isOws(c);
    const bool tchar = kChars.tchar[uc(c)];
    switch (state_) {
      case State::kChunkSize: {
        const int h = kChars.hex[uc(c)];  // NOLINT(bugprone-signed-char-misuse): -1 means "not hex"
        if (h >= 0) {
          if (remaining_ > (std::numeric_limits<uint64_t>::max() >> 4)) {
            return fail(badStatus(400), kCodecError, "chunk size overflows", at);
          }
          remaining_ = (remaining_ << 4) | static_cast<uint64_t>(h);
          chunk_size_seen_digit_ = true;
        } else if (!chunk_size_seen_digit_) {
          return fail(badStatus(400), kCodecError, "invalid chunk size", at);
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == ';') {
          state_ = State::kChunkExtBeforeName;
        } else if (ws) {
          state_ = State::kChunkSizeWs;
        } else {
          return fail(badStatus(400), kCodecError, "invalid chunk size", at);
        }
        break;
      }
      case State::kChunkSizeWs:
        if (c == ';') {
          state_ = State::kChunkExtBeforeName;
        } else if (!ws) {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        break;
      case State::kChunkExtBeforeName:
        if (tchar) {
          state_ = State::kChunkExtName;
        } else if (!ws) {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        break;
      case State::kChunkExtName:
        if (tchar) break;
        if (c == '=') {
          state_ = State::kChunkExtBeforeValue;
        } else if (c == ';') {
          state_ = State::kChunkExtBeforeName;
        } else if (ws) {
          state_ = State::kChunkExtAfterName;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        break;
      case State::kChunkExtAfterName:
        if (c == '=') {
          state_ = State::kChunkExtBeforeValue;
        } else if (c == ';') {
          state_ = State::kChunkExtBeforeName;
        } else if (!ws) {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        break;
      case State::kChunkExtBeforeValue:
        if (c == '"') {
          state_ = State::kChunkExtQuoted;
        } else if (tchar) {
          state_ = State::kChunkExtToken;
        } else if (!ws) {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        break;
      case State::kChunkExtToken:
      case State::kChunkExtAfterQuoted:
        if (tchar && state_ == State::kChunkExtToken) break;
        if (c == ';') {
          state_ = State::kChunkExtBeforeName;
        } else if (ws) {
          state_ = State::kChunkSizeWs;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        break;
      case State::kChunkExtQuoted:
        if (c == '"') {
          state_ = State::kChunkExtAfterQuoted;
        } else if (c == '\\') {
          state_ = State::kChunkExtQuotedPair;
        } else if (!kChars.field_value[uc(c)]) {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        break;
      case State::kChunkExtQuotedPair:
        if (!kChars.field_value[uc(c)]) {
          return fail(badStatus(400), kCodecError, "invalid chunk extension", at);
        }
        state_ = State::kChunkExtQuoted;
        break;
      case State::kChunkSizeLf:
        if (c != '\n') {
          return fail(badStatus(400), kCodecError, "chunk size line ends with a bare CR", at);
        }
        ++pos;
        if (remaining_ == 0) {
          state_ = State::kTrailerLines;
          block_bytes_ = 0;
          field_count_ = 0;
        } else {
          state_ = State::kChunkData;
        }
        return true;
      default:
        return fail(500, kCodecError, "internal parser state error", at);
    }
    ++pos;
  }
  return true;
}

bool Parser::onLine(std::string_view line, uint64_t offset) {
  switch (state_) {
    case State::kStartLine:
      if (line.empty()) {
        // RFC 9112 2.2: empty lines before a start line are ignored (clients send a stray
        // CRLF after a POST body).
        block_bytes_ = 0;
        return true;
      }
      return mode_ == Mode::kRequest ? onRequestLine(line, offset) : onStatusLine(line, offset);
    case State::kHeaderLines:
      if (line.empty()) return onHeadersEnd(offset);
      return onFieldLine(line, offset, false);
    case State::kTrailerLines:
      if (line.empty()) {
        completeMessage();
        return true;
      }
      return onFieldLine(line, offset, true);
    default:
      return fail(500, kCodecError, "internal parser state error", offset);
  }
}

bool Parser::onRequestLine(std::string_view line, uint64_t offset) {
  size_t i = 0;
  while (i < line.size() && kChars.tchar[uc(line[i])]) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') {
    return fail(400, kCodecError, "invalid method", offset + i);
  }
  const std::string_view method = line.substr(0, i);
  const size_t target_start = ++i;
  i += allowedPrefix(line.substr(i), 0x21, kChars.target);
  if (i == target_start) return fail(400, kCodecError, "invalid request-target", offset + i);
  if (i == line.size()) return fail(400, kCodecError, "missing HTTP version", offset + i);
  if (line[i] != ' ') return fail(400, kInvalidUrl, "invalid request-target", offset + i);
  const std::string_view target = line.substr(target_start, i - target_start);
  const int minor = versionMinor(line.substr(i + 1));
  if (minor == kVersionMalformed)
    return fail(400, kCodecError, "invalid HTTP version", offset + i + 1);
  if (minor == kVersionUnsupported) {
    return fail(505, kCodecError, "unsupported HTTP version", offset + i + 1);
  }

  // RFC 9112 3.2: each request-target form is allowed with its own methods only.
  const uint64_t target_offset = offset + target_start;
  is_connect_ = method == "CONNECT";
  if (is_connect_) {
    if (!isAuthorityForm(target)) {
      return fail(400, kInvalidUrl, "CONNECT needs an authority-form target", target_offset);
    }
    target_form_ = TargetForm::kAuthority;
    authority_.assign(target);
  } else if (target[0] == '/') {
    target_form_ = TargetForm::kOrigin;
  } else if (target == "*") {
    if (method != "OPTIONS") {
      return fail(400, kInvalidUrl, "asterisk-form is for OPTIONS only", target_offset);
    }
    target_form_ = TargetForm::kAsterisk;
  } else {
    const size_t colon = target.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fail(400, kInvalidUrl, "invalid request-target", target_offset);
    }
    const std::string_view scheme = target.substr(0, colon);
    if (!equalsIgnoreCase(scheme, "http") && !equalsIgnoreCase(scheme, "https")) {
      return fail(400, kInvalidScheme, "absolute-form target with a scheme other than http(s)",
                  target_offset);
    }
    std::string_view rest = target.substr(colon + 1);
    if (rest.substr(0, 2) != "//") {
      return fail(400, kInvalidUrl, "absolute-form target without an authority", target_offset);
    }
    rest.remove_prefix(2);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    // RFC 9110 4.2.4: userinfo in an http(s) URI is an error ('@' is not in the table).
    if (authority.empty() || !allOf(authority, kChars.authority)) {
      return fail(400, kInvalidUrl, "invalid authority in absolute-form target", target_offset);
    }
    target_form_ = TargetForm::kAbsolute;
    authority_.assign(authority);
  }

  headers_.add(":method", method);
  if (!is_connect_) headers_.add(":path", target);
  // Placeholder that keeps :authority third; filled or removed once Host is known.
  headers_.add(":authority", std::string_view());
  info_.version_minor = minor;
  started_ = true;
  field_count_ = 0;
  state_ = State::kHeaderLines;
  return true;
}

bool Parser::onStatusLine(std::string_view line, uint64_t offset) {
  // status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]. The second SP is accepted
  // missing when the reason is empty: servers do send "HTTP/1.1 200\r\n".
  if (line.size() < 12 || line[8] != ' ') {
    return fail(502, kCodecError, "invalid status line", offset);
  }
  const int minor = versionMinor(line.substr(0, 8));
  if (minor < 0) return fail(502, kCodecError, "invalid HTTP version", offset);
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      return fail(502, kCodecError, "invalid status code", offset + i);
    }
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599)
    return fail(502, kCodecError, "invalid status code", offset + 9);
  if (line.size() > 12) {
    if (line[12] != ' ') return fail(502, kCodecError, "invalid status line", offset + 12);
    for (size_t i = 13; i < line.size(); ++i) {
      if (!kChars.field_value[uc(line[i])]) {
        return fail(502, kInvalidCharacters, "invalid character in reason phrase", offset + i);
      }
    }
  }
  headers_.add(":status", line.substr(9, 3));
  info_.version_minor = minor;
  info_.status = status;
  started_ = true;
  field_count_ = 0;
  state_ = State::kHeaderLines;
  return true;
}

bool Parser::onFieldLine(std::string_view line, uint64_t offset, bool trailer) {
  if (isOws(line[0])) {
    return fail(badStatus(400), kCodecError, "obsolete line folding is not allowed", offset);
  }
  size_t i = 0;
  while (i < line.size() && kChars.tchar[uc(line[i])]) ++i;
  if (i == line.size())
    return fail(badStatus(400), kCodecError, "field line without a colon", offset + i);
  if (line[i] != ':') {
    if (isOws(line[i])) {
      return fail(badStatus(400), kCodecError, "whitespace between field name and colon",
                  offset + i);
    }
    return fail(badStatus(400), kInvalidCharacters, "invalid character in field name", offset + i);
  }
  if (i == 0) return fail(badStatus(400), kCodecError, "empty field name", offset);
  const std::string_view name = line.substr(0, i);
  const std::string_view value = trimOws(line.substr(i + 1));
  const size_t valid = allowedPrefix(value, 0x20, kChars.field_value);
  if (valid != value.size()) {
    return fail(badStatus(400), kInvalidCharacters, "invalid character in field value",
                offset + static_cast<uint64_t>(value.data() - line.data()) + valid);
  }
  if (++field_count_ > limits_.max_headers_count) {
    return fail(badStatus(431), kTooManyHeaders, "more header fields than the limit", offset);
  }
  if (trailer) {
    trailers_.add(name, value);
    return true;
  }
  if (mode_ == Mode::kRequest && name.size() == 4 && equalsIgnoreCase(name, "host")) {
    // RFC 9112 3.2: more than one Host, or an invalid one, is a 400.
    if (++host_count_ > 1) return fail(400, kCodecError, "more than one Host field", offset);
    if (!allOf(value, kChars.authority)) {
      return fail(400, kInvalidCharacters, "invalid Host field", offset);
    }
    host_.assign(value);
    return true;  // published as :authority, not repeated as a field
  }
  if (!onFramingField(name, value, offset)) return false;
  headers_.add(name, value);
  return true;
}

bool Parser::onFramingField(std::string_view name, std::string_view value, uint64_t offset) {
  switch (name.size()) {
    case 6:
      if (equalsIgnoreCase(name, "expect") && equalsIgnoreCase(value, "100-continue")) {
        expect_continue_ = true;
      }
      break;
    case 7:
      if (equalsIgnoreCase(name, "upgrade") && !value.empty()) has_upgrade_field_ = true;
      break;
    case 10:
      if (equalsIgnoreCase(name, "connection")) {
        (void)forEachListElement(value, [this](std::string_view option) {
          if (equalsIgnoreCase(option, "close")) {
            conn_close_ = true;
          } else if (equalsIgnoreCase(option, "keep-alive")) {
            conn_keep_alive_ = true;
          } else if (equalsIgnoreCase(option, "upgrade")) {
            conn_upgrade_ = true;
          }
          return true;
        });
      }
      break;
    case 14:
      if (equalsIgnoreCase(name, "content-length")) return onContentLength(value, offset);
      break;
    case 17:
      if (equalsIgnoreCase(name, "transfer-encoding")) {
        has_te_ = true;
        (void)forEachListElement(value, [this](std::string_view coding) {
          const bool chunked = equalsIgnoreCase(coding, "chunked");
          ++te_codings_;
          te_chunked_count_ += chunked ? 1 : 0;
          te_last_chunked_ = chunked;
          return true;
        });
      }
      break;
    default:
      break;
  }
  return true;
}

bool Parser::onContentLength(std::string_view value, uint64_t offset) {
  // RFC 9110 8.6: a list, or repeated fields, are accepted only when every value is the
  // same; anything else could frame the message two ways.
  bool valid = !value.empty();
  bool conflict = false;
  size_t elements = 0;
  std::string_view rest = value;
  while (valid) {
    const size_t comma = rest.find(',');
    const std::string_view element = trimOws(rest.substr(0, comma));
    if (element.empty()) {
      valid = false;
      break;
    }
    uint64_t v = 0;
    for (char c : element) {
      if (c < '0' || c > '9' || v > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
        valid = false;
        break;
      }
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!valid) break;
    if (info_.content_length && *info_.content_length != v) conflict = true;
    info_.content_length = v;
    ++elements;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!valid) return fail(badStatus(400), kCodecError, "invalid Content-Length", offset);
  if (conflict)
    return fail(badStatus(400), kCodecError, "conflicting Content-Length values", offset);
  return true;
}

bool Parser::onHeadersEnd(uint64_t offset) {
  return mode_ == Mode::kRequest ? onRequestHeadersEnd(offset) : onResponseHeadersEnd(offset);
}

bool Parser::onRequestHeadersEnd(uint64_t offset) {
  const bool http11 = info_.version_minor == 1;
  if (has_te_) {
    // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means the framing cannot be trusted.
    if (!http11) {
      return fail(400, kInvalidTransferEncoding, "Transfer-Encoding in an HTTP/1.0 request",
                  offset);
    }
    // RFC 9112 6.3: both framings at once is how requests are smuggled; refuse, never pick one.
    if (info_.content_length) {
      return fail(400, kChunkedContentLength, "both Content-Length and Transfer-Encoding are set",
                  offset);
    }
    if (te_codings_ != 1 || te_chunked_count_ != 1) {
      return fail(501, kInvalidTransferEncoding, "unsupported transfer coding", offset);
    }
    info_.chunked = true;
  }
  if (is_connect_ && (info_.chunked || info_.content_length.value_or(0) > 0)) {
    return fail(400, kBodyDisallowed, "CONNECT request with a body", offset);
  }
  // RFC 9112 3.2.2: an absolute-form (or CONNECT) target carries the authority and wins over
  // Host, so Host is required only with origin-form and asterisk-form.
  const bool target_has_authority =
      target_form_ == TargetForm::kAbsolute || target_form_ == TargetForm::kAuthority;
  if (target_has_authority) {
    headers_.set(":authority", authority_);
  } else if (host_count_ > 0) {
    headers_.set(":authority", host_);
  } else if (http11) {
    return fail(400, kMissingHost, "HTTP/1.1 request without Host", offset);
  } else {
    headers_.remove(":authority");
  }

  info_.keep_alive = http11 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
  info_.expect_continue = http11 && expect_continue_;
  info_.upgrade = is_connect_ || (conn_upgrade_ && has_upgrade_field_);
  info_.has_body = info_.chunked || info_.content_length.value_or(0) > 0;

  callbacks_.onHeaders(std::move(headers_), info_);
  headers_.clear();
  if (info_.chunked) {
    state_ = State::kChunkSize;
    remaining_ = 0;
    chunk_line_bytes_ = 0;
    chunk_size_seen_digit_ = false;
  } else if (info_.has_body) {
    state_ = State::kBodyLength;
    remaining_ = *info_.content_length;
  } else {
    completeMessage();
  }
  return true;
}

bool Parser::onResponseHeadersEnd(uint64_t offset) {
  const int status = info_.status;
  const bool http11 = info_.version_minor == 1;
  if (has_te_) {
    if (!http11) {
      return fail(502, kInvalidTransferEncoding, "Transfer-Encoding in an HTTP/1.0 response",
                  offset);
    }
    if (info_.content_length) {
      return fail(502, kChunkedContentLength, "both Content-Length and Transfer-Encoding are set",
                  offset);
    }
    if (te_chunked_count_ > 1) {
      return fail(502, kInvalidTransferEncoding, "chunked applied more than once", offset);
    }
  }
  // RFC 9110 8.6 and 6.1: 1xx and 204 responses carry neither framing field.
  if (status < 200 || status == 204) {
    if (has_te_) {
      return fail(502, kTransferEncodingNotAllowed, "Transfer-Encoding in a 1xx or 204 response",
                  offset);
    }
    if (info_.content_length.value_or(0) != 0) {
      return fail(502, kContentLengthNotAllowed, "Content-Length in a 1xx or 204 response", offset);
    }
  }
  info_.chunked = has_te_ && te_last_chunked_;
  info_.keep_alive = http11 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);

  if (status < 200 && status != 101) {
    // An interim response: hand it over and wait for the final one on the same stream.
    const bool head = next_is_head_;
    const bool connect = next_is_connect_;
    callbacks_.onInformational(std::move(headers_), info_);
    resetMessage();
    next_is_head_ = head;
    next_is_connect_ = connect;
    started_ = true;
    state_ = State::kStartLine;
    return true;
  }

  const bool head = next_is_head_;
  const bool connect = next_is_connect_;
  next_is_head_ = false;
  next_is_connect_ = false;
  bool until_close = false;
  if (status == 101 || (connect && status / 100 == 2)) {
    info_.upgrade = true;
  } else if (head || status == 204 || status == 304) {
    // No body whatever the framing fields say (RFC 9112 6.3 rule 1).
  } else if (has_te_) {
    // RFC 9112 6.3 rule 4: chunked not last means the body runs until close.
    until_close = !info_.chunked;
    info_.has_body = true;
  } else if (info_.content_length) {
    info_.has_body = *info_.content_length > 0;
  } else {
    until_close = true;
    info_.has_body = true;
  }
  if (until_close) info_.keep_alive = false;

  callbacks_.onHeaders(std::move(headers_), info_);
  headers_.clear();
  if (!info_.has_body) {
    completeMessage();
  } else if (until_close) {
    state_ = State::kBodyUntilClose;
  } else if (info_.chunked) {
    state_ = State::kChunkSize;
    remaining_ = 0;
    chunk_line_bytes_ = 0;
    chunk_size_seen_digit_ = false;
  } else {
    state_ = State::kBodyLength;
    remaining_ = *info_.content_length;
  }
  return true;
}

void Parser::completeMessage() {
  HeaderMap trailers = std::move(trailers_);
  resetMessage();
  state_ = State::kStartLine;
  // Paused before the callback, so the callback may resume() and keep the parse going.
  paused_ = true;
  callbacks_.onMessageComplete(std::move(trailers));
}

void Parser::resetMessage() {
  headers_.clear();
  trailers_.clear();
  info_ = MessageInfo{};
  started_ = false;
  is_connect_ = false;
  target_form_ = TargetForm::kOrigin;
  authority_.clear();
  host_.clear();
  host_count_ = 0;
  has_te_ = false;
  te_codings_ = 0;
  te_chunked_count_ = 0;
  te_last_chunked_ = false;
  conn_close_ = false;
  conn_keep_alive_ = false;
  conn_upgrade_ = false;
  has_upgrade_field_ = false;
  expect_continue_ = false;
  remaining_ = 0;
  block_bytes_ = 0;
  field_count_ = 0;
  chunk_line_bytes_ = 0;
  chunk_size_seen_digit_ = false;
}

std::optional<ParseError> Parser::onEof() {
  if (error_) return error_;
  if (state_ == State::kBodyUntilClose) {
    completeMessage();
    return std::nullopt;
  }
  if (!messageInProgress()) return std::nullopt;
  fail(badStatus(400), kCodecError,
       mode_ == Mode::kRequest ? "connection closed in the middle of a request"
                               : "connection closed in the middle of a response",
       stream_offset_);
  return error_;
}

}  // namespace sheave::http1
