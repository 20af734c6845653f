// The proxy's certificate provider against sheave-control's real CA: the IstioCertificateService
// on a grpc++ server with TLS, as on the control plane's 15012. (A test may link both sides; the
// modules themselves never include each other.)
#include "proxy/server/workload_certificate_provider.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../network/loop_test_util.h"
#include "control/ca/bootstrap_token_authenticator.h"
#include "control/ca/ca_service.h"
#include "control/ca/certificate_authenticator.h"
#include "control/ca/certificate_authority.h"
#include "proxy/stats/store.h"

namespace sheave::server {
namespace {

using network::testing::runUntil;
using std::chrono::system_clock;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sheave-wcp-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

ca::SpiffeId identity(const std::string& sa) {
  ca::SpiffeId id;
  id.trust_domain = "cluster.local";
  id.ns = "default";
  id.sa = sa;
  return id;
}

TEST(WorkloadCertificateTest, KeyStaysHereAndTheChainIsChecked) {
  TempDir dir;
  ca::CaOptions options;
  options.ca_dir = dir.path() + "/ca";
  auto authority = ca::CertificateAuthority::open(options);
  ASSERT_TRUE(authority.ok()) << authority.error().message();

  auto mine = generateKeyAndCsr();
  ASSERT_TRUE(mine.ok());
  EXPECT_NE(mine->key_pem.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(mine->csr_pem.find("PRIVATE"), std::string::npos);  // only the public key leaves
  auto chain = (*authority)->sign(mine->csr_pem, identity("reviews"), std::chrono::hours(1));
  ASSERT_TRUE(chain.ok()) << chain.error().message();

  auto issued = parseIssuedChain(*chain, mine->key_pem, system_clock::now());
  ASSERT_TRUE(issued.ok()) << issued.error().message();
  EXPECT_EQ(issued->spiffe_id, "spiffe://cluster.local/ns/default/sa/reviews");
  EXPECT_EQ(issued->chain_pem.find((*chain).back()), std::string::npos);  // root left out
  EXPECT_LT(issued->not_before, issued->not_after);

  // A chain for somebody else's key, an empty chain, garbage, a time outside the validity.
  auto other = generateKeyAndCsr();
  ASSERT_TRUE(other.ok());
  auto wrong = parseIssuedChain(*chain, other->key_pem, system_clock::now());
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("does not hold this proxy's key"), std::string::npos);
  EXPECT_FALSE(parseIssuedChain({}, mine->key_pem, system_clock::now()).ok());
  EXPECT_FALSE(parseIssuedChain({"not pem"}, mine->key_pem, system_clock::now()).ok());
  EXPECT_FALSE(
      parseIssuedChain(*chain, mine->key_pem, system_clock::now() + std::chrono::hours(2)).ok());
}

TEST(WorkloadCertificateTest, RenewalTimeIsTheRatioOfTheLifetimeWithJitter) {
  const auto start = system_clock::time_point(std::chrono::hours(1000));
  const auto end = start + std::chrono::hours(24);
  EXPECT_EQ(renewalTime(start, end, 0.5, 0.0, 0.3), start + std::chrono::hours(12));
  EXPECT_EQ(renewalTime(start, end, 0.5, 0.01, 0.0),
            start + std::chrono::duration_cast<system_clock::duration>(
                        std::chrono::duration<double>(std::chrono::hours(24)) * 0.49));
  EXPECT_EQ(renewalTime(start, end, 0.5, 0.01, 1.0),
            start + std::chrono::duration_cast<system_clock::duration>(
                        std::chrono::duration<double>(std::chrono::hours(24)) * 0.51));
  EXPECT_EQ(renewalTime(start, end, 0.99, 0.5, 1.0), end);  // never past expiry
}

// A CA on 127.0.0.1:0 over TLS, the proxy's loop in the test thread.
class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca::CaOptions options;
    options.ca_dir = dir_.path() + "/ca";
    auto authority = ca::CertificateAuthority::open(options);
    ASSERT_TRUE(authority.ok()) << authority.error().message();
    authority_ = std::move(authority).value();
    certs_ = std::make_shared<ca::CertificateAuthenticator>(*authority_);
    chain_ = std::make_unique<ca::ChainAuthenticator>(
        std::vector<std::shared_ptr<ca::Authenticator>>{tokens_, certs_});
    service_ = std::make_unique<ca::CaService>(*authority_, *chain_);
    auto serving = authority_->issueServingCertificate({"istiod.sheave-system.svc"});
    ASSERT_TRUE(serving.ok());
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort(
        "127.0.0.1:0", ca::makeServerCredentials(*serving, authority_->trustBundle()), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
    root_file_ = dir_.path() + "/root-cert.pem";
    std::ofstream(root_file_) << authority_->trustBundle();
  }
  void TearDown() override {
    if (server_) server_->Shutdown(system_clock::now() + std::chrono::milliseconds(100));
  }

  std::string tokenFile(const std::string& sa) {
    ca::WorkloadBinding binding;
    binding.identity = identity(sa);
    binding.workload_key = "default/" + sa;
    auto token = tokens_->issue(binding, std::chrono::minutes(5));
    EXPECT_TRUE(token.ok());
    const std::string path = dir_.path() + "/token-" + sa;
    EXPECT_TRUE(ca::writeTokenFile(path, *token).ok());
    return path;
  }

