#include "match/path_normalizer.h"

#include <gtest/gtest.h>

namespace sheave {
namespace {

using Action = PathNormalizer::EscapedSlashesAction;
using Outcome = PathNormalizer::Outcome;

PathNormalizer::Result run(std::string_view path, bool normalize, bool merge,
                           Action action = Action::kKeepUnchanged) {
  return PathNormalizer({normalize, merge, action}).normalize(path);
}

std::string canonical(std::string_view path) {
  auto r = run(path, true, false);
  EXPECT_EQ(r.outcome, Outcome::kContinue) << path;
  return r.path;
}

TEST(PathNormalizerTest, RemovesDotSegments) {
  EXPECT_EQ(canonical("/admin/../admin"), "/admin");
  EXPECT_EQ(canonical("/a/./b/../c"), "/a/c");
  EXPECT_EQ(canonical("/../../admin"), "/admin");
  EXPECT_EQ(canonical("/a/b/.."), "/a/");
  EXPECT_EQ(canonical("/a/b/."), "/a/b/");
  EXPECT_EQ(canonical("/.."), "/");
  EXPECT_EQ(canonical("/"), "/");
  EXPECT_EQ(canonical("/a/..b/c"), "/a/..b/c");
}

TEST(PathNormalizerTest, DecodesUnreservedOnly) {
  EXPECT_EQ(canonical("/%61dmin"), "/admin");
  EXPECT_EQ(canonical("/%2e%2E/admin"), "/admin");
  EXPECT_EQ(canonical("/x/%2e%2e/admin"), "/admin");
  EXPECT_EQ(canonical("/a%7eb%2d"), "/a~b-");
  // Reserved characters stay encoded (hex upper-cased); %2F is not a separator here.
  EXPECT_EQ(canonical("/a%2fb%3a"), "/a%2Fb%3A");
  EXPECT_EQ(canonical("/x/..%2F..%2Fadmin"), "/x/..%2F..%2Fadmin");
  EXPECT_EQ(canonical("/a\\..\\admin"), "/admin");
}

TEST(PathNormalizerTest, LeavesQueryAlone) {
  EXPECT_EQ(canonical("/a/../b?x=/../%61&y"), "/b?x=/../%61&y");
  EXPECT_EQ(run("//a//b?q=//", false, true).path, "/a/b?q=//");
}

TEST(PathNormalizerTest, CaseIsPreserved) { EXPECT_EQ(canonical("/ADMIN"), "/ADMIN"); }

TEST(PathNormalizerTest, RejectsInvalid) {
  EXPECT_EQ(run("/a%zz", true, false).outcome, Outcome::kReject);
  EXPECT_EQ(run("/a%2", true, false).outcome, Outcome::kReject);
  EXPECT_EQ(run(std::string_view("/a\0b", 4), true, false).outcome, Outcome::kReject);
  EXPECT_EQ(run("a/b", true, false).outcome, Outcome::kReject);
  // Without normalize_path nothing is validated.
  EXPECT_EQ(run("/a%zz", false, true).outcome, Outcome::kContinue);
}

TEST(PathNormalizerTest, MergesSlashes) {
  EXPECT_EQ(run("//admin", false, true).path, "/admin");
  EXPECT_EQ(run("/a///b/", false, true).path, "/a/b/");
  EXPECT_EQ(run("//a/..//admin", true, true).path, "/admin");
}

TEST(PathNormalizerTest, EscapedSlashes) {
  EXPECT_EQ(run("/x/..%2F..%2Fadmin", true, true, Action::kRejectRequest).outcome,
            Outcome::kReject);
  EXPECT_EQ(run("/x/..%5cadmin", false, false, Action::kRejectRequest).outcome, Outcome::kReject);
  EXPECT_EQ(run("/plain", true, true, Action::kRejectRequest).outcome, Outcome::kContinue);

  auto forward = run("/x/..%2F..%2Fadmin", true, true, Action::kUnescapeAndForward);
  EXPECT_EQ(forward.outcome, Outcome::kContinue);
  EXPECT_EQ(forward.path, "/admin");

  auto redirect = run("/a%2fb?q=%2F", true, false, Action::kUnescapeAndRedirect);
  EXPECT_EQ(redirect.outcome, Outcome::kRedirect);
  EXPECT_EQ(redirect.path, "/a/b?q=%2F");
  EXPECT_EQ(run("/ab", true, false, Action::kUnescapeAndRedirect).outcome, Outcome::kContinue);

  EXPECT_EQ(run("/a%2Fb", true, true, Action::kKeepUnchanged).path, "/a%2Fb");
}

}  // namespace
}  // namespace sheave
