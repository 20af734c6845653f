// The real thing: a bridge, two namespaces, Istio's interception rules, and
// python listeners standing in for the sidecar. Needs root; skips otherwise.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "cli/runtime/command.h"
#include "cli/runtime/interception.h"
#include "cli/runtime/leftovers.h"
#include "cli/runtime/mesh_network.h"
#include "cli/runtime/process.h"

namespace sheave::cli {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
namespace fs = std::filesystem;

// Both listeners answer with what they saw: which port took the connection,
// the original destination iptables recorded (SO_ORIGINAL_DST = 80), the peer.
constexpr char kListener[] = R"(
import select, socket, struct
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    return s
names = {listen(15001): "outbound", listen(15006): "inbound"}
print("ready", flush=True)
while True:
    ready, _, _ = select.select(list(names), [], [])
    for s in ready:
        c, peer = s.accept()
        d = c.getsockopt(socket.SOL_IP, 80, 16)
        port = struct.unpack("!H", d[2:4])[0]
        c.sendall(("%s %s:%d from %s\n" % (names[s], socket.inet_ntoa(d[4:8]), port, peer[0])).encode())
        c.close()
)";

constexpr char kClient[] = R"(
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    print(c.recv(200).decode().strip())
except OSError as e:
    print("error", type(e).__name__)
)";

std::string readAll(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class MeshKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, iptables)";
    if (Status s = checkNetworkPrerequisites(); !s.ok()) GTEST_SKIP() << s.error().message();
    char tmpl[] = "/tmp/sheave-kernel-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::permissions(dir_, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
    std::ofstream(dir_ / "listener.py") << kListener;
    std::ofstream(dir_ / "client.py") << kClient;
  }

  // A bridge, range and prefix of the test's own, apart from a real mesh's
  // and from the other test's (ctest may run them at once). Returns why the
  // test cannot run here, or "".
  std::string useNetwork(const std::string& bridge, const std::string& cidr,
                         const std::string& prefix) {
    plan_.bridge = bridge;
    plan_.cidr = cidr;
    plan_.netns_prefix = prefix;
    // What an earlier run of this test that crashed left behind.
    (void)removeLeftovers(findLeftovers(plan_));
    if (!runStep({"ip", "netns", "add", prefix + "probe"}).ok() ||
        !runStep({"ip", "netns", "del", prefix + "probe"}).ok()) {
      return "`ip netns add` does not work here";
    }
    return "";
  }

  void TearDown() override {
    if (!plan_.netns_prefix.starts_with("sheavet")) return;  // never touch a real mesh
    (void)removeLeftovers(findLeftovers(plan_));
    for (auto& p : processes_) p.stop(std::chrono::milliseconds(500));
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  ProcessSpec python(const std::string& netns, uint32_t uid, std::vector<std::string> args,
                     const std::string& log) {
    ProcessSpec spec;
    spec.argv = {"python3"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {{"PATH", "/usr/bin:/bin"}};
    spec.netns = netns;
    spec.uid = uid;
    spec.gid = uid;
    spec.log_path = (dir_ / log).string();
    return spec;
  }

  // Runs a short python program in `netns` and returns what it printed.
  std::string runIn(const std::string& netns, uint32_t uid, std::vector<std::string> args) {
    const std::string log = "run" + std::to_string(++runs_) + ".log";
    auto p = Process::spawn(python(netns, uid, std::move(args), log));
    if (!p.ok()) return "spawn failed: " + p.error().message();
    auto status = p->wait(std::chrono::seconds(5));
    if (!status.ok()) {
      p->stop(std::chrono::milliseconds(100));
      return "did not finish";
    }
    return trimmed(readAll(dir_ / log));
  }

  std::string connectFrom(const std::string& netns, uint32_t uid, const std::string& host,
                          uint16_t port) {
    return runIn(netns, uid, {(dir_ / "client.py").string(), host, std::to_string(port)});
  }

  NetworkPlan plan_;
  fs::path dir_;
  int runs_ = 0;
  std::vector<Process> processes_;
};

TEST_F(MeshKernelTest, InterceptsLikeIstioAndCleansUpAfterACrash) {
  if (auto why = useNetwork("sheavet0", "198.19.254.0/24", "sheavet-"); !why.empty()) {
    GTEST_SKIP() << why;
  }
  auto created = MeshNetwork::create(plan_);
  if (!created.ok() && created.error().message().find("overlaps") != std::string::npos) {
    GTEST_SKIP() << created.error().message();
  }
  ASSERT_TRUE(created.ok()) << created.error().message();
  MeshNetwork& net = *created;
  EXPECT_EQ(net.gatewayAddress(), "198.19.254.1");

  // The bridge exists now: a second mesh on it or on an overlapping range is refused.
  auto again = MeshNetwork::create(plan_);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.error().message(), HasSubstr("already exists"));
  NetworkPlan overlapping = plan_;
  overlapping.bridge = "sheavet9";
  overlapping.cidr = "198.19.254.128/25";
  auto clash = MeshNetwork::create(overlapping);
  ASSERT_FALSE(clash.ok());
  EXPECT_THAT(clash.error().message(), HasSubstr("overlaps address 198.19.254.1/24 on sheavet0"));
  EXPECT_NE(runCommand({"ip", "link", "show", "sheavet9"})->exit_code, 0);

  ASSERT_TRUE(net.addWorkload({"sheavet-a",
                               "198.19.254.10",
                               {{"240.240.0.9", {"reviews.default.svc.cluster.local", "reviews"}}}})
                  .ok());
  ASSERT_TRUE(net.addWorkload({"sheavet-b", "198.19.254.11", {}}).ok());
  auto dup = net.addWorkload({"sheavet-c", "198.19.254.11", {}});
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.error().message(), HasSubstr("taken by sheavet-b"));

  // No way off the machine: the namespace knows its subnet and the VIPs only.
  auto routes = runChecked({"ip", "-n", "sheavet-a", "-4", "route", "show"});
  ASSERT_TRUE(routes.ok());
  EXPECT_THAT(*routes, Not(HasSubstr("default")));
  EXPECT_THAT(*routes, HasSubstr("240.240.0.0/16 dev eth0"));
  EXPECT_THAT(*routes, HasSubstr("198.19.254.0/24 dev eth0"));

  // The "sidecar": as the proxy's uid, so its own traffic is not intercepted.
  auto listener =
      Process::spawn(python("sheavet-a", 1337, {(dir_ / "listener.py").string()}, "listener.log"));
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  processes_.push_back(std::move(listener).value());
  for (int i = 0; i < 300 && readAll(dir_ / "listener.log").find("ready") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_THAT(readAll(dir_ / "listener.log"), HasSubstr("ready"));

  Status applied = applyInterception("sheavet-a", InterceptionOptions{});
  ASSERT_TRUE(applied.ok()) << applied.error().message();

  // The application's outbound call to a VIP lands on 15001, original destination intact.
  EXPECT_THAT(connectFrom("sheavet-a", 0, "240.240.0.9", 9080),
              StartsWith("outbound 240.240.0.9:9080"));
  // The proxy's own outbound call is left alone (and goes nowhere).
  EXPECT_THAT(connectFrom("sheavet-a", 1337, "240.240.0.9", 9080), StartsWith("error"));
  // Inbound from another workload lands on 15006, except Istio's excluded ports.
  EXPECT_EQ(connectFrom("sheavet-b", 0, "198.19.254.10", 9080),
            "inbound 198.19.254.10:9080 from 198.19.254.11");
  EXPECT_EQ(connectFrom("sheavet-b", 0, "198.19.254.10", 15021), "error ConnectionRefusedError");
  // B has no interception: nothing listens on its own 9080.
  EXPECT_THAT(connectFrom("sheavet-b", 0, "198.19.254.11", 9080), StartsWith("error"));

  // /etc/netns/<ns>/hosts is /etc/hosts inside, and only there.
  EXPECT_EQ(runIn("sheavet-a", 0,
                  {"-c",
                   "import socket; print(socket.gethostbyname('reviews'), "
                   "socket.gethostbyname('reviews.default.svc.cluster.local'))"}),
            "240.240.0.9 240.240.0.9");
  EXPECT_THAT(readAll("/etc/hosts"), Not(HasSubstr("reviews.default")));

  // A crash: nothing is stopped or destroyed; the next run cleans up.
  Leftovers left = findLeftovers(plan_);
  EXPECT_THAT(left.namespaces, Contains("sheavet-a"));
  EXPECT_THAT(left.namespaces, Contains("sheavet-b"));
  EXPECT_THAT(left.links, Contains("sheavet0"));
  EXPECT_THAT(left.links, Contains(vethName("sheavet-a")));
  EXPECT_THAT(left.pids, Contains(processes_[0].pid()));
  Status removed = removeLeftovers(left);
  EXPECT_TRUE(removed.ok()) << removed.error().message();

  auto status = processes_[0].wait(std::chrono::seconds(3));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, 128 + SIGKILL);
  Leftovers after = findLeftovers(plan_);
  EXPECT_THAT(after.namespaces, IsEmpty());
  EXPECT_THAT(after.links, IsEmpty());
  EXPECT_THAT(after.pids, IsEmpty());
  EXPECT_FALSE(fs::exists("/etc/netns/sheavet-a"));
  EXPECT_NE(runCommand({"ip", "link", "show", vethName("sheavet-b")})->exit_code, 0);
}

