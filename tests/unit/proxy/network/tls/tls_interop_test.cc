// Interop with Debian's openssl binary: our server against `openssl s_client`, our client
// against `openssl s_server`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tls_test_util.h"

namespace sheave::network::tls::testing {
namespace {

// A child process with stdin and stdout (stderr merged) as pipes. Killed when destroyed.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    ::fcntl(stdout_, F_SETFL, O_NONBLOCK);
  }
  ~Child() {
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void write(const std::string& s) { (void)!::write(stdin_, s.data(), s.size()); }
  // Collects output without blocking; returns everything read so far.
  const std::string& output() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(stdout_, buf, sizeof(buf))) > 0) out_.append(buf, static_cast<size_t>(n));
    return out_;
  }
  bool exited() {
    if (!exited_ && pid_ > 0 && ::waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    return exited_;
  }
  int exitCode() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  int status_ = 0;
  bool exited_ = false;
  std::string out_;
};

bool haveOpenssl() { return std::system("openssl version >/dev/null 2>&1") == 0; }

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

using TlsInteropTest = TlsFixture;

TEST_F(TlsInteropTest, OpensslSClientAgainstOurServer) {
  if (!haveOpenssl()) GTEST_SKIP() << "no openssl binary";
  TempDir dir;
  std::string ca = dir.write("ca.pem", pki_.ca.certPem());
  std::string cert = dir.write("client.pem", pki_.client.certPem());
  std::string key = dir.write("client.key", pki_.client.keyPem());
  // mTLS with the SPIFFE SAN required, so s_client's client certificate is checked too.
  auto config = serverConfig(pki_.server);
  config.mutable_require_client_certificate()->set_value(true);
  auto* v = config.mutable_common_tls_context()->mutable_validation_context();
  v->mutable_trusted_ca()->set_inline_string(pki_.ca.certPem());
  auto* m = v->add_match_typed_subject_alt_names();
  m->set_san_type(tlsv3::SubjectAltNameMatcher::URI);
  m->mutable_matcher()->set_exact("spiffe://cluster.local/ns/default/sa/test");
  config.mutable_common_tls_context()->add_alpn_protocols("h2");
  listen(server(config));

  Child child({"openssl", "s_client", "-connect",
               "127.0.0.1:" + std::to_string(listener_->boundAddress().port()), "-servername",
               "server.test", "-verify_hostname", "server.test", "-CAfile", ca,
               "-verify_return_error", "-cert", cert, "-key", key, "-alpn", "h2", "-quiet"});
  ASSERT_TRUE(child.started());
  child.write("ping from s_client\n");
  // Our echo server answers; then it closes, and s_client exits.
  ASSERT_TRUE(runUntil(loop_, [&] {
    return !servers_.empty() && servers_[0]->rec.data == "ping from s_client\n";
  })) << child.output();
  EXPECT_EQ(servers_[0]->conn->negotiatedProtocol(), "h2");
  ASSERT_NE(servers_[0]->conn->peerCertificate(), nullptr);
  EXPECT_TRUE(servers_[0]->conn->peerCertificate()->validated);
  servers_[0]->conn->close(ConnectionCloseType::kFlushWrite);
  EXPECT_TRUE(runUntil(
      loop_, [&] { return child.exited(); }, std::chrono::seconds(10)));
  EXPECT_NE(child.output().find("ping from s_client"), std::string::npos) << child.output();
}

TEST_F(TlsInteropTest, OurClientAgainstOpensslSServer) {
  if (!haveOpenssl()) GTEST_SKIP() << "no openssl binary";
  TempDir dir;
  std::string cert = dir.write("server.pem", pki_.server.certPem());
  std::string key = dir.write("server.key", pki_.server.keyPem());
  uint16_t port = freePort();
  Child child({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", cert,
               "-key", key, "-naccept", "1", "-rev"});
  ASSERT_TRUE(child.started());
  // s_server prints ACCEPT once it listens.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (child.output().find("ACCEPT") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline && !child.exited()) {
    ::usleep(10000);
  }
  ASSERT_NE(child.output().find("ACCEPT"), std::string::npos) << child.output();

  auto factory = client(clientConfig(&pki_.ca));
  auto target = Address::parse("127.0.0.1", port);
  ASSERT_TRUE(target.ok());
  Side c;
  auto socket = factory->createTransportSocket();
  c.tls = dynamic_cast<TlsTransportSocket*>(socket.get());
  c.conn = Connection::createClient(loop_, *target, std::move(socket));
  c.conn->setCallbacks(c.rec);
  ASSERT_TRUE(handshake(c)) << c.conn->transportFailureReason() << child.output();
  EXPECT_TRUE(c.conn->peerCertificate()->validated);
  Buffer out;
  out.add("sheave\n");
  c.conn->write(out, false);
  ASSERT_TRUE(runUntil(loop_, [&] { return c.rec.data.find("evaehs") != std::string::npos; }))
      << c.rec.data << child.output();
}

}  // namespace
}  // namespace sheave::network::tls::testing
