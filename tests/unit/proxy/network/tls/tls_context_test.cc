#include "proxy/network/tls/tls_context.h"

#include <gtest/gtest.h>

#include "proxy/network/tls/secret_manager.h"
#include "tls_test_util.h"

namespace sheave::network::tls::testing {
namespace {

std::string serverError(const tlsv3::DownstreamTlsContext& config,
                        const SecretManager* secrets = nullptr) {
  auto ctx = TlsContext::createServer(config, secrets);
  return ctx.ok() ? "" : ctx.error().message();
}

std::string clientError(const tlsv3::UpstreamTlsContext& config) {
  auto ctx = TlsContext::createClient(config, nullptr);
  return ctx.ok() ? "" : ctx.error().message();
}

class TlsContextTest : public ::testing::Test {
 protected:
  const TestPki& pki_ = TestPki::get();
};

TEST_F(TlsContextTest, DefaultsAndFiles) {
  TempDir dir;
  auto config = serverConfig(pki_.server);
  auto* cert = config.mutable_common_tls_context()->mutable_tls_certificates(0);
  cert->mutable_certificate_chain()->set_filename(dir.write("cert.pem", pki_.server.certPem()));
  cert->mutable_private_key()->set_filename(dir.write("key.pem", pki_.server.keyPem()));
  auto ctx = TlsContext::createServer(config, nullptr);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message();
  EXPECT_TRUE((*ctx)->isServer());
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*ctx)->sslCtx()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version((*ctx)->sslCtx()), TLS1_3_VERSION);

  auto client = TlsContext::createClient(clientConfig(&pki_.ca), nullptr);
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_FALSE((*client)->isServer());
  EXPECT_EQ((*client)->sni(), "server.test");
  EXPECT_TRUE((*client)->hasValidation());
}

TEST_F(TlsContextTest, CertificateErrorsNameTheField) {
  auto config = serverConfig(pki_.server);
  auto* cert = config.mutable_common_tls_context()->mutable_tls_certificates(0);
  cert->mutable_private_key()->set_filename("/nonexistent/key.pem");
  EXPECT_EQ(serverError(config),
            "common_tls_context.tls_certificates[0].private_key: cannot read file "
            "'/nonexistent/key.pem': No such file or directory");

  cert->mutable_private_key()->set_inline_string(pki_.client.keyPem());
  EXPECT_EQ(serverError(config),
            "common_tls_context.tls_certificates[0].private_key: does not match the certificate "
            "in certificate_chain");

  cert->mutable_private_key()->set_inline_string(pki_.server.keyPem());
  cert->mutable_certificate_chain()->set_inline_string(
      "-----BEGIN CERTIFICATE-----\nnot base64!\n"
      "-----END CERTIFICATE-----\n");
  EXPECT_NE(serverError(config).find(
                "common_tls_context.tls_certificates[0].certificate_chain: no PEM certificate"),
            std::string::npos)
      << serverError(config);

  tlsv3::DownstreamTlsContext empty;
  EXPECT_NE(serverError(empty).find("a server needs a certificate"), std::string::npos);
}

TEST_F(TlsContextTest, ParameterErrors) {
  auto config = serverConfig(pki_.server);
  auto* params = config.mutable_common_tls_context()->mutable_tls_params();
  params->add_cipher_suites("ECDHE-ECDSA-AES128-GCM-SHA256");
  params->add_cipher_suites("NOT-A-CIPHER");
  EXPECT_EQ(serverError(config),
            "common_tls_context.tls_params.cipher_suites[1]: unknown cipher suite 'NOT-A-CIPHER'");
  params->clear_cipher_suites();
  params->add_ecdh_curves("P-999");
  EXPECT_EQ(serverError(config),
            "common_tls_context.tls_params.ecdh_curves[0]: unknown curve 'P-999'");
  params->clear_ecdh_curves();
  params->set_tls_minimum_protocol_version(tlsv3::TlsParameters::TLSv1_3);
  params->set_tls_maximum_protocol_version(tlsv3::TlsParameters::TLSv1_2);
  EXPECT_NE(serverError(config).find("is above tls_maximum_protocol_version"), std::string::npos);
  params->Clear();
  config.mutable_common_tls_context()->add_alpn_protocols("");
  EXPECT_EQ(serverError(config),
            "common_tls_context.alpn_protocols[0]: must be 1 to 255 bytes long");
}

TEST_F(TlsContextTest, ValidationErrors) {
  auto config = clientConfig(nullptr);
  auto* v = config.mutable_common_tls_context()->mutable_validation_context();
  auto* m = v->add_match_typed_subject_alt_names();
  m->set_san_type(tlsv3::SubjectAltNameMatcher::URI);
  m->mutable_matcher()->set_exact("spiffe://x");
  EXPECT_NE(clientError(config).find("SAN matching without trusted_ca"), std::string::npos);
  v->mutable_trusted_ca()->set_inline_string("garbage");
  EXPECT_NE(clientError(config).find("validation_context.trusted_ca: no PEM certificate found"),
            std::string::npos)
      << clientError(config);
  v->mutable_trusted_ca()->set_inline_string(pki_.ca.certPem());
  m->set_san_type(tlsv3::SubjectAltNameMatcher::SAN_TYPE_UNSPECIFIED);
  EXPECT_EQ(clientError(config),
            "common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: "
            "required");
  m->set_san_type(tlsv3::SubjectAltNameMatcher::URI);
  EXPECT_EQ(clientError(config), "");

  auto server = serverConfig(pki_.server);
  server.mutable_require_client_certificate()->set_value(true);
  EXPECT_NE(serverError(server).find("require_client_certificate: needs a validation context"),
            std::string::npos);
}

