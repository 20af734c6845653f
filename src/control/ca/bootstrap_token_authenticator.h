#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "control/ca/authenticator.h"
#include "control/ca/openssl_util.h"

namespace sheave::ca {

// The identity a bootstrap token stands for.
struct WorkloadBinding {
  SpiffeId identity;
  std::string workload_key;  // "ns/name" of the WorkloadEntry
};

// Per-workload bootstrap tokens for local workloads: the launcher issues
// one, writes it where only that workload's proxy can read it, and the proxy
// presents it as a bearer token to get its first certificate (after that it
// renews with the certificate).
//
// A token is 256 random bits, base64url without padding; only its SHA-256 is
// kept. authenticate() checks it without consuming it (the xDS stream may
// authenticate with it too); commitIssuance() consumes it once a certificate
// was issued, so it yields exactly one certificate. Thread-safe.
class BootstrapTokenAuthenticator final : public Authenticator {
 public:
  using Clock = std::function<SystemTime()>;

  explicit BootstrapTokenAuthenticator(Clock clock = {});

  // A fresh token for `binding`, valid for `ttl`.
  Result<std::string> issue(const WorkloadBinding& binding, std::chrono::seconds ttl);
  // Consumes `token`; PERMISSION_DENIED if it is unknown, expired or spent.
  Status markSpent(std::string_view token);
  // Forgets every token bound to `workload_key` (the workload was removed).
  void revokeWorkload(std::string_view workload_key);

  std::string_view name() const override { return "bootstrap-token"; }
  Result<AuthenticatedCaller> authenticate(const CallerCredentials& credentials) override;
  Status commitIssuance(const CallerCredentials& credentials,
                        const AuthenticatedCaller& caller) override;

  // Tokens currently held (spent ones included until they expire).
  size_t size() const;

 private:
  struct Entry {
    WorkloadBinding binding;
    SystemTime expiry;
    bool spent = false;
  };
  // The entry for `token` if it may still be used; mutex_ held.
  Result<Entry*> findUsableLocked(std::string_view token, SystemTime now);
  void pruneLocked(SystemTime now);

  Clock clock_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> tokens_;  // key: SHA-256 of the token
};

// Writes `token` to `path` with mode 0600 (never wider, not even briefly),
// replacing an earlier file atomically.
Status writeTokenFile(const std::string& path, std::string_view token);

}  // namespace sheave::ca
