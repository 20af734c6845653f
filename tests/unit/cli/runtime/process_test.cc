#include "cli/runtime/process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace sheave::cli {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string readAll(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sheave-process-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ProcessSpec shell(const std::string& script) {
    ProcessSpec spec;
    spec.argv = {"sh", "-c", script};
    spec.env = {{"PATH", "/usr/bin:/bin"}};
    spec.log_path = (dir_ / "log").string();
    return spec;
  }
  // Polls the log until it contains `text` (at most 5 s).
  bool logHas(const std::string& text) {
    for (int i = 0; i < 500; ++i) {
      if (readAll(dir_ / "log").find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  fs::path dir_;
};

TEST_F(ProcessTest, ExitStatusIsReported) {
  auto p = Process::spawn(shell("exit 3"));
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(::getpgid(p->pid()), p->pid()) << "the child leads its own process group";
  auto status = p->wait(std::chrono::seconds(5));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, 3);
  EXPECT_FALSE(p->running());
  EXPECT_EQ(p->exitStatus(), std::optional<int>(3));
}

TEST_F(ProcessTest, SignalsReachTheGroupAndShowAs128PlusSignal) {
  auto p = Process::spawn(shell("sleep 30"));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->running());
  EXPECT_FALSE(p->wait(std::chrono::milliseconds(50)).ok());
  p->signal(SIGTERM);
  auto status = p->wait(std::chrono::seconds(5));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, 128 + SIGTERM);
}

TEST_F(ProcessTest, StopEscalatesToSigkill) {
  auto p = Process::spawn(shell("trap '' TERM; echo ready; sleep 30"));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(logHas("ready"));
  auto start = std::chrono::steady_clock::now();
  int status = p->stop(std::chrono::milliseconds(300));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status, 128 + SIGKILL);
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST_F(ProcessTest, StopIsGentleFirst) {
  auto p = Process::spawn(shell("echo ready; exec sleep 30"));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(logHas("ready"));
  EXPECT_EQ(p->stop(std::chrono::seconds(3)), 128 + SIGTERM);
  EXPECT_EQ(p->stop(std::chrono::seconds(3)), 128 + SIGTERM) << "stopping twice is harmless";
}

TEST_F(ProcessTest, OutputIsAppendedToTheLog) {
  { std::ofstream(dir_ / "log") << "earlier\n"; }
  auto p = Process::spawn(shell("echo out; echo err >&2"));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->wait(std::chrono::seconds(5)).ok());
  EXPECT_EQ(readAll(dir_ / "log"), "earlier\nout\nerr\n");

  ProcessSpec fresh = shell("echo new");
  fresh.log_path = (dir_ / "fresh.log").string();
  auto q = Process::spawn(fresh);
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(q->wait(std::chrono::seconds(5)).ok());
  EXPECT_EQ(readAll(dir_ / "fresh.log"), "new\n");
  struct stat st {};
  ASSERT_EQ(::stat(fresh.log_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u & ~0022u);
}

TEST_F(ProcessTest, EnvironmentAndWorkingDirectory) {
  ProcessSpec spec = shell("pwd; echo \"$FOO\"; echo \"${HOME:-unset}\"");
  spec.env.emplace_back("FOO", "bar");
  spec.working_dir = dir_.string();
  auto p = Process::spawn(spec);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->wait(std::chrono::seconds(5)).ok());
  EXPECT_EQ(readAll(dir_ / "log"), dir_.string() + "\nbar\nunset\n");
}

TEST_F(ProcessTest, ProcessesMove) {
  auto p = Process::spawn(shell("exit 7"));
  ASSERT_TRUE(p.ok());
  Process moved = std::move(p).value();
  Process other = std::move(moved);
  ASSERT_TRUE(other.wait(std::chrono::seconds(5)).ok());
  EXPECT_EQ(other.exitStatus(), std::optional<int>(7));
}

TEST_F(ProcessTest, StartFailuresAreErrors) {
  ProcessSpec missing = shell("");
  missing.argv = {"/nonexistent/program"};
  auto a = Process::spawn(missing);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.error().message(), HasSubstr("/nonexistent/program"));

  missing.argv = {"sheave-no-such-program"};
  EXPECT_FALSE(Process::spawn(missing).ok());

  // Executable bit but not a program: only execve() itself can tell.
  const fs::path junk = dir_ / "junk";
  std::ofstream(junk) << "not a program\n";
  fs::permissions(junk, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
  missing.argv = {junk.string()};
  auto b = Process::spawn(missing);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.error().message(), HasSubstr("exec failed"));

  ProcessSpec no_netns = shell("true");
  no_netns.netns = "sheave-no-such-namespace";
  auto c = Process::spawn(no_netns);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message(), HasSubstr("does not exist"));

  EXPECT_FALSE(Process::spawn(ProcessSpec{}).ok());
}

TEST_F(ProcessTest, DropsToAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  ProcessSpec spec = shell("id -u; id -g; id -G");
  spec.uid = 1337;
  spec.gid = 1337;
  auto p = Process::spawn(spec);
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_TRUE(p->wait(std::chrono::seconds(5)).ok());
  EXPECT_EQ(readAll(dir_ / "log"), "1337\n1337\n1337\n");
}

}  // namespace
}  // namespace sheave::cli
