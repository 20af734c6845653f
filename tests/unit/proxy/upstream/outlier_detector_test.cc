#include "proxy/upstream/outlier_detector.h"

#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/outlier_detection.pb.h"
#include "proxy/stats/store.h"

namespace sheave::upstream {
namespace {

using std::chrono::milliseconds;
using Clock = OutlierDetector::Clock;

class OutlierDetectorTest : public ::testing::Test {
 protected:
  OutlierDetectorTest() : store_(stats::Store::create().value()) {
    scope_ = store_->createScope("cluster.c");
    hosts_ = std::make_shared<HostVector>();
    for (int i = 0; i < 10; ++i) {
      hosts_->push_back(std::make_shared<Host>(
          Address::parse("10.0.0." + std::to_string(i + 1), 80).value(), "", 1));
    }
  }

  void make(OutlierDetectionConfig config) {
    config_ = std::make_shared<OutlierDetectionConfig>(config);
    detector_ = std::make_unique<OutlierDetector>(
        config_, *scope_, [this] { return std::shared_ptr<const HostVector>(hosts_); },
        [this] { changes_++; }, /*seed=*/7);
  }

  const Host& host(size_t i) { return *(*hosts_)[i]; }
  void fail(size_t i, int n, uint32_t code = 500) {
    for (int k = 0; k < n; ++k) reportHttpStatus(*config_, host(i), code);
  }
  uint64_t counter(const std::string& name) {
    return scope_->counter("outlier_detection." + name).value();
  }
  void tick(milliseconds at) { detector_->evaluate(t0_ + at); }

