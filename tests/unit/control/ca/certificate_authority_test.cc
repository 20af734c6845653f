#include "control/ca/certificate_authority.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include "ca_test_util.h"
#include "control/ca/certificate_authenticator.h"

namespace sheave::ca {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::TempDir;

const SpiffeId kBookinfo{"cluster.local", "default", "bookinfo"};

class CertificateAuthorityTest : public ::testing::Test {
 protected:
  CaOptions options() {
    CaOptions o;
    o.ca_dir = dir_ / "ca";
    o.clock = clock_.fn();
    return o;
  }
  std::unique_ptr<CertificateAuthority> openCa() {
    auto ca = CertificateAuthority::open(options());
    EXPECT_TRUE(ca.ok()) << (ca.ok() ? "" : ca.error().message());
    return ca.ok() ? std::move(ca).value() : nullptr;
  }
  // Verifies `chain` (leaf first) against `roots_pem` at the fake clock's time.
  Status verify(const std::vector<std::string>& chain, const std::string& roots_pem,
                int purpose = X509_PURPOSE_SSL_CLIENT) {
    auto leaf = testing::firstCert(chain.at(0));
    std::vector<X509Ptr> rest;
    for (size_t i = 1; i < chain.size(); ++i) rest.push_back(testing::firstCert(chain[i]));
    std::vector<X509*> inter;
    for (auto& c : rest) inter.push_back(c.get());
    auto roots = parseCertificates(roots_pem);
    if (!roots.ok()) return roots.error();
    std::vector<X509*> root_raw;
    for (auto& r : *roots) root_raw.push_back(r.get());
    return verifyChain(leaf.get(), inter, root_raw, clock_.now(), purpose);
  }

  TempDir dir_;
  FakeClock clock_;
};

TEST(SpiffeIdTest, ParsesIstioShape) {
  auto id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/bookinfo-ratings");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->trust_domain, "cluster.local");
  EXPECT_EQ(id->ns, "default");
  EXPECT_EQ(id->sa, "bookinfo-ratings");
  EXPECT_EQ(id->toString(), "spiffe://cluster.local/ns/default/sa/bookinfo-ratings");
}

TEST(SpiffeIdTest, RejectsEverythingElse) {
  for (const char* bad : {"",
                          "spiffe://",
                          "SPIFFE://cluster.local/ns/a/sa/b",
                          "https://cluster.local/ns/a/sa/b",
                          "spiffe://cluster.local",
                          "spiffe://cluster.local/",
                          "spiffe://cluster.local/ns/a",
                          "spiffe://cluster.local/ns/a/sa/",
                          "spiffe://cluster.local/ns//sa/b",
                          "spiffe://cluster.local/ns/a/sa/b/c",
                          "spiffe://cluster.local/ns/a/sa/b?x=1",
                          "spiffe://cluster.local/ns/a/sa/b#frag",
                          "spiffe://cluster.local:443/ns/a/sa/b",
                          "spiffe://user@cluster.local/ns/a/sa/b",
                          "spiffe://Cluster.Local/ns/a/sa/b",
                          "spiffe://cluster.local/ns/../sa/b",
                          "spiffe://cluster.local/ns/a%2f/sa/b",
                          "spiffe://cluster.local/sa/b/ns/a",
                          "spiffe://cluster.local/ns/a/sa/b c",
                          "spiffe:///ns/a/sa/b"}) {
    EXPECT_FALSE(SpiffeId::parse(bad).ok()) << bad;
  }
}

TEST_F(CertificateAuthorityTest, CreatesRootWithPrivateKeyAndReusesIt) {
  auto ca = openCa();
  ASSERT_NE(ca, nullptr);
  EXPECT_FALSE(ca->pluggedIn());
  EXPECT_EQ(testing::fileMode(dir_ / "ca/ca-key.pem"), 0600u);
  EXPECT_EQ(testing::fileMode(dir_ / "ca"), 0700u);
  EXPECT_TRUE(fileExists(dir_ / "ca/root-cert.pem"));
  EXPECT_TRUE(fileExists(dir_ / "ca/ca-cert.pem"));
  EXPECT_FALSE(fileExists(dir_ / "ca/cert-chain.pem"));

  std::string bundle = ca->trustBundle();
  auto root = testing::firstCert(bundle);
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(X509_check_ca(root.get()), 1);
  EXPECT_EQ(X509_check_issued(root.get(), root.get()), X509_V_OK);
  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(root.get()), subject, sizeof(subject));
  EXPECT_STREQ(subject, "/O=cluster.local");
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(root.get())), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(root.get())), 256);
  EXPECT_EQ(X509_get_key_usage(root.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(root.get()), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(root.get()), nullptr);
  auto life = std::chrono::duration_cast<std::chrono::hours>(ca->rootExpiry() - clock_.now());
  EXPECT_EQ(life.count(), 24 * 3650);
  ASSERT_TRUE(certificateExpiry(bundle).ok());
  EXPECT_EQ(*certificateExpiry(bundle), ca->rootExpiry());

  ca.reset();
  auto again = openCa();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->trustBundle(), bundle);
}

