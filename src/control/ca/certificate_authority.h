#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/ca/openssl_util.h"
#include "control/ca/spiffe_id.h"

namespace sheave::ca {

using Clock = std::function<SystemTime()>;

struct CaOptions {
  // Where the CA keeps its material; created (0700) when missing. Istio's
  // plug-in layout (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem)
  // is used as given; otherwise a self-signed root is created and persisted.
  std::string ca_dir;
  std::string trust_domain = "cluster.local";
  // Istio's DEFAULT_WORKLOAD_CERT_TTL and MAX_WORKLOAD_CERT_TTL.
  std::chrono::seconds workload_cert_ttl = std::chrono::hours(24);
  std::chrono::seconds max_workload_cert_ttl = std::chrono::hours(24 * 90);
  // Lifetime of a self-signed root (Istio's CITADEL_SELF_SIGNED_CA_CERT_TTL).
  std::chrono::seconds root_ttl = std::chrono::hours(24 * 3650);
  // maybeRotate() replaces the built-in root once less than this fraction
  // of its lifetime is left (2 years of a 10-year root).
  double rotate_when_remaining = 0.2;
  // After a rotation, how long the new root is only trusted (in the bundle)
  // before it also signs. Proxies need the new bundle before any peer
  // presents a certificate from the new root; give this at least the time a
  // push takes to reach every proxy. 0 switches at once.
  std::chrono::seconds root_switch_delay{0};
  // Certificates start this long before "now", so a proxy whose clock is a
  // little behind the control plane's still accepts them.
  std::chrono::seconds backdate = std::chrono::minutes(1);
  // Injectable for tests; the system clock when empty.
  Clock clock;
};

// A key and certificate chain for the control plane's own TLS listener.
struct ServingCertificate {
  std::string cert_chain_pem;   // leaf first
  std::string private_key_pem;  // PKCS#8
};

// The certificate authority of sheave-control. Signs workload CSRs for an
// identity the caller's authentication established. Thread-safe: sign() runs
// on gRPC threads while the server may rotate.
class CertificateAuthority {
 public:
  static Result<std::unique_ptr<CertificateAuthority>> open(const CaOptions& options);

  // Signs `csr_pem` for `identity` and returns the chain leaf first, root
  // last (Istio's cert_chain order). The CSR must carry a valid
  // self-signature and an RSA >= 2048 or EC P-256/P-384 key; everything else
  // it asks for (subject, SANs, extensions) is ignored. 0 < ttl <= max.
  Result<std::vector<std::string>> sign(std::string_view csr_pem, const SpiffeId& identity,
                                        std::chrono::seconds ttl);

  // A fresh P-256 key and serving certificate for the control plane's TLS
  // listener: each name becomes a DNS SAN, or an IP SAN when it parses as an
  // IP address.
  Result<ServingCertificate> issueServingCertificate(
      const std::vector<std::string>& names,
      std::chrono::seconds ttl = std::chrono::hours(24 * 30));
  // The same for an existing key (PEM): the certificate chain only. Lets a
  // listener renew its certificate without changing its key.
  Result<std::string> issueServingCertificateForKey(
      std::string_view private_key_pem, const std::vector<std::string>& names,
      std::chrono::seconds ttl = std::chrono::hours(24 * 30));

  // PEM of every root currently trusted: the signing root first, then a
  // pending new root, the plug-in bundle's other roots, and earlier roots
  // that have not expired (kept after a rotation).
  std::string trustBundle() const;
  // Roots as parsed certificates (for verification); up-refs, caller frees.
  std::vector<X509Ptr> trustedRoots() const;
  // Intermediate certificates between the signing certificate and its root
  // (empty for the built-in root).
  std::vector<X509Ptr> intermediates() const;

  // Replaces the built-in root by a fresh one. The new root joins the trust
  // bundle at once and signs from root_switch_delay later; the old root
  // stays in the bundle until it expires, so certificates it signed keep
  // verifying. An error for a plug-in CA (its operator owns rotation) or
  // while a rotation is still pending.
  Status rotateRoot();
  // A new root is trusted but not yet signing.
  bool rotationPending() const;
  // Rotates when the built-in root has less than rotate_when_remaining of
  // its life left at `now`. True when it rotated. For a plug-in CA it never
  // rotates but logs a warning (at most daily) once the signing certificate
  // is that close to expiry.
  Result<bool> maybeRotate(SystemTime now);

  // Expiry of the signing root (the metric citadel_server_root_cert_expiry).
  SystemTime rootExpiry() const;
  // Expiry of the certificate that signs workload certificates.
  SystemTime signingCertificateExpiry() const;
  bool pluggedIn() const { return plugged_in_; }
  const std::string& trustDomain() const { return options_.trust_domain; }
  std::chrono::seconds defaultTtl() const { return options_.workload_cert_ttl; }
  SystemTime now() const { return options_.clock(); }

 private:
  explicit CertificateAuthority(CaOptions options) : options_(std::move(options)) {}

  Status loadPluggedIn();
  Status loadOrCreateSelfSigned();
  Result<X509Ptr> createRoot(EVP_PKEY* key) const;
  Status persistRotation(EVP_PKEY* key, X509* root, const std::vector<X509Ptr>& previous);
  Status loadPendingRotation();
  // Makes `root` the signing root; mutex_ held.
  Status switchRootLocked(EvpPkeyPtr key, X509Ptr root);
  // Switches to the pending root once its delay has passed; mutex_ held.
  Status promoteLocked(SystemTime now);
  // Builds and signs a leaf under the current signer; mutex_ held.
  Result<X509Ptr> issueLocked(EVP_PKEY* subject_key, const std::vector<std::string>& uris,
                              const std::vector<std::string>& names, std::chrono::seconds ttl,
                              bool client_auth);
  std::vector<std::string> chainLocked(X509* leaf) const;
  std::string path(std::string_view file) const;

  CaOptions options_;
  bool plugged_in_ = false;
  mutable std::mutex mutex_;
  EvpPkeyPtr signing_key_;
  X509Ptr signing_cert_;
  std::vector<X509Ptr> intermediates_;   // between signing_cert_ and root_, in order
  X509Ptr root_;                         // the root the chain ends with
  std::vector<X509Ptr> extra_roots_;     // other trusted roots (plug-in bundle)
  std::vector<X509Ptr> previous_roots_;  // kept after rotation until they expire
  SystemTime last_expiry_warning_{};
  EvpPkeyPtr next_key_;  // a rotated-in root waiting for root_switch_delay
  X509Ptr next_root_;
};

// Expiry (notAfter) of the first certificate in `pem`.
Result<SystemTime> certificateExpiry(std::string_view pem);

}  // namespace sheave::ca
