#include "proxy/stats/store.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace sheave::stats {
namespace {

std::unique_ptr<Store> makeStore(const StoreOptions& options = {}) {
  auto store = Store::create(options);
  EXPECT_TRUE(store.ok());
  return std::move(store).value();
}

TEST(StoreTest, CountsFromManyThreads) {
  auto store = makeStore();
  Counter& counter = store->counter("server.rq");
  Gauge& gauge = store->gauge("server.active");
  Histogram& histogram = store->histogram("server.rq_time", Histogram::Unit::kMilliseconds);
  constexpr int kThreads = 4;
  constexpr int kIterations = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        counter.inc();
        gauge.inc();
        histogram.record(static_cast<uint64_t>(i % 100));
        gauge.dec();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.value(), uint64_t{kThreads} * kIterations);
  EXPECT_EQ(gauge.value(), 0u);
  EXPECT_EQ(histogram.cumulative().sample_count, uint64_t{kThreads} * kIterations);
  EXPECT_TRUE(counter.used());
  EXPECT_TRUE(gauge.used());
}

TEST(StoreTest, ScopesPrefixNames) {
  auto store = makeStore();
  auto cluster = store->createScope("cluster.api_service.");
  cluster->counter("upstream_rq_total").inc(3);
  auto nested = cluster->createScope("circuit_breakers.default");
  nested->gauge("rq_open").set(1);
  EXPECT_EQ(cluster->prefix(), "cluster.api_service");

  auto counters = store->counters();
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(counters[0]->name(), "cluster.api_service.upstream_rq_total");
  EXPECT_EQ(counters[0]->value(), 3u);
  auto gauges = store->gauges();
  ASSERT_EQ(gauges.size(), 1u);
  EXPECT_EQ(gauges[0]->name(), "cluster.api_service.circuit_breakers.default.rq_open");
}

TEST(StoreTest, SameNameReturnsSameStat) {
  auto store = makeStore();
  auto a = store->createScope("cluster.x");
  auto b = store->createScope("cluster.x");
  Counter& ca = a->counter("upstream_rq_total");
  Counter& cb = b->counter("upstream_rq_total");
  Counter& root = store->counter("cluster.x.upstream_rq_total");
  EXPECT_EQ(&ca, &cb);
  EXPECT_EQ(&ca, &root);
  EXPECT_EQ(&a->counter("upstream_rq_total"), &ca);
}

TEST(StoreTest, StatsLiveAsLongAsAScopeHoldsThem) {
  auto store = makeStore();
  auto old_scope = store->createScope("cluster.removed");
  Counter& c = old_scope->counter("upstream_rq_total");
  c.inc();
  // A new config generation with the same cluster shares the stat.
  auto new_scope = store->createScope("cluster.removed");
  new_scope->counter("upstream_rq_total").inc();
  old_scope.reset();
  EXPECT_EQ(c.value(), 2u);  // still valid: new_scope holds it
  ASSERT_EQ(store->counters().size(), 1u);
  new_scope.reset();
  EXPECT_TRUE(store->counters().empty());
}

TEST(StoreTest, ScopeMayOutliveStore) {
  auto store = makeStore();
  auto scope = store->createScope("listener.x");
  Counter& c = scope->counter("downstream_cx_total");
  store.reset();
  c.inc();
  EXPECT_EQ(c.value(), 1u);
}

TEST(StoreTest, SanitizesNames) {
  EXPECT_EQ(sanitizeStatName("listener.[::1]:80."), "listener.[__1]_80");
  EXPECT_EQ(sanitizeStatName("..a.b.."), "a.b");
  auto store = makeStore();
  auto scope = store->createScope("listener.127.0.0.1:8080");
  scope->counter("downstream_cx_total");
  EXPECT_EQ(store->counters()[0]->name(), "listener.127.0.0.1_8080.downstream_cx_total");
}

TEST(StoreTest, TagsAreExtractedAtCreation) {
  auto store = makeStore();
  Counter& c = store->counter("cluster.api.upstream_rq_200");
  EXPECT_EQ(c.tagExtractedName(), "cluster.upstream_rq");
  ASSERT_EQ(c.tags().size(), 2u);
  EXPECT_EQ(c.tags()[0], (Tag{"envoy.response_code", "200"}));
  EXPECT_EQ(c.tags()[1], (Tag{"envoy.cluster_name", "api"}));
}

TEST(StoreTest, DottedNamesShareTheNodeOfTheirPrefix) {
  auto store = makeStore();
  auto parent = store->createScope("cluster");
  auto child = store->createScope("cluster.x");
  Counter& via_parent = parent->counter("x.upstream_rq_total");
  EXPECT_EQ(&via_parent, &child->counter("upstream_rq_total"));
  child.reset();
  // The parent pinned the node when it created a stat in it.
  via_parent.inc();
  ASSERT_EQ(store->counters().size(), 1u);
  EXPECT_EQ(store->counters()[0]->name(), "cluster.x.upstream_rq_total");
}

