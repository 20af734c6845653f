#include "control/compiler/listener_generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "istio/proxy/peer_metadata/config.pb.h"
#include "istio/proxy/stats/config.pb.h"

namespace sheave::control {
namespace {

using envoy::config::listener::v3::FilterChain;
using envoy::config::listener::v3::Listener;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kHcmType[] =
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
constexpr char kTcpProxyType[] =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

Service makeService(std::string host, std::string vip,
                    std::vector<std::pair<uint32_t, Protocol>> ports, std::string ns = "default") {
  Service s;
  s.hostname = std::move(host);
  s.namespace_name = std::move(ns);
  s.resource_name = s.hostname.substr(0, s.hostname.find('.'));
  s.vip = std::move(vip);
  for (auto [number, protocol] : ports) {
    ServicePortInfo p;
    p.port = number;
    p.protocol = protocol;
    p.name = std::string(protocolName(protocol)) + "-" + std::to_string(number);
    s.ports.push_back(p);
  }
  return s;
}

class ListenerGeneratorTest : public ::testing::Test {
 protected:
  ListenerGeneratorTest() {
    proxy_.id = "sidecar~10.1.0.5~productpage-v1.default~default.svc.cluster.local";
    proxy_.ips = {"10.1.0.5"};
    proxy_.namespace_name = "default";
  }

  ListenerInputs inputs(std::vector<const Service*> services,
                        OutboundTrafficPolicyMode policy = OutboundTrafficPolicyMode::kAllowAny) {
    ListenerInputs in;
    in.proxy = &proxy_;
    in.mesh = &mesh_;
    in.services = std::move(services);
    in.outbound_policy = policy;
    return in;
  }

  std::vector<Listener> build(const ListenerInputs& in) {
    errors_.clear();
    return buildSidecarListeners(in, &errors_);
  }

  std::string errorText() const {
    std::string out;
    for (const auto& e : errors_) out += e.toString() + "\n";
    return out;
  }

