#include "control/compiler/secret_generator.h"

#include "control/compiler/names.h"

namespace sheave::control {

std::vector<envoy::extensions::transport_sockets::tls::v3::Secret> generateSecrets(
    const std::vector<std::string>& names, const std::string& trust_bundle_pem) {
  std::vector<envoy::extensions::transport_sockets::tls::v3::Secret> out;
  if (trust_bundle_pem.empty()) return out;
  for (const std::string& name : names) {
    if (name != kSdsRootSecretName) continue;
    auto& secret = out.emplace_back();
    secret.set_name(name);
    secret.mutable_validation_context()->mutable_trusted_ca()->set_inline_string(trust_bundle_pem);
  }
  return out;
}

}  // namespace sheave::control
