#include "proxy/stats/tag_extractor.h"

#include <gtest/gtest.h>

namespace sheave::stats {
namespace {

struct Case {
  std::string name;
  std::string extracted;
  std::vector<Tag> tags;
};

class DefaultTagsTest : public testing::TestWithParam<Case> {};

TEST_P(DefaultTagsTest, Extracts) {
  auto producer = TagProducer::create();
  ASSERT_TRUE(producer.ok());
  const Case& c = GetParam();
  std::vector<Tag> tags;
  EXPECT_EQ(producer->produceTags(c.name, tags), c.extracted) << c.name;
  EXPECT_EQ(tags, c.tags) << c.name;
}

const Tag cluster(std::string v) { return {"envoy.cluster_name", std::move(v)}; }
const Tag hcm(std::string v) { return {"envoy.http_conn_manager_prefix", std::move(v)}; }
const Tag listener(std::string v) { return {"envoy.listener_address", std::move(v)}; }

INSTANTIATE_TEST_SUITE_P(
    Envoy, DefaultTagsTest,
    testing::Values(
        Case{"cluster.api_service.upstream_rq_total",
             "cluster.upstream_rq_total",
             {cluster("api_service")}},
        Case{"cluster.x.upstream_rq_2xx",
             "cluster.upstream_rq_xx",
             {{"envoy.response_code_class", "2"}, cluster("x")}},
        Case{"cluster.x.upstream_rq_503",
             "cluster.upstream_rq",
             {{"envoy.response_code", "503"}, cluster("x")}},
        Case{"cluster.x.external.upstream_rq_404",
             "cluster.external.upstream_rq",
             {{"envoy.response_code", "404"}, cluster("x")}},
        Case{"cluster.x.upstream_rq_time", "cluster.upstream_rq_time", {cluster("x")}},
        Case{"http.ingress_http.downstream_rq_total",
             "http.downstream_rq_total",
             {hcm("ingress_http")}},
        Case{"http.ingress_http.downstream_rq_5xx",
             "http.downstream_rq_xx",
             {{"envoy.response_code_class", "5"}, hcm("ingress_http")}},
        Case{"http.ingress_http.downstream_rq_time",
             "http.downstream_rq_time",
             {hcm("ingress_http")}},
        Case{"http.admin.downstream_rq_total", "http.downstream_rq_total", {hcm("admin")}},
        Case{"listener.0.0.0.0_15001.downstream_cx_total",
             "listener.downstream_cx_total",
             {listener("0.0.0.0_15001")}},
        Case{"listener.[__1]_8080.downstream_cx_total",
             "listener.downstream_cx_total",
             {listener("[__1]_8080")}},
        Case{"listener.virtualInbound.downstream_cx_total",
             "listener.downstream_cx_total",
             {listener("virtualInbound")}},
        Case{"listener.0.0.0.0_80.http.ingress.downstream_rq_2xx",
             "listener.http.downstream_rq_xx",
             {{"envoy.response_code_class", "2"}, hcm("ingress"), listener("0.0.0.0_80")}},
        Case{"listener.0.0.0.0_80.worker_1.downstream_cx_active",
             "listener.worker_downstream_cx_active",
             {{"envoy.worker_id", "1"}, listener("0.0.0.0_80")}},
        Case{"listener_manager.worker_0.dispatcher.loop_duration_us",
             "listener_manager.worker_dispatcher.loop_duration_us",
             {{"envoy.worker_id", "0"}}},
        Case{"server.worker_3.watchdog_miss",
             "server.worker_watchdog_miss",
             {{"envoy.worker_id", "3"}}},
        Case{"listener.admin.downstream_cx_total", "listener.admin.downstream_cx_total", {}},
        Case{"listener.admin.http.admin.downstream_rq_2xx",
             "listener.admin.http.downstream_rq_xx",
             {{"envoy.response_code_class", "2"}, hcm("admin")}},
        Case{"tcp.inbound_tcp.downstream_cx_total",
             "tcp.downstream_cx_total",
             {{"envoy.tcp_prefix", "inbound_tcp"}}},
        Case{"udp.dns.downstream_sess_total",
             "udp.downstream_sess_total",
             {{"envoy.udp_prefix", "dns"}}},
        Case{"vhost.bookinfo.vcluster.other.upstream_rq_total",
             "vhost.vcluster.upstream_rq_total",
             {{"envoy.virtual_cluster", "other"}, {"envoy.virtual_host", "bookinfo"}}},
        Case{"http.in.rds.route_config.v1.config_reload",
             "http.rds.config_reload",
             {hcm("in"), {"envoy.rds_route_config", "route_config.v1"}}},
        Case{"cluster.x.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256",
             "cluster.ssl.ciphers",
             {{"cipher_suite", "ECDHE-RSA-AES128-GCM-SHA256"}, cluster("x")}},
        Case{"listener.1.2.3.4_80.ssl.ciphers.AES128-SHA",
             "listener.ssl.ciphers",
             {{"envoy.ssl_cipher", "AES128-SHA"}, listener("1.2.3.4_80")}},
        Case{"server.uptime", "server.uptime", {}},
        Case{"cluster_manager.active_clusters", "cluster_manager.active_clusters", {}},
        Case{"listener_manager.total_listeners_active",
             "listener_manager.total_listeners_active",
             {}},
        Case{"runtime.load_success", "runtime.load_success", {}},
        Case{"http.hcm.user_agent.ios.downstream_cx_total",
             "http.user_agent.downstream_cx_total",
             {{"envoy.http_user_agent", "ios"}, hcm("hcm")}},
        Case{"http.hcm.fault.reviews.aborts_injected",
             "http.fault.aborts_injected",
             {{"envoy.fault_downstream_cluster", "reviews"}, hcm("hcm")}}));

TEST(TagProducerTest, CustomRegexOverridesDefault) {
  // Istio's cluster_name extractor keeps the dots of service hostnames.
  auto producer = TagProducer::create(
      {{"envoy.cluster_name", R"(^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.))", ""}});
  ASSERT_TRUE(producer.ok()) << producer.error().message();
  std::vector<Tag> tags;
  EXPECT_EQ(producer->produceTags(
                "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total", tags),
            "cluster.upstream_rq_total");
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_EQ(tags[0].value, "outbound|9080||reviews.default.svc.cluster.local");
}

TEST(TagProducerTest, FixedValueTags) {
  auto producer = TagProducer::create({{"mesh", "", "sheave"}});
  ASSERT_TRUE(producer.ok());
  std::vector<Tag> tags;
  EXPECT_EQ(producer->produceTags("cluster.a.x", tags), "cluster.x");
  EXPECT_EQ(tags, (std::vector<Tag>{{"mesh", "sheave"}, cluster("a")}));
}

TEST(TagProducerTest, OnlyRequestedDefaults) {
  auto producer = TagProducer::create({{"envoy.cluster_name", "", ""}}, false);
  ASSERT_TRUE(producer.ok());
  std::vector<Tag> tags;
  EXPECT_EQ(producer->produceTags("cluster.a.upstream_rq_200", tags), "cluster.upstream_rq_200");
  EXPECT_EQ(tags, (std::vector<Tag>{cluster("a")}));
}

TEST(TagProducerTest, Errors) {
  EXPECT_FALSE(TagProducer::create({{"", "(a)", ""}}).ok());
  EXPECT_FALSE(TagProducer::create({{"t", "(", ""}}).ok());
  EXPECT_FALSE(TagProducer::create({{"t", "(a)", "b"}}).ok());
  EXPECT_FALSE(TagProducer::create({{"not_a_default", "", ""}}).ok());
}

}  // namespace
}  // namespace sheave::stats
