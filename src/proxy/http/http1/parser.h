#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "match/header_map.h"

namespace sheave::http1 {

// Limits applied to every header block (request or response headers, and chunked trailers).
struct Limits {
  // Raw bytes of the header block, start line and line endings included. Envoy's
  // max_request_headers_kb defaults to 60 KiB.
  size_t max_header_bytes = 60 * 1024;
  // Field lines per block; Envoy's common_http_protocol_options.max_headers_count default.
  size_t max_headers_count = 100;
};

// What the framing headers say about a message; delivered together with its headers.
struct MessageInfo {
  int version_minor = 1;   // 0 or 1
  bool keep_alive = true;  // RFC 9112 9.3; false for a response whose body runs until close
  bool chunked = false;    // Transfer-Encoding: chunked
  std::optional<uint64_t> content_length;
  bool has_body = false;         // body bytes follow these headers
  bool expect_continue = false;  // Expect: 100-continue (HTTP/1.1 only, RFC 9110 10.1.1)
  // Request: Connection: upgrade with an Upgrade field, or CONNECT. Response: 101, or a 2xx
  // answer to CONNECT. The bytes after such a message are not HTTP/1 any more, so the parser
  // stays paused after it; the caller takes the rest of the stream.
  bool upgrade = false;
  int status = 0;  // response only
};

class ParserCallbacks {
 public:
  virtual ~ParserCallbacks() = default;
  // Request: ":method", ":path" (the request-target as sent; absent for CONNECT, as in
  // HTTP/2), ":authority" (absolute-form or CONNECT target, else Host; absent without either),
  // then the other fields lower-cased in arrival order (Host is not repeated).
  // Response: ":status" then the fields.
  virtual void onHeaders(HeaderMap&& headers, const MessageInfo& info) = 0;
  // Body bytes, de-chunked, in as many pieces as the input arrived in. The view is valid only
  // during the call (it points into the caller's buffer).
  virtual void onBody(std::string_view data) = 0;
  // End of the message; trailers are empty unless a chunked body carried some.
  virtual void onMessageComplete(HeaderMap&& trailers) = 0;
  // Response mode: an interim 1xx response other than 101 (100 Continue, 103 Early Hints).
  // The final response follows through onHeaders. The default swallows it.
  virtual void onInformational(HeaderMap&& /*headers*/, const MessageInfo& /*info*/) {}
};

enum class Mode { kRequest, kResponse };

struct ParseError {
  // The status to answer a bad request with: 400, 431, 501 or 505. A bad response gives 502.
  int http_status = 400;
  // Envoy's response code details ("http1.codec_error", "http1.headers_too_large", ...).
  // Points at static storage.
  std::string_view details;
  // One sentence for logs; static storage.
  std::string_view message;
  // Byte offset in the whole stream given to this parser where the problem was found.
  uint64_t offset = 0;
};

struct ParseResult {
  // Bytes consumed from the input. Less than its size when the parser paused at the end of
  // a message (the rest belongs to the next message) or stopped on an error.
  size_t consumed = 0;
  std::optional<ParseError> error;
  bool ok() const { return !error.has_value(); }
};

// An I/O-free HTTP/1.1 parser (RFC 9112) for one connection: bytes in, callbacks out.
//
// Strict where leniency enables request smuggling or response splitting: bare CR or LF,
// obs-fold, whitespace before a colon, Content-Length with Transfer-Encoding, unequal
// Content-Length values and unknown transfer codings are errors, never guesses.
//
// The cost is linear in the input however it is split: complete lines are parsed in place;
// only a line cut by the end of a read is copied, and only that line is kept. Bodies are
// handed to onBody as views into the input, never buffered.
class Parser {
 public:
  Parser(Mode mode, const Limits& limits, ParserCallbacks& callbacks);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Consumes bytes. After onMessageComplete the parser pauses and returns how far the message
  // went, so the caller deals with one message at a time; resume() parses the next one (call
  // parse again with the unconsumed bytes). While paused, parse consumes nothing. After an
  // error every call returns the same error.
  ParseResult parse(std::string_view data);
  void resume() { paused_ = false; }
  bool paused() const { return paused_; }

