#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/model/yaml_decoder.h"

namespace sheave::control {

// networking.istio.io Gateway, field for field with Istio's API.

struct Port {
  uint32_t number = 0;
  std::string protocol;  // HTTP|HTTPS|GRPC|GRPC-WEB|HTTP2|MONGO|TCP|TLS
  std::string name;
  uint32_t target_port = 0;
};

enum class ServerTLSMode {
  kPassthrough,
  kSimple,
  kMutual,
  kAutoPassthrough,
  kIstioMutual,
  kOptionalMutual
};
template <>
struct EnumTraits<ServerTLSMode> {
  static constexpr std::array<std::pair<std::string_view, ServerTLSMode>, 6> kNames{{
      {"PASSTHROUGH", ServerTLSMode::kPassthrough},
      {"SIMPLE", ServerTLSMode::kSimple},
      {"MUTUAL", ServerTLSMode::kMutual},
      {"AUTO_PASSTHROUGH", ServerTLSMode::kAutoPassthrough},
      {"ISTIO_MUTUAL", ServerTLSMode::kIstioMutual},
      {"OPTIONAL_MUTUAL", ServerTLSMode::kOptionalMutual},
  }};
};

enum class TLSProtocol { kTlsAuto, kTlsV1_0, kTlsV1_1, kTlsV1_2, kTlsV1_3 };
template <>
struct EnumTraits<TLSProtocol> {
  static constexpr std::array<std::pair<std::string_view, TLSProtocol>, 5> kNames{{
      {"TLS_AUTO", TLSProtocol::kTlsAuto},
      {"TLSV1_0", TLSProtocol::kTlsV1_0},
      {"TLSV1_1", TLSProtocol::kTlsV1_1},
      {"TLSV1_2", TLSProtocol::kTlsV1_2},
      {"TLSV1_3", TLSProtocol::kTlsV1_3},
  }};
};

struct ServerTLSSettings {
  bool https_redirect = false;
  ServerTLSMode mode = ServerTLSMode::kPassthrough;
  std::string server_certificate;
  std::string private_key;
  std::string ca_certificates;
  std::string ca_crl;
  std::string credential_name;
  std::vector<std::string> credential_names;
  std::vector<std::string> subject_alt_names;
  std::vector<std::string> verify_certificate_spki;
  std::vector<std::string> verify_certificate_hash;
  TLSProtocol min_protocol_version = TLSProtocol::kTlsAuto;
  TLSProtocol max_protocol_version = TLSProtocol::kTlsAuto;
  std::vector<std::string> cipher_suites;
};

struct Server {
  std::optional<Port> port;
  std::string bind;
  std::vector<std::string> hosts;
  std::optional<ServerTLSSettings> tls;
  std::string default_endpoint;
  std::string name;
};

struct Gateway {
  std::vector<Server> servers;
  std::map<std::string, std::string> selector;
};

}  // namespace sheave::control
