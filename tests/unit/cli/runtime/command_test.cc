#include "cli/runtime/command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

namespace sheave::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(CommandTest, CapturesOutputErrorsAndExitCode) {
  auto r = runCommand({"sh", "-c", "echo hi; echo oops >&2; exit 4"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_EQ(r->out, "hi\n");
  EXPECT_EQ(r->err, "oops\n");
}

TEST(CommandTest, RunCheckedNamesTheCommandAndItsError) {
  auto ok = runChecked({"sh", "-c", "echo fine"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "fine\n");
  auto bad = runChecked({"sh", "-c", "echo 'no such device' >&2; exit 2"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("sh -c"));
  EXPECT_THAT(bad.error().message(), HasSubstr("exit 2"));
  EXPECT_THAT(bad.error().message(), HasSubstr("no such device"));
  EXPECT_FALSE(runStep({"false"}).ok());
  EXPECT_TRUE(runStep({"true"}).ok());
}

TEST(CommandTest, SlowCommandsAreKilledAtTheDeadline) {
  auto start = std::chrono::steady_clock::now();
  auto r = runCommand({"sleep", "5"}, std::chrono::milliseconds(100));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("did not finish"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(CommandTest, MissingProgramsAreErrors) {
  auto r = runCommand({"sheave-no-such-program"});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("sheave-no-such-program is not installed"));
  EXPECT_FALSE(runCommand({}).ok());
}

TEST(CommandTest, FindExecutableAlsoLooksInSbin) {
  EXPECT_TRUE(findExecutable("sh").has_value());
  EXPECT_FALSE(findExecutable("sheave-no-such-program").has_value());
  EXPECT_EQ(findExecutable("/bin/sh"), std::optional<std::string>("/bin/sh"));
  const char* old = std::getenv("PATH");
  std::string saved = old != nullptr ? old : "";
  ::setenv("PATH", "/nonexistent", 1);
  auto ip = findExecutable("ip");
  ::setenv("PATH", saved.c_str(), 1);
  if (::access("/usr/sbin/ip", X_OK) == 0 || ::access("/sbin/ip", X_OK) == 0) {
    ASSERT_TRUE(ip.has_value());
    EXPECT_THAT(*ip, StartsWith("/"));
  }
}

}  // namespace
}  // namespace sheave::cli
