#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../loop_test_util.h"
#include "proxy/network/connection.h"
#include "proxy/network/tcp_listener.h"
#include "proxy/network/tls/tls_socket_factory.h"
#include "proxy/network/tls/tls_transport_socket.h"
#include "test_certs.h"

namespace sheave::network::tls::testing {

namespace tlsv3 = envoy::extensions::transport_sockets::tls::v3;
using network::testing::runUntil;

inline tlsv3::TlsCertificate inlineCert(const TestCert& c) {
  tlsv3::TlsCertificate out;
  out.mutable_certificate_chain()->set_inline_string(c.certPem());
  out.mutable_private_key()->set_inline_string(c.keyPem());
  return out;
}

inline tlsv3::DownstreamTlsContext serverConfig(const TestCert& cert) {
  tlsv3::DownstreamTlsContext config;
  *config.mutable_common_tls_context()->add_tls_certificates() = inlineCert(cert);
  return config;
}

inline tlsv3::UpstreamTlsContext clientConfig(const TestCert* trusted_ca,
                                              std::string sni = "server.test") {
  tlsv3::UpstreamTlsContext config;
  config.set_sni(std::move(sni));
  if (trusted_ca != nullptr) {
    config.mutable_common_tls_context()
        ->mutable_validation_context()
        ->mutable_trusted_ca()
        ->set_inline_string(trusted_ca->certPem());
  }
  return config;
}

inline std::string pattern(size_t len) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

struct Recorder : ConnectionCallbacks {
  std::string data;
  std::vector<ConnectionEvent> events;
  std::function<void(Buffer&, bool)> on_data;

  void onData(Buffer& buffer, bool end) override {
    if (on_data) {
      on_data(buffer, end);
      return;
    }
    data += buffer.toString();
    buffer.drain(buffer.length());
  }
  void onEvent(ConnectionEvent e) override { events.push_back(e); }
  bool has(ConnectionEvent e) const {
    for (auto x : events) {
      if (x == e) return true;
    }
    return false;
  }
  bool connected() const { return has(ConnectionEvent::kConnected); }
  bool closed() const {
    return has(ConnectionEvent::kRemoteClose) || has(ConnectionEvent::kLocalClose);
  }
};

struct Side {
  std::unique_ptr<Connection> conn;
  Recorder rec;
  TlsTransportSocket* tls = nullptr;  // owned by conn; null for plaintext
};

// A loopback TLS server (echo by default) and clients, on one loop.
class TlsFixture : public ::testing::Test {
 protected:
  void listen(std::shared_ptr<TlsSocketFactory> factory) {
    server_factory_ = std::move(factory);
    auto bind = Address::parse("127.0.0.1", 0);
    ASSERT_TRUE(bind.ok());
    auto listener = TcpListener::create(
        loop_, *bind, false, [this](int fd, const Address& local, const Address& remote) {
          auto s = std::make_unique<Side>();
          auto socket = server_factory_->createTransportSocket();
          s->tls = dynamic_cast<TlsTransportSocket*>(socket.get());
          s->conn = Connection::createServer(loop_, fd, local, remote, std::move(socket));
          s->conn->setCallbacks(s->rec);
          Side* raw = s.get();
          s->rec.on_data = [raw](Buffer& b, bool end) {
            raw->rec.data += b.toString();
            raw->conn->write(b, end);
          };
          servers_.push_back(std::move(s));
        });
    ASSERT_TRUE(listener.ok()) << listener.error().message();
    listener_ = std::move(*listener);
  }

  std::unique_ptr<Side> connect(const std::shared_ptr<TlsSocketFactory>& factory,
                                std::string sni = {}) {
    auto c = std::make_unique<Side>();
    std::unique_ptr<TransportSocket> socket;
    if (factory) {
      socket = factory->createTransportSocket(std::move(sni));
      c->tls = dynamic_cast<TlsTransportSocket*>(socket.get());
    }
    c->conn = Connection::createClient(loop_, listener_->boundAddress(), std::move(socket));
    c->conn->setCallbacks(c->rec);
    return c;
  }

  // Runs until the client is connected (true) or closed (false).
  bool handshake(Side& c) {
    runUntil(loop_, [&] { return c.rec.connected() || c.rec.closed(); });
    return c.rec.connected() && !c.rec.closed();
  }

  // Sends `payload` and waits for the echo; true when it all came back.
  bool echo(Side& c, const std::string& payload) {
    size_t before = c.rec.data.size();
    Buffer out;
    out.add(payload);
    c.conn->write(out, false);
    return runUntil(
               loop_,
               [&] { return c.rec.data.size() >= before + payload.size() || c.rec.closed(); }) &&
           c.rec.data.compare(before, std::string::npos, payload) == 0;
  }

  bool serverClosed(size_t i = 0) {
    return runUntil(loop_, [&] { return servers_.size() > i && servers_[i]->rec.closed(); });
  }

  std::shared_ptr<TlsSocketFactory> server(const tlsv3::DownstreamTlsContext& config) {
    auto f = TlsSocketFactory::createServer(config, &secrets_);
    EXPECT_TRUE(f.ok()) << f.error().message();
    return f.ok() ? *f : nullptr;
  }
  std::shared_ptr<TlsSocketFactory> client(const tlsv3::UpstreamTlsContext& config) {
    auto f = TlsSocketFactory::createClient(config, &secrets_);
    EXPECT_TRUE(f.ok()) << f.error().message();
    return f.ok() ? *f : nullptr;
  }

  const TestPki& pki_ = TestPki::get();
  EventLoop loop_;  // destroyed after the connections below
  SecretManager secrets_;
  std::shared_ptr<TlsSocketFactory> server_factory_;
  std::unique_ptr<TcpListener> listener_;
  std::vector<std::unique_ptr<Side>> servers_;
};

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    tmpl += "/sheave-tls-XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  std::string write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sheave::network::tls::testing