TEST_F(CertificateAuthorityTest, RefusesKeyReadableByOthers) {
  ASSERT_NE(openCa(), nullptr);
  ::chmod((dir_ / "ca/ca-key.pem").c_str(), 0640);
  auto ca = CertificateAuthority::open(options());
  ASSERT_FALSE(ca.ok());
  EXPECT_EQ(ca.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(ca.error().message().find("0640"), std::string::npos) << ca.error().message();
  EXPECT_NE(ca.error().message().find("chmod 600"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, RefusesGarbledOrMismatchedFiles) {
  ASSERT_NE(openCa(), nullptr);
  std::string good_cert = *readFile(dir_ / "ca/ca-cert.pem");
  std::string good_key = *readFile(dir_ / "ca/ca-key.pem");

  testing::writeFile(dir_ / "ca/ca-cert.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  auto garbled = CertificateAuthority::open(options());
  ASSERT_FALSE(garbled.ok());
  EXPECT_NE(garbled.error().message().find("ca-cert.pem"), std::string::npos);

  testing::writeFile(dir_ / "ca/ca-cert.pem", good_cert);
  testing::writeFile(dir_ / "ca/ca-key.pem", "garbage", 0600);
  auto bad_key = CertificateAuthority::open(options());
  ASSERT_FALSE(bad_key.ok());
  EXPECT_NE(bad_key.error().message().find("ca-key.pem"), std::string::npos);

  auto other = testing::ecKey();
  testing::writeFile(dir_ / "ca/ca-key.pem", privateKeyToPem(other.get()), 0600);
  auto mismatch = CertificateAuthority::open(options());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message().find("does not match"), std::string::npos)
      << mismatch.error().message();

  ::unlink((dir_ / "ca/ca-key.pem").c_str());
  auto missing = CertificateAuthority::open(options());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("ca-key.pem"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, IssuesOnlyTheCallersIdentity) {
  auto ca = openCa();
  ASSERT_NE(ca, nullptr);
  auto key = testing::ecKey();
  // The CSR asks for someone else entirely.
  std::string csr =
      testing::makeCsr(key.get(), "spiffe://cluster.local/ns/istio-system/sa/istiod", "admin");
  auto chain = ca->sign(csr, kBookinfo, 24h);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ(chain->back(), ca->trustBundle());
  auto leaf = testing::firstCert(chain->front());
  ASSERT_NE(leaf, nullptr);

  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(leaf.get())), 0);
  auto id = spiffeIdOf(leaf.get());
  ASSERT_TRUE(id.ok()) << id.error().message();
  EXPECT_EQ(*id, kBookinfo);
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf.get(), NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(sk_GENERAL_NAME_num(names), 1);
  GENERAL_NAMES_free(names);
  int san_at = X509_get_ext_by_NID(leaf.get(), NID_subject_alt_name, -1);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(leaf.get(), san_at)), 1);

  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_EQ(X509_get_key_usage(leaf.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), key.get()), 1);
  EXPECT_EQ(notBefore(leaf.get()), clock_.now() - 1min);
  EXPECT_EQ(notAfter(leaf.get()), clock_.now() + 24h);
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf.get()), nullptr);
  EXPECT_GT(BN_num_bits(serial), 64);  // random 128 bits, top bit clear
  EXPECT_LE(BN_num_bits(serial), 127);
  BN_free(serial);

  EXPECT_TRUE(verify(*chain, ca->trustBundle()).ok());
  EXPECT_TRUE(verify(*chain, ca->trustBundle(), X509_PURPOSE_SSL_SERVER).ok());
}

