#include "proxy/stats/stats_formatter.h"

#include <gtest/gtest.h>

namespace sheave::stats {
namespace {

class StatsFormatterTest : public testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::create();
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
  }

  std::string render(std::string_view query) {
    auto params = StatsParams::parseQuery(query);
    EXPECT_TRUE(params.ok());
    auto formatter = StatsFormatter::create(*params);
    EXPECT_TRUE(formatter.ok());
    return formatter->format(*store_);
  }

  std::unique_ptr<Store> store_;
};

TEST_F(StatsFormatterTest, TextSortedCountersAndGauges) {
  store_->counter("cluster.b.upstream_rq_total").inc(2);
  store_->gauge("cluster.a.membership_total").set(3);
  store_->counter("server.unused");
  EXPECT_EQ(render(""),
            "cluster.a.membership_total: 3\n"
            "cluster.b.upstream_rq_total: 2\n"
            "server.unused: 0\n");
  EXPECT_EQ(render("usedonly"),
            "cluster.a.membership_total: 3\n"
            "cluster.b.upstream_rq_total: 2\n");
  EXPECT_EQ(render("filter=%5Ecluster%5C.b"), "cluster.b.upstream_rq_total: 2\n");
}

TEST_F(StatsFormatterTest, TextHistograms) {
  store_->histogram("cluster.a.upstream_rq_time");
  Histogram& h = store_->histogram("cluster.b.upstream_rq_time");
  h.record(7);
  EXPECT_EQ(render(""),
            "cluster.a.upstream_rq_time: No recorded values\n"
            "cluster.b.upstream_rq_time: P0(nan,7) P25(nan,7) P50(nan,7) P75(nan,7) P90(nan,7) "
            "P95(nan,7) P99(nan,7) P99.5(nan,7) P99.9(nan,7) P100(nan,7)\n");
  store_->mergeHistograms();
  EXPECT_EQ(render("filter=cluster.b"),
            "cluster.b.upstream_rq_time: P0(7,7) P25(7,7) P50(7,7) P75(7,7) P90(7,7) "
            "P95(7,7) P99(7,7) P99.5(7,7) P99.9(7,7) P100(7,7)\n");
}

TEST_F(StatsFormatterTest, Json) {
  store_->counter("a.c").inc();
  store_->gauge("a.b").set(5);
  store_->histogram("h.x").record(7);
  EXPECT_EQ(render("format=json"),
            R"({"stats":[{"name":"a.b","value":5},{"name":"a.c","value":1},)"
            R"({"histograms":{"supported_quantiles":[0,25,50,75,90,95,99,99.5,99.9,100],)"
            R"("computed_quantiles":[{"name":"h.x","values":[)"
            R"({"interval":null,"cumulative":7},{"interval":null,"cumulative":7},)"
            R"({"interval":null,"cumulative":7},{"interval":null,"cumulative":7},)"
            R"({"interval":null,"cumulative":7},{"interval":null,"cumulative":7},)"
            R"({"interval":null,"cumulative":7},{"interval":null,"cumulative":7},)"
            R"({"interval":null,"cumulative":7},{"interval":null,"cumulative":7}]}]}}]})");
  EXPECT_EQ(render("format=json&filter=nothing"), R"({"stats":[]})");
}

TEST_F(StatsFormatterTest, PrometheusGolden) {
  store_->counter("cluster.x.upstream_rq_2xx").inc(4);
  store_->counter("cluster.y.upstream_rq_2xx").inc(1);
  store_->counter("cluster.x.upstream_rq_200").inc(4);
  store_->counter("cluster.x.upstream_rq_total").inc(4);
  store_->gauge("server.live").set(1);
  store_->counter("listener.0.0.0.0_80.downstream_cx_total").inc();
  store_->counter("http.ingress.downstream_rq_total").inc(9);
  store_->counter("tcp.db.downstream_cx_total");
  store_->counter("listener.admin.downstream_cx_total").inc();
  Histogram& h = store_->histogram("http.ingress.downstream_rq_time");
  h.record(3);
  h.record(700);
  EXPECT_EQ(render("format=prometheus"),
            "# TYPE envoy_cluster_upstream_rq counter\n"
            "envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"x\"} 4\n"
            "# TYPE envoy_cluster_upstream_rq_total counter\n"
            "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"x\"} 4\n"
            "# TYPE envoy_cluster_upstream_rq_xx counter\n"
            "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name="
            "\"x\"} 4\n"
            "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name="
            "\"y\"} 1\n"
            "# TYPE envoy_http_downstream_rq_time histogram\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"0.5\"} 0\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"1\"} 0\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"5\"} 1\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"10\"} 1\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"25\"} 1\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"50\"} 1\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"100\"} 1\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"250\"} 1\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"500\"} 1\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"1000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"2500\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"5000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"10000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"30000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"60000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"300000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"600000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"1800000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"3600000\"} 2\n"
            "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress\",le="
            "\"+Inf\"} 2\n"
            "envoy_http_downstream_rq_time_sum{envoy_http_conn_manager_prefix=\"ingress\"} 703\n"
            "envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix=\"ingress\"} 2\n"
            "# TYPE envoy_http_downstream_rq_total counter\n"
            "envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"ingress\"} 9\n"
            "# TYPE envoy_listener_admin_downstream_cx_total counter\n"
            "envoy_listener_admin_downstream_cx_total{} 1\n"
            "# TYPE envoy_listener_downstream_cx_total counter\n"
            "envoy_listener_downstream_cx_total{envoy_listener_address=\"0.0.0.0_80\"} 1\n"
            "# TYPE envoy_server_live gauge\n"
            "envoy_server_live{} 1\n"
            "# TYPE envoy_tcp_downstream_cx_total counter\n"
            "envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"db\"} 0\n");
}

TEST_F(StatsFormatterTest, PrometheusEscapesLabelValues) {
  auto store = Store::create({{{"t", "", "a\"b\\c\nd"}}, true, {}});
  ASSERT_TRUE(store.ok());
  (*store)->counter("x-y.z").inc();
  auto formatter = StatsFormatter::create({StatsParams::Format::kPrometheus, "", false});
  ASSERT_TRUE(formatter.ok());
  EXPECT_EQ(formatter->format(**store),
            "# TYPE envoy_x_y_z counter\n"
            "envoy_x_y_z{t=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(StatsParamsTest, Parse) {
  auto p = StatsParams::parseQuery("format=prometheus&usedonly&filter=a%2Bb+c");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->format, StatsParams::Format::kPrometheus);
  EXPECT_TRUE(p->used_only);
  EXPECT_EQ(p->filter, "a+b c");
  EXPECT_FALSE(StatsParams::parseQuery("format=xml").ok());
  EXPECT_FALSE(StatsFormatter::create({StatsParams::Format::kText, "(", false}).ok());
}

}  // namespace
}  // namespace sheave::stats
