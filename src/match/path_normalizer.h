#pragma once

#include <string>
#include <string_view>

namespace sheave {

// The HTTP connection manager's path policies (Envoy's normalize_path,
// merge_slashes and path_with_escaped_slashes_action), applied to :path once,
// before routing and before any HTTP filter, so RBAC, routes and the upstream
// all see the same path. The query (from '?') is never touched.
class PathNormalizer {
 public:
  enum class EscapedSlashesAction {
    kKeepUnchanged,
    kRejectRequest,
    kUnescapeAndRedirect,
    kUnescapeAndForward
  };

  struct Options {
    bool normalize_path = false;
    bool merge_slashes = false;
    EscapedSlashesAction escaped_slashes = EscapedSlashesAction::kKeepUnchanged;
  };

  enum class Outcome {
    kContinue,  // forward with `path` (possibly rewritten)
    kReject,    // answer 400
    kRedirect,  // answer 307 to `path`
  };

  struct Result {
    Outcome outcome = Outcome::kContinue;
    std::string path;
  };

  explicit PathNormalizer(Options options) : options_(options) {}

  bool enabled() const {
    return options_.normalize_path || options_.merge_slashes ||
           options_.escaped_slashes != EscapedSlashesAction::kKeepUnchanged;
  }
  Result normalize(std::string_view path) const;

  // RFC 3986 normalization of the path part: percent-encoded unreserved
  // characters decoded, other escapes upper-cased, '\' read as '/', then
  // remove_dot_segments ('..' above the root stays at the root). nullopt-like
  // failure (returns false) for a '%' without two hex digits, NUL or a path
  // not starting with '/'.
  static bool canonicalize(std::string_view path_part, std::string& out);
  static std::string mergeSlashes(std::string_view path_part);
  // Decodes %2F/%5C (either case); true when one was found.
  static bool unescapeSlashes(std::string_view path_part, std::string& out);
  static bool hasEscapedSlash(std::string_view path_part);

 private:
  Options options_;
};

}  // namespace sheave