TEST_F(TlsContextTest, SdsReferences) {
  SecretManager secrets;
  tlsv3::DownstreamTlsContext config;
  config.mutable_common_tls_context()->add_tls_certificate_sds_secret_configs()->set_name("cert");
  EXPECT_NE(
      serverError(config, &secrets)
          .find("common_tls_context.tls_certificate_sds_secret_configs[0]: no secret named 'cert'"),
      std::string::npos)
      << serverError(config, &secrets);

  SecretManager::Secret ca;
  ca.set_name("cert");
  ca.mutable_validation_context()->mutable_trusted_ca()->set_inline_string(pki_.ca.certPem());
  ASSERT_TRUE(secrets.setSecret(ca).ok());
  EXPECT_NE(serverError(config, &secrets).find("is not a tls_certificate secret"),
            std::string::npos);

  // Istio's form: SAN matchers in the default context, the root CA from a named secret.
  SecretManager::Secret cert;
  cert.set_name("default");
  *cert.mutable_tls_certificate() = inlineCert(pki_.server);
  ASSERT_TRUE(secrets.setSecret(cert).ok());
  ca.set_name("ROOTCA");
  ASSERT_TRUE(secrets.setSecret(ca).ok());
  tlsv3::DownstreamTlsContext istio;
  auto* common = istio.mutable_common_tls_context();
  common->add_tls_certificate_sds_secret_configs()->set_name("default");
  auto* combined = common->mutable_combined_validation_context();
  combined->mutable_validation_context_sds_secret_config()->set_name("ROOTCA");
  auto* m = combined->mutable_default_validation_context()->add_match_subject_alt_names();
  m->set_prefix("spiffe://cluster.local/");
  istio.mutable_require_client_certificate()->set_value(true);
  auto ctx = TlsContext::createServer(istio, &secrets);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message();
  EXPECT_TRUE((*ctx)->hasValidation());
  std::string detail;
  EXPECT_TRUE((*ctx)->verifyLeaf(pki_.client.cert(), detail));
  EXPECT_FALSE((*ctx)->verifyLeaf(pki_.server.cert(), detail));
  EXPECT_EQ(detail, "SAN matcher");
}

TEST_F(TlsContextTest, CertificateHashPin) {
  auto config = clientConfig(&pki_.ca);
  auto* v = config.mutable_common_tls_context()->mutable_validation_context();
  v->add_verify_certificate_hash("not-hex");
  EXPECT_NE(clientError(config).find("verify_certificate_hash[0]: not a hex SHA-256"),
            std::string::npos);
  v->clear_verify_certificate_hash();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(pki_.server.cert(), EVP_sha256(), md, &len);
  std::string colons;
  for (unsigned int i = 0; i < len; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof(buf), i == 0 ? "%02X" : ":%02X", md[i]);
    colons += buf;
  }
  v->add_verify_certificate_hash(colons);
  auto ctx = TlsContext::createClient(config, nullptr);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message();
  std::string detail;
  EXPECT_TRUE((*ctx)->verifyLeaf(pki_.server.cert(), detail));
  EXPECT_FALSE((*ctx)->verifyLeaf(pki_.server2.cert(), detail));
}

TEST_F(TlsContextTest, DescribeCertificate) {
  PeerCertificateInfo info = describeCertificate(pki_.client.cert());
  EXPECT_EQ(info.uri_sans, std::vector<std::string>{"spiffe://cluster.local/ns/default/sa/test"});
  EXPECT_TRUE(info.dns_sans.empty());
  EXPECT_EQ(info.subject, "CN=client,O=sheave-test");
  EXPECT_FALSE(info.serial_number.empty());
  EXPECT_EQ(info.serial_number.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(SecretManagerTest, StaticSecretsAndWatches) {
  const TestPki& pki = TestPki::get();
  SecretManager secrets;
  google::protobuf::RepeatedPtrField<SecretManager::Secret> list;
  auto* a = list.Add();
  a->set_name("a");
  *a->mutable_tls_certificate() = inlineCert(pki.server);
  auto* b = list.Add();
  b->set_name("a");
  b->mutable_validation_context()->mutable_trusted_ca()->set_inline_string(pki.ca.certPem());
  auto status = secrets.addStaticSecrets(list);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message(), "[1].name: duplicate secret name 'a'");
  EXPECT_EQ(secrets.find("a"), nullptr);  // all or nothing

  b->set_name("b");
  b->mutable_validation_context()->mutable_trusted_ca()->set_filename("/nonexistent.pem");
  status = secrets.addStaticSecrets(list);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("[1].validation_context.trusted_ca: cannot read file"),
            std::string::npos)
      << status.error().message();

  b->mutable_validation_context()->mutable_trusted_ca()->set_inline_string(pki.ca.certPem());
  ASSERT_TRUE(secrets.addStaticSecrets(list).ok());
  ASSERT_NE(secrets.find("b"), nullptr);

  int calls = 0;
  auto watch = secrets.watch("a", [&] { ++calls; });
  ASSERT_TRUE(secrets.setSecret(*a).ok());
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(secrets.setSecret(*b).ok());
  EXPECT_EQ(calls, 1);
  watch.reset();
  ASSERT_TRUE(secrets.setSecret(*a).ok());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace sheave::network::tls::testing