  std::unique_ptr<stats::Store> store_;
  std::shared_ptr<stats::Scope> scope_;
  std::shared_ptr<HostVector> hosts_;
  std::shared_ptr<OutlierDetectionConfig> config_;
  std::unique_ptr<OutlierDetector> detector_;
  int changes_ = 0;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(OutlierDetectorTest, EnvoysDefaultsFromAnEmptyProto) {
  envoy::config::cluster::v3::OutlierDetection proto;
  OutlierDetectionConfig c = OutlierDetectionConfig::fromProto(proto);
  EXPECT_EQ(c.consecutive_5xx, 5u);
  EXPECT_EQ(c.interval, milliseconds(10000));
  EXPECT_EQ(c.base_ejection_time, milliseconds(30000));
  EXPECT_EQ(c.max_ejection_time, milliseconds(300000));
  EXPECT_EQ(c.max_ejection_percent, 10u);
  EXPECT_EQ(c.enforcing_consecutive_gateway_failure, 0u);
  EXPECT_EQ(c.enforcing_failure_percentage, 0u);
  proto.mutable_consecutive_5xx()->set_value(0);  // explicitly off
  proto.mutable_base_ejection_time()->set_seconds(600);
  c = OutlierDetectionConfig::fromProto(proto);
  EXPECT_EQ(c.consecutive_5xx, 0u);
  EXPECT_EQ(c.max_ejection_time, milliseconds(600000));  // never below the base time
}

TEST_F(OutlierDetectorTest, ConsecutiveFivexxEjectsAtTheNextIntervalAndReturnsAfterBaseTime) {
  OutlierDetectionConfig c;
  c.max_ejection_percent = 100;
  make(c);
  fail(0, 4);
  tick(milliseconds(10000));
  EXPECT_FALSE(host(0).ejected());  // 4 < 5
  fail(0, 1);
  tick(milliseconds(20000));
  EXPECT_TRUE(host(0).ejected());
  EXPECT_FALSE(host(0).available());
  EXPECT_EQ(changes_, 1);
  EXPECT_EQ(counter("ejections_enforced_total"), 1u);
  EXPECT_EQ(counter("ejections_enforced_consecutive_5xx"), 1u);
  EXPECT_EQ(counter("ejections_detected_consecutive_5xx"), 1u);
  EXPECT_EQ(scope_->gauge("outlier_detection.ejections_active").value(), 1u);
  tick(milliseconds(40000));  // 20 s after ejection: still out (30 s)
  EXPECT_TRUE(host(0).ejected());
  tick(milliseconds(50000));
  EXPECT_FALSE(host(0).ejected());
  EXPECT_EQ(changes_, 2);
  EXPECT_EQ(scope_->gauge("outlier_detection.ejections_active").value(), 0u);
}

TEST_F(OutlierDetectorTest, ASuccessResetsTheConsecutiveCount) {
  OutlierDetectionConfig c;
  c.max_ejection_percent = 100;
  make(c);
  fail(0, 4);
  reportHttpStatus(*config_, host(0), 200);
  fail(0, 4);
  tick(milliseconds(10000));
  EXPECT_FALSE(host(0).ejected());
}

TEST_F(OutlierDetectorTest, EjectionTimeGrowsWithEachEjectionUpToTheCap) {
  OutlierDetectionConfig c;
  c.max_ejection_percent = 100;
  c.base_ejection_time = milliseconds(1000);
  c.max_ejection_time = milliseconds(2500);
  c.interval = milliseconds(100);
  make(c);
  fail(0, 5);
  tick(milliseconds(0));
  ASSERT_TRUE(host(0).ejected());
  tick(milliseconds(1000));  // 1 x base
  ASSERT_FALSE(host(0).ejected());
  fail(0, 5);
  tick(milliseconds(1100));
  ASSERT_TRUE(host(0).ejected());
  EXPECT_EQ(detector_->ejectionCount(host(0)), 2u);
  tick(milliseconds(2900));  // 2 x base = 2 s: not yet
  EXPECT_TRUE(host(0).ejected());
  tick(milliseconds(3100));
  EXPECT_FALSE(host(0).ejected());
  fail(0, 5);
  tick(milliseconds(3200));
  EXPECT_EQ(detector_->ejectionCount(host(0)), 3u);
  tick(milliseconds(5650));
  EXPECT_TRUE(host(0).ejected());
  tick(milliseconds(5700));  // 3 x base would be 3 s; the cap is 2.5 s
  EXPECT_FALSE(host(0).ejected());
  // Healthy intervals earn the multiplier back, one step each.
  tick(milliseconds(5800));
  tick(milliseconds(5900));
  EXPECT_EQ(detector_->ejectionCount(host(0)), 1u);
}

TEST_F(OutlierDetectorTest, MaxEjectionPercentButAlwaysOneHost) {
  OutlierDetectionConfig c;  // 10% of 10 hosts = 1
  make(c);
  fail(0, 5);
  fail(1, 5);
  tick(milliseconds(10000));
  EXPECT_TRUE(host(0).ejected());
  EXPECT_FALSE(host(1).ejected());
  EXPECT_EQ(counter("ejections_overflow"), 1u);
  // With 0% one host may still go.
  hosts_->resize(2);
  c.max_ejection_percent = 0;
  detector_.reset();
  host(0).setEjected(false);
  make(c);
  fail(1, 5);
  tick(milliseconds(10000));
  EXPECT_TRUE(host(1).ejected());
}

TEST_F(OutlierDetectorTest, GatewayFailuresOnlyWhenEnforced) {
  OutlierDetectionConfig c;
  c.max_ejection_percent = 100;
  c.consecutive_5xx = 0;  // off
  make(c);
  fail(0, 5, 503);
  tick(milliseconds(10000));
  EXPECT_FALSE(host(0).ejected());  // enforcing_consecutive_gateway_failure defaults to 0
  EXPECT_EQ(counter("ejections_detected_consecutive_gateway_failure"), 1u);
  c.enforcing_consecutive_gateway_failure = 100;
  detector_.reset();
  make(c);
  fail(0, 4, 502);
  fail(0, 1, 500);  // not a gateway failure: the run starts again
  fail(0, 4, 504);
  tick(milliseconds(10000));
  EXPECT_FALSE(host(0).ejected());
  fail(0, 1, 503);
  tick(milliseconds(20000));
  EXPECT_TRUE(host(0).ejected());
}

TEST_F(OutlierDetectorTest, LocalOriginErrorsCountAs5xxUnlessSplit) {
  OutlierDetectionConfig c;
  c.max_ejection_percent = 100;
  make(c);
  for (int i = 0; i < 5; ++i)
    reportLocalOrigin(*config_, host(0), LocalOriginEvent::kConnectFailed);
  tick(milliseconds(10000));
  EXPECT_TRUE(host(0).ejected());

  c.split_external_local_origin_errors = true;
  detector_.reset();
  make(c);
  for (int i = 0; i < 5; ++i) reportLocalOrigin(*config_, host(1), LocalOriginEvent::kTimeout);
  tick(milliseconds(10000));
  EXPECT_TRUE(host(1).ejected());
  EXPECT_EQ(counter("ejections_enforced_consecutive_local_origin_failure"), 1u);
  // Split: a connection that works resets the local-origin run.
  for (int i = 0; i < 4; ++i) reportLocalOrigin(*config_, host(2), LocalOriginEvent::kReset);
  reportLocalOrigin(*config_, host(2), LocalOriginEvent::kSuccess);
  reportLocalOrigin(*config_, host(2), LocalOriginEvent::kReset);
  tick(milliseconds(20000));
  EXPECT_FALSE(host(2).ejected());
}

TEST_F(OutlierDetectorTest, SuccessRateEjectsTheOutlier) {
  OutlierDetectionConfig c;
  c.consecutive_5xx = 0;
  c.max_ejection_percent = 100;
  make(c);
  for (size_t i = 0; i < 10; ++i) {
    for (int k = 0; k < 200; ++k) {
      // Host 9 fails half its requests, the others 1%.
      bool failed = i == 9 ? k % 2 == 0 : k % 100 == 0;
      reportHttpStatus(*config_, host(i), failed ? 500 : 200);
    }
  }
  tick(milliseconds(10000));
  EXPECT_TRUE(host(9).ejected());
  for (size_t i = 0; i < 9; ++i) EXPECT_FALSE(host(i).ejected()) << i;
  EXPECT_EQ(counter("ejections_enforced_success_rate"), 1u);
}

TEST_F(OutlierDetectorTest, FailurePercentageWhenEnforcedAndTooFewHostsMeansNoVerdict) {
  OutlierDetectionConfig c;
  c.consecutive_5xx = 0;
  c.max_ejection_percent = 100;
  c.enforcing_failure_percentage = 100;
  c.success_rate_minimum_hosts = 100;  // keep success rate out of it
  make(c);
  for (size_t i = 0; i < 10; ++i) {
    for (int k = 0; k < 60; ++k) reportHttpStatus(*config_, host(i), i == 3 ? 503 : 200);
  }
  tick(milliseconds(10000));
  EXPECT_TRUE(host(3).ejected());
  EXPECT_EQ(counter("ejections_enforced_failure_percentage"), 1u);
  // Under failure_percentage_minimum_hosts (5) hosts with enough volume: nothing.
  for (size_t i = 0; i < 4; ++i) {
    for (int k = 0; k < 60; ++k) reportHttpStatus(*config_, host(i), i == 2 ? 503 : 200);
  }
  tick(milliseconds(20000));
  EXPECT_FALSE(host(2).ejected());
}

TEST_F(OutlierDetectorTest, EnforcingPercentageIsADraw) {
  OutlierDetectionConfig c;
  c.max_ejection_percent = 100;
  c.enforcing_consecutive_5xx = 50;
  c.base_ejection_time = milliseconds(1);
  c.max_ejection_time = milliseconds(1);
  c.interval = milliseconds(10);
  make(c);
  int ejected = 0;
  for (int round = 0; round < 200; ++round) {
    fail(0, 5);
    tick(milliseconds(100 * round));
    if (host(0).ejected()) ejected++;
    tick(milliseconds(100 * round + 50));  // comes back
  }
  EXPECT_GT(ejected, 60);
  EXPECT_LT(ejected, 140);
  EXPECT_EQ(counter("ejections_detected_consecutive_5xx"), 200u);
}

}  // namespace
}  // namespace sheave::upstream
