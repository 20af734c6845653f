#include "control/ca/ca_service.h"

#include <grpcpp/grpcpp.h>

#include <gtest/gtest.h>
#include <atomic>
#include <thread>

#include "ca_test_util.h"
#include "control/ca/bootstrap_token_authenticator.h"
#include "control/ca/certificate_authenticator.h"

namespace sheave::ca {
namespace {

using namespace std::chrono_literals;
using istio::v1::auth::IstioCertificateRequest;
using istio::v1::auth::IstioCertificateResponse;
using istio::v1::auth::IstioCertificateService;
using testing::TempDir;

const SpiffeId kReviews{"cluster.local", "bookinfo", "reviews"};
constexpr const char* kServerName = "istiod.sheave-system.svc";

// The CA service on 127.0.0.1:0 over TLS with a certificate from the CA
// itself, as sheave-control serves it on 15012. Real time: gRPC's handshake
// checks validity against the wall clock.
class CaServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CaOptions o;
    o.ca_dir = dir_ / "ca";
    ca_ = std::move(CertificateAuthority::open(o)).value();
    tokens_ = std::make_shared<BootstrapTokenAuthenticator>();
    auth_ = std::make_unique<ChainAuthenticator>(std::vector<std::shared_ptr<Authenticator>>{
        tokens_, std::make_shared<CertificateAuthenticator>(*ca_)});
    service_ = std::make_unique<CaService>(*ca_, *auth_);
    auto serving = ca_->issueServingCertificate({kServerName, "localhost", "127.0.0.1"});
    ASSERT_TRUE(serving.ok());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", makeServerCredentials(*serving, ca_->trustBundle()),
                             &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + 1s);
      server_->Wait();
    }
  }

  std::unique_ptr<IstioCertificateService::Stub> stub(const std::string& key_pem = "",
                                                      const std::string& chain_pem = "") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ca_->trustBundle();
    options.pem_private_key = key_pem;
    options.pem_cert_chain = chain_pem;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kServerName);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                             grpc::SslCredentials(options), args);
    return IstioCertificateService::NewStub(channel);
  }

  grpc::Status call(IstioCertificateService::Stub& stub, const std::string& token,
                    const std::string& csr, IstioCertificateResponse* response,
                    int64_t validity = 0) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    IstioCertificateRequest request;
    request.set_csr(csr);
    request.set_validity_duration(validity);
    // A hostile proxy's metadata: ignored.
    (*request.mutable_metadata()->mutable_fields())["WorkloadName"].set_string_value("istiod");
    return stub.CreateCertificate(&context, request, response);
  }

  TempDir dir_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::shared_ptr<BootstrapTokenAuthenticator> tokens_;
  std::unique_ptr<ChainAuthenticator> auth_;
  std::unique_ptr<CaService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(CaServiceTest, TokenThenCertificateRenewal) {
  std::string token = *tokens_->issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  auto key = testing::ecKey();
  std::string csr =
      testing::makeCsr(key.get(), "spiffe://cluster.local/ns/istio-system/sa/istiod", "istiod");
  auto client = stub();

  // A bad CSR does not burn the token.
  IstioCertificateResponse bad;
  EXPECT_EQ(call(*client, token, "garbage", &bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  IstioCertificateResponse too_long;
  EXPECT_EQ(call(*client, token, csr, &too_long, 365 * 24 * 3600).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  IstioCertificateResponse response;
  grpc::Status status = call(*client, token, csr, &response, 3600);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.cert_chain_size(), 2);
  EXPECT_EQ(response.cert_chain(1), ca_->trustBundle());
  auto leaf = testing::firstCert(response.cert_chain(0));
  ASSERT_NE(leaf, nullptr);
  EXPECT_EQ(*spiffeIdOf(leaf.get()), kReviews);
  EXPECT_NEAR(std::chrono::duration_cast<std::chrono::seconds>(notAfter(leaf.get()) -
                                                               std::chrono::system_clock::now())
                  .count(),
              3600, 30);

  // Replayed: the token yields one certificate only.
  IstioCertificateResponse replay;
  EXPECT_EQ(call(*client, token, csr, &replay).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Renewal over mTLS with the issued certificate, no token; default TTL 24h.
  auto mtls = stub(privateKeyToPem(key.get()), response.cert_chain(0));
  auto key2 = testing::ecKey();
  IstioCertificateResponse renewed;
  status = call(*mtls, "", testing::makeCsr(key2.get()), &renewed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto leaf2 = testing::firstCert(renewed.cert_chain(0));
  EXPECT_EQ(*spiffeIdOf(leaf2.get()), kReviews);
  EXPECT_NEAR(std::chrono::duration_cast<std::chrono::seconds>(notAfter(leaf2.get()) -
                                                               std::chrono::system_clock::now())
                  .count(),
              24 * 3600, 30);

  const auto& stats = service_->stats();
  EXPECT_EQ(stats.csr_count.load(), 5u);
  EXPECT_EQ(stats.success_cert_issuance_count.load(), 2u);
  EXPECT_EQ(stats.csr_parsing_err_count.load(), 2u);
  EXPECT_EQ(stats.authentication_failure_count.load(), 1u);
}

TEST_F(CaServiceTest, NoCredentialIsUnauthenticated) {
  auto key = testing::ecKey();
  auto client = stub();
  IstioCertificateResponse response;
  grpc::Status status = call(*client, "", testing::makeCsr(key.get()), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_EQ(response.cert_chain_size(), 0);
  IstioCertificateResponse forged;
  EXPECT_EQ(call(*client, "forged-token", testing::makeCsr(key.get()), &forged).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(CaServiceTest, ConcurrentUseOfOneTokenYieldsOneCertificate) {
  std::string token = *tokens_->issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  auto key = testing::ecKey();
  std::string csr = testing::makeCsr(key.get());
  // handle() directly: the race is in authenticate/commit, not in gRPC.
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      IstioCertificateRequest request;
      request.set_csr(csr);
      if (service_->handle({token, "", ""}, request).ok()) ok.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
}

}  // namespace
}  // namespace sheave::ca
