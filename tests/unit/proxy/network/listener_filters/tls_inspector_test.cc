#include "proxy/network/listener_filters/tls_inspector.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sheave {
namespace {

using State = TlsInspector::State;

struct ClientHelloOptions {
  std::optional<std::string> sni;
  std::vector<std::string> alpn;
  int max_version = 0;  // e.g. TLS1_2_VERSION; 0 for OpenSSL's default (TLS 1.3)
};

// Starts a real OpenSSL client handshake into a memory BIO and returns its first flight.
std::string opensslClientHello(const ClientHelloOptions& options) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  EXPECT_NE(ctx, nullptr);
  if (options.max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), options.max_version);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);  // ssl owns both now
  if (options.sni) {
    EXPECT_EQ(SSL_set_tlsext_host_name(ssl.get(), options.sni->c_str()), 1);
  }
  if (!options.alpn.empty()) {
    std::string wire;
    for (const auto& p : options.alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    EXPECT_EQ(SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                                  static_cast<unsigned>(wire.size())),
              0);
  }
  SSL_set_connect_state(ssl.get());
  const int rc = SSL_do_handshake(ssl.get());
  EXPECT_EQ(SSL_get_error(ssl.get(), rc), SSL_ERROR_WANT_READ);
  char* data = nullptr;
  const long len = BIO_get_mem_data(out, &data);
  return std::string(data, static_cast<size_t>(len));
}

// Cuts one TLS flight into records of at most `max_payload` bytes, as a client may.
std::string reframe(const std::string& flight, size_t max_payload) {
  std::string handshake;
  size_t pos = 0;
  while (pos + 5 <= flight.size()) {
    const size_t len =
        static_cast<uint8_t>(flight[pos + 3]) << 8 | static_cast<uint8_t>(flight[pos + 4]);
    handshake += flight.substr(pos + 5, len);
    pos += 5 + len;
  }
  std::string out;
  for (size_t i = 0; i < handshake.size(); i += max_payload) {
    const size_t n = std::min(max_payload, handshake.size() - i);
    out += std::string{22, 3, 1, static_cast<char>(n >> 8), static_cast<char>(n & 0xFF)};
    out += handshake.substr(i, n);
  }
  return out;
}

struct Outcome {
  State state;
  std::string sni;
  std::vector<std::string> alpn;
};

Outcome inspect(const std::vector<std::string_view>& pieces) {
  TlsInspector inspector;
  State state = State::kNeedMoreData;
  for (auto piece : pieces) state = inspector.onData(piece);
  EXPECT_EQ(state, inspector.state());
  return {state, inspector.serverName(), inspector.applicationProtocols()};
}

Outcome inspect(std::string_view all) { return inspect(std::vector<std::string_view>{all}); }

const std::vector<ClientHelloOptions>& helloVariants() {
  static const std::vector<ClientHelloOptions> variants = {
      {std::nullopt, {}, 0},
      {"www.example.com", {}, 0},
      {std::nullopt, {"h2", "http/1.1"}, 0},
      {"api.Example.com", {"istio-peer-exchange", "istio", "h2"}, 0},
      {"tls12.example.com", {"http/1.1"}, TLS1_2_VERSION},
      {std::string(200, 'a') + ".example.com", {"h2"}, TLS1_2_VERSION},
  };
  return variants;
}

void expectMatches(const Outcome& got, const ClientHelloOptions& want) {
  EXPECT_EQ(got.state, State::kTls);
  EXPECT_EQ(got.sni, want.sni.value_or(""));
  EXPECT_EQ(got.alpn, want.alpn);
}

TEST(TlsInspectorTest, RealClientHellosWithAndWithoutSniAndAlpn) {
  for (const auto& options : helloVariants()) {
    SCOPED_TRACE(options.sni.value_or("<no sni>"));
    const std::string hello = opensslClientHello(options);
    ASSERT_GT(hello.size(), 50u);
    expectMatches(inspect(hello), options);
  }
}

TEST(TlsInspectorTest, SplitAtEveryByteBoundary) {
  for (const auto& options : helloVariants()) {
    const std::string hello = opensslClientHello(options);
    for (size_t cut = 0; cut <= hello.size(); ++cut) {
      SCOPED_TRACE(cut);
      std::string_view all(hello);
      expectMatches(inspect({all.substr(0, cut), all.substr(cut)}), options);
    }
    // And one byte at a time.
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < hello.size(); ++i) bytes.push_back(std::string_view(hello).substr(i, 1));
    expectMatches(inspect(bytes), options);
  }
}

TEST(TlsInspectorTest, EveryTruncationNeedsMoreData) {
  const std::string hello = opensslClientHello({"www.example.com", {"h2"}, 0});
  for (size_t len = 0; len < hello.size(); ++len) {
    TlsInspector inspector;
    EXPECT_EQ(inspector.onData(std::string_view(hello).substr(0, len)), State::kNeedMoreData)
        << len;
    EXPECT_EQ(inspector.bytesInspected(), len);
    EXPECT_TRUE(inspector.serverName().empty());
  }
}