TEST_F(MeshKernelTest, DestroyRemovesEverything) {
  if (auto why = useNetwork("sheavet1", "198.19.253.0/24", "sheavetd-"); !why.empty()) {
    GTEST_SKIP() << why;
  }
  auto created = MeshNetwork::create(plan_);
  if (!created.ok() && created.error().message().find("overlaps") != std::string::npos) {
    GTEST_SKIP() << created.error().message();
  }
  ASSERT_TRUE(created.ok()) << created.error().message();
  ASSERT_TRUE(created->addWorkload({"sheavetd-a", "198.19.253.10", {}}).ok());
  ASSERT_TRUE(created->addWorkload({"sheavetd-b", "198.19.253.11", {}}).ok());
  EXPECT_TRUE(fs::exists("/etc/netns/sheavetd-b/hosts"));
  ASSERT_TRUE(created->removeWorkload("sheavetd-b").ok());
  EXPECT_FALSE(fs::exists("/etc/netns/sheavetd-b"));
  EXPECT_NE(runCommand({"ip", "link", "show", vethName("sheavetd-b")})->exit_code, 0);
  Status destroyed = created->destroy();
  EXPECT_TRUE(destroyed.ok()) << destroyed.error().message();
  Leftovers after = findLeftovers(plan_);
  EXPECT_THAT(after.namespaces, IsEmpty());
  EXPECT_THAT(after.links, IsEmpty());
}

}  // namespace
}  // namespace sheave::cli