TEST_F(CertificateAuthorityTest, SerialsDiffer) {
  auto ca = openCa();
  auto key = testing::ecKey();
  std::string csr = testing::makeCsr(key.get());
  auto a = testing::firstCert(ca->sign(csr, kBookinfo, 1h)->front());
  auto b = testing::firstCert(ca->sign(csr, kBookinfo, 1h)->front());
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.get()), X509_get0_serialNumber(b.get())), 0);
}

TEST_F(CertificateAuthorityTest, RejectsBadCsrs) {
  auto ca = openCa();
  ASSERT_NE(ca, nullptr);
  auto expectInvalid = [&](const std::string& csr, const char* what) -> std::string {
    auto r = ca->sign(csr, kBookinfo, 1h);
    EXPECT_FALSE(r.ok()) << what;
    if (r.ok()) return "";
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << what;
    return r.error().message();
  };
  expectInvalid("", "empty");
  expectInvalid("not a csr", "garbage");
  expectInvalid("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                "garbled");
  auto key = testing::ecKey();
  auto other = testing::ecKey();
  std::string msg =
      expectInvalid(testing::makeCsr(key.get(), "", "", other.get()), "bad signature");
  EXPECT_NE(msg.find("signature"), std::string::npos) << msg;

  auto rsa1024 = testing::rsaKey(1024);
  msg = expectInvalid(testing::makeCsr(rsa1024.get()), "rsa-1024");
  EXPECT_NE(msg.find("1024"), std::string::npos) << msg;
  auto k256 = testing::ecKey("secp256k1");
  expectInvalid(testing::makeCsr(k256.get()), "secp256k1");
  auto ed = EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  {
    // Ed25519 CSRs are signed without a digest.
    X509ReqPtr req(X509_REQ_new());
    X509_REQ_set_pubkey(req.get(), ed.get());
    X509_REQ_sign(req.get(), ed.get(), nullptr);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(bio, req.get());
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    expectInvalid(std::string(data, len), "ed25519");
    BIO_free(bio);
  }

  auto rsa2048 = testing::rsaKey(2048);
  EXPECT_TRUE(ca->sign(testing::makeCsr(rsa2048.get()), kBookinfo, 1h).ok());
  auto p384 = testing::ecKey("P-384");
  EXPECT_TRUE(ca->sign(testing::makeCsr(p384.get()), kBookinfo, 1h).ok());
}

TEST_F(CertificateAuthorityTest, TtlBounds) {
  auto ca = openCa();
  ASSERT_NE(ca, nullptr);
  auto key = testing::ecKey();
  std::string csr = testing::makeCsr(key.get());
  EXPECT_EQ(ca->sign(csr, kBookinfo, 0s).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ca->sign(csr, kBookinfo, -5s).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ca->sign(csr, kBookinfo, 90 * 24h + 1s).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ca->sign(csr, kBookinfo, 90 * 24h).ok());

  // Never beyond the root's own expiry.
  clock_.set(ca->rootExpiry() - 1h);
  auto late = ca->sign(csr, kBookinfo, 24h);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(notAfter(testing::firstCert(late->front()).get()), ca->rootExpiry());

  // Another trust domain is not this CA's to sign.
  auto foreign = ca->sign(csr, SpiffeId{"evil.org", "default", "x"}, 1h);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_FALSE(ca->sign(csr, SpiffeId{"cluster.local", "a/b", "x"}, 1h).ok());
}

TEST_F(CertificateAuthorityTest, RejectsBadOptions) {
  CaOptions o = options();
  o.trust_domain = "Bad Domain";
  EXPECT_FALSE(CertificateAuthority::open(o).ok());
  o = options();
  o.workload_cert_ttl = 100 * 24h;
  EXPECT_FALSE(CertificateAuthority::open(o).ok());
  o = options();
  o.ca_dir = "";
  EXPECT_FALSE(CertificateAuthority::open(o).ok());
}

TEST_F(CertificateAuthorityTest, OpenSslCliAgrees) {
  // Real time here: the CLI checks validity against the wall clock.
  CaOptions o;
  o.ca_dir = dir_ / "ca";
  auto ca = CertificateAuthority::open(o);
  ASSERT_TRUE(ca.ok());
  auto key = testing::ecKey();
  auto chain = (*ca)->sign(testing::makeCsr(key.get(), "spiffe://cluster.local/ns/x/sa/y", "evil"),
                           kBookinfo, 1h);
  ASSERT_TRUE(chain.ok());
  testing::writeFile(dir_ / "leaf.pem", chain->front());
  testing::writeFile(dir_ / "bundle.pem", (*ca)->trustBundle());
  auto [rc, out] = testing::run("openssl verify -purpose sslclient -CAfile " +
                                (dir_ / "bundle.pem") + " " + (dir_ / "leaf.pem"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(": OK"), std::string::npos) << out;

  auto [rc2, text] = testing::run("openssl x509 -noout -text -in " + (dir_ / "leaf.pem"));
  ASSERT_EQ(rc2, 0) << text;
  EXPECT_NE(text.find("X509v3 Subject Alternative Name: critical"), std::string::npos) << text;
  EXPECT_NE(text.find("URI:spiffe://cluster.local/ns/default/sa/bookinfo"), std::string::npos);
  EXPECT_EQ(text.find("URI:spiffe://cluster.local/ns/x/sa/y"), std::string::npos);
  EXPECT_EQ(text.find("DNS:"), std::string::npos);
  EXPECT_EQ(text.find("evil"), std::string::npos);
  EXPECT_NE(text.find("CA:FALSE"), std::string::npos);
  EXPECT_NE(text.find("TLS Web Server Authentication, TLS Web Client Authentication"),
            std::string::npos);
}

TEST_F(CertificateAuthorityTest, PlugInCaLayout) {
  // An operator's root and intermediate, made with the openssl CLI.
  std::string d = dir_ / "ca";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  testing::writeFile(dir_ / "ext.cnf",
                     "[req]\ndistinguished_name=dn\nx509_extensions=root\nprompt=no\n[dn]\n"
                     "[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,"
                     "cRLSign\nsubjectKeyIdentifier=hash\n"
                     "[inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,"
                     "keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
                     "authorityKeyIdentifier=keyid\n"
                     "[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,"
                     "digitalSignature\n");
  std::string cmd =
      "set -e; cd " + dir_.path() +
      "; openssl ecparam -name prime256v1 -genkey -noout -out root-key.pem"
      "; openssl req -config ext.cnf -x509 -new -key root-key.pem -subj /O=Operator/CN=Root "
      "-days 30 -out ca/root-cert.pem"
      "; openssl ecparam -name prime256v1 -genkey -noout -out ca/ca-key.pem"
      "; openssl req -config ext.cnf -new -key ca/ca-key.pem -subj /O=Operator/CN=Intermediate "
      "-out inter.csr"
      "; openssl x509 -req -in inter.csr -CA ca/root-cert.pem -CAkey root-key.pem "
      "-CAcreateserial -days 20 -extfile ext.cnf -extensions inter -out ca/ca-cert.pem"
      "; cat ca/ca-cert.pem ca/root-cert.pem > ca/cert-chain.pem"
      "; chmod 600 ca/ca-key.pem"
      "; openssl x509 -req -in inter.csr -CA ca/root-cert.pem -CAkey root-key.pem "
      "-CAcreateserial -days 20 -extfile ext.cnf -extensions leaf -out not-a-ca.pem";
  auto [rc, out] = testing::run(cmd);
  ASSERT_EQ(rc, 0) << out;

  CaOptions o;
  o.ca_dir = d;
  auto ca = CertificateAuthority::open(o);
  ASSERT_TRUE(ca.ok()) << ca.error().message();
  EXPECT_TRUE((*ca)->pluggedIn());
  EXPECT_EQ((*ca)->trustBundle(), *readFile(d + "/root-cert.pem"));
  EXPECT_FALSE((*ca)->rotateRoot().ok());
  // Near the intermediate's expiry: warns, never rotates an operator's CA.
  auto near_end = (*ca)->maybeRotate((*ca)->signingCertificateExpiry() - 24h);
  ASSERT_TRUE(near_end.ok());
  EXPECT_FALSE(*near_end);
  auto key = testing::ecKey();
  auto chain = (*ca)->sign(testing::makeCsr(key.get()), kBookinfo, 1h);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_EQ((*chain)[1], *readFile(d + "/ca-cert.pem"));
  EXPECT_EQ((*chain)[2], *readFile(d + "/root-cert.pem"));
  // The leaf verifies through the intermediate.
  testing::writeFile(dir_ / "leaf.pem", chain->front());
  testing::writeFile(dir_ / "untrusted.pem", (*chain)[1]);
  auto [vrc, vout] = testing::run("openssl verify -CAfile " + d + "/root-cert.pem -untrusted " +
                                  (dir_ / "untrusted.pem") + " " + (dir_ / "leaf.pem"));
  EXPECT_EQ(vrc, 0) << vout;
  // The leaf is capped at the intermediate's expiry (20 days) for a long TTL.
  auto long_chain = (*ca)->sign(testing::makeCsr(key.get()), kBookinfo, 60 * 24h);
  ASSERT_TRUE(long_chain.ok());
  EXPECT_EQ(notAfter(testing::firstCert(long_chain->front()).get()),
            (*ca)->signingCertificateExpiry());
  ca->reset();

  // A signing certificate that is not a CA.
  std::string ca_cert = *readFile(d + "/ca-cert.pem");
  testing::writeFile(d + "/ca-cert.pem", *readFile(dir_ / "not-a-ca.pem"));
  auto not_ca = CertificateAuthority::open(o);
  ASSERT_FALSE(not_ca.ok());
  EXPECT_NE(not_ca.error().message().find("not a CA"), std::string::npos)
      << not_ca.error().message();
  testing::writeFile(d + "/ca-cert.pem", ca_cert);

  // A root that did not issue the intermediate.
  std::string root = *readFile(d + "/root-cert.pem");
  CaOptions other;
  other.ca_dir = dir_ / "other";
  auto other_ca = CertificateAuthority::open(other);
  ASSERT_TRUE(other_ca.ok());
  testing::writeFile(d + "/root-cert.pem", (*other_ca)->trustBundle());
  auto wrong_root = CertificateAuthority::open(o);
  ASSERT_FALSE(wrong_root.ok());
  EXPECT_NE(wrong_root.error().message().find("does not chain"), std::string::npos)
      << wrong_root.error().message();
  testing::writeFile(d + "/root-cert.pem", root);

  // Incomplete layout.
  ::unlink((d + "/root-cert.pem").c_str());
  auto incomplete = CertificateAuthority::open(o);
  ASSERT_FALSE(incomplete.ok());
  EXPECT_NE(incomplete.error().message().find("root-cert.pem is missing"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, RotationKeepsTheOldRootTrusted) {
  auto ca = openCa();
  ASSERT_NE(ca, nullptr);
  auto key = testing::ecKey();
  std::string csr = testing::makeCsr(key.get());
  auto old_chain = ca->sign(csr, kBookinfo, 24h);
  ASSERT_TRUE(old_chain.ok());
  std::string old_root = ca->trustBundle();

  // Not yet: plenty of life left.
  auto early = ca->maybeRotate(clock_.now() + 24h * 365 * 7);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(*early);
  // Less than a fifth of 10 years left.
  clock_.advance(24h * 365 * 8 + 24h * 10);
  auto rotated = ca->maybeRotate(clock_.now());
  ASSERT_TRUE(rotated.ok()) << rotated.error().message();
  EXPECT_TRUE(*rotated);

  std::string bundle = ca->trustBundle();
  auto roots = parseCertificates(bundle);
  ASSERT_TRUE(roots.ok());
  ASSERT_EQ(roots->size(), 2u);
  EXPECT_EQ(certificateToPem((*roots)[1].get()), old_root);
  EXPECT_GT(ca->rootExpiry(), clock_.now() + 24h * 3649);

  auto new_chain = ca->sign(csr, kBookinfo, 24h);
  ASSERT_TRUE(new_chain.ok());
  EXPECT_NE(new_chain->back(), old_root);
  EXPECT_TRUE(verify(*new_chain, bundle).ok());
  EXPECT_FALSE(verify(*new_chain, old_root).ok());
  ca.reset();

  // Persisted: a restart trusts both and keeps signing with the new root.
  auto again = openCa();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->trustBundle(), bundle);
  EXPECT_EQ(testing::fileMode(dir_ / "ca/ca-key.pem"), 0600u);
  EXPECT_TRUE(fileExists(dir_ / "ca/root-cert-previous.pem"));

  // Once the old root expires it leaves the bundle.
  clock_.advance(24h * 365 * 2);
  auto after = parseCertificates(again->trustBundle());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 1u);
}

TEST_F(CertificateAuthorityTest, CertificateFromOldRootVerifiesAfterRotation) {
  auto ca = openCa();
  ASSERT_NE(ca, nullptr);
  auto key = testing::ecKey();
  auto old_chain = ca->sign(testing::makeCsr(key.get()), kBookinfo, 24h);
  ASSERT_TRUE(old_chain.ok());
  ASSERT_TRUE(ca->rotateRoot().ok());
  clock_.advance(1h);
  // Leaf only: the verifier has to find the old root in the bundle.
  EXPECT_TRUE(verify({old_chain->front()}, ca->trustBundle()).ok());
  CertificateAuthenticator auth(*ca);
  auto caller = auth.authenticate(CallerCredentials{"", old_chain->front(), ""});
  ASSERT_TRUE(caller.ok()) << caller.error().message();
  EXPECT_EQ(caller->identity, kBookinfo);
}

TEST_F(CertificateAuthorityTest, StagedRotationTrustsFirstSignsLater) {
  CaOptions o = options();
  o.root_switch_delay = 10min;
  auto ca = std::move(CertificateAuthority::open(o)).value();
  std::string old_root = ca->trustBundle();
  auto key = testing::ecKey();
  std::string csr = testing::makeCsr(key.get());
  ASSERT_TRUE(ca->rotateRoot().ok());
  EXPECT_TRUE(ca->rotationPending());
  EXPECT_FALSE(ca->rotateRoot().ok());  // one at a time
  std::string bundle = ca->trustBundle();
  ASSERT_EQ(parseCertificates(bundle)->size(), 2u);
  EXPECT_EQ(bundle.substr(0, old_root.size()), old_root);
  // Still signing with the old root.
  auto during = ca->sign(csr, kBookinfo, 1h);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->back(), old_root);
  EXPECT_EQ(testing::fileMode(dir_ / "ca/ca-key-next.pem"), 0600u);

  // The pending rotation survives a restart.
  ca.reset();
  ca = std::move(CertificateAuthority::open(o)).value();
  EXPECT_TRUE(ca->rotationPending());
  EXPECT_EQ(ca->trustBundle(), bundle);
  auto not_yet = ca->maybeRotate(clock_.now() + 5min);
  ASSERT_TRUE(not_yet.ok());
  EXPECT_FALSE(*not_yet);
  EXPECT_TRUE(ca->rotationPending());

  clock_.advance(10min);
  auto after = ca->sign(csr, kBookinfo, 1h);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->back(), old_root);
  EXPECT_FALSE(ca->rotationPending());
  EXPECT_FALSE(fileExists(dir_ / "ca/ca-key-next.pem"));
  auto roots = parseCertificates(ca->trustBundle());
  ASSERT_EQ(roots->size(), 2u);
  EXPECT_EQ(certificateToPem((*roots)[1].get()), old_root);
  EXPECT_TRUE(verify(*during, ca->trustBundle()).ok());
  EXPECT_TRUE(verify(*after, ca->trustBundle()).ok());
  ca.reset();
  auto again = std::move(CertificateAuthority::open(o)).value();
  EXPECT_FALSE(again->rotationPending());
  EXPECT_EQ(again->sign(csr, kBookinfo, 1h)->back(), after->back());
}

TEST_F(CertificateAuthorityTest, ServingCertificate) {
  auto ca = openCa();
  ASSERT_NE(ca, nullptr);
  auto serving =
      ca->issueServingCertificate({"istiod.sheave-system.svc", "localhost", "127.0.0.1", "::1"});
  ASSERT_TRUE(serving.ok()) << serving.error().message();
  auto leaf = testing::firstCert(serving->cert_chain_pem);
  ASSERT_NE(leaf, nullptr);
  auto key = parsePrivateKey(serving->private_key_pem);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(X509_check_private_key(leaf.get(), key->get()), 1);
  EXPECT_EQ(X509_check_host(leaf.get(), "istiod.sheave-system.svc", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_host(leaf.get(), "evil.example", 0, 0, nullptr), 0);
  EXPECT_FALSE(spiffeIdOf(leaf.get()).ok());
  EXPECT_TRUE(verify({serving->cert_chain_pem}, ca->trustBundle(), X509_PURPOSE_SSL_SERVER).ok());
  EXPECT_FALSE(ca->issueServingCertificate({}).ok());
  EXPECT_FALSE(ca->issueServingCertificate({"a,URI:spiffe://x"}).ok());
}

}  // namespace
}  // namespace sheave::ca
