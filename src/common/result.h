#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace sheave {

// The one error model of the project. Bad configuration and bad input are
// values: an Error carries a sentence a user can act on, and, where it
// applies, where the problem is (a config field path, a byte offset, a file).
// Exceptions never cross a module boundary or the event loop.
enum class ErrorCode {
  kInvalidArgument,  // bad configuration or bad input
  kNotFound,
  kUnavailable,       // a peer or resource that may come back
  kUnauthenticated,   // no credential where one is required
  kPermissionDenied,  // a credential that does not allow this
  kIo,
  kInternal,
};

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with where the error happened, e.g. a field path:
  // Error("must be positive").at("static_resources.clusters[0].connect_timeout").
  Error at(std::string_view where) && {
    message_ = std::string(where) + ": " + message_;
    return std::move(*this);
  }

 private:
  ErrorCode code_;
  std::string message_;
};

inline Error invalidArgument(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}
inline Error notFound(std::string message) {
  return Error(ErrorCode::kNotFound, std::move(message));
}
inline Error unauthenticated(std::string message) {
  return Error(ErrorCode::kUnauthenticated, std::move(message));
}
inline Error permissionDenied(std::string message) {
  return Error(ErrorCode::kPermissionDenied, std::move(message));
}
inline Error ioError(std::string message) { return Error(ErrorCode::kIo, std::move(message)); }
inline Error internalError(std::string message) {
  return Error(ErrorCode::kInternal, std::move(message));
}

// Result<T> holds either a T or an Error. Result<void> is a status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& {
    assert(!ok_);
    return error_;
  }
  Error&& error() && {
    assert(!ok_);
    return std::move(error_);
  }

 private:
  Error error_{ErrorCode::kInternal, ""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status okStatus() { return Status(); }

}  // namespace sheave

// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` is a declaration, it cannot be parenthesized.
// Returns the error of a failed Result from the enclosing function.
#define SHEAVE_RETURN_IF_ERROR(expr)            \
  do {                                          \
    auto sheave_status_ = (expr);               \
    if (!sheave_status_.ok()) {                 \
      return std::move(sheave_status_).error(); \
    }                                           \
  } while (false)

#define SHEAVE_CONCAT_INNER(a, b) a##b
#define SHEAVE_CONCAT(a, b) SHEAVE_CONCAT_INNER(a, b)
// SHEAVE_ASSIGN_OR_RETURN(auto x, makeX()); assigns the value or returns the error.
#define SHEAVE_ASSIGN_OR_RETURN(lhs, expr) \
  SHEAVE_ASSIGN_OR_RETURN_IMPL(SHEAVE_CONCAT(sheave_result_, __LINE__), lhs, expr)
#define SHEAVE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) {                                   \
    return std::move(tmp).error();                   \
  }                                                  \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
