#include "proxy/network/tls/tls_socket_factory.h"

#include <map>

#include "common/logging.h"
#include "proxy/network/tls/tls_transport_socket.h"

namespace sheave::network::tls {

namespace tlsv3 = envoy::extensions::transport_sockets::tls::v3;

namespace {

// The secret names a context references, each with whether it comes over SDS (an sds_config is
// set) rather than from static_resources.
std::map<std::string, bool> referencedSecrets(const tlsv3::CommonTlsContext& common) {
  std::map<std::string, bool> names;
  auto add = [&names](const tlsv3::SdsSecretConfig& ref) {
    names[ref.name()] = names[ref.name()] || ref.has_sds_config();
  };
  for (const auto& ref : common.tls_certificate_sds_secret_configs()) add(ref);
  if (common.has_validation_context_sds_secret_config()) {
    add(common.validation_context_sds_secret_config());
  }
  if (common.has_combined_validation_context() &&
      common.combined_validation_context().has_validation_context_sds_secret_config()) {
    add(common.combined_validation_context().validation_context_sds_secret_config());
  }
  return names;
}

}  // namespace

TlsSocketFactory::TlsSocketFactory(bool server, SecretManager* secrets)
    : server_(server), secrets_(secrets) {}

TlsSocketFactory::~TlsSocketFactory() = default;

Result<std::shared_ptr<TlsSocketFactory>> TlsSocketFactory::createServer(
    const tlsv3::DownstreamTlsContext& config, SecretManager* secrets) {
  std::shared_ptr<TlsSocketFactory> factory(new TlsSocketFactory(/*server=*/true, secrets));
  factory->downstream_ = config;
  SHEAVE_ASSIGN_OR_RETURN(auto ctx, factory->build());
  factory->context_.store(std::move(ctx));
  factory->watchSecrets(config.common_tls_context());
  return factory;
}

Result<std::shared_ptr<TlsSocketFactory>> TlsSocketFactory::createClient(
    const tlsv3::UpstreamTlsContext& config, SecretManager* secrets) {
  std::shared_ptr<TlsSocketFactory> factory(new TlsSocketFactory(/*server=*/false, secrets));
  factory->upstream_ = config;
  SHEAVE_ASSIGN_OR_RETURN(auto ctx, factory->build());
  factory->context_.store(std::move(ctx));
  factory->watchSecrets(config.common_tls_context());
  return factory;
}

bool TlsSocketFactory::isTls(const envoy::config::core::v3::TransportSocket& config) {
  if (config.name() == kName || config.name() == "tls") return true;
  const std::string& url = config.typed_config().type_url();
  return url.find("envoy.extensions.transport_sockets.tls.v3.") != std::string::npos;
}

Result<std::shared_ptr<TlsSocketFactory>> TlsSocketFactory::fromTransportSocket(
    const envoy::config::core::v3::TransportSocket& config, bool server, SecretManager* secrets) {
  if (!config.has_typed_config()) {
    return invalidArgument("typed_config: required for " + std::string(kName));
  }
  const auto& any = config.typed_config();
  if (server) {
    tlsv3::DownstreamTlsContext tls;
    if (!any.Is<tlsv3::DownstreamTlsContext>() || !any.UnpackTo(&tls)) {
      return invalidArgument("typed_config: expected a DownstreamTlsContext, got '" +
                             any.type_url() + "'");
    }
    auto f = createServer(tls, secrets);
    if (!f.ok()) return underField(std::move(f).error(), "typed_config");
    return f;
  }
  tlsv3::UpstreamTlsContext tls;
  if (!any.Is<tlsv3::UpstreamTlsContext>() || !any.UnpackTo(&tls)) {
    return invalidArgument("typed_config: expected an UpstreamTlsContext, got '" + any.type_url() +
                           "'");
  }
  auto f = createClient(tls, secrets);
  if (!f.ok()) return underField(std::move(f).error(), "typed_config");
  return f;
}

Result<std::shared_ptr<const TlsContext>> TlsSocketFactory::build() const {
  // A secret still on its way over SDS leaves the factory without a context: its sockets fail
  // their handshakes (fail closed) until the secret arrives and the watch rebuilds it.
  if (secrets_ != nullptr) {
    const auto& common =
        server_ ? downstream_.common_tls_context() : upstream_.common_tls_context();
    for (const auto& [name, dynamic] : referencedSecrets(common)) {
      if (dynamic && secrets_->find(name) == nullptr) {
        return std::shared_ptr<const TlsContext>();
      }
    }
  }
  if (server_) return TlsContext::createServer(downstream_, secrets_);
  return TlsContext::createClient(upstream_, secrets_);
}

void TlsSocketFactory::watchSecrets(const tlsv3::CommonTlsContext& common) {
  if (secrets_ == nullptr) return;
  std::weak_ptr<TlsSocketFactory> weak = weak_from_this();
  for (const auto& [name, dynamic] : referencedSecrets(common)) {
    watches_.push_back(secrets_->watch(
        name,
        [weak] {
          if (auto self = weak.lock()) self->rebuild();
        },
        dynamic));
  }
}

void TlsSocketFactory::rebuild() {
  auto ctx = build();
  if (!ctx.ok()) {
    SHEAVE_LOG_WARN("TLS context rebuild after a secret update failed, keeping the old one: {}",
                    ctx.error().message());
    return;
  }
  // Null: a secret it needs over SDS is (still, or again) missing, and handshakes fail.
  const bool was_ready = context_.load() != nullptr;
  const bool ready = *ctx != nullptr;
  context_.store(std::move(*ctx));
  if (was_ready && ready) rotations_.fetch_add(1);
}

std::unique_ptr<TransportSocket> TlsSocketFactory::createTransportSocket(std::string sni) const {
  return std::make_unique<TlsTransportSocket>(context_.load(), std::move(sni));
}

}  // namespace sheave::network::tls
