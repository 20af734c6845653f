#include "proxy/network/tls/tls_transport_socket.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tls_test_util.h"

namespace sheave::network::tls::testing {
namespace {

constexpr const char* kSpiffe = "spiffe://cluster.local/ns/default/sa/test";

using TlsTransportSocketTest = TlsFixture;

void requireClientCert(tlsv3::DownstreamTlsContext& config, const TestCert& ca,
                       std::string uri_san = {}) {
  config.mutable_require_client_certificate()->set_value(true);
  auto* v = config.mutable_common_tls_context()->mutable_validation_context();
  v->mutable_trusted_ca()->set_inline_string(ca.certPem());
  if (!uri_san.empty()) {
    auto* m = v->add_match_typed_subject_alt_names();
    m->set_san_type(tlsv3::SubjectAltNameMatcher::URI);
    m->mutable_matcher()->set_exact(uri_san);
  }
}

TEST_F(TlsTransportSocketTest, HandshakeAndLargeEchoBothWays) {
  listen(server(serverConfig(pki_.server)));
  auto c = connect(client(clientConfig(&pki_.ca)));
  ASSERT_TRUE(handshake(*c)) << c->conn->transportFailureReason();
  EXPECT_TRUE(c->tls->handshakeComplete());
  EXPECT_EQ(c->tls->protocolVersion(), "TLSv1.3");  // Envoy's default maximum
  ASSERT_NE(c->conn->peerCertificate(), nullptr);
  EXPECT_EQ(c->conn->peerCertificate()->dns_sans, std::vector<std::string>{"server.test"});
  EXPECT_TRUE(c->conn->peerCertificate()->validated);

  EXPECT_TRUE(echo(*c, "hello"));
  const std::string big = pattern(3 * 1024 * 1024 + 11);
  EXPECT_TRUE(echo(*c, big));
  ASSERT_EQ(servers_.size(), 1u);
  EXPECT_TRUE(servers_[0]->rec.connected());
  EXPECT_EQ(servers_[0]->conn->peerCertificate(), nullptr);  // no client certificate asked for

  // A clean close: the server sees the close_notify/FIN as a remote close.
  c->conn->close(ConnectionCloseType::kFlushWrite);
  EXPECT_TRUE(serverClosed());
  EXPECT_TRUE(servers_[0]->conn->failureReason().empty());
}

TEST_F(TlsTransportSocketTest, MutualTlsWithSpiffeSan) {
  auto config = serverConfig(pki_.server);
  requireClientCert(config, pki_.ca, kSpiffe);
  listen(server(config));
  auto cc = clientConfig(&pki_.ca);
  *cc.mutable_common_tls_context()->add_tls_certificates() = inlineCert(pki_.client);
  auto c = connect(client(cc));
  ASSERT_TRUE(handshake(*c));
  ASSERT_TRUE(echo(*c, "mtls"));
  const PeerCertificateInfo* peer = servers_[0]->conn->peerCertificate();
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(peer->uri_sans, std::vector<std::string>{kSpiffe});
  EXPECT_TRUE(peer->validated);
  EXPECT_EQ(peer->subject, "CN=client,O=sheave-test");
  EXPECT_FALSE(peer->serial_number.empty());
  auto now = std::chrono::system_clock::now();
  EXPECT_LT(peer->not_before, now);
  EXPECT_GT(peer->not_after, now);
}

TEST_F(TlsTransportSocketTest, MissingClientCertificateIsRejected) {
  auto config = serverConfig(pki_.server);
  requireClientCert(config, pki_.ca);
  listen(server(config));
  auto c = connect(client(clientConfig(&pki_.ca)));
  ASSERT_TRUE(serverClosed());
  EXPECT_NE(servers_[0]->conn->transportFailureReason().find("TLS_error:|"), std::string::npos);
  EXPECT_NE(servers_[0]->conn->transportFailureReason().find("certificate"), std::string::npos)
      << servers_[0]->conn->transportFailureReason();
  // TLS 1.3: the client may finish its side first, then learns of the alert.
  EXPECT_TRUE(runUntil(loop_, [&] { return c->rec.closed(); }));
  EXPECT_TRUE(c->rec.data.empty());
}

TEST_F(TlsTransportSocketTest, ClientSanMismatchIsRejected) {
  auto config = serverConfig(pki_.server);
  requireClientCert(config, pki_.ca, "spiffe://cluster.local/ns/default/sa/other");
  listen(server(config));
  auto cc = clientConfig(&pki_.ca);
  *cc.mutable_common_tls_context()->add_tls_certificates() = inlineCert(pki_.client);
  auto c = connect(client(cc));
  ASSERT_TRUE(serverClosed());
  std::string_view reason = servers_[0]->conn->transportFailureReason();
  EXPECT_NE(reason.find("SAN matcher"), std::string::npos) << reason;
  EXPECT_NE(reason.find(":TLS_error_end"), std::string::npos) << reason;
  EXPECT_TRUE(runUntil(loop_, [&] { return c->rec.closed(); }));
}

TEST_F(TlsTransportSocketTest, ServerDnsSanMatchOnClient) {
  listen(server(serverConfig(pki_.server)));
  auto good = clientConfig(&pki_.ca);
  auto* m = good.mutable_common_tls_context()
                ->mutable_validation_context()
                ->add_match_typed_subject_alt_names();
  m->set_san_type(tlsv3::SubjectAltNameMatcher::DNS);
  m->mutable_matcher()->set_exact("server.test");
  auto c1 = connect(client(good));
  EXPECT_TRUE(handshake(*c1));

  m->mutable_matcher()->set_exact("elsewhere.test");
  auto c2 = connect(client(good));
  EXPECT_FALSE(handshake(*c2));
  EXPECT_NE(c2->conn->transportFailureReason().find("SAN matcher"), std::string::npos)
      << c2->conn->transportFailureReason();
}

TEST_F(TlsTransportSocketTest, WrongCaIsRejected) {
  listen(server(serverConfig(pki_.server)));
  auto c = connect(client(clientConfig(&pki_.other_ca)));
  EXPECT_FALSE(handshake(*c));
  std::string_view reason = c->conn->transportFailureReason();
  EXPECT_NE(reason.find("certificate verify failed"), std::string::npos) << reason;
  EXPECT_FALSE(c->conn->failureReason().empty());

  // And a client certificate from another CA, on the server side.
  auto config = serverConfig(pki_.server);
  requireClientCert(config, pki_.ca, kSpiffe);
  servers_.clear();
  listen(server(config));
  auto cc = clientConfig(&pki_.ca);
  *cc.mutable_common_tls_context()->add_tls_certificates() = inlineCert(pki_.foreign);
  auto c2 = connect(client(cc));
  ASSERT_TRUE(serverClosed());
  EXPECT_NE(servers_[0]->conn->transportFailureReason().find("unable to get local issuer"),
            std::string::npos)
      << servers_[0]->conn->transportFailureReason();
}

TEST_F(TlsTransportSocketTest, ExpiredCertificateIsRejectedUnlessAllowed) {
  listen(server(serverConfig(pki_.expired)));
  auto c = connect(client(clientConfig(&pki_.ca)));
  EXPECT_FALSE(handshake(*c));
  EXPECT_NE(c->conn->transportFailureReason().find("certificate has expired"), std::string::npos)
      << c->conn->transportFailureReason();

  auto lenient = clientConfig(&pki_.ca);
  lenient.mutable_common_tls_context()->mutable_validation_context()->set_allow_expired_certificate(
      true);
  auto c2 = connect(client(lenient));
  EXPECT_TRUE(handshake(*c2)) << c2->conn->transportFailureReason();
}

TEST_F(TlsTransportSocketTest, ProtocolVersions) {
  auto config = serverConfig(pki_.server);
  config.mutable_common_tls_context()->mutable_tls_params()->set_tls_maximum_protocol_version(
      tlsv3::TlsParameters::TLSv1_2);
  listen(server(config));
  auto c = connect(client(clientConfig(&pki_.ca)));
  ASSERT_TRUE(handshake(*c));
  EXPECT_EQ(c->tls->protocolVersion(), "TLSv1.2");
  EXPECT_TRUE(echo(*c, pattern(100000)));

  auto only13 = clientConfig(&pki_.ca);
  only13.mutable_common_tls_context()->mutable_tls_params()->set_tls_minimum_protocol_version(
      tlsv3::TlsParameters::TLSv1_3);
  auto c2 = connect(client(only13));
  EXPECT_FALSE(handshake(*c2));
  EXPECT_NE(c2->conn->transportFailureReason().find("TLS_error"), std::string::npos);
}

TEST_F(TlsTransportSocketTest, CipherSuiteOnTls12) {
  auto config = serverConfig(pki_.server);
  auto* params = config.mutable_common_tls_context()->mutable_tls_params();
  params->set_tls_maximum_protocol_version(tlsv3::TlsParameters::TLSv1_2);
  params->add_cipher_suites("[ECDHE-ECDSA-CHACHA20-POLY1305|ECDHE-RSA-CHACHA20-POLY1305]");
  params->add_ecdh_curves("P-256");
  listen(server(config));
  auto c = connect(client(clientConfig(&pki_.ca)));
  ASSERT_TRUE(handshake(*c));
  EXPECT_STREQ(SSL_CIPHER_get_name(SSL_get_current_cipher(c->tls->ssl())),
               "ECDHE-ECDSA-CHACHA20-POLY1305");
}

TEST_F(TlsTransportSocketTest, Alpn) {
  auto config = serverConfig(pki_.server);
  config.mutable_common_tls_context()->add_alpn_protocols("h2");
  config.mutable_common_tls_context()->add_alpn_protocols("http/1.1");
  listen(server(config));

  auto h11 = clientConfig(&pki_.ca);
  h11.mutable_common_tls_context()->add_alpn_protocols("http/1.1");
  auto c1 = connect(client(h11));
  ASSERT_TRUE(handshake(*c1));
  EXPECT_EQ(c1->conn->negotiatedProtocol(), "http/1.1");

  auto both = clientConfig(&pki_.ca);
  both.mutable_common_tls_context()->add_alpn_protocols("http/1.1");
  both.mutable_common_tls_context()->add_alpn_protocols("h2");
  auto c2 = connect(client(both));
  ASSERT_TRUE(handshake(*c2));
  EXPECT_EQ(c2->conn->negotiatedProtocol(), "h2");  // the server's preference
  ASSERT_TRUE(
      runUntil(loop_, [&] { return servers_.size() == 2 && servers_[1]->rec.connected(); }));
  EXPECT_EQ(servers_[1]->conn->negotiatedProtocol(), "h2");

  auto none = clientConfig(&pki_.ca);
  none.mutable_common_tls_context()->add_alpn_protocols("spdy/3");
  auto c3 = connect(client(none));
  ASSERT_TRUE(handshake(*c3));
  EXPECT_EQ(c3->conn->negotiatedProtocol(), "");
}

class TlsResumptionTest : public TlsFixture,
                          public ::testing::WithParamInterface<tlsv3::TlsParameters::TlsProtocol> {
};

TEST_P(TlsResumptionTest, SecondConnectionResumes) {
  auto config = serverConfig(pki_.server);
  config.mutable_common_tls_context()->mutable_tls_params()->set_tls_maximum_protocol_version(
      GetParam());
  listen(server(config));
  auto factory = client(clientConfig(&pki_.ca));
  auto c1 = connect(factory);
  ASSERT_TRUE(handshake(*c1));
  ASSERT_TRUE(echo(*c1, "first"));  // TLS 1.3 tickets arrive after the handshake
  EXPECT_FALSE(c1->tls->sessionReused());
  c1->conn->close(ConnectionCloseType::kFlushWrite);
  ASSERT_TRUE(serverClosed(0));

  auto c2 = connect(factory);
  ASSERT_TRUE(handshake(*c2));
  ASSERT_TRUE(echo(*c2, "second"));
  EXPECT_TRUE(c2->tls->sessionReused());
  EXPECT_TRUE(servers_[1]->tls->sessionReused());
  // The resumed session still carries the server's certificate.
  ASSERT_NE(c2->conn->peerCertificate(), nullptr);
  EXPECT_EQ(c2->conn->peerCertificate()->dns_sans, std::vector<std::string>{"server.test"});
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsResumptionTest,
                         ::testing::Values(tlsv3::TlsParameters::TLSv1_2,
                                           tlsv3::TlsParameters::TLSv1_3));

TEST_F(TlsTransportSocketTest, SecretRotationAppliesToNewHandshakesOnly) {
  SecretManager::Secret secret;
  secret.set_name("server-cert");
  *secret.mutable_tls_certificate() = inlineCert(pki_.server);
  ASSERT_TRUE(secrets_.setSecret(secret).ok());
  tlsv3::DownstreamTlsContext config;
  config.mutable_common_tls_context()->add_tls_certificate_sds_secret_configs()->set_name(
      "server-cert");
  auto factory = server(config);
  listen(factory);
  auto client_factory = client(clientConfig(&pki_.ca, ""));

  auto c1 = connect(client_factory);
  ASSERT_TRUE(handshake(*c1));
  ASSERT_TRUE(echo(*c1, "before"));
  EXPECT_EQ(c1->conn->peerCertificate()->dns_sans, std::vector<std::string>{"server.test"});

  *secret.mutable_tls_certificate() = inlineCert(pki_.server2);
  ASSERT_TRUE(secrets_.setSecret(secret).ok());
  EXPECT_EQ(factory->rotations(), 1u);

  auto c2 = connect(client_factory, "server2.test");
  ASSERT_TRUE(handshake(*c2));
  EXPECT_EQ(c2->conn->peerCertificate()->dns_sans, std::vector<std::string>{"server2.test"});
  EXPECT_FALSE(c2->tls->sessionReused());   // the new context has new ticket keys
  EXPECT_TRUE(echo(*c1, pattern(200000)));  // the open connection keeps its context
  EXPECT_TRUE(echo(*c2, "after"));

  // A broken update is refused and changes nothing.
  secret.mutable_tls_certificate()->mutable_private_key()->set_inline_string(pki_.client.keyPem());
  auto status = secrets_.setSecret(secret);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("does not match"), std::string::npos);
  EXPECT_EQ(factory->rotations(), 1u);
}

TEST_F(TlsTransportSocketTest, SdsSecretPendingFailsClosedUntilItArrives) {
  // A certificate named over SDS (sds_config set) that has not arrived: the factory exists, its
  // handshakes fail, and the name is what SDS must fetch.
  tlsv3::DownstreamTlsContext config;
  auto* ref = config.mutable_common_tls_context()->add_tls_certificate_sds_secret_configs();
  ref->set_name("default");
  ref->mutable_sds_config()->mutable_ads();
  auto factory = server(config);
  EXPECT_FALSE(factory->ready());
  EXPECT_EQ(secrets_.subscribedNames(), std::vector<std::string>{"default"});
  secrets_.provideLocally("default");
  EXPECT_TRUE(secrets_.subscribedNames().empty());  // an agent in the proxy supplies it
  listen(factory);
  auto client_factory = client(clientConfig(&pki_.ca, ""));

  auto c1 = connect(client_factory);
  ASSERT_TRUE(serverClosed(0));
  EXPECT_EQ(servers_[0]->conn->transportFailureReason(), "Secret is not supplied by SDS");
  EXPECT_TRUE(runUntil(loop_, [&] { return c1->rec.closed(); }));

  SecretManager::Secret secret;
  secret.set_name("default");
  *secret.mutable_tls_certificate() = inlineCert(pki_.server);
  ASSERT_TRUE(secrets_.setSecret(secret).ok());
  EXPECT_TRUE(factory->ready());
  EXPECT_EQ(factory->rotations(), 0u);  // the first usable context is not a rotation
  auto c2 = connect(client_factory);
  ASSERT_TRUE(handshake(*c2));
  EXPECT_TRUE(echo(*c2, "after"));
}

TEST(SecretManagerTest, SubscribedNamesFollowLiveDynamicReferences) {
  SecretManager secrets;
  auto w1 = secrets.watch(
      "ROOTCA", [] {}, /*dynamic=*/true);
  auto w2 = secrets.watch(
      "ROOTCA", [] {}, /*dynamic=*/true);
  auto w3 = secrets.watch("file-cert", [] {});  // static reference: never fetched
  EXPECT_EQ(secrets.subscribedNames(), std::vector<std::string>{"ROOTCA"});
  w1.reset();
  EXPECT_EQ(secrets.subscribedNames(), std::vector<std::string>{"ROOTCA"});
  w2.reset();
  EXPECT_TRUE(secrets.subscribedNames().empty());
}

TEST_F(TlsTransportSocketTest, PlaintextRequestToTlsServerFailsCleanly) {
  listen(server(serverConfig(pki_.server)));
  auto c = connect(nullptr);
  ASSERT_TRUE(runUntil(loop_, [&] { return c->rec.connected(); }));
  Buffer out;
  out.add("GET / HTTP/1.1\r\nHost: server.test\r\n\r\n");
  c->conn->write(out, false);
  ASSERT_TRUE(serverClosed());
  std::string_view reason = servers_[0]->conn->transportFailureReason();
  EXPECT_EQ(reason.rfind("TLS_error:|", 0), 0u) << reason;
  EXPECT_TRUE(runUntil(loop_, [&] { return c->rec.closed(); }));
}

TEST_F(TlsTransportSocketTest, ServerCloseSendsCloseNotify) {
  listen(server(serverConfig(pki_.server)));
  auto c = connect(client(clientConfig(&pki_.ca)));
  ASSERT_TRUE(handshake(*c));
  ASSERT_TRUE(echo(*c, "x"));
  Buffer last;
  last.add("bye");
  servers_[0]->conn->write(last, false);
  servers_[0]->conn->close(ConnectionCloseType::kFlushWrite);
  ASSERT_TRUE(runUntil(loop_, [&] { return c->rec.closed(); }));
  EXPECT_EQ(c->rec.data, "xbye");
  EXPECT_TRUE(c->conn->transportFailureReason().empty()) << c->conn->transportFailureReason();
}

}  // namespace
}  // namespace sheave::network::tls::testing
