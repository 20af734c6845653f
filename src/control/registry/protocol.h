#pragma once

#include <cstdint>
#include <string_view>

#include "control/model/kubernetes.h"

namespace sheave::control {

// The protocol a service port carries, as Istio's protocol selection decides
// it. kUnsupported means "not declared": the sidecar sniffs HTTP and HTTP/2 and
// treats anything else as TCP.
enum class Protocol {
  kHttp,
  kHttp2,
  kGrpc,
  kGrpcWeb,
  kHttpProxy,
  kHttps,
  kTcp,
  kTls,
  kUdp,
  kMongo,
  kRedis,
  kMySql,
  kUnsupported,
};

// Istio's spelling ("HTTP", "GRPC-Web", "MySQL", "UnsupportedProtocol"), so
// debug output and config dumps read like istiod's.
std::string_view protocolName(Protocol protocol);

// Istio's protocol.Parse: one protocol name, case-insensitive ("http",
// "GRPC", "grpc-web", "http_proxy", ...); anything else is kUnsupported.
Protocol parseProtocol(std::string_view name);

// The protocol of a Kubernetes Service port: UDP from `protocol`; otherwise
// `appProtocol` when set (including Kubernetes' own kubernetes.io/h2c, /ws,
// /wss), else the port name's prefix before the first '-' ("http-web",
// "grpc-web-ui"). Undeclared ports on SMTP/DNS/MySQL/MongoDB's well-known
// numbers are TCP, because sniffing breaks those server-first protocols.
Protocol protocolForServicePort(int32_t port, std::string_view name, std::string_view app_protocol,
                                std::string_view transport = "TCP");
inline Protocol protocolForServicePort(const KubernetesServicePort& port) {
  return protocolForServicePort(port.port, port.name, port.app_protocol, port.protocol);
}

// Classification used by the compiler to pick listeners and filters.
bool isHttp(Protocol protocol);   // http, http2, grpc, grpc-web, http_proxy
bool isHttp2(Protocol protocol);  // http2, grpc, grpc-web
bool isGrpc(Protocol protocol);   // grpc, grpc-web
bool isTls(Protocol protocol);    // https, tls
bool isTcp(Protocol protocol);    // tcp, https, tls, mongo, redis, mysql

}  // namespace sheave::control