  std::unique_ptr<WorkloadCertificateProvider> provider(const std::string& token_file,
                                                        std::chrono::seconds ttl = {}) {
    WorkloadCertificateProvider::Options o;
    o.token_file = token_file;
    o.ca_address = Address::parse("127.0.0.1", static_cast<uint16_t>(port_)).value();
    o.ca_authority = "istiod.sheave-system.svc";
    o.ca_tls.set_sni("istiod.sheave-system.svc");
    o.ca_tls.mutable_common_tls_context()
        ->mutable_validation_context()
        ->mutable_trusted_ca()
        ->set_filename(root_file_);
    o.requested_ttl = ttl;
    o.initial_backoff = std::chrono::milliseconds(50);
    o.max_backoff = std::chrono::milliseconds(100);
    return std::make_unique<WorkloadCertificateProvider>(loop_, secrets_, *store_, random_,
                                                         std::move(o));
  }

  TempDir dir_;
  std::unique_ptr<ca::CertificateAuthority> authority_;
  std::shared_ptr<ca::BootstrapTokenAuthenticator> tokens_ =
      std::make_shared<ca::BootstrapTokenAuthenticator>();
  std::shared_ptr<ca::CertificateAuthenticator> certs_;
  std::unique_ptr<ca::Authenticator> chain_;
  std::unique_ptr<ca::CaService> service_;
  std::unique_ptr<::grpc::Server> server_;
  int port_ = 0;
  std::string root_file_;
  network::EventLoop loop_;
  network::tls::SecretManager secrets_;
  std::unique_ptr<stats::Store> store_ = stats::Store::create().value();
  RandomGenerator random_{7};
};

TEST_F(ProviderTest, TokenBuysTheFirstCertificateAndRenewalUsesTheCertificate) {
  auto p = provider(tokenFile("reviews"), std::chrono::seconds(4));
  bool first = false;
  p->start([&] { first = true; });
  ASSERT_TRUE(runUntil(loop_, [&] { return first; }));
  auto secret = secrets_.find("default");
  ASSERT_NE(secret, nullptr);
  EXPECT_NE(secret->tls_certificate().private_key().inline_string().find("PRIVATE KEY"),
            std::string::npos);
  EXPECT_EQ(p->current()->spiffe_id, "spiffe://cluster.local/ns/default/sa/reviews");
  EXPECT_EQ(secrets_.subscribedNames(), std::vector<std::string>{});  // never fetched over SDS

  // Half of the 4 s lifetime later it renews, over mTLS: the token is spent by now.
  ASSERT_TRUE(runUntil(
      loop_, [&] { return p->issued() >= 2; }, std::chrono::seconds(8)));
  EXPECT_EQ(p->current()->spiffe_id, "spiffe://cluster.local/ns/default/sa/reviews");
  EXPECT_NE(secrets_.find("default")->tls_certificate().certificate_chain().inline_string(),
            secret->tls_certificate().certificate_chain().inline_string());
  EXPECT_EQ(store_->counter("sds.default.update_success").value(), 2u);
}

TEST_F(ProviderTest, ReplayedTokenGetsNothing) {
  const std::string token = tokenFile("ratings");
  auto first = provider(token);
  bool got = false;
  first->start([&] { got = true; });
  ASSERT_TRUE(runUntil(loop_, [&] { return got; }));

  // Another proxy presenting the same (spent) token: refused, retried, never a certificate.
  network::tls::SecretManager other_secrets;
  WorkloadCertificateProvider::Options o;
  o.token_file = token;
  o.ca_address = Address::parse("127.0.0.1", static_cast<uint16_t>(port_)).value();
  o.ca_tls.set_sni("istiod.sheave-system.svc");
  o.ca_tls.mutable_common_tls_context()
      ->mutable_validation_context()
      ->mutable_trusted_ca()
      ->set_filename(root_file_);
  o.initial_backoff = std::chrono::milliseconds(20);
  o.max_backoff = std::chrono::milliseconds(40);
  auto store = stats::Store::create().value();
  WorkloadCertificateProvider replay(loop_, other_secrets, *store, random_, o);
  bool replay_got = false;
  replay.start([&] { replay_got = true; });
  ASSERT_TRUE(
      runUntil(loop_, [&] { return store->counter("sds.default.update_failure").value() >= 2; }));
  EXPECT_FALSE(replay_got);
  EXPECT_EQ(other_secrets.find("default"), nullptr);
}

TEST_F(ProviderTest, UntrustedCaIsNeverAskedWithTheToken) {
  // The proxy trusts another root: the handshake fails before the token is sent.
  TempDir other_dir;
  ca::CaOptions options;
  options.ca_dir = other_dir.path() + "/ca";
  auto other = ca::CertificateAuthority::open(options);
  ASSERT_TRUE(other.ok());
  std::ofstream(root_file_) << (*other)->trustBundle();
  auto p = provider(tokenFile("details"));
  bool got = false;
  p->start([&] { got = true; });
  ASSERT_TRUE(
      runUntil(loop_, [&] { return store_->counter("sds.default.update_failure").value() >= 1; }));
  EXPECT_FALSE(got);
  EXPECT_EQ(service_->stats().csr_count.load(), 0u);
}

}  // namespace
}  // namespace sheave::server
