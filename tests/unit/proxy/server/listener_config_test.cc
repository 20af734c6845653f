#include "proxy/server/listener_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/accesslog/access_log_sink.h"
#include "proxy/config/proto_json.h"
#include "proxy/http/filter_registry.h"
#include "proxy/server/builtin_extensions.h"
#include "proxy/stats/store.h"

namespace sheave::server {
namespace {

using ::testing::HasSubstr;

class ListenerConfigTest : public ::testing::Test {
 protected:
  ListenerConfigTest()
      : store_(stats::Store::create().value()),
        access_logs_(*store_),
        context_{*store_, filters_, access_logs_, [](const std::string&) { return true; }} {
    registerBuiltinHttpFilters(filters_);
  }

  Result<std::shared_ptr<const ListenerConfig>> build(const std::string& yaml) {
    envoy::config::listener::v3::Listener proto;
    auto status = config::yamlToMessage(yaml, proto);
    EXPECT_TRUE(status.ok()) << status.error().message();
    return ListenerConfig::create(proto, context_);
  }

  std::unique_ptr<stats::Store> store_;
  http::FilterRegistry filters_;
  accesslog::AccessLogManager access_logs_;
  ListenerConfig::Context context_;
};

std::string tcpChain(const std::string& name, const std::string& match,
                     const std::string& cluster) {
  return "  - name: " + name + "\n    filter_chain_match: " + match +
         "\n    filters:\n    - name: envoy.filters.network.tcp_proxy\n      typed_config:\n"
         "        '@type': type.googleapis.com/"
         "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n"
         "        stat_prefix: " +
         cluster + "\n        cluster: " + cluster + "\n";
}

const std::string kHeader =
    "name: l\naddress: {socket_address: {address: 0.0.0.0, port_value: 15006}}\n";

ConnectionView view(const std::string& dst, std::string_view sni = {},
                    std::string_view transport = {}, std::span<const std::string> alpn = {}) {
  ConnectionView v;
  v.destination = Address::parseIpPort(dst).value();
  v.source = Address::parse("127.0.0.1", 40000).value();
  v.server_name = sni;
  v.transport_protocol = transport;
  v.application_protocols = alpn;
  return v;
}

std::string chainName(const ListenerConfig& config, const ConnectionView& v) {
  const FilterChainConfig* chain = config.selectChain(v);
  return chain == nullptr ? "<none>" : chain->name;
}

TEST_F(ListenerConfigTest, SelectsTheMostSpecificChain) {
  auto config =
      build(kHeader +
            "listener_filters:\n"
            "- name: envoy.filters.listener.tls_inspector\n"
            "  typed_config: {'@type': type.googleapis.com/"
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}\n"
            "- name: envoy.filters.listener.http_inspector\n"
            "filter_chains:\n" +
            tcpChain("port-9080", "{destination_port: 9080}", "a") +
            tcpChain("port-9080-tls", "{destination_port: 9080, transport_protocol: tls}", "b") +
            tcpChain("sni-exact", "{server_names: [api.example.com]}", "c") +
            tcpChain("sni-wild", "{server_names: ['*.example.com']}", "d") +
            tcpChain("h2c", "{application_protocols: [h2c]}", "e") +
            tcpChain("src",
                     "{source_prefix_ranges: [{address_prefix: 10.0.0.0, "
                     "prefix_len: 8}]}",
                     "f"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  const ListenerConfig& c = **config;
  EXPECT_EQ(c.filter_chains.size(), 6u);
  EXPECT_EQ(c.listener_filters,
            (std::vector<ListenerFilterKind>{ListenerFilterKind::kTlsInspector,
                                             ListenerFilterKind::kHttpInspector}));
  EXPECT_EQ(c.listener_filters_timeout, std::chrono::seconds(15));  // Envoy's default
  EXPECT_FALSE(c.continue_on_listener_filters_timeout);

  // destination_port is looked at first, then the transport.
  EXPECT_EQ(chainName(c, view("10.1.0.5:9080")), "port-9080");
  EXPECT_EQ(chainName(c, view("10.1.0.5:9080", "", "tls")), "port-9080-tls");
  // Exact server name over the longest wildcard.
  EXPECT_EQ(chainName(c, view("10.1.0.5:443", "api.example.com", "tls")), "sni-exact");
  EXPECT_EQ(chainName(c, view("10.1.0.5:443", "www.example.com", "tls")), "sni-wild");
  const std::vector<std::string> h2c = {"h2c"};
  EXPECT_EQ(chainName(c, view("10.1.0.5:8080", "", "", h2c)), "h2c");
  // Nothing else fits and there is no default chain: closed.
  EXPECT_EQ(chainName(c, view("10.1.0.5:8080")), "<none>");
  ConnectionView from_ten = view("10.1.0.5:8080");
  from_ten.source = Address::parse("10.2.3.4", 5555).value();
  EXPECT_EQ(chainName(c, from_ten), "src");
}

TEST_F(ListenerConfigTest, DefaultChainWhenNothingMatches) {
  auto config =
      build(kHeader + "filter_chains:\n" + tcpChain("tls", "{transport_protocol: tls}", "a") +
            "default_filter_chain:\n  name: passthrough\n  filters:\n"
            "  - name: envoy.filters.network.tcp_proxy\n    typed_config:\n"
            "      '@type': type.googleapis.com/"
            "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n"
            "      stat_prefix: p\n      cluster: p\n");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(chainName(**config, view("1.2.3.4:80", "", "tls")), "tls");
  EXPECT_EQ(chainName(**config, view("1.2.3.4:80")), "passthrough");
}

TEST_F(ListenerConfigTest, ListenerFlagsAndTimeouts) {
  auto config = build(kHeader +
                      "use_original_dst: true\nbind_to_port: false\n"
                      "listener_filters_timeout: 0.25s\n"
                      "continue_on_listener_filters_timeout: true\n"
                      "listener_filters:\n"
                      "- name: envoy.filters.listener.original_dst\n"
                      "  typed_config: {'@type': type.googleapis.com/"
                      "envoy.extensions.filters.listener.original_dst.v3.OriginalDst}\n"
                      "filter_chains:\n" +
                      tcpChain("any", "{}", "a"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  const ListenerConfig& c = **config;
  EXPECT_TRUE(c.use_original_dst);
  EXPECT_FALSE(c.bind_to_port);
  EXPECT_TRUE(c.needsListenerFilters());
  EXPECT_TRUE(c.hasListenerFilter(ListenerFilterKind::kOriginalDst));
  EXPECT_EQ(c.listener_filters_timeout, std::chrono::milliseconds(250));
  EXPECT_TRUE(c.continue_on_listener_filters_timeout);
}

TEST_F(ListenerConfigTest, UnknownListenerFilterIsNamed) {
  auto config = build(kHeader +
                      "listener_filters:\n"
                      "- name: envoy.filters.listener.proxy_protocol\n"
                      "  typed_config: {'@type': type.googleapis.com/google.protobuf.Empty}\n"
                      "filter_chains:\n" +
                      tcpChain("any", "{}", "a"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message(), HasSubstr("listener_filters[0]"));
  EXPECT_THAT(config.error().message(), HasSubstr("envoy.filters.listener.proxy_protocol"));
}

TEST_F(ListenerConfigTest, ChainErrorsCarryTheirPath) {
  auto config = build(kHeader + "filter_chains:\n" + tcpChain("a", "{destination_port: 1}", "a") +
                      "  - filter_chain_match: {destination_port: 2}\n    filters: []\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message(), HasSubstr("filter_chains[1].filters"));
  auto dup =
      build(kHeader + "filter_chains:\n" + tcpChain("a", "{}", "a") + tcpChain("b", "{}", "b"));
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.error().message(), HasSubstr("filter_chains"));
}

}  // namespace
}  // namespace sheave::server

namespace sheave::server {
namespace {

TEST_F(ListenerConfigTest, FilterDisabledPredicates) {
  auto config =
      build(kHeader +
            "listener_filters:\n"
            "- name: envoy.filters.listener.http_inspector\n"
            "  filter_disabled:\n"
            "    or_match: {rules: [{destination_port_range: {start: 80, end: 81}},\n"
            "                       {destination_port_range: {start: 9000, end: 9100}}]}\n"
            "- name: envoy.filters.listener.tls_inspector\n"
            "  filter_disabled: {not_match: {destination_port_range: {start: 443, end: 444}}}\n"
            "filter_chains:\n" +
            tcpChain("any", "{}", "a"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  const ListenerConfig& c = **config;
  auto at = [](uint16_t port) { return Address::parse("10.0.0.1", port).value(); };
  EXPECT_TRUE(c.listenerFilterDisabled(0, at(80)));
  EXPECT_TRUE(c.listenerFilterDisabled(0, at(9099)));
  EXPECT_FALSE(c.listenerFilterDisabled(0, at(9100)));
  EXPECT_FALSE(c.listenerFilterDisabled(0, at(443)));
  EXPECT_FALSE(c.listenerFilterDisabled(1, at(443)));
  EXPECT_TRUE(c.listenerFilterDisabled(1, at(80)));

  auto bad = build(kHeader +
                   "listener_filters:\n"
                   "- name: envoy.filters.listener.http_inspector\n"
                   "  filter_disabled: {destination_port_range: {start: 90, end: 80}}\n"
                   "filter_chains:\n" +
                   tcpChain("any", "{}", "a"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(),
              HasSubstr("listener_filters[0].filter_disabled.destination_port_range"));
}

}  // namespace
}  // namespace sheave::server
