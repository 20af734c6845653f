#include "control/registry/protocol.h"

#include <array>
#include <cctype>
#include <string>
#include <utility>

namespace sheave::control {
namespace {

constexpr std::array<std::pair<std::string_view, Protocol>, 12> kParseNames{{
    {"http", Protocol::kHttp},
    {"http2", Protocol::kHttp2},
    {"grpc", Protocol::kGrpc},
    {"grpc-web", Protocol::kGrpcWeb},
    {"http_proxy", Protocol::kHttpProxy},
    {"https", Protocol::kHttps},
    {"tcp", Protocol::kTcp},
    {"tls", Protocol::kTls},
    {"udp", Protocol::kUdp},
    {"mongo", Protocol::kMongo},
    {"redis", Protocol::kRedis},
    {"mysql", Protocol::kMySql},
}};

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool isWellKnownServerFirstPort(int32_t port) {
  // SMTP, DNS, MySQL, MongoDB: the server speaks first, so sniffing would hang.
  return port == 25 || port == 53 || port == 3306 || port == 27017;
}

}  // namespace

std::string_view protocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp:
      return "HTTP";
    case Protocol::kHttp2:
      return "HTTP2";
    case Protocol::kGrpc:
      return "GRPC";
    case Protocol::kGrpcWeb:
      return "GRPC-Web";
    case Protocol::kHttpProxy:
      return "HTTP_PROXY";
    case Protocol::kHttps:
      return "HTTPS";
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kTls:
      return "TLS";
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kMongo:
      return "Mongo";
    case Protocol::kRedis:
      return "Redis";
    case Protocol::kMySql:
      return "MySQL";
    case Protocol::kUnsupported:
      return "UnsupportedProtocol";
  }
  return "UnsupportedProtocol";
}

Protocol parseProtocol(std::string_view name) {
  for (const auto& [text, protocol] : kParseNames) {
    if (equalsIgnoreCase(name, text)) return protocol;
  }
  return Protocol::kUnsupported;
}

Protocol protocolForServicePort(int32_t port, std::string_view name, std::string_view app_protocol,
                                std::string_view transport) {
  if (equalsIgnoreCase(transport, "UDP")) return Protocol::kUdp;

  std::string_view declared = name;
  if (!app_protocol.empty()) {
    // Kubernetes' standard appProtocol values; a port name cannot contain '/'.
    if (app_protocol == "kubernetes.io/h2c") return Protocol::kHttp2;
    if (app_protocol == "kubernetes.io/ws") return Protocol::kHttp;
    if (app_protocol == "kubernetes.io/wss") return Protocol::kHttps;
    declared = app_protocol;
  }

  Protocol protocol;
  // "grpc-web" contains the '-' that otherwise separates prefix and suffix.
  if (declared.size() >= 8 && equalsIgnoreCase(declared.substr(0, 8), "grpc-web")) {
    protocol = Protocol::kGrpcWeb;
  } else {
    protocol = parseProtocol(declared.substr(0, declared.find('-')));
    // A TCP port named "udp-..." is still TCP as far as the proxy is concerned.
    if (protocol == Protocol::kUdp) protocol = Protocol::kTcp;
  }
  if (protocol == Protocol::kUnsupported && isWellKnownServerFirstPort(port)) {
    return Protocol::kTcp;
  }
  return protocol;
}

bool isHttp(Protocol protocol) {
  return protocol == Protocol::kHttp || protocol == Protocol::kHttpProxy || isHttp2(protocol);
}

bool isHttp2(Protocol protocol) {
  return protocol == Protocol::kHttp2 || protocol == Protocol::kGrpc ||
         protocol == Protocol::kGrpcWeb;
}

bool isGrpc(Protocol protocol) {
  return protocol == Protocol::kGrpc || protocol == Protocol::kGrpcWeb;
}

bool isTls(Protocol protocol) { return protocol == Protocol::kHttps || protocol == Protocol::kTls; }

bool isTcp(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTcp:
    case Protocol::kHttps:
    case Protocol::kTls:
    case Protocol::kMongo:
    case Protocol::kRedis:
    case Protocol::kMySql:
      return true;
    default:
      return false;
  }
}

}  // namespace sheave::control
