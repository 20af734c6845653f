// The analyzer against a corpus of broken configurations (testdata/, one
// file per check, each naming the messages it must produce in "# expect:"
// lines) and against the Bookinfo example, which must come out clean.
#include "cli/analyze/analyzer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/analyze/describe.h"
#include "cli/config_commands.h"
#include "control/registry/local_registry.h"

namespace sheave::cli {
namespace {

namespace fs = std::filesystem;

const fs::path kTestData = SHEAVE_ANALYZE_TESTDATA;

std::vector<std::string> expectedMessages(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  std::string line;
  const std::string marker = "# expect: ";
  while (std::getline(in, line)) {
    if (line.rfind(marker, 0) == 0) out.push_back(line.substr(marker.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> actualMessages(const std::vector<AnalysisMessage>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages)
    out.push_back(std::string(m.type->code) + " " + m.resource.origin());
  std::sort(out.begin(), out.end());
  return out;
}

std::string describe(const std::vector<AnalysisMessage>& messages) {
  std::string out;
  for (const auto& m : messages) out += "  " + m.toLogLine() + "\n";
  return out;
}

TEST(AnalyzerCorpusTest, EachBrokenConfigGivesExactlyItsMessages) {
  size_t cases = 0;
  std::set<std::string> codes_covered;
  for (const auto& entry : fs::directory_iterator(kTestData)) {
    if (entry.path().extension() != ".yaml") continue;
    ++cases;
    SCOPED_TRACE(entry.path().filename().string());
    auto expected = expectedMessages(entry.path());
    ASSERT_FALSE(expected.empty()) << "a corpus file names the messages it must produce";
    auto messages = analyzePaths({entry.path()}, "istio-system");
    ASSERT_TRUE(messages.ok()) << messages.error().message();
    EXPECT_EQ(actualMessages(*messages), expected) << describe(*messages);
    for (const auto& m : *messages) codes_covered.insert(std::string(m.type->code));
  }
  EXPECT_GE(cases, 29u);
  // Every message type has a case that produces it.
  for (const auto* type : allMessageTypes()) {
    EXPECT_EQ(codes_covered.count(std::string(type->code)), 1u) << type->code << " has no case";
  }
}

TEST(AnalyzerCorpusTest, BookinfoIsClean) {
  auto messages = analyzePaths({fs::path(SHEAVE_SOURCE_DIR) / "examples/bookinfo"}, "istio-system");
  ASSERT_TRUE(messages.ok()) << messages.error().message();
  EXPECT_TRUE(messages->empty()) << describe(*messages);
}

TEST(AnalyzerMessageTest, LogLineNamesLevelCodeResourceAndLine) {
  auto messages = analyzePaths({kTestData / "ist0173_subset_no_pods.yaml"}, "istio-system");
  ASSERT_TRUE(messages.ok());
  ASSERT_EQ(messages->size(), 1u);
  const std::string line = (*messages)[0].toLogLine();
  EXPECT_EQ(line.rfind("Error [IST0173] (DestinationRule default/reviews ", 0), 0u) << line;
  EXPECT_NE(line.find("ist0173_subset_no_pods.yaml:"), std::string::npos) << line;
  EXPECT_NE(line.find("The Subset v4 defined in the DestinationRule does not select any pods"),
            std::string::npos)
      << line;
}

TEST(AnalyzerMessageTest, RetryAmplificationReportsTheFactorAlongTheChain) {
  auto messages = analyzePaths({kTestData / "shv0003_retry_amplification.yaml"}, "istio-system");
  ASSERT_TRUE(messages.ok());
  ASSERT_EQ(messages->size(), 1u) << describe(*messages);
  const std::string& text = (*messages)[0].text;
  EXPECT_NE(text.find("default/frontend -> backend.default.svc.cluster.local (2 retries) -> "
                      "db.default.svc.cluster.local (3 retries)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("3 x 4 = 12 requests"), std::string::npos) << text;
}

TEST(AnalyzerMessageTest, UnreadablePathIsAnError) {
  auto messages = analyzePaths({kTestData / "does-not-exist.yaml"}, "istio-system");
  EXPECT_FALSE(messages.ok());
}

TEST(AnalyzerMessageTest, LevelsParseCaseInsensitively) {
  EXPECT_EQ(parseLevel("warning"), Level::kWarning);
  EXPECT_EQ(parseLevel("ERROR"), Level::kError);
  EXPECT_EQ(parseLevel("Info"), Level::kInfo);
  EXPECT_FALSE(parseLevel("fatal").has_value());
}

// describe works on the same parsed configuration; here built from the
// corpus file of the mTLS conflict and from Bookinfo's directory.
struct Loaded {
  control::ConfigSet config;
  control::RegistrySnapshot registry;
};

Loaded load(const fs::path& path) {
  Loaded out;
  auto config = fs::is_directory(path) ? control::loadDirectory(path) : control::loadFile(path);
  EXPECT_TRUE(config.ok());
  out.config = std::move(config).value();
  auto registry = control::buildRegistrySnapshot(out.config, control::RegistryOptions{});
  EXPECT_TRUE(registry.ok());
  out.registry = std::move(registry).value();
  return out;
}

TEST(DescribeTest, WorkloadShowsServicesPoliciesAndMessages) {
  Loaded mesh = load(kTestData / "ist0113_mtls_conflict.yaml");
  AnalysisContext context(mesh.config, mesh.registry, AnalyzeOptions{});
  auto messages = analyze(mesh.config, mesh.registry);
  auto described = describeWorkload(context, "ratings-1", messages);
  ASSERT_TRUE(described.ok()) << described.error().message();
  const std::string* text = &described->text;
  EXPECT_NE(text->find("Pod: ratings-1.default"), std::string::npos) << *text;
  EXPECT_NE(text->find("Identity: spiffe://cluster.local/ns/default/sa/default"),
            std::string::npos);
  EXPECT_NE(text->find("Service: ratings.default.svc.cluster.local"), std::string::npos);
  EXPECT_NE(text->find("DestinationRule: ratings.default (" +
                       (kTestData / "ist0113_mtls_conflict.yaml").string()),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find("Workload mTLS mode: STRICT (PeerAuthentication default.istio-system"),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find("Error [IST0113]"), std::string::npos) << *text;
  // The same facts as a document (-o json|yaml).
  const nlohmann::json& doc = described->doc;
  EXPECT_EQ(doc["pod"], "ratings-1.default");
  EXPECT_EQ(doc["identity"], "spiffe://cluster.local/ns/default/sa/default");
  ASSERT_EQ(doc["services"].size(), 1U);
  EXPECT_EQ(doc["services"][0]["hostname"], "ratings.default.svc.cluster.local");
  EXPECT_EQ(doc["services"][0]["destinationRule"]["name"], "ratings");
  EXPECT_EQ(doc["mtls"]["mode"], "STRICT");
  EXPECT_EQ(doc["mtls"]["peerAuthentication"]["namespace"], "istio-system");
  bool has_ist0113 = false;
  for (const auto& m : doc["messages"]) has_ist0113 = has_ist0113 || m["code"] == "IST0113";
  EXPECT_TRUE(has_ist0113) << doc.dump(2);
  auto missing = describeWorkload(context, "nosuch", messages);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("ratings-1.default"), std::string::npos);
}

TEST(DescribeTest, ServiceShowsEndpointsWithTheirSubsets) {
  // WorkloadEntries written out (Bookinfo's LocalWorkloads become endpoints only through the
  // command's expansion, which the integration test covers).
  Loaded mesh = load(kTestData / "ist0173_subset_no_pods.yaml");
  AnalysisContext context(mesh.config, mesh.registry, AnalyzeOptions{});
  auto described = describeService(context, "reviews", analyze(mesh.config, mesh.registry));
  ASSERT_TRUE(described.ok()) << described.error().message();
  const std::string* text = &described->text;
  EXPECT_NE(text->find("198.18.0.20:9080  reviews-v1.default  app=reviews,version=v1  subsets: v1"),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find("Subsets: v1, v4"), std::string::npos) << *text;
  EXPECT_NE(text->find("[IST0173]"), std::string::npos) << *text;
  const nlohmann::json& doc = described->doc;
  EXPECT_EQ(doc["destinationRule"]["subsets"], nlohmann::json::array({"v1", "v4"}));
  bool v1_endpoint = false;
  for (const auto& e : doc["endpoints"]) {
    v1_endpoint = v1_endpoint || (e["address"] == "198.18.0.20" && e["port"] == 9080 &&
                                  e["subsets"] == nlohmann::json::array({"v1"}));
  }
  EXPECT_TRUE(v1_endpoint) << doc.dump(2);
  EXPECT_FALSE(describeService(context, "nosuch", {}).ok());
}

}  // namespace
}  // namespace sheave::cli
