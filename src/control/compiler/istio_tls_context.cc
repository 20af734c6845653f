#include "control/compiler/istio_tls_context.h"

#include "control/compiler/names.h"

namespace sheave::control {

namespace tls = envoy::extensions::transport_sockets::tls::v3;

void setAdsConfigSource(envoy::config::core::v3::ConfigSource* source) {
  source->mutable_ads();
  source->set_resource_api_version(envoy::config::core::v3::V3);
}

tls::CertificateValidationContext* setIstioSdsCertificates(tls::CommonTlsContext* common) {
  auto* cert = common->add_tls_certificate_sds_secret_configs();
  cert->set_name(std::string(kSdsDefaultSecretName));
  setAdsConfigSource(cert->mutable_sds_config());
  auto* combined = common->mutable_combined_validation_context();
  auto* validation = combined->mutable_default_validation_context();
  auto* root = combined->mutable_validation_context_sds_secret_config();
  root->set_name(std::string(kSdsRootSecretName));
  setAdsConfigSource(root->mutable_sds_config());
  return validation;
}

tls::DownstreamTlsContext istioInboundTlsContext(std::string_view trust_domain, bool http) {
  tls::DownstreamTlsContext context;
  context.mutable_require_client_certificate()->set_value(true);
  auto* common = context.mutable_common_tls_context();
  auto* validation = setIstioSdsCertificates(common);
  // Any workload of this trust domain may connect; which ones may talk to
  // this workload is AuthorizationPolicy's decision, not the handshake's.
  auto* san = validation->add_match_typed_subject_alt_names();
  san->set_san_type(tls::SubjectAltNameMatcher::URI);
  san->mutable_matcher()->set_prefix("spiffe://" + std::string(trust_domain) + "/");
  if (!http) common->add_alpn_protocols("istio-peer-exchange");
  common->add_alpn_protocols("h2");
  common->add_alpn_protocols("http/1.1");
  auto* params = common->mutable_tls_params();
  params->set_tls_minimum_protocol_version(tls::TlsParameters::TLSv1_2);
  return context;
}

}  // namespace sheave::control