  ProxyContext proxy_;
  MeshConfig mesh_;
  std::vector<ResourceError> errors_;
};

const Listener* find(const std::vector<Listener>& listeners, const std::string& name) {
  for (const auto& l : listeners) {
    if (l.name() == name) return &l;
  }
  return nullptr;
}

std::vector<std::string> names(const std::vector<Listener>& listeners) {
  std::vector<std::string> out;
  for (const auto& l : listeners) out.push_back(l.name());
  return out;
}

std::vector<std::string> listenerFilterNames(const Listener& l) {
  std::vector<std::string> out;
  for (const auto& f : l.listener_filters()) out.push_back(f.name());
  return out;
}

HttpConnectionManager hcmOf(const FilterChain& chain) {
  HttpConnectionManager hcm;
  EXPECT_EQ(chain.filters_size(), 1);
  if (chain.filters_size() == 0) return hcm;
  EXPECT_EQ(chain.filters(0).name(), "envoy.filters.network.http_connection_manager");
  EXPECT_EQ(chain.filters(0).typed_config().type_url(), kHcmType);
  EXPECT_TRUE(chain.filters(0).typed_config().UnpackTo(&hcm));
  return hcm;
}

// The chain's terminal tcp_proxy; what precedes it is Istio's TCP telemetry
// (tcpFilterNames() checks the order where it matters).
TcpProxy tcpOf(const FilterChain& chain) {
  TcpProxy tcp;
  EXPECT_GE(chain.filters_size(), 1);
  if (chain.filters_size() == 0) return tcp;
  const auto& last = chain.filters(chain.filters_size() - 1);
  EXPECT_EQ(last.name(), "envoy.filters.network.tcp_proxy");
  EXPECT_EQ(last.typed_config().type_url(), kTcpProxyType);
  EXPECT_TRUE(last.typed_config().UnpackTo(&tcp));
  return tcp;
}

std::vector<std::string> tcpFilterNames(const FilterChain& chain) {
  std::vector<std::string> out;
  for (const auto& f : chain.filters()) out.push_back(f.name());
  return out;
}

const FilterChain* chainNamed(const Listener& l, const std::string& name) {
  for (const auto& c : l.filter_chains()) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

TEST_F(ListenerGeneratorTest, VirtualOutboundAllowAny) {
  auto listeners = build(inputs({}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  // No services and no workload ports: only the two capture listeners.
  EXPECT_THAT(names(listeners), ElementsAre("virtualInbound", "virtualOutbound"));
  const Listener* l = find(listeners, "virtualOutbound");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->address().socket_address().address(), "0.0.0.0");
  EXPECT_EQ(l->address().socket_address().port_value(), 15001u);
  EXPECT_TRUE(l->use_original_dst().value());
  EXPECT_EQ(l->traffic_direction(), envoy::config::core::v3::OUTBOUND);
  EXPECT_FALSE(l->has_bind_to_port());  // binds for real
  ASSERT_EQ(l->listener_filters_size(), 1);
  EXPECT_EQ(l->listener_filters(0).name(), "envoy.filters.listener.original_dst");
  EXPECT_EQ(l->listener_filters(0).typed_config().type_url(),
            "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst");
  ASSERT_EQ(l->filter_chains_size(), 1);
  EXPECT_EQ(l->filter_chains(0).name(), "virtualOutbound-blackhole");
  EXPECT_EQ(l->filter_chains(0).filter_chain_match().destination_port().value(), 15001u);
  EXPECT_EQ(tcpOf(l->filter_chains(0)).cluster(), "BlackHoleCluster");
  EXPECT_EQ(l->default_filter_chain().name(), "virtualOutbound-catchall-tcp");
  TcpProxy tcp = tcpOf(l->default_filter_chain());
  EXPECT_EQ(tcp.cluster(), "PassthroughCluster");
  EXPECT_EQ(tcp.stat_prefix(), "PassthroughCluster");
  // Passthrough traffic is counted in Istio's TCP metrics too; the black hole is not.
  EXPECT_THAT(tcpFilterNames(l->default_filter_chain()),
              ElementsAre("istio.stats", "envoy.filters.network.tcp_proxy"));
  EXPECT_THAT(tcpFilterNames(l->filter_chains(0)), ElementsAre("envoy.filters.network.tcp_proxy"));
}

TEST_F(ListenerGeneratorTest, VirtualOutboundRegistryOnly) {
  Service reviews =
      makeService("reviews.default.svc.cluster.local", "240.240.0.2", {{9080, Protocol::kHttp}});
  auto listeners = build(inputs({&reviews}, OutboundTrafficPolicyMode::kRegistryOnly));
  const Listener* l = find(listeners, "virtualOutbound");
  ASSERT_NE(l, nullptr);
  TcpProxy tcp = tcpOf(l->default_filter_chain());
  EXPECT_EQ(tcp.cluster(), "BlackHoleCluster");
  EXPECT_EQ(tcp.stat_prefix(), "BlackHoleCluster");
  // The per-port listener's fallthrough is blocked too.
  const Listener* http = find(listeners, "0.0.0.0_9080");
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->default_filter_chain().name(), "PassthroughFilterChain");
  EXPECT_EQ(tcpOf(http->default_filter_chain()).cluster(), "BlackHoleCluster");
}

TEST_F(ListenerGeneratorTest, IstioMetricsFiltersFollowTheMeshSwitch) {
  Service reviews =
      makeService("reviews.default.svc.cluster.local", "240.240.0.2", {{9080, Protocol::kHttp}});
  {
    auto listeners = build(inputs({&reviews}));
    HttpConnectionManager hcm = hcmOf(find(listeners, "0.0.0.0_9080")->filter_chains(0));
    io::istio::http::peer_metadata::Config mx;
    ASSERT_TRUE(hcm.http_filters(0).typed_config().UnpackTo(&mx));
    // Outbound: learn the upstream from its response, tell it who calls, never outside the mesh.
    ASSERT_EQ(mx.upstream_propagation_size(), 1);
    EXPECT_TRUE(mx.upstream_propagation(0).istio_headers().skip_external_clusters());
    EXPECT_TRUE(mx.upstream_discovery(0).has_istio_headers());
    EXPECT_EQ(mx.downstream_propagation_size(), 0);
    ::stats::PluginConfig stats;
    ASSERT_TRUE(hcm.http_filters(3).typed_config().UnpackTo(&stats));
    EXPECT_TRUE(stats.disable_host_header_fallback());
  }
  mesh_.enable_istio_metrics = false;
  auto listeners = build(inputs({&reviews}));
  HttpConnectionManager hcm = hcmOf(find(listeners, "0.0.0.0_9080")->filter_chains(0));
  ASSERT_EQ(hcm.http_filters_size(), 3);
  EXPECT_EQ(hcm.http_filters(0).name(), "envoy.filters.http.fault");
}

TEST_F(ListenerGeneratorTest, OutboundHttpListenerPerPort) {
  Service ratings =
      makeService("ratings.default.svc.cluster.local", "240.240.0.3", {{9080, Protocol::kHttp}});
  Service reviews =
      makeService("reviews.default.svc.cluster.local", "240.240.0.2", {{9080, Protocol::kHttp}});
  auto listeners = build(inputs({&ratings, &reviews}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  EXPECT_THAT(names(listeners), ElementsAre("0.0.0.0_9080", "virtualInbound", "virtualOutbound"));
  const Listener& l = *find(listeners, "0.0.0.0_9080");
  EXPECT_EQ(l.address().socket_address().address(), "0.0.0.0");
  EXPECT_EQ(l.address().socket_address().port_value(), 9080u);
  ASSERT_TRUE(l.has_bind_to_port());
  EXPECT_FALSE(l.bind_to_port().value());
  EXPECT_EQ(l.traffic_direction(), envoy::config::core::v3::OUTBOUND);
  EXPECT_THAT(listenerFilterNames(l), ElementsAre("envoy.filters.listener.tls_inspector",
                                                  "envoy.filters.listener.http_inspector"));
  EXPECT_EQ(l.listener_filters(0).typed_config().type_url(),
            "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector");
  EXPECT_EQ(
      l.listener_filters(1).typed_config().type_url(),
      "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector");

  // Sniffing: HTTP by ALPN from the http_inspector, the rest passes through.
  ASSERT_EQ(l.filter_chains_size(), 1);
  const auto& match = l.filter_chains(0).filter_chain_match();
  EXPECT_EQ(match.transport_protocol(), "raw_buffer");
  EXPECT_THAT(match.application_protocols(), ElementsAre("http/1.1", "h2c"));
  EXPECT_EQ(l.default_filter_chain().name(), "PassthroughFilterChain");
  EXPECT_EQ(tcpOf(l.default_filter_chain()).cluster(), "PassthroughCluster");

  HttpConnectionManager hcm = hcmOf(l.filter_chains(0));
  EXPECT_EQ(hcm.stat_prefix(), "outbound_0.0.0.0_9080");
  EXPECT_EQ(hcm.codec_type(), HttpConnectionManager::AUTO);
  ASSERT_TRUE(hcm.has_rds());
  EXPECT_EQ(hcm.rds().route_config_name(), "9080");
  EXPECT_TRUE(hcm.rds().config_source().has_ads());
  EXPECT_EQ(hcm.rds().config_source().resource_api_version(), envoy::config::core::v3::V3);
  // Istio's order: metadata exchange first, stats just before the router.
  ASSERT_EQ(hcm.http_filters_size(), 5);
  EXPECT_EQ(hcm.http_filters(0).name(), "istio.metadata_exchange");
  EXPECT_EQ(hcm.http_filters(0).typed_config().type_url(),
            "type.googleapis.com/io.istio.http.peer_metadata.Config");
  EXPECT_EQ(hcm.http_filters(1).name(), "envoy.filters.http.fault");
  EXPECT_EQ(hcm.http_filters(1).typed_config().type_url(),
            "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault");
  EXPECT_EQ(hcm.http_filters(2).name(), "envoy.filters.http.cors");
  EXPECT_EQ(hcm.http_filters(2).typed_config().type_url(),
            "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors");
  EXPECT_EQ(hcm.http_filters(3).name(), "istio.stats");
  EXPECT_EQ(hcm.http_filters(3).typed_config().type_url(),
            "type.googleapis.com/stats.PluginConfig");
  EXPECT_EQ(hcm.http_filters(4).name(), "envoy.filters.http.router");
  EXPECT_EQ(hcm.http_filters(4).typed_config().type_url(),
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
  ASSERT_TRUE(hcm.has_use_remote_address());
  EXPECT_FALSE(hcm.use_remote_address().value());
  EXPECT_TRUE(hcm.normalize_path().value());
  EXPECT_THAT(hcm.access_log(), IsEmpty());
  EXPECT_FALSE(hcm.has_http2_protocol_options());
  EXPECT_EQ(hcm.forward_client_cert_details(), HttpConnectionManager::SANITIZE);
}

TEST_F(ListenerGeneratorTest, Http2AndGrpcPortsGetHttp2Options) {
  Service grpc = makeService("greeter.default.svc.cluster.local", "240.240.0.4",
                             {{7070, Protocol::kGrpc}, {8080, Protocol::kHttp}});
  auto listeners = build(inputs({&grpc}));
  ASSERT_NE(find(listeners, "0.0.0.0_7070"), nullptr);
  EXPECT_TRUE(
      hcmOf(find(listeners, "0.0.0.0_7070")->filter_chains(0)).has_http2_protocol_options());
  EXPECT_FALSE(
      hcmOf(find(listeners, "0.0.0.0_8080")->filter_chains(0)).has_http2_protocol_options());
}

TEST_F(ListenerGeneratorTest, OutboundTcpListenerOnVip) {
  Service db = makeService("db.default.svc.cluster.local", "240.240.0.9", {{5432, Protocol::kTcp}});
  auto listeners = build(inputs({&db}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  const Listener* l = find(listeners, "240.240.0.9_5432");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->address().socket_address().address(), "240.240.0.9");
  EXPECT_FALSE(l->bind_to_port().value());
  EXPECT_THAT(l->listener_filters(), IsEmpty());
  ASSERT_TRUE(l->has_listener_filters_timeout());
  EXPECT_EQ(l->listener_filters_timeout().seconds(), 0);
  ASSERT_EQ(l->filter_chains_size(), 1);
  EXPECT_FALSE(l->has_default_filter_chain());
  TcpProxy tcp = tcpOf(l->filter_chains(0));
  EXPECT_EQ(tcp.cluster(), "outbound|5432||db.default.svc.cluster.local");
  EXPECT_EQ(tcp.stat_prefix(), "outbound|5432||db.default.svc.cluster.local");
  // Istio's TCP metrics on the client side; the exchange itself is the cluster's filter.
  EXPECT_THAT(tcpFilterNames(l->filter_chains(0)),
              ElementsAre("istio.stats", "envoy.filters.network.tcp_proxy"));
  ::stats::PluginConfig stats;
  ASSERT_TRUE(l->filter_chains(0).filters(0).typed_config().UnpackTo(&stats));
  EXPECT_TRUE(stats.disable_host_header_fallback());
}

TEST_F(ListenerGeneratorTest, UndeclaredProtocolIsSniffed) {
  Service legacy = makeService("legacy.default.svc.cluster.local", "240.240.0.7",
                               {{8000, Protocol::kUnsupported}});
  auto listeners = build(inputs({&legacy}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  const Listener* l = find(listeners, "240.240.0.7_8000");
  ASSERT_NE(l, nullptr);
  EXPECT_THAT(listenerFilterNames(*l), ElementsAre("envoy.filters.listener.tls_inspector",
                                                   "envoy.filters.listener.http_inspector"));
  // HTTP chain by ALPN, TCP as the default chain.
  ASSERT_EQ(l->filter_chains_size(), 1);
  EXPECT_THAT(l->filter_chains(0).filter_chain_match().application_protocols(),
              ElementsAre("http/1.1", "h2c"));
  HttpConnectionManager hcm = hcmOf(l->filter_chains(0));
  EXPECT_EQ(hcm.rds().route_config_name(), "8000");
  EXPECT_EQ(hcm.stat_prefix(), "outbound_240.240.0.7_8000");
  EXPECT_EQ(tcpOf(l->default_filter_chain()).cluster(),
            "outbound|8000||legacy.default.svc.cluster.local");
}

TEST_F(ListenerGeneratorTest, TcpWithoutVipUsesWildcardWhenAlone) {
  Service ext = makeService("ext.example.com", "", {{5000, Protocol::kTcp}});
  auto listeners = build(inputs({&ext}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  const Listener* l = find(listeners, "0.0.0.0_5000");
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 1);
  EXPECT_EQ(tcpOf(l->filter_chains(0)).cluster(), "outbound|5000||ext.example.com");
}

TEST_F(ListenerGeneratorTest, TwoTcpServicesWithoutVipConflict) {
  Service a = makeService("a.example.com", "", {{5000, Protocol::kTcp}});
  Service b = makeService("b.example.com", "", {{5000, Protocol::kTcp}});
  b.origin = ServiceOrigin::kServiceEntry;
  auto listeners = build(inputs({&a, &b}));
  ASSERT_THAT(errors_, SizeIs(1));
  EXPECT_THAT(errors_[0].toString(), HasSubstr("b.example.com"));
  EXPECT_THAT(errors_[0].toString(), HasSubstr("kept a.example.com"));
  EXPECT_EQ(errors_[0].kind, "ServiceEntry");
  const Listener* l = find(listeners, "0.0.0.0_5000");
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 1);
  EXPECT_EQ(tcpOf(l->filter_chains(0)).cluster(), "outbound|5000||a.example.com");
}

TEST_F(ListenerGeneratorTest, HttpAndTcpWithoutVipOnOnePortAreSniffed) {
  Service web =
      makeService("web.default.svc.cluster.local", "240.240.0.2", {{8000, Protocol::kHttp}});
  Service raw = makeService("raw.example.com", "", {{8000, Protocol::kTcp}});
  auto listeners = build(inputs({&raw, &web}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  const Listener* l = find(listeners, "0.0.0.0_8000");
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 1);
  EXPECT_EQ(hcmOf(l->filter_chains(0)).rds().route_config_name(), "8000");
  EXPECT_EQ(tcpOf(l->default_filter_chain()).cluster(), "outbound|8000||raw.example.com");
}

TEST_F(ListenerGeneratorTest, HttpAndTcpOnServerFirstPortConflict) {
  Service mysql = makeService("mysql.example.com", "", {{3306, Protocol::kTcp}});
  Service web =
      makeService("web.default.svc.cluster.local", "240.240.0.2", {{3306, Protocol::kHttp}});
  // Services arrive sorted by hostname: mysql first, so it is kept.
  auto listeners = build(inputs({&mysql, &web}));
  ASSERT_THAT(errors_, SizeIs(1)) << errorText();
  EXPECT_THAT(errors_[0].toString(), HasSubstr("web.default.svc.cluster.local"));
  EXPECT_THAT(errors_[0].toString(), HasSubstr("kept mysql.example.com"));
  const Listener* l = find(listeners, "0.0.0.0_3306");
  ASSERT_NE(l, nullptr);
  EXPECT_THAT(l->listener_filters(), IsEmpty());
  ASSERT_EQ(l->filter_chains_size(), 1);
  EXPECT_EQ(tcpOf(l->filter_chains(0)).cluster(), "outbound|3306||mysql.example.com");
}

TEST_F(ListenerGeneratorTest, TlsServicesWithoutVipMatchOnSni) {
  Service a = makeService("api.example.com", "", {{443, Protocol::kTls}});
  Service b = makeService("www.example.org", "", {{443, Protocol::kHttps}});
  auto listeners = build(inputs({&a, &b}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  const Listener* l = find(listeners, "0.0.0.0_443");
  ASSERT_NE(l, nullptr);
  EXPECT_THAT(listenerFilterNames(*l), ElementsAre("envoy.filters.listener.tls_inspector"));
  ASSERT_EQ(l->filter_chains_size(), 2);
  EXPECT_THAT(l->filter_chains(0).filter_chain_match().server_names(),
              ElementsAre("api.example.com"));
  EXPECT_EQ(tcpOf(l->filter_chains(0)).cluster(), "outbound|443||api.example.com");
  EXPECT_THAT(l->filter_chains(1).filter_chain_match().server_names(),
              ElementsAre("www.example.org"));
  EXPECT_EQ(l->default_filter_chain().name(), "PassthroughFilterChain");
}

TEST_F(ListenerGeneratorTest, CidrAddressMatchesOnPrefix) {
  Service range = makeService("range.example.com", "10.20.0.0/16", {{6379, Protocol::kTcp}});
  auto listeners = build(inputs({&range}));
  const Listener* l = find(listeners, "0.0.0.0_6379");
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 1);
  const auto& match = l->filter_chains(0).filter_chain_match();
  ASSERT_EQ(match.prefix_ranges_size(), 1);
  EXPECT_EQ(match.prefix_ranges(0).address_prefix(), "10.20.0.0");
  EXPECT_EQ(match.prefix_ranges(0).prefix_len().value(), 16u);
  EXPECT_EQ(l->default_filter_chain().name(), "PassthroughFilterChain");
}

TEST_F(ListenerGeneratorTest, UdpPortsGetNoListener) {
  Service dns = makeService("dns.default.svc.cluster.local", "240.240.0.5", {{53, Protocol::kUdp}});
  auto listeners = build(inputs({&dns}));
  EXPECT_THAT(names(listeners), ElementsAre("virtualInbound", "virtualOutbound"));
}

class InboundTest : public ListenerGeneratorTest {
 protected:
  InboundTest()
      : productpage_(makeService("productpage.default.svc.cluster.local", "240.240.0.10",
                                 {{9080, Protocol::kHttp}, {3306, Protocol::kTcp}})),
        grpc_(makeService("grpc.default.svc.cluster.local", "240.240.0.11",
                          {{7070, Protocol::kGrpc}})) {
    proxy_.service_instances = {
        {&productpage_, 9080, "http", Protocol::kHttp, 9080},
        {&productpage_, 3306, "tcp", Protocol::kTcp, 3307},
        {&grpc_, 7070, "grpc", Protocol::kGrpc, 17070},
    };
  }
  Service productpage_;
  Service grpc_;
};

TEST_F(InboundTest, VirtualInboundChains) {
  auto listeners = build(inputs({}));
  EXPECT_TRUE(errors_.empty()) << errorText();
  const Listener* l = find(listeners, "virtualInbound");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->address().socket_address().address(), "0.0.0.0");
  EXPECT_EQ(l->address().socket_address().port_value(), 15006u);
  EXPECT_EQ(l->traffic_direction(), envoy::config::core::v3::INBOUND);
  EXPECT_FALSE(l->has_bind_to_port());

  std::vector<std::string> chain_names;
  for (const auto& c : l->filter_chains()) chain_names.push_back(c.name());
  EXPECT_THAT(chain_names,
              ElementsAre("virtualInbound-blackhole", "virtualInbound-catchall-http",
                          "virtualInbound", "0.0.0.0_3307", "0.0.0.0_9080", "0.0.0.0_17070"));

  // Plaintext only: the inspectors are original_dst and http_inspector; the
  // http_inspector is off on declared and blackhole ports.
  EXPECT_THAT(listenerFilterNames(*l), ElementsAre("envoy.filters.listener.original_dst",
                                                   "envoy.filters.listener.http_inspector"));
  const auto& disabled = l->listener_filters(1).filter_disabled();
  ASSERT_TRUE(disabled.has_or_match());
  std::vector<int32_t> starts;
  for (const auto& rule : disabled.or_match().rules()) {
    starts.push_back(rule.destination_port_range().start());
    EXPECT_EQ(rule.destination_port_range().end(), rule.destination_port_range().start() + 1);
  }
  EXPECT_THAT(starts, ElementsAre(3307, 9080, 15006, 17070));

  const FilterChain& blackhole = *chainNamed(*l, "virtualInbound-blackhole");
  EXPECT_EQ(blackhole.filter_chain_match().destination_port().value(), 15006u);
  EXPECT_EQ(tcpOf(blackhole).cluster(), "BlackHoleCluster");

  const FilterChain& catchall_http = *chainNamed(*l, "virtualInbound-catchall-http");
  EXPECT_FALSE(catchall_http.filter_chain_match().has_destination_port());
  EXPECT_EQ(catchall_http.filter_chain_match().transport_protocol(), "raw_buffer");
  EXPECT_THAT(catchall_http.filter_chain_match().application_protocols(),
              ElementsAre("http/1.1", "h2c"));
  HttpConnectionManager passthrough_hcm = hcmOf(catchall_http);
  EXPECT_EQ(passthrough_hcm.stat_prefix(), "InboundPassthroughClusterIpv4");
  EXPECT_EQ(passthrough_hcm.route_config().virtual_hosts(0).routes(0).route().cluster(),
            "InboundPassthroughClusterIpv4");

  const FilterChain& catchall_tcp = *chainNamed(*l, "virtualInbound");
  EXPECT_EQ(catchall_tcp.filter_chain_match().transport_protocol(), "raw_buffer");
  EXPECT_EQ(tcpOf(catchall_tcp).cluster(), "InboundPassthroughClusterIpv4");
  // Istio's order on inbound TCP: the exchange first, the metrics just before the proxy.
  EXPECT_THAT(tcpFilterNames(catchall_tcp), ElementsAre("istio.metadata_exchange", "istio.stats",
                                                        "envoy.filters.network.tcp_proxy"));
  EXPECT_EQ(catchall_tcp.filters(0).typed_config().type_url(),
            "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange");

  const FilterChain& http = *chainNamed(*l, "0.0.0.0_9080");
  EXPECT_EQ(http.filter_chain_match().destination_port().value(), 9080u);
  EXPECT_EQ(http.filter_chain_match().transport_protocol(), "raw_buffer");
  EXPECT_THAT(http.filter_chain_match().application_protocols(), IsEmpty());
  HttpConnectionManager hcm = hcmOf(http);
  EXPECT_EQ(hcm.stat_prefix(), "inbound_0.0.0.0_9080");
  EXPECT_EQ(hcm.forward_client_cert_details(), HttpConnectionManager::APPEND_FORWARD);
  EXPECT_TRUE(hcm.set_current_client_cert_details().subject().value());
  EXPECT_TRUE(hcm.set_current_client_cert_details().uri());
  EXPECT_TRUE(hcm.set_current_client_cert_details().dns());
  EXPECT_FALSE(hcm.use_remote_address().value());
  ASSERT_TRUE(hcm.has_route_config());
  const auto& rc = hcm.route_config();
  EXPECT_EQ(rc.name(), "inbound|9080||");
  EXPECT_FALSE(rc.validate_clusters().value());
  ASSERT_EQ(rc.virtual_hosts_size(), 1);
  EXPECT_EQ(rc.virtual_hosts(0).name(), "inbound|http|9080");
  EXPECT_THAT(rc.virtual_hosts(0).domains(), ElementsAre("*"));
  ASSERT_EQ(rc.virtual_hosts(0).routes_size(), 1);
  const auto& route = rc.virtual_hosts(0).routes(0);
  EXPECT_EQ(route.name(), "default");
  EXPECT_EQ(route.match().prefix(), "/");
  EXPECT_EQ(route.route().cluster(), "inbound|9080||");
  EXPECT_TRUE(route.route().has_timeout());
  EXPECT_EQ(route.decorator().operation(), "productpage.default.svc.cluster.local:9080/*");
  EXPECT_FALSE(hcm.has_http2_protocol_options());

  // The TCP port's chain matches the workload's own (target) port.
  const FilterChain& tcp = *chainNamed(*l, "0.0.0.0_3307");
  EXPECT_EQ(tcp.filter_chain_match().destination_port().value(), 3307u);
  EXPECT_EQ(tcpOf(tcp).cluster(), "inbound|3307||");
  EXPECT_EQ(tcpOf(tcp).stat_prefix(), "inbound|3307||");

  const FilterChain& grpc = *chainNamed(*l, "0.0.0.0_17070");
  HttpConnectionManager grpc_hcm = hcmOf(grpc);
  EXPECT_TRUE(grpc_hcm.has_http2_protocol_options());
  EXPECT_EQ(grpc_hcm.route_config().name(), "inbound|17070||");
  EXPECT_EQ(grpc_hcm.route_config().virtual_hosts(0).name(), "inbound|http|7070");
}

TEST_F(InboundTest, UndeclaredWorkloadPortGetsTwoChains) {
  proxy_.service_instances = {{&productpage_, 9080, "", Protocol::kUnsupported, 9080}};
  auto listeners = build(inputs({}));
  const Listener* l = find(listeners, "virtualInbound");
  ASSERT_NE(l, nullptr);
  int found = 0;
  for (const auto& c : l->filter_chains()) {
    if (c.name() != "0.0.0.0_9080") continue;
    ++found;
    EXPECT_EQ(c.filter_chain_match().destination_port().value(), 9080u);
    if (c.filter_chain_match().application_protocols_size() > 0) {
      EXPECT_EQ(hcmOf(c).stat_prefix(), "inbound_0.0.0.0_9080");
    } else {
      EXPECT_EQ(tcpOf(c).cluster(), "inbound|9080||");
    }
  }
  EXPECT_EQ(found, 2);
  // 9080 now needs the http_inspector: only the blackhole port is excluded.
  const auto& disabled = l->listener_filters(1).filter_disabled();
  EXPECT_EQ(disabled.destination_port_range().start(), 15006);
}

TEST_F(InboundTest, ConflictingWorkloadPortsKeepTheFirst) {
  Service other =
      makeService("other.default.svc.cluster.local", "240.240.0.12", {{80, Protocol::kTcp}});
  proxy_.service_instances = {
      {&productpage_, 9080, "http", Protocol::kHttp, 9080},
      {&other, 80, "tcp", Protocol::kTcp, 9080},
  };
  auto listeners = build(inputs({}));
  ASSERT_THAT(errors_, SizeIs(1));
  EXPECT_THAT(errors_[0].toString(), HasSubstr("inbound port 9080"));
  EXPECT_THAT(errors_[0].toString(), HasSubstr("kept productpage.default.svc.cluster.local"));
  const Listener* l = find(listeners, "virtualInbound");
  ASSERT_NE(chainNamed(*l, "0.0.0.0_9080"), nullptr);
  EXPECT_EQ(hcmOf(*chainNamed(*l, "0.0.0.0_9080")).stat_prefix(), "inbound_0.0.0.0_9080");
}

TEST_F(ListenerGeneratorTest, SidecarEgressPortLocksThePort) {
  Service mine = makeService("a.default.svc.cluster.local", "",
                             {{9080, Protocol::kHttp}, {5432, Protocol::kTcp}});
  Service theirs = makeService("b.prod.svc.cluster.local", "",
                               {{5432, Protocol::kTcp}, {7000, Protocol::kTcp}}, "prod");
  Sidecar sidecar;
  IstioEgressListener port_listener;
  port_listener.port = SidecarPort{5432, "TCP", "tcp", 0};
  port_listener.hosts = {"./*"};
  IstioEgressListener catch_all;
  catch_all.hosts = {"*/*"};
  sidecar.egress = {catch_all, port_listener};  // the port listener applies first anyway
  auto in = inputs({&mine, &theirs});
  in.sidecar = &sidecar;
  in.sidecar_namespace = "default";
  auto listeners = build(in);
  // 5432 belongs to the port listener (./* services only): theirs is not
  // added there, so there is no conflict to report; it keeps 7000.
  EXPECT_TRUE(errors_.empty()) << errorText();
  EXPECT_THAT(names(listeners), ElementsAre("0.0.0.0_5432", "0.0.0.0_7000", "0.0.0.0_9080",
                                            "virtualInbound", "virtualOutbound"));
  const Listener& l = *find(listeners, "0.0.0.0_5432");
  ASSERT_EQ(l.filter_chains_size(), 1);
  EXPECT_EQ(tcpOf(l.filter_chains(0)).cluster(), "outbound|5432||a.default.svc.cluster.local");
  EXPECT_EQ(tcpOf(find(listeners, "0.0.0.0_7000")->filter_chains(0)).cluster(),
            "outbound|7000||b.prod.svc.cluster.local");
}

TEST_F(ListenerGeneratorTest, SidecarEgressCaptureNoneBindsForReal) {
  Service web =
      makeService("web.default.svc.cluster.local", "240.240.0.2", {{9080, Protocol::kHttp}});
  Service db = makeService("db.default.svc.cluster.local", "240.240.0.3", {{5432, Protocol::kTcp}});
  Sidecar sidecar;
  IstioEgressListener http;
  http.port = SidecarPort{9080, "HTTP", "http", 0};
  http.capture_mode = CaptureMode::kNone;
  http.hosts = {"./web.default.svc.cluster.local"};
  IstioEgressListener tcp;
  tcp.port = SidecarPort{15432, "TCP", "tcp", 0};
  tcp.bind = "127.0.0.2";
  tcp.capture_mode = CaptureMode::kNone;
  tcp.hosts = {"default/db.default.svc.cluster.local"};
  sidecar.egress = {http, tcp};
  auto in = inputs({&db, &web});
  in.sidecar = &sidecar;
  auto listeners = build(in);
  EXPECT_TRUE(errors_.empty()) << errorText();
  EXPECT_THAT(names(listeners), ElementsAre("127.0.0.1_9080", "127.0.0.2_15432", "virtualInbound",
                                            "virtualOutbound"));
  const Listener& l = *find(listeners, "127.0.0.1_9080");
  EXPECT_EQ(l.address().socket_address().address(), "127.0.0.1");
  EXPECT_FALSE(l.has_bind_to_port());  // unset: binds
  // An explicit bind is not the wildcard: a plain HTTP chain, no sniffing.
  ASSERT_EQ(l.filter_chains_size(), 1);
  EXPECT_EQ(hcmOf(l.filter_chains(0)).rds().route_config_name(), "9080");
  EXPECT_THAT(l.listener_filters(), IsEmpty());
  // A listener port the service does not declare reaches its only port.
  const Listener& t = *find(listeners, "127.0.0.2_15432");
  EXPECT_EQ(tcpOf(t.filter_chains(0)).cluster(), "outbound|5432||db.default.svc.cluster.local");
}

TEST_F(ListenerGeneratorTest, SidecarIngressReplacesServiceInstances) {
  Service svc =
      makeService("app.default.svc.cluster.local", "240.240.0.2", {{9080, Protocol::kHttp}});
  proxy_.service_instances = {{&svc, 9080, "http", Protocol::kHttp, 9080}};
  Sidecar sidecar;
  IstioIngressListener bound;
  bound.port = SidecarPort{8443, "TCP", "tcp", 0};
  bound.capture_mode = CaptureMode::kNone;
  bound.bind = "0.0.0.0";
  bound.default_endpoint = "127.0.0.1:8443";
  IstioIngressListener captured;
  captured.port = SidecarPort{8080, "HTTP", "http", 0};
  captured.default_endpoint = "127.0.0.1:8080";
  sidecar.ingress = {bound, captured};
  auto in = inputs({});
  in.sidecar = &sidecar;
  in.sidecar_name = "app";
  in.sidecar_namespace = "default";
  auto listeners = build(in);
  EXPECT_TRUE(errors_.empty()) << errorText();
  EXPECT_THAT(names(listeners), ElementsAre("0.0.0.0_8443", "virtualInbound", "virtualOutbound"));

  const Listener& real = *find(listeners, "0.0.0.0_8443");
  EXPECT_FALSE(real.has_bind_to_port());
  EXPECT_EQ(real.address().socket_address().port_value(), 8443u);
  EXPECT_EQ(real.traffic_direction(), envoy::config::core::v3::INBOUND);
  EXPECT_THAT(real.listener_filters(), IsEmpty());  // no original_dst: not redirected
  ASSERT_EQ(real.filter_chains_size(), 1);
  EXPECT_EQ(tcpOf(real.filter_chains(0)).cluster(), "inbound|8443||");

  const Listener& virt = *find(listeners, "virtualInbound");
  EXPECT_EQ(chainNamed(virt, "0.0.0.0_9080"), nullptr);  // the service port is not used
  const FilterChain* chain = chainNamed(virt, "10.1.0.5_8080");
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(chain->filter_chain_match().destination_port().value(), 8080u);
  HttpConnectionManager hcm = hcmOf(*chain);
  EXPECT_EQ(hcm.stat_prefix(), "inbound_10.1.0.5_8080");
  EXPECT_EQ(hcm.route_config().name(), "inbound|8080||");
  EXPECT_EQ(hcm.route_config().virtual_hosts(0).routes(0).decorator().operation(),
            "app.default:8080/*");
}

TEST_F(ListenerGeneratorTest, EgressProxyReceivesUnknownTraffic) {
  Sidecar sidecar;
  OutboundTrafficPolicy policy;
  policy.mode = OutboundTrafficPolicyMode::kAllowAny;
  Destination egress;
  egress.host = "egress.istio-system.svc.cluster.local";
  egress.port = PortSelector{3128};
  policy.egress_proxy = egress;
  sidecar.outbound_traffic_policy = policy;
  auto in = inputs({});
  in.sidecar = &sidecar;
  auto listeners = build(in);
  EXPECT_EQ(tcpOf(find(listeners, "virtualOutbound")->default_filter_chain()).cluster(),
            "outbound|3128||egress.istio-system.svc.cluster.local");
}

TEST_F(ListenerGeneratorTest, MeshPortsAndDetectionTimeout) {
  mesh_.proxy_listen_port = 16001;
  mesh_.proxy_inbound_listen_port = 16006;
  mesh_.protocol_detection_timeout = std::chrono::milliseconds(1500);
  Service legacy = makeService("legacy.default.svc.cluster.local", "240.240.0.7",
                               {{8000, Protocol::kUnsupported}});
  auto listeners = build(inputs({&legacy}));
  EXPECT_EQ(find(listeners, "virtualOutbound")->address().socket_address().port_value(), 16001u);
  const Listener& in = *find(listeners, "virtualInbound");
  EXPECT_EQ(in.address().socket_address().port_value(), 16006u);
  EXPECT_EQ(in.filter_chains(0).filter_chain_match().destination_port().value(), 16006u);
  const auto& timeout = find(listeners, "240.240.0.7_8000")->listener_filters_timeout();
  EXPECT_EQ(timeout.seconds(), 1);
  EXPECT_EQ(timeout.nanos(), 500000000);
}

TEST_F(ListenerGeneratorTest, DeterministicAndSorted) {
  Service a = makeService("a.default.svc.cluster.local", "240.240.0.2",
                          {{9080, Protocol::kHttp}, {5432, Protocol::kTcp}});
  Service b = makeService("b.default.svc.cluster.local", "", {{8000, Protocol::kUnsupported}});
  Service c = makeService("c.example.com", "", {{443, Protocol::kTls}});
  proxy_.service_instances = {{&a, 9080, "http", Protocol::kHttp, 9080}};
  auto first = build(inputs({&a, &b, &c}));
  auto second = build(inputs({&a, &b, &c}));
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    std::string x, y;
    ASSERT_TRUE(first[i].SerializeToString(&x));
    ASSERT_TRUE(second[i].SerializeToString(&y));
    EXPECT_EQ(x, y) << first[i].name();
  }
  auto sorted = names(first);
  EXPECT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));
  EXPECT_THAT(sorted, ElementsAre("0.0.0.0_443", "0.0.0.0_8000", "0.0.0.0_9080", "240.240.0.2_5432",
                                  "virtualInbound", "virtualOutbound"));
}

TEST(EgressHostMatchesTest, NamespaceAndDnsParts) {
  Service s = makeService("reviews.bookinfo.svc.cluster.local", "", {}, "bookinfo");
  EXPECT_TRUE(egressHostMatches("*/*", s, "default"));
  EXPECT_TRUE(egressHostMatches("./*", s, "bookinfo"));
  EXPECT_FALSE(egressHostMatches("./*", s, "default"));
  EXPECT_TRUE(egressHostMatches("bookinfo/reviews.bookinfo.svc.cluster.local", s, "default"));
  EXPECT_TRUE(egressHostMatches("*/*.svc.cluster.local", s, "default"));
  EXPECT_FALSE(egressHostMatches("*/*.example.com", s, "default"));
  EXPECT_FALSE(egressHostMatches("~/*", s, "default"));
  EXPECT_FALSE(egressHostMatches("prod/*", s, "default"));
}

}  // namespace
}  // namespace sheave::control
