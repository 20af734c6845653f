#include "control/registry/protocol.h"

#include <gtest/gtest.h>

namespace sheave::control {
namespace {

struct PortCase {
  int32_t port;
  const char* name;
  const char* app_protocol;
  const char* transport;
  Protocol expected;
};

TEST(ProtocolTest, KubernetesServicePortSelection) {
  const PortCase cases[] = {
      // Name prefixes.
      {80, "http", "", "TCP", Protocol::kHttp},
      {80, "http-web", "", "TCP", Protocol::kHttp},
      {80, "HTTP-Web", "", "TCP", Protocol::kHttp},
      {80, "http2", "", "TCP", Protocol::kHttp2},
      {80, "http2-api", "", "TCP", Protocol::kHttp2},
      {80, "https", "", "TCP", Protocol::kHttps},
      {80, "grpc", "", "TCP", Protocol::kGrpc},
      {80, "grpc-api", "", "TCP", Protocol::kGrpc},
      {80, "grpc-web", "", "TCP", Protocol::kGrpcWeb},
      {80, "grpc-web-ui", "", "TCP", Protocol::kGrpcWeb},
      {80, "tcp", "", "TCP", Protocol::kTcp},
      {80, "tcp-db", "", "TCP", Protocol::kTcp},
      {80, "tls", "", "TCP", Protocol::kTls},
      {80, "tls-passthrough", "", "TCP", Protocol::kTls},
      {80, "mongo", "", "TCP", Protocol::kMongo},
      {80, "redis-cache", "", "TCP", Protocol::kRedis},
      {80, "mysql", "", "TCP", Protocol::kMySql},
      {80, "http_proxy", "", "TCP", Protocol::kHttpProxy},
      // A name that only starts like a protocol is not one.
      {80, "httpforecast", "", "TCP", Protocol::kUnsupported},
      {80, "web", "", "TCP", Protocol::kUnsupported},
      {80, "", "", "TCP", Protocol::kUnsupported},
      // appProtocol wins over the name.
      {80, "web", "http", "TCP", Protocol::kHttp},
      {80, "http-web", "grpc", "TCP", Protocol::kGrpc},
      {3306, "database", "mysql", "TCP", Protocol::kMySql},
      {80, "web", "kubernetes.io/h2c", "TCP", Protocol::kHttp2},
      {80, "web", "kubernetes.io/ws", "TCP", Protocol::kHttp},
      {80, "web", "kubernetes.io/wss", "TCP", Protocol::kHttps},
      {80, "http", "example.com/custom", "TCP", Protocol::kUnsupported},
      // UDP transport always wins; a "udp" name on a TCP port is TCP.
      {53, "dns", "", "UDP", Protocol::kUdp},
      {53, "http", "", "UDP", Protocol::kUdp},
      {80, "udp-thing", "", "TCP", Protocol::kTcp},
      // Server-first well-known ports are TCP rather than sniffed.
      {3306, "db", "", "TCP", Protocol::kTcp},
      {27017, "", "", "TCP", Protocol::kTcp},
      {25, "smtp", "", "TCP", Protocol::kTcp},
      {53, "", "", "TCP", Protocol::kTcp},
      {27017, "http", "", "TCP", Protocol::kHttp},
  };
  for (const PortCase& c : cases) {
    EXPECT_EQ(protocolForServicePort(c.port, c.name, c.app_protocol, c.transport), c.expected)
        << "port " << c.port << " name \"" << c.name << "\" appProtocol \"" << c.app_protocol
        << "\" got "
        << protocolName(protocolForServicePort(c.port, c.name, c.app_protocol, c.transport));
  }
}

TEST(ProtocolTest, ParseIsCaseInsensitiveAndStrict) {
  EXPECT_EQ(parseProtocol("HTTP"), Protocol::kHttp);
  EXPECT_EQ(parseProtocol("Grpc-Web"), Protocol::kGrpcWeb);
  EXPECT_EQ(parseProtocol("TLS"), Protocol::kTls);
  EXPECT_EQ(parseProtocol("http-foo"), Protocol::kUnsupported);
  EXPECT_EQ(parseProtocol(""), Protocol::kUnsupported);
}

TEST(ProtocolTest, NamesAndClasses) {
  EXPECT_EQ(protocolName(Protocol::kGrpcWeb), "GRPC-Web");
  EXPECT_EQ(protocolName(Protocol::kMySql), "MySQL");
  EXPECT_EQ(protocolName(Protocol::kUnsupported), "UnsupportedProtocol");
  EXPECT_TRUE(isHttp(Protocol::kGrpc));
  EXPECT_TRUE(isHttp2(Protocol::kGrpcWeb));
  EXPECT_FALSE(isHttp2(Protocol::kHttp));
  EXPECT_TRUE(isTls(Protocol::kHttps));
  EXPECT_FALSE(isHttp(Protocol::kHttps));
  EXPECT_TRUE(isTcp(Protocol::kRedis));
  EXPECT_FALSE(isTcp(Protocol::kUnsupported));
  EXPECT_TRUE(isGrpc(Protocol::kGrpc));
  EXPECT_FALSE(isGrpc(Protocol::kHttp2));
}

}  // namespace
}  // namespace sheave::control
