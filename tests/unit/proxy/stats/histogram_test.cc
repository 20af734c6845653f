#include "proxy/stats/histogram.h"

#include <gtest/gtest.h>

#include <cmath>

namespace sheave::stats {
namespace {

Histogram makeHistogram(std::vector<double> bounds = defaultHistogramBuckets()) {
  return Histogram(Histogram::Unit::kMilliseconds, bounds);
}

TEST(HistogramTest, EnvoyDefaultBuckets) {
  EXPECT_EQ(defaultHistogramBuckets(),
            (std::vector<double>{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                 30000, 60000, 300000, 600000, 1800000, 3600000}));
  EXPECT_EQ(supportedQuantiles(),
            (std::vector<double>{0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100}));
}

TEST(HistogramTest, ValuesLandInLeBuckets) {
  Histogram h = makeHistogram({1, 5, 10});
  h.record(0);   // <= 1
  h.record(1);   // <= 1 (inclusive upper bound)
  h.record(2);   // <= 5
  h.record(5);   // <= 5
  h.record(10);  // <= 10
  h.record(11);  // overflow
  HistogramSnapshot s = h.cumulative();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 2, 1, 1}));
  EXPECT_EQ(s.cumulativeCounts(), (std::vector<uint64_t>{2, 4, 5}));
  EXPECT_EQ(s.sample_count, 6u);
  EXPECT_EQ(s.sample_sum, 29u);
  EXPECT_EQ(*s.min, 0u);
  EXPECT_EQ(*s.max, 11u);
}

TEST(HistogramTest, QuantilesInterpolateWithinBuckets) {
  Histogram h = makeHistogram({10, 20, 30, 40});
  for (uint64_t v : {5, 15, 25, 35}) h.record(v);
  HistogramSnapshot s = h.cumulative();
  EXPECT_DOUBLE_EQ(s.quantile(0), 5);     // min
  EXPECT_DOUBLE_EQ(s.quantile(1), 35);    // max
  EXPECT_DOUBLE_EQ(s.quantile(0.5), 20);  // rank 2 = top of the second bucket
  EXPECT_DOUBLE_EQ(s.quantile(0.25), 10);
  EXPECT_DOUBLE_EQ(s.quantile(0.75), 30);
  // Rank 3.5 is halfway through (30, 40], clamped to max 35.
  EXPECT_DOUBLE_EQ(s.quantile(0.875), 32.5);
}

TEST(HistogramTest, SingleValueQuantilesAreThatValue) {
  Histogram h = makeHistogram();
  h.record(7);
  for (double q : h.cumulative().computedQuantiles()) EXPECT_DOUBLE_EQ(q, 7);
}

TEST(HistogramTest, EmptyIsNan) {
  Histogram h = makeHistogram();
  EXPECT_TRUE(std::isnan(h.cumulative().quantile(0.5)));
  EXPECT_FALSE(h.used());
}

TEST(HistogramTest, OverflowBucketUsesMax) {
  Histogram h = makeHistogram({1});
  h.record(100);
  h.record(200);
  HistogramSnapshot s = h.cumulative();
  EXPECT_DOUBLE_EQ(s.quantile(1), 200);
  EXPECT_DOUBLE_EQ(s.quantile(0), 100);
  EXPECT_DOUBLE_EQ(s.quantile(0.5), 150);
}

TEST(HistogramTest, IntervalsBetweenMerges) {
  Histogram h = makeHistogram({10, 100});
  h.record(5);
  EXPECT_EQ(h.interval().sample_count, 0u);  // no interval closed yet
  h.merge();
  EXPECT_EQ(h.interval().sample_count, 1u);
  h.record(50);
  h.record(60);
  h.merge();
  HistogramSnapshot iv = h.interval();
  EXPECT_EQ(iv.counts, (std::vector<uint64_t>{0, 2, 0}));
  EXPECT_EQ(iv.sample_sum, 110u);
  EXPECT_EQ(h.cumulative().sample_count, 3u);
  h.merge();
  EXPECT_TRUE(std::isnan(h.interval().quantile(0.5)));
}

}  // namespace
}  // namespace sheave::stats