TEST(StoreTest, OutputKeepsStatsAliveAfterTheirScope) {
  auto store = makeStore();
  auto scope = store->createScope("cluster.gone");
  scope->counter("upstream_rq_total").inc(5);
  auto counters = store->counters();
  scope.reset();
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(counters[0]->value(), 5u);
  EXPECT_EQ(counters[0]->name(), "cluster.gone.upstream_rq_total");
  counters.clear();
  EXPECT_TRUE(store->counters().empty());
}

TEST(StoreTest, ManyStatsInOneScope) {
  auto store = makeStore();
  auto scope = store->createScope("cluster.big");
  scope->reserve(10, 2, 1);
  std::vector<Counter*> counters;
  for (int i = 0; i < 100; ++i) {
    counters.push_back(&scope->counter("c" + std::to_string(1000 + i)));
    counters.back()->inc(static_cast<uint64_t>(i));
    scope->gauge("g" + std::to_string(1000 + i)).set(static_cast<uint64_t>(i));
    if (i % 10 == 0) scope->histogram("h" + std::to_string(1000 + i)).record(1);
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(&scope->counter("c" + std::to_string(1000 + i)), counters[i]);
    EXPECT_EQ(counters[i]->value(), static_cast<uint64_t>(i));
  }
  auto all = store->counters();
  ASSERT_EQ(all.size(), 100u);
  EXPECT_EQ(all[0]->name(), "cluster.big.c1000");
  EXPECT_EQ(all[99]->name(), "cluster.big.c1099");
  EXPECT_EQ(store->gauges().size(), 100u);
  EXPECT_EQ(store->gauges()[7]->value(), 7u);
  ASSERT_EQ(store->histograms().size(), 10u);
  EXPECT_EQ(store->histograms()[3]->cumulative().sample_count, 1u);
}

TEST(StoreTest, HistogramBucketsAllocatedOnFirstSample) {
  auto store = makeStore();
  Histogram& h = store->histogram("cluster.a.upstream_rq_time");
  EXPECT_FALSE(h.used());
  EXPECT_EQ(h.cumulative().sample_count, 0u);
  EXPECT_EQ(h.cumulative().counts.size(), defaultHistogramBuckets().size() + 1);
  store->mergeHistograms();  // closes an interval with no samples
  h.record(3);
  EXPECT_EQ(h.interval().sample_count, 0u);  // not closed yet
  store->mergeHistograms();
  EXPECT_EQ(h.interval().sample_count, 1u);
  EXPECT_EQ(h.interval().sample_sum, 3u);
  EXPECT_TRUE(h.used());
}

TEST(StoreTest, GaugeImportModeAndHistogramUnitAreKept) {
  auto store = makeStore();
  EXPECT_EQ(store->gauge("server.x", Gauge::ImportMode::kNeverImport).importMode(),
            Gauge::ImportMode::kNeverImport);
  EXPECT_EQ(store->histogram("server.y", Histogram::Unit::kBytes).unit(), Histogram::Unit::kBytes);
}

TEST(StoreTest, ConcurrentCreationAndOutput) {
  auto store = makeStore();
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 200; ++i) {
        auto scope = store->createScope("cluster.c" + std::to_string(t * 1000 + i % 20));
        scope->counter("upstream_rq_total").inc();
        scope->histogram("upstream_rq_time").record(1);
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    for (const auto& c : store->counters()) EXPECT_FALSE(c->name().empty());
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(store->counters().empty());  // every scope died
}

TEST(StoreTest, HistogramBucketSettings) {
  StoreOptions options;
  options.histogram_bucket_settings.push_back(
      {{StatNameMatch::Kind::kSuffix, "upstream_cx_connect_ms"}, {250, 1, 10}});
  options.histogram_bucket_settings.push_back({{StatNameMatch::Kind::kRegex, "^http\\..*"}, {5}});
  auto store = makeStore(options);
  EXPECT_EQ(store->histogram("cluster.a.upstream_cx_connect_ms").bounds(),
            (std::vector<double>{1, 10, 250}));
  EXPECT_EQ(store->histogram("http.in.downstream_rq_time").bounds(), (std::vector<double>{5}));
  EXPECT_EQ(store->histogram("cluster.a.upstream_rq_time").bounds(), defaultHistogramBuckets());
}

TEST(StoreTest, RejectsBadOptions) {
  StoreOptions bad_regex;
  bad_regex.histogram_bucket_settings.push_back({{StatNameMatch::Kind::kRegex, "("}, {1}});
  auto r = Store::create(bad_regex);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("histogram_bucket_settings[0]"), std::string::npos);

  StoreOptions bad_tag;
  bad_tag.stats_tags.push_back({"my_tag", "no_group", ""});
  auto r2 = Store::create(bad_tag);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message().find("stats_tags[0]"), std::string::npos);
}

}  // namespace
}  // namespace sheave::stats
