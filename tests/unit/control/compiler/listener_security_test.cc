#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/compiler/listener_generator.h"
#include "control/model/config_set.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"

namespace sheave::control {
namespace {

using envoy::config::listener::v3::FilterChain;
using envoy::config::listener::v3::Listener;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
using ::testing::ElementsAre;

class ListenerSecurityTest : public ::testing::Test {
 protected:
  ListenerSecurityTest() {
    proxy_.ips = {"10.1.0.5"};
    proxy_.namespace_name = "default";
    service_.hostname = "reviews.default.svc.cluster.local";
    service_.namespace_name = "default";
    addInstance(9080, Protocol::kHttp);
    addInstance(3306, Protocol::kTcp);
    addInstance(8443, Protocol::kTls);
  }
  void addInstance(uint32_t port, Protocol protocol) {
    ProxyContext::ServiceInstance instance;
    instance.service = &service_;
    instance.service_port = port;
    instance.target_port = port;
    instance.protocol = protocol;
    proxy_.service_instances.push_back(instance);
  }
  Listener inbound(std::optional<PeerAuthenticationPolicy> policy) {
    ListenerInputs in;
    in.proxy = &proxy_;
    in.mesh = &mesh_;
    in.peer_authentication = std::move(policy);
    in.inbound_http_filters = http_filters_;
    in.inbound_network_filters = network_filters_;
    std::vector<ResourceError> errors;
    for (auto& l : buildSidecarListeners(in, &errors)) {
      if (l.name() == "virtualInbound") return l;
    }
    ADD_FAILURE() << "no virtualInbound";
    return {};
  }
  // "<transport>[ alpn,alpn][ mtls]" per chain of a port.
  static std::vector<std::string> chainsFor(const Listener& l, uint32_t port) {
    std::vector<std::string> out;
    for (const auto& chain : l.filter_chains()) {
      const auto& m = chain.filter_chain_match();
      uint32_t p = m.has_destination_port() ? m.destination_port().value() : 0;
      if (p != port || chain.name() == "virtualInbound-blackhole") continue;
      std::string s = m.transport_protocol();
      std::string alpns;
      for (const auto& a : m.application_protocols()) alpns += (alpns.empty() ? "" : ",") + a;
      if (!alpns.empty()) s += " " + alpns;
      if (chain.has_transport_socket()) s += " mtls";
      out.push_back(s);
    }
    return out;
  }
  static const FilterChain* firstChain(const Listener& l, uint32_t port, bool mtls) {
    for (const auto& chain : l.filter_chains()) {
      const auto& m = chain.filter_chain_match();
      if (m.has_destination_port() && m.destination_port().value() == port &&
          chain.has_transport_socket() == mtls) {
        return &chain;
      }
    }
    return nullptr;
  }