TEST(TlsInspectorTest, ClientHelloSpreadOverManyRecords) {
  const ClientHelloOptions options{"multi.example.com", {"h2", "http/1.1"}, 0};
  const std::string hello = opensslClientHello(options);
  for (size_t payload : {1u, 2u, 3u, 7u, 50u, 100u}) {
    SCOPED_TRACE(payload);
    const std::string framed = reframe(hello, payload);
    expectMatches(inspect(framed), options);
    std::string_view all(framed);
    for (size_t cut = 0; cut <= framed.size(); cut += 3) {
      expectMatches(inspect({all.substr(0, cut), all.substr(cut)}), options);
    }
  }
}

TEST(TlsInspectorTest, LargeClientHelloFromOpenSsl) {
  // 400 ALPN names of 40 bytes: a ~17 KiB ClientHello, which OpenSSL itself splits into records.
  ClientHelloOptions options{"big.example.com", {}, 0};
  for (int i = 0; i < 400; ++i) {
    options.alpn.push_back("protocol-" + std::to_string(1000 + i) + std::string(27, 'x'));
  }
  const std::string hello = opensslClientHello(options);
  ASSERT_GT(hello.size(), 16384u + 5);
  expectMatches(inspect(hello), options);
  std::string_view all(hello);
  for (size_t cut = 0; cut <= hello.size(); cut += 997) {
    expectMatches(inspect({all.substr(0, cut), all.substr(cut)}), options);
  }

  // The same hello against a smaller limit.
  TlsInspector small(4096);
  EXPECT_EQ(small.onData(hello), State::kClientHelloTooLarge);
}

TEST(TlsInspectorTest, DeclaredOversizeIsRefusedEarly) {
  // A handshake header announcing a 70000-byte ClientHello: refused without waiting for it.
  const std::string start = std::string{22, 3, 1, 0, 4} + std::string{1, 0x01, 0x11, 0x70};
  TlsInspector inspector;
  EXPECT_EQ(inspector.onData(start), State::kClientHelloTooLarge);
}

TEST(TlsInspectorTest, ManySmallRecordsHitTheLimit) {
  // A ClientHello that claims 60000 bytes, sent as 1-byte records: with the 5-byte headers the
  // total passes 64 KiB before the message is complete.
  TlsInspector inspector;
  std::string data = std::string{22, 3, 1, 0, 4} + std::string{1, 0, static_cast<char>(0xEA), 0x60};
  for (int i = 0; i < 20000; ++i) data += std::string{22, 3, 1, 0, 1, 3};
  EXPECT_EQ(inspector.onData(data), State::kClientHelloTooLarge);
  EXPECT_EQ(inspector.bytesInspected(), TlsInspector::kMaxClientHelloSize);
}

TEST(TlsInspectorTest, PlaintextIsRuledOutAtTheFirstByte) {
  for (std::string_view text : {"GET / HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n", "\x80\x2e\x01", "x"}) {
    TlsInspector inspector;
    EXPECT_EQ(inspector.onData(text), State::kNotTls) << text;
    EXPECT_EQ(inspector.bytesInspected(), 1u);
    EXPECT_EQ(inspector.onData("more"), State::kNotTls);  // final states stick
  }
}

TEST(TlsInspectorTest, MalformedRecordsAndHandshakesAreNotTls) {
  const std::string hello = opensslClientHello({"www.example.com", {"h2"}, 0});
  auto with = [&](size_t offset, char value) {
    std::string copy = hello;
    copy[offset] = value;
    return inspect(copy).state;
  };
  EXPECT_EQ(with(0, 23), State::kNotTls);  // application data record
  EXPECT_EQ(with(1, 2), State::kNotTls);   // record version 2.x
  EXPECT_EQ(with(2, 9), State::kNotTls);   // record version 3.9
  EXPECT_EQ(with(5, 2), State::kNotTls);   // ServerHello, not ClientHello
  EXPECT_EQ(with(9, 2), State::kNotTls);   // client_version 2.x
  // Zero-length and over-long records.
  EXPECT_EQ(inspect(std::string{22, 3, 1, 0, 0}).state, State::kNotTls);
  EXPECT_EQ(inspect(std::string{22, 3, 1, 0x40, 1}).state, State::kNotTls);
  // A ClientHello too short to hold its fixed fields.
  EXPECT_EQ(inspect(std::string{22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0}).state, State::kNotTls);
}

