#include <gtest/gtest.h>

#include "ca_test_util.h"
#include "control/ca/bootstrap_token_authenticator.h"
#include "control/ca/certificate_authenticator.h"
#include "control/ca/certificate_authority.h"

namespace sheave::ca {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::TempDir;

const SpiffeId kReviews{"cluster.local", "bookinfo", "reviews"};
const SpiffeId kRatings{"cluster.local", "bookinfo", "ratings"};

class TokenTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  BootstrapTokenAuthenticator tokens_{clock_.fn()};
};

TEST_F(TokenTest, ValidTokenYieldsItsBinding) {
  auto token = tokens_.issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 43u);  // 256 bits, base64url without padding
  EXPECT_EQ(
      token->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  auto other = tokens_.issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  EXPECT_NE(*token, *other);

  auto caller = tokens_.authenticate({*token, "", ""});
  ASSERT_TRUE(caller.ok()) << caller.error().message();
  EXPECT_EQ(caller->identity, kReviews);
  EXPECT_EQ(caller->workload_key, "bookinfo/reviews-v1");
  EXPECT_EQ(caller->authenticator, "bootstrap-token");
  // Checking does not consume; the xDS stream may check it too.
  EXPECT_TRUE(tokens_.authenticate({*token, "", "bookinfo/reviews-v1"}).ok());
}

TEST_F(TokenTest, SpentTokenIsRejected) {
  auto token = *tokens_.issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  CallerCredentials creds{token, "", ""};
  auto caller = tokens_.authenticate(creds);
  ASSERT_TRUE(caller.ok());
  ASSERT_TRUE(tokens_.commitIssuance(creds, *caller).ok());
  auto replay = tokens_.authenticate(creds);
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(replay.error().message().find(token), std::string::npos);
  // A second commit (a racing request) fails too.
  EXPECT_EQ(tokens_.markSpent(token).error().code(), ErrorCode::kPermissionDenied);
}

TEST_F(TokenTest, ExpiredUnknownAndMissingTokens) {
  auto token = *tokens_.issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  clock_.advance(10min);
  auto expired = tokens_.authenticate({token, "", ""});
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(expired.error().message().find(token), std::string::npos);
  EXPECT_FALSE(tokens_.markSpent(token).ok());

  std::string forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  auto unknown = tokens_.authenticate({forged, "", ""});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(unknown.error().message().find(forged), std::string::npos);
  EXPECT_EQ(tokens_.authenticate({std::string(100000, 'a'), "", ""}).error().code(),
            ErrorCode::kPermissionDenied);

  EXPECT_EQ(tokens_.authenticate({"", "", ""}).error().code(), ErrorCode::kUnauthenticated);

  // Expired tokens are forgotten at the next issue.
  (void)tokens_.issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  EXPECT_EQ(tokens_.size(), 1u);
}

TEST_F(TokenTest, TokenOfAnotherWorkload) {
  auto reviews = *tokens_.issue({kReviews, "bookinfo/reviews-v1"}, 10min);
  auto ratings = *tokens_.issue({kRatings, "bookinfo/ratings-v1"}, 10min);
  // A proxy claiming to be reviews while holding ratings' token gets nothing...
  auto claimed = tokens_.authenticate({ratings, "", "bookinfo/reviews-v1"});
  ASSERT_FALSE(claimed.ok());
  EXPECT_EQ(claimed.error().code(), ErrorCode::kPermissionDenied);
  // ...and without a claim, the token decides: ratings, never reviews.
  EXPECT_EQ(tokens_.authenticate({ratings, "", ""})->identity, kRatings);
  EXPECT_EQ(tokens_.authenticate({reviews, "", ""})->identity, kReviews);
  tokens_.revokeWorkload("bookinfo/reviews-v1");
  EXPECT_FALSE(tokens_.authenticate({reviews, "", ""}).ok());
  EXPECT_TRUE(tokens_.authenticate({ratings, "", ""}).ok());
}

TEST_F(TokenTest, RejectsBadIssueArguments) {
  EXPECT_FALSE(tokens_.issue({SpiffeId{"cluster.local", "", "x"}, "a/b"}, 10min).ok());
  EXPECT_FALSE(tokens_.issue({kReviews, "a/b"}, 0s).ok());
}

TEST(TokenFileTest, WrittenOwnerOnly) {
  TempDir dir;
  ::umask(0);  // even with a permissive umask
  ASSERT_TRUE(writeTokenFile(dir / "token", "secret-1").ok());
  EXPECT_EQ(testing::fileMode(dir / "token"), 0600u);
  EXPECT_EQ(*readFile(dir / "token"), "secret-1");
  ASSERT_TRUE(writeTokenFile(dir / "token", "secret-2").ok());
  EXPECT_EQ(*readFile(dir / "token"), "secret-2");
  EXPECT_EQ(testing::fileMode(dir / "token"), 0600u);
  ::umask(022);
}

class CertificateAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CaOptions o;
    o.ca_dir = dir_ / "ca";
    o.clock = clock_.fn();
    ca_ = std::move(CertificateAuthority::open(o)).value();
  }
  std::string issue(CertificateAuthority& ca, const SpiffeId& id, std::chrono::seconds ttl = 1h) {
    auto key = testing::ecKey();
    return ca.sign(testing::makeCsr(key.get()), id, ttl)->front();
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<CertificateAuthority> ca_;
};

TEST_F(CertificateAuthenticatorTest, AcceptsOwnCertificate) {
  CertificateAuthenticator auth(*ca_);
  auto caller = auth.authenticate({"", issue(*ca_, kReviews), ""});
  ASSERT_TRUE(caller.ok()) << caller.error().message();
  EXPECT_EQ(caller->identity, kReviews);
  EXPECT_EQ(caller->authenticator, "client-certificate");
  EXPECT_EQ(auth.authenticate({"", "", ""}).error().code(), ErrorCode::kUnauthenticated);
}

TEST_F(CertificateAuthenticatorTest, RejectsCertificateFromAnotherCa) {
  CaOptions o;
  o.ca_dir = dir_ / "other";
  o.clock = clock_.fn();
  auto other = std::move(CertificateAuthority::open(o)).value();
  CertificateAuthenticator auth(*ca_);
  std::string foreign = issue(*other, kReviews);
  auto r = auth.authenticate({"", foreign, ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  // Sending the other CA's root along does not help.
  auto r2 = auth.authenticate({"", foreign + other->trustBundle(), ""});
  EXPECT_EQ(r2.error().code(), ErrorCode::kPermissionDenied);
}

TEST_F(CertificateAuthenticatorTest, RejectsExpiredAndNotYetValid) {
  CertificateAuthenticator auth(*ca_);
  std::string cert = issue(*ca_, kReviews, 1h);
  clock_.advance(1h + 1s);
  auto expired = auth.authenticate({"", cert, ""});
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(expired.error().message().find("expired"), std::string::npos)
      << expired.error().message();

  std::string fresh = issue(*ca_, kReviews, 1h);
  clock_.advance(-2min);  // before notBefore (now - 1 min)
  auto early = auth.authenticate({"", fresh, ""});
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().message().find("not yet valid"), std::string::npos)
      << early.error().message();
}

TEST_F(CertificateAuthenticatorTest, RejectsWrongTrustDomainAndMissingSpiffeId) {
  // Same root, opened for another trust domain: the chain verifies, the
  // trust domain does not match.
  CaOptions o;
  o.ca_dir = dir_ / "ca";
  o.trust_domain = "example.org";
  o.clock = clock_.fn();
  auto same_root = std::move(CertificateAuthority::open(o)).value();
  CertificateAuthenticator auth(*ca_);
  auto r = auth.authenticate({"", issue(*same_root, SpiffeId{"example.org", "a", "b"}), ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(r.error().message().find("trust domain"), std::string::npos) << r.error().message();

  // A serving certificate verifies but names no workload.
  auto serving = ca_->issueServingCertificate({"localhost"});
  auto s = auth.authenticate({"", serving->cert_chain_pem, ""});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("URI SAN"), std::string::npos) << s.error().message();

  // The root itself is not a client.
  EXPECT_FALSE(auth.authenticate({"", ca_->trustBundle(), ""}).ok());
  EXPECT_EQ(auth.authenticate({"", "garbage", ""}).error().code(), ErrorCode::kPermissionDenied);
}

TEST_F(CertificateAuthenticatorTest, ChainTriesTokenThenCertificate) {
  auto tokens = std::make_shared<BootstrapTokenAuthenticator>(clock_.fn());
  auto certs = std::make_shared<CertificateAuthenticator>(*ca_);
  ChainAuthenticator chain({tokens, certs});

  EXPECT_EQ(chain.authenticate({"", "", ""}).error().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(chain.authenticate({"bogus", "", ""}).error().code(), ErrorCode::kPermissionDenied);

  std::string token = *tokens->issue({kRatings, "bookinfo/ratings-v1"}, 10min);
  std::string cert = issue(*ca_, kReviews);
  // Both presented: the token is tried first.
  auto both = chain.authenticate({token, cert, ""});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->identity, kRatings);
  EXPECT_EQ(both->authenticator, "bootstrap-token");
  ASSERT_TRUE(chain.commitIssuance({token, cert, ""}, *both).ok());
  // Spent token, valid certificate: the certificate still authenticates.
  auto renewed = chain.authenticate({token, cert, ""});
  ASSERT_TRUE(renewed.ok()) << renewed.error().message();
  EXPECT_EQ(renewed->identity, kReviews);
  EXPECT_TRUE(chain.commitIssuance({token, cert, ""}, *renewed).ok());
  // Spent token alone: denied, not "unauthenticated".
  EXPECT_EQ(chain.authenticate({token, "", ""}).error().code(), ErrorCode::kPermissionDenied);
}

}  // namespace
}  // namespace sheave::ca
