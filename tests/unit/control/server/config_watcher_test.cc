#include "control/server/config_watcher.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

namespace sheave::control {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* kService = R"(apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: default
spec:
  selector: {app: reviews}
  ports:
  - name: http
    port: 9080
)";

std::string workload(const std::string& ip) {
  return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: reviews-v1\n"
         "  namespace: default\nspec:\n  address: " +
         ip + "\n  labels: {app: reviews, version: v1}\n  serviceAccount: reviews\n";
}

const char* kVirtualService = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - timeout: 3s
    route:
    - destination: {host: reviews}
)";

class ConfigWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sheave-config-watcher-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    write("services.yaml", kService);
    write("workloads/reviews.yaml", workload("10.0.0.21"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    // Written aside and renamed in, as editors and Kubernetes' ConfigMap volumes do.
    fs::path tmp = dir_ / (name + ".tmp");
    std::ofstream(tmp) << text;
    fs::rename(tmp, dir_ / name);
  }

  std::unique_ptr<ConfigWatcher> create() {
    auto w = ConfigWatcher::create(dir_, RegistryOptions{});
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message());
    return w.ok() ? std::move(w).value() : nullptr;
  }

  fs::path dir_;
};

TEST_F(ConfigWatcherTest, LoadsTheDirectory) {
  auto w = create();
  ASSERT_TRUE(w);
  EXPECT_EQ(w->config()->resourceCount(), 2u);
  ASSERT_EQ(w->registry()->services().size(), 1u);
  EXPECT_EQ(w->registry()->endpoints("reviews.default.svc.cluster.local").size(), 1u);
  EXPECT_FALSE(w->reload().has_value());  // nothing changed
}

TEST_F(ConfigWatcherTest, MissingDirectoryIsAnError) {
  auto w = ConfigWatcher::create(dir_ / "nope", RegistryOptions{});
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message().find("nope"), std::string::npos);
}

TEST_F(ConfigWatcherTest, SeveralDirectoriesAreOneConfiguration) {
  // What `sheave up` does: the user's directory plus one of generated WorkloadEntries.
  fs::path generated = dir_.string() + "-generated";
  fs::create_directories(generated);
  fs::remove_all(dir_ / "workloads");
  std::ofstream(generated / "workloads.yaml") << workload("198.18.0.7");
  auto w = ConfigWatcher::create(std::vector<fs::path>{dir_, generated}, RegistryOptions{});
  ASSERT_TRUE(w.ok()) << w.error().message();
  auto endpoints = (*w)->registry()->endpoints("reviews.default.svc.cluster.local");
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_EQ(endpoints[0].address, "198.18.0.7");
  std::ofstream(generated / "workloads.yaml") << workload("198.18.0.8");
  auto update = (*w)->reload();
  ASSERT_TRUE(update.has_value());
  EXPECT_FALSE(update->push.full);
  EXPECT_FALSE(ConfigWatcher::create(std::vector<fs::path>{dir_, dir_ / "nope"}, {}).ok());
  fs::remove_all(generated);
}

TEST_F(ConfigWatcherTest, WorkloadOnlyChangeIsAnEndpointPush) {
  auto w = create();
  write("workloads/reviews.yaml", workload("10.0.0.99"));
  auto update = w->reload();
  ASSERT_TRUE(update.has_value());
  EXPECT_FALSE(update->push.full);
  EXPECT_EQ(update->push.services, std::set<std::string>{"reviews.default.svc.cluster.local"});
  EXPECT_EQ(update->registry->endpoints("reviews.default.svc.cluster.local")[0].address,
            "10.0.0.99");
}

TEST_F(ConfigWatcherTest, CommentsAndFormattingAreNotChanges) {
  auto w = create();
  write("services.yaml", std::string("# a comment\n") + kService + "\n\n");
  EXPECT_FALSE(w->reload().has_value());
}

TEST_F(ConfigWatcherTest, ConfigChangeIsAFullPush) {
  auto w = create();
  write("vs.yaml", kVirtualService);
  auto update = w->reload();
  ASSERT_TRUE(update.has_value());
  EXPECT_TRUE(update->push.full);
  EXPECT_EQ(update->config->virtual_services.size(), 1u);
}

TEST_F(ConfigWatcherTest, InvalidFileKeepsTheValidResources) {
  auto w = create();
  write("vs.yaml", std::string(kVirtualService) +
                       "---\napiVersion: networking.istio.io/v1\n"
                       "kind: DestinationRule\nmetadata: {name: bad, namespace: default}\n"
                       "spec:\n  host: reviews\n  nonsense: 1\n---\nkey: [unclosed\n");
  auto update = w->reload();
  ASSERT_TRUE(update.has_value());
  const ConfigSet& c = *update->config;
  EXPECT_EQ(c.virtual_services.size(), 1u);
  EXPECT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.workload_entries.size(), 1u);
  ASSERT_GE(c.errors.size(), 1u);
  bool found = false;
  for (const ResourceError& e : c.errors) {
    if (e.source.file.find("vs.yaml") != std::string::npos && e.source.line > 0) found = true;
  }
  EXPECT_TRUE(found);
}

TEST_F(ConfigWatcherTest, WatchesFilesAndNewSubdirectories) {
  auto w = create();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ConfigUpdate> updates;
  ASSERT_TRUE(w->start(
                   [&](const ConfigUpdate& u) {
                     std::lock_guard<std::mutex> lock(mu);
                     updates.push_back(u);
                     cv.notify_all();
                   },
                   20ms, 200ms)
                  .ok());
  auto waitFor = [&](size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 3s, [&] { return updates.size() >= n; });
  };
  write("vs.yaml", kVirtualService);
  ASSERT_TRUE(waitFor(1));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(updates[0].push.full);
    EXPECT_EQ(updates[0].config->virtual_services.size(), 1u);
  }
  // A directory created after start, with a file written into it.
  fs::create_directories(dir_ / "late" / "deeper");
  std::this_thread::sleep_for(100ms);  // let the watch on the new directory land
  write("late/deeper/ratings.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: default}\n"
        "spec:\n  selector: {app: ratings}\n  ports: [{name: http, port: 9080}]\n");
  ASSERT_TRUE(waitFor(2));
  EXPECT_EQ(w->registry()->services().size(), 2u);
  // Deleting a file is a change too.
  fs::remove(dir_ / "vs.yaml");
  ASSERT_TRUE(waitFor(3));
  EXPECT_TRUE(w->config()->virtual_services.empty());
  w->stop();
}

}  // namespace
}  // namespace sheave::control
