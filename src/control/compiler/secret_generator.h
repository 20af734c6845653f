#pragma once

#include <string>
#include <vector>

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"

namespace sheave::control {

// SDS (Istio's SecretGen): the secrets a proxy may fetch from the control plane. Only the trust
// bundle, `ROOTCA`: the workload certificate `default` is never generated here, because its key
// is made by the proxy and never leaves it (the proxy gets the certificate by CSR). Names the
// control plane does not serve are left out, as for every other type. An empty bundle (no CA
// configured) serves nothing.
std::vector<envoy::extensions::transport_sockets::tls::v3::Secret> generateSecrets(
    const std::vector<std::string>& names, const std::string& trust_bundle_pem);

}  // namespace sheave::control
