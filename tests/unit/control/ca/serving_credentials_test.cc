#include "control/ca/serving_credentials.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "ca_test_util.h"
#include "control/ca/bootstrap_token_authenticator.h"
#include "control/ca/ca_service.h"
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

struct Client {
  std::string roots;
  std::string key_pem;
  std::string chain_pem;
};

// A root rotation reaches new handshakes on a running listener: clients
// with new-root certificates are accepted and the server presents a
// new-root chain, without restarting the server.
TEST(ServingCredentialsTest, RotationReachesRunningListener) {
  TempDir dir;
  CaOptions o;
  o.ca_dir = dir / "ca";
  auto ca = std::move(CertificateAuthority::open(o)).value();
  auto tokens = std::make_shared<BootstrapTokenAuthenticator>();
  ChainAuthenticator auth({tokens, std::make_shared<CertificateAuthenticator>(*ca)});
  CaService service(*ca, auth);
  auto serving = ServingCredentials::create(*ca, dir / "serving", {kServerName}, 1s);
  ASSERT_TRUE(serving.ok()) << serving.error().message();
  EXPECT_EQ(testing::fileMode((*serving)->keyPath()), 0600u);

  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", (*serving)->serverCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  auto call = [&](const Client& c, const std::string& token, EVP_PKEY* key,
                  IstioCertificateResponse* response) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = c.roots;
    options.pem_private_key = c.key_pem;
    options.pem_cert_chain = c.chain_pem;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kServerName);
    auto stub = IstioCertificateService::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(port), grpc::SslCredentials(options), args));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 3s);
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    IstioCertificateRequest request;
    request.set_csr(testing::makeCsr(key));
    return stub->CreateCertificate(&context, request, response);
  };
  auto eventually = [&](const std::function<bool()>& ok) {
    for (int i = 0; i < 50; ++i) {
      if (ok()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };

  // A certificate from the first root.
  auto key1 = testing::ecKey();
  IstioCertificateResponse first;
  std::string root1 = ca->trustBundle();
  ASSERT_TRUE(
      call({root1, "", ""}, *tokens->issue({kReviews, "bookinfo/r1"}, 10min), key1.get(), &first)
          .ok());
  Client old_client{root1, privateKeyToPem(key1.get()), first.cert_chain(0)};

  ASSERT_TRUE(ca->rotateRoot().ok());
  std::string bundle = ca->trustBundle();
  auto key2 = testing::ecKey();
  IstioCertificateResponse second;
  ASSERT_TRUE(
      call({bundle, "", ""}, *tokens->issue({kReviews, "bookinfo/r2"}, 10min), key2.get(), &second)
          .ok());
  std::string root2 = second.cert_chain(1);
  ASSERT_NE(root2, root1);
  Client new_client{bundle, privateKeyToPem(key2.get()), second.cert_chain(0)};

  // Before the refresh the listener does not know the new root yet.
  auto key0 = testing::ecKey();
  IstioCertificateResponse early;
  EXPECT_FALSE(call(new_client, "", key0.get(), &early).ok());

  auto refreshed = (*serving)->maybeRefresh();
  ASSERT_TRUE(refreshed.ok());
  EXPECT_TRUE(*refreshed);
  auto again = (*serving)->maybeRefresh();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);

  // Within the refresh interval: a client trusting only the new root
  // accepts the server, and the server accepts the new-root certificate.
  auto key3 = testing::ecKey();
  EXPECT_TRUE(eventually([&] {
    IstioCertificateResponse r;
    return call({root2, new_client.key_pem, new_client.chain_pem}, "", key3.get(), &r).ok();
  }));
  // Certificates of the old root still renew while it is in the bundle.
  IstioCertificateResponse r;
  grpc::Status old_status =
      call({bundle, old_client.key_pem, old_client.chain_pem}, "", key3.get(), &r);
  EXPECT_TRUE(old_status.ok()) << old_status.error_message();
  EXPECT_EQ(r.cert_chain(1), root2);

  server->Shutdown(std::chrono::system_clock::now() + 1s);
  server->Wait();
}

}  // namespace
}  // namespace sheave::ca
