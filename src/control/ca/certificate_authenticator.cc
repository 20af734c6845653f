#include "control/ca/certificate_authenticator.h"

#include <openssl/x509v3.h>

namespace sheave::ca {

Result<SpiffeId> spiffeIdOf(X509* cert) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) {
    return permissionDenied("client certificate has no subject alternative names");
  }
  std::vector<std::string> uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(names, i);
    if (gen->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = gen->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  if (uris.empty()) {
    return permissionDenied("client certificate has no URI SAN (SPIFFE ID)");
  }
  if (uris.size() > 1) {
    return permissionDenied("client certificate has more than one URI SAN");
  }
  // An embedded NUL would make the string differ from what it looks like.
  if (uris[0].find('\0') != std::string::npos) {
    return permissionDenied("client certificate's URI SAN contains a NUL byte");
  }
  auto id = SpiffeId::parse(uris[0]);
  if (!id.ok()) {
    return permissionDenied("client certificate's URI SAN is not a SPIFFE ID: " +
                            id.error().message());
  }
  return std::move(id).value();
}

Result<AuthenticatedCaller> CertificateAuthenticator::authenticate(
    const CallerCredentials& credentials) {
  if (credentials.peer_cert_chain_pem.empty()) {
    return unauthenticated("no client certificate");
  }
  auto chain = parseCertificates(credentials.peer_cert_chain_pem);
  if (!chain.ok()) {
    return permissionDenied("client certificate chain does not parse: " + chain.error().message());
  }
  X509* leaf = chain->front().get();
  std::vector<X509*> untrusted;
  for (size_t i = 1; i < chain->size(); ++i) untrusted.push_back((*chain)[i].get());
  // The CA's own intermediates help a peer that sent only its leaf.
  auto ca_intermediates = ca_.intermediates();
  for (auto& c : ca_intermediates) untrusted.push_back(c.get());
  auto roots = ca_.trustedRoots();
  std::vector<X509*> root_raw;
  root_raw.reserve(roots.size());
  for (auto& r : roots) root_raw.push_back(r.get());
  SHEAVE_RETURN_IF_ERROR(
      verifyChain(leaf, untrusted, root_raw, ca_.now(), X509_PURPOSE_SSL_CLIENT));
  // A CA certificate is never a workload.
  if (X509_check_ca(leaf) != 0) {
    return permissionDenied("client certificate is a CA certificate");
  }
  SHEAVE_ASSIGN_OR_RETURN(SpiffeId id, spiffeIdOf(leaf));
  if (id.trust_domain != ca_.trustDomain()) {
    return permissionDenied("client certificate's trust domain " + id.trust_domain + " is not " +
                            ca_.trustDomain());
  }
  return AuthenticatedCaller{std::move(id), "", std::string(name())};
}

}  // namespace sheave::ca
