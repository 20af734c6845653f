#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "proxy/network/tls/secret_manager.h"
#include "proxy/network/tls/tls_context.h"
#include "proxy/network/transport_socket.h"

namespace sheave::network::tls {

// The transport socket factory of one listener filter chain (server) or one cluster (client):
// parsed once on the main thread, shared by every worker. It publishes its current TlsContext as
// a shared_ptr<const> swapped atomically; when a secret it references changes, it builds a new
// context (new SSL_CTX) and swaps it in, so new handshakes use it while open connections keep
// theirs. A rebuild that fails keeps the previous context and logs a warning.
class TlsSocketFactory : public std::enable_shared_from_this<TlsSocketFactory> {
 public:
  static constexpr const char* kName = "envoy.transport_sockets.tls";

  // `secrets` may be null when nothing is referenced by name; otherwise it must outlive the
  // factory's watches (the factory unregisters them when destroyed).
  static Result<std::shared_ptr<TlsSocketFactory>> createServer(
      const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config,
      SecretManager* secrets);
  static Result<std::shared_ptr<TlsSocketFactory>> createClient(
      const envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext& config,
      SecretManager* secrets);
  // An envoy.config.core.v3.TransportSocket whose typed_config is a DownstreamTlsContext
  // (server) or UpstreamTlsContext (client). Errors are relative to the TransportSocket.
  static Result<std::shared_ptr<TlsSocketFactory>> fromTransportSocket(
      const envoy::config::core::v3::TransportSocket& config, bool server, SecretManager* secrets);
  // True when `config` asks for TLS (name or typed_config type), false for raw_buffer/empty.
  static bool isTls(const envoy::config::core::v3::TransportSocket& config);

  ~TlsSocketFactory();

  // Any thread. Client: `sni` overrides the configured sni when non-empty.
  std::unique_ptr<TransportSocket> createTransportSocket(std::string sni = {}) const;
  // Null while a secret it references over SDS has not arrived yet.
  std::shared_ptr<const TlsContext> context() const { return context_.load(); }
  bool ready() const { return context_.load() != nullptr; }
  bool isServer() const { return server_; }
  // Bumped by every successful rebuild after the first usable context.
  uint64_t rotations() const { return rotations_.load(); }

 private:
  TlsSocketFactory(bool server, SecretManager* secrets);
  Result<std::shared_ptr<const TlsContext>> build() const;
  void watchSecrets(const envoy::extensions::transport_sockets::tls::v3::CommonTlsContext& common);
  void rebuild();

  const bool server_;
  SecretManager* secrets_;
  envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext downstream_;
  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext upstream_;
  std::vector<std::unique_ptr<SecretManager::Watch>> watches_;
  std::atomic<std::shared_ptr<const TlsContext>> context_;
  std::atomic<uint64_t> rotations_{0};
};

}  // namespace sheave::network::tls