  // Response mode, for the next final response only: it answers a HEAD request, so it has
  // no body whatever its headers say.
  void setNextResponseIsForHead(bool head) { next_is_head_ = head; }
  // Response mode, for the next final response only: it answers CONNECT, so a 2xx opens a
  // tunnel (MessageInfo::upgrade, no body).
  void setNextResponseIsForConnect(bool connect) { next_is_connect_ = connect; }

  // The peer closed its side. Completes a response whose body runs until close; returns an
  // error if a message was cut short (truncated headers, body or chunk).
  std::optional<ParseError> onEof();

  // Whether part of a message has been received and the message is not complete yet.
  bool messageInProgress() const;

 private:
  enum class State : uint8_t {
    kStartLine,
    kHeaderLines,
    kBodyLength,
    kBodyUntilClose,
    kChunkSize,
    kChunkSizeWs,  // whitespace after the size or an extension: only ';' may follow
    kChunkExtBeforeName,
    kChunkExtName,
    kChunkExtAfterName,
    kChunkExtBeforeValue,
    kChunkExtToken,
    kChunkExtQuoted,
    kChunkExtQuotedPair,
    kChunkExtAfterQuoted,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kTrailerLines,
  };
  enum class TargetForm : uint8_t { kOrigin, kAbsolute, kAuthority, kAsterisk };

  static bool isLineState(State s) {
    return s == State::kStartLine || s == State::kHeaderLines || s == State::kTrailerLines;
  }

  // Each returns false after recording an error in error_.
  bool consumeLines(std::string_view data, size_t& pos);
  bool consumeChunkLine(std::string_view data, size_t& pos);
  bool onLine(std::string_view line, uint64_t offset);
  bool onRequestLine(std::string_view line, uint64_t offset);
  bool onStatusLine(std::string_view line, uint64_t offset);
  bool onFieldLine(std::string_view line, uint64_t offset, bool trailer);
  bool onFramingField(std::string_view name, std::string_view value, uint64_t offset);
  bool onContentLength(std::string_view value, uint64_t offset);
  bool onHeadersEnd(uint64_t offset);
  bool onRequestHeadersEnd(uint64_t offset);
  bool onResponseHeadersEnd(uint64_t offset);
  void completeMessage();
  void resetMessage();
  bool fail(int status, std::string_view details, std::string_view message, uint64_t offset);
  int badStatus(int request_status) const { return mode_ == Mode::kRequest ? request_status : 502; }

  const Mode mode_;
  const Limits limits_;
  ParserCallbacks& callbacks_;

  State state_ = State::kStartLine;
  bool paused_ = false;
  bool next_is_head_ = false;
  bool next_is_connect_ = false;
  std::optional<ParseError> error_;

  uint64_t stream_offset_ = 0;  // offset of the first byte of the current parse() input
  std::string line_buf_;        // a line cut by the end of an input, and only that
  uint64_t line_offset_ = 0;    // stream offset of line_buf_'s first byte
  size_t block_bytes_ = 0;      // raw bytes of the current header or trailer block
  size_t field_count_ = 0;

  // Per message.
  HeaderMap headers_;
  HeaderMap trailers_;
  MessageInfo info_;
  bool started_ = false;  // a start line (possibly a 1xx one) has been seen
  bool is_connect_ = false;
  TargetForm target_form_ = TargetForm::kOrigin;
  std::string authority_;  // :authority to publish (absolute-form / CONNECT target)
  std::string host_;
  size_t host_count_ = 0;
  bool has_te_ = false;
  size_t te_codings_ = 0;
  size_t te_chunked_count_ = 0;
  bool te_last_chunked_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool conn_upgrade_ = false;
  bool has_upgrade_field_ = false;
  bool expect_continue_ = false;
  uint64_t remaining_ = 0;  // body or chunk bytes still to come
  size_t chunk_line_bytes_ = 0;
  bool chunk_size_seen_digit_ = false;
};

}  // namespace sheave::http1