  ProxyContext proxy_;
  MeshConfig mesh_;
  Service service_;
  std::vector<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter>
      http_filters_;
  std::vector<envoy::config::listener::v3::Filter> network_filters_;
};

TEST_F(ListenerSecurityTest, NoPolicyKeepsPlaintextOnly) {
  auto l = inbound(std::nullopt);
  EXPECT_THAT(chainsFor(l, 9080), ElementsAre("raw_buffer"));
  EXPECT_THAT(chainsFor(l, 3306), ElementsAre("raw_buffer"));
}

TEST_F(ListenerSecurityTest, StrictHasOnlyMtlsChains) {
  auto l = inbound(PeerAuthenticationPolicy(MutualTLSMode::kStrict));
  EXPECT_THAT(chainsFor(l, 9080), ElementsAre("tls mtls"));
  EXPECT_THAT(chainsFor(l, 3306), ElementsAre("tls mtls"));
  // The application's TLS travels inside mTLS as bytes (tcp_proxy), never
  // terminated by the sidecar.
  EXPECT_THAT(chainsFor(l, 8443), ElementsAre("tls mtls"));
  const FilterChain* app_tls = firstChain(l, 8443, true);
  EXPECT_EQ(app_tls->filters(app_tls->filters_size() - 1).name(),
            "envoy.filters.network.tcp_proxy");
  // Passthrough (undeclared ports): sniffed, mTLS only.
  EXPECT_THAT(chainsFor(l, 0),
              ElementsAre("tls istio-http/1.0,istio-http/1.1,istio-h2 mtls", "tls mtls"));

  const FilterChain* chain = firstChain(l, 9080, true);
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(chain->transport_socket().name(), "envoy.transport_sockets.tls");
  DownstreamTlsContext tls;
  ASSERT_TRUE(chain->transport_socket().typed_config().UnpackTo(&tls));
  EXPECT_TRUE(tls.require_client_certificate().value());
  const auto& common = tls.common_tls_context();
  ASSERT_EQ(common.tls_certificate_sds_secret_configs_size(), 1);
  EXPECT_EQ(common.tls_certificate_sds_secret_configs(0).name(), "default");
  EXPECT_TRUE(common.tls_certificate_sds_secret_configs(0).sds_config().has_ads());
  const auto& combined = common.combined_validation_context();
  EXPECT_EQ(combined.validation_context_sds_secret_config().name(), "ROOTCA");
  EXPECT_TRUE(combined.validation_context_sds_secret_config().sds_config().has_ads());
  ASSERT_EQ(combined.default_validation_context().match_typed_subject_alt_names_size(), 1);
  const auto& san = combined.default_validation_context().match_typed_subject_alt_names(0);
  EXPECT_EQ(san.san_type(),
            envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher::URI);
  EXPECT_EQ(san.matcher().prefix(), "spiffe://cluster.local/");
  EXPECT_THAT(common.alpn_protocols(), ElementsAre("h2", "http/1.1"));

  // tls_inspector is needed on every workload port now (only the
  // blackhole port 15006 skips it).
  bool tls_inspector = false;
  for (const auto& f : l.listener_filters()) {
    if (f.name() == "envoy.filters.listener.tls_inspector") {
      tls_inspector = true;
      EXPECT_EQ(f.filter_disabled().destination_port_range().start(), 15006);
    }
  }
  EXPECT_TRUE(tls_inspector);
}

TEST_F(ListenerSecurityTest, PermissiveAcceptsBothAndPassesApplicationTls) {
  auto l = inbound(PeerAuthenticationPolicy(MutualTLSMode::kPermissive));
  EXPECT_THAT(
      chainsFor(l, 9080),
      ElementsAre("tls istio,istio-peer-exchange,istio-http/1.0,istio-http/1.1,istio-h2 mtls",
                  "raw_buffer"));
  EXPECT_THAT(
      chainsFor(l, 8443),
      ElementsAre("tls istio,istio-peer-exchange,istio-http/1.0,istio-http/1.1,istio-h2 mtls",
                  "tls", "raw_buffer"));
  EXPECT_THAT(
      chainsFor(l, 0),
      ElementsAre("tls istio-http/1.0,istio-http/1.1,istio-h2 mtls", "raw_buffer http/1.1,h2c",
                  "tls istio-peer-exchange,istio mtls", "raw_buffer", "tls"));
  DownstreamTlsContext tls;
  ASSERT_TRUE(firstChain(l, 3306, true)->transport_socket().typed_config().UnpackTo(&tls));
  EXPECT_THAT(tls.common_tls_context().alpn_protocols(),
              ElementsAre("istio-peer-exchange", "h2", "http/1.1"));
}

TEST_F(ListenerSecurityTest, PortLevelOverridesAndDisable) {
  PeerAuthenticationPolicy policy(MutualTLSMode::kStrict);
  policy.setPortMode(3306, MutualTLSMode::kDisable);
  auto l = inbound(policy);
  EXPECT_THAT(chainsFor(l, 9080), ElementsAre("tls mtls"));
  EXPECT_THAT(chainsFor(l, 3306), ElementsAre("raw_buffer"));
  // The tls_inspector is switched off on the plaintext-only port.
  for (const auto& f : l.listener_filters()) {
    if (f.name() != "envoy.filters.listener.tls_inspector") continue;
    ASSERT_TRUE(f.has_filter_disabled());
    const auto& rules = f.filter_disabled().or_match().rules();
    ASSERT_EQ(rules.size(), 2);
    EXPECT_EQ(rules[0].destination_port_range().start(), 3306);
    EXPECT_EQ(rules[1].destination_port_range().start(), 15006);
  }
  auto disabled = inbound(PeerAuthenticationPolicy(MutualTLSMode::kDisable));
  EXPECT_THAT(chainsFor(disabled, 9080), ElementsAre("raw_buffer"));
}

TEST_F(ListenerSecurityTest, SecurityFiltersAndPathNormalization) {
  envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter jwt;
  jwt.set_name("envoy.filters.http.jwt_authn");
  http_filters_.push_back(jwt);
  envoy::config::listener::v3::Filter rbac;
  rbac.set_name("envoy.filters.network.rbac");
  network_filters_.push_back(rbac);
  mesh_.path_normalization = MeshConfig::PathNormalization::kDecodeAndMergeSlashes;
  auto l = inbound(PeerAuthenticationPolicy(MutualTLSMode::kStrict));
  HttpConnectionManager hcm;
  ASSERT_TRUE(firstChain(l, 9080, true)->filters(0).typed_config().UnpackTo(&hcm));
  std::vector<std::string> names;
  for (const auto& f : hcm.http_filters()) names.push_back(f.name());
  EXPECT_THAT(names, ElementsAre("istio.metadata_exchange", "envoy.filters.http.jwt_authn",
                                 "envoy.filters.http.fault", "envoy.filters.http.cors",
                                 "istio.stats", "envoy.filters.http.router"));
  EXPECT_TRUE(hcm.normalize_path().value());
  EXPECT_TRUE(hcm.merge_slashes());
  EXPECT_EQ(hcm.path_with_escaped_slashes_action(), HttpConnectionManager::UNESCAPE_AND_FORWARD);
  const FilterChain* tcp = firstChain(l, 3306, true);
  // Istio's order: the exchange before authorization (a denied caller is known), the metrics
  // just before the proxy.
  std::vector<std::string> tcp_names;
  for (const auto& f : tcp->filters()) tcp_names.push_back(f.name());
  EXPECT_THAT(tcp_names, ElementsAre("istio.metadata_exchange", "envoy.filters.network.rbac",
                                     "istio.stats", "envoy.filters.network.tcp_proxy"));
}

TEST_F(ListenerSecurityTest, SetInboundSecurityFromConfig) {
  proxy_.labels = {{"app", "reviews"}};
  ConfigSet config = parseDocuments(
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n"
      "  name: default\n  namespace: sheave-system\nspec:\n  mtls:\n    mode: STRICT\n---\n"
      "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n"
      "  name: jwt\n  namespace: default\nspec:\n  jwtRules:\n  - issuer: iss\n"
      "    jwks: '{\"keys\":[]}'\n---\n"
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n"
      "  name: deny\n  namespace: default\nspec:\n  action: DENY\n  rules: [{}]\n---\n"
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n"
      "  name: allow\n  namespace: default\nspec:\n  rules: [{}]\n",
      "test.yaml");
  ASSERT_TRUE(config.errors.empty()) << config.errors[0].toString();
  ListenerInputs in;
  in.proxy = &proxy_;
  in.mesh = &mesh_;
  std::vector<ResourceError> errors;
  setInboundSecurity(&in, config, nullptr, &errors);
  EXPECT_TRUE(errors.empty());
  ASSERT_TRUE(in.peer_authentication.has_value());
  EXPECT_EQ(in.peer_authentication->mode(), MutualTLSMode::kStrict);
  std::vector<std::string> names;
  for (const auto& f : in.inbound_http_filters) names.push_back(f.name());
  EXPECT_THAT(names, ElementsAre("envoy.filters.http.jwt_authn", "envoy.filters.http.rbac",
                                 "envoy.filters.http.rbac"));
  ASSERT_EQ(in.inbound_network_filters.size(), 2u);

  http_filters_ = in.inbound_http_filters;
  network_filters_ = in.inbound_network_filters;
  auto l = inbound(in.peer_authentication);
  HttpConnectionManager hcm;
  ASSERT_TRUE(firstChain(l, 9080, true)->filters(0).typed_config().UnpackTo(&hcm));
  ASSERT_EQ(hcm.http_filters_size(), 8);
  EXPECT_EQ(hcm.http_filters(0).name(), "istio.metadata_exchange");
  EXPECT_EQ(hcm.http_filters(1).name(), "envoy.filters.http.jwt_authn");
  EXPECT_EQ(hcm.http_filters(6).name(), "istio.stats");
  EXPECT_EQ(hcm.http_filters(7).name(), "envoy.filters.http.router");
  // Istio's default BASE normalization on inbound.
  EXPECT_TRUE(hcm.normalize_path().value());
  EXPECT_FALSE(hcm.merge_slashes());
}

}  // namespace
}  // namespace sheave::control