// Builds a ClientHello by hand around the given extensions block.
std::string handmadeHello(const std::string& extensions, bool with_extensions = true) {
  std::string body = std::string{3, 3} + std::string(32, 'r') + std::string{0} +
                     std::string{0, 2, 0x13, 0x01} + std::string{1, 0};
  if (with_extensions) {
    body += std::string{static_cast<char>(extensions.size() >> 8),
                        static_cast<char>(extensions.size() & 0xFF)} +
            extensions;
  }
  std::string handshake = std::string{1, 0, static_cast<char>(body.size() >> 8),
                                      static_cast<char>(body.size() & 0xFF)} +
                          body;
  return std::string{22, 3, 1, static_cast<char>(handshake.size() >> 8),
                     static_cast<char>(handshake.size() & 0xFF)} +
         handshake;
}

std::string extension(uint16_t type, const std::string& body) {
  return std::string{static_cast<char>(type >> 8), static_cast<char>(type & 0xFF),
                     static_cast<char>(body.size() >> 8), static_cast<char>(body.size() & 0xFF)} +
         body;
}

std::string sniExtension(const std::string& name, char type = 0) {
  std::string entry = std::string{type, static_cast<char>(name.size() >> 8),
                                  static_cast<char>(name.size() & 0xFF)} +
                      name;
  return extension(
      0, std::string{static_cast<char>(entry.size() >> 8), static_cast<char>(entry.size() & 0xFF)} +
             entry);
}

TEST(TlsInspectorTest, HandmadeHellos) {
  EXPECT_EQ(inspect(handmadeHello("", false)).state, State::kTls);  // no extensions at all
  EXPECT_EQ(inspect(handmadeHello("")).state, State::kTls);         // empty extensions block

  Outcome sni = inspect(handmadeHello(sniExtension("a.test")));
  EXPECT_EQ(sni.state, State::kTls);
  EXPECT_EQ(sni.sni, "a.test");

  // Unknown name types are skipped; the first host_name is taken.
  std::string two =
      std::string{5, 0, 1, 'z'} + std::string{0, 0, 1, 'b'} + std::string{0, 0, 1, 'c'};
  Outcome skipped = inspect(handmadeHello(extension(0, std::string{0, 12} + two)));
  EXPECT_EQ(skipped.state, State::kTls);
  EXPECT_EQ(skipped.sni, "b");

  EXPECT_EQ(inspect(handmadeHello(sniExtension(""))).state, State::kNotTls);
  EXPECT_EQ(inspect(handmadeHello(sniExtension(std::string("a\0b", 3)))).state, State::kNotTls);
  EXPECT_EQ(inspect(handmadeHello(extension(0, ""))).state, State::kNotTls);
  EXPECT_EQ(inspect(handmadeHello(extension(0, std::string{0, 0}))).state, State::kNotTls);
  EXPECT_EQ(inspect(handmadeHello(sniExtension("a") + sniExtension("b"))).state, State::kNotTls);
  // ALPN: empty list, empty protocol, length overrunning the extension.
  EXPECT_EQ(inspect(handmadeHello(extension(16, std::string{0, 0}))).state, State::kNotTls);
  EXPECT_EQ(inspect(handmadeHello(extension(16, std::string{0, 1, 0}))).state, State::kNotTls);
  EXPECT_EQ(inspect(handmadeHello(extension(16, std::string{0, 3, 5, 'h', '2'}))).state,
            State::kNotTls);
  Outcome alpn = inspect(handmadeHello(extension(16, std::string{0, 3, 2, 'h', '2'})));
  EXPECT_EQ(alpn.state, State::kTls);
  EXPECT_EQ(alpn.alpn, std::vector<std::string>{"h2"});
  // Extension block length disagreeing with the message, and bytes after it.
  std::string bad = handmadeHello(extension(99, "xyz"));
  bad[bad.size() - 8] = 9;  // extensions length 9 instead of 7
  EXPECT_EQ(inspect(bad).state, State::kNotTls);
}

TEST(TlsInspectorTest, BytesAfterTheClientHelloAreNotInspected) {
  const std::string hello = opensslClientHello({"x.test", {}, 0});
  TlsInspector inspector;
  EXPECT_EQ(inspector.onData(hello + "trailing garbage"), State::kTls);
  EXPECT_EQ(inspector.bytesInspected(), hello.size());
  EXPECT_EQ(inspector.serverName(), "x.test");
}

TEST(TlsInspectorTest, CorruptedHellosNeverCrash) {
  const std::string hello = opensslClientHello({"www.example.com", {"h2", "http/1.1"}, 0});
  for (size_t i = 0; i < hello.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xFF}) {
      std::string copy = hello;
      copy[i] = static_cast<char>(copy[i] ^ mask);
      TlsInspector inspector;
      const State s = inspector.onData(copy);
      // Whatever the answer, it is one of the four, and a "tls" answer is self-consistent.
      EXPECT_TRUE(s == State::kTls || s == State::kNotTls || s == State::kNeedMoreData ||
                  s == State::kClientHelloTooLarge);
      if (s != State::kTls) {
        EXPECT_TRUE(inspector.applicationProtocols().empty());
      }
    }
  }
}

}  // namespace
}  // namespace sheave
