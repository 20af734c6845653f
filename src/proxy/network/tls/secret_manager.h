#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"

namespace sheave::network::tls {

// Named TLS secrets (Envoy's envoy.extensions.transport_sockets.tls.v3.Secret): certificates and
// validation contexts that TLS contexts reference by name. Three sources feed setSecret(): the
// bootstrap's static_resources.secrets, SDS over the ADS stream (the names TLS contexts reference
// with an sds_config, see subscribedNames()), and providers inside the proxy (the workload
// certificate agent provides `default`). Every watcher of a name is told after the secret changes
// and rebuilds its SSL_CTX, so new handshakes pick up the new one and open connections keep theirs.
//
// Thread-safe (a mutex; nothing here is on the request path). Watch callbacks run on the thread
// that called setSecret(), without the lock held.
class SecretManager {
 public:
  using Secret = envoy::extensions::transport_sockets::tls::v3::Secret;

  // Unregisters its callback when destroyed (may outlive the manager).
  class Watch {
   public:
    virtual ~Watch() = default;
  };

  SecretManager();
  ~SecretManager();
  SecretManager(const SecretManager&) = delete;
  SecretManager& operator=(const SecretManager&) = delete;

  // Checks the secret (readable, parseable PEM, key matches certificate), stores it under its
  // name, replacing an older version, and then runs the watchers of that name. A bad secret
  // leaves the stored one in place.
  Status setSecret(const Secret& secret);
  // Withdraws a secret (an expired workload certificate): its watchers rebuild, and a context
  // that needs it over SDS goes back to failing its handshakes.
  void removeSecret(const std::string& name);
  // Bootstrap static_resources.secrets: names must be unique. Errors are prefixed "[i]" (and the
  // field path inside the secret).
  Status addStaticSecrets(const google::protobuf::RepeatedPtrField<Secret>& secrets);
  // Null when no secret has that name (yet).
  std::shared_ptr<const Secret> find(std::string_view name) const;

  // `dynamic`: the reference carries an sds_config, so the secret is fetched over SDS unless it is
  // static or provided locally.
  std::unique_ptr<Watch> watch(const std::string& name, std::function<void()> on_update,
                               bool dynamic = false);

  // A provider inside the proxy supplies this name; SDS never asks the server for it.
  void provideLocally(const std::string& name);
  // Every secret not from the bootstrap (SDS or a local provider), sorted by name: what
  // /config_dump shows as dynamic_active_secrets.
  std::vector<std::shared_ptr<const Secret>> dynamicSecrets() const;
  // The names that live dynamic references need from the SDS server: neither static nor provided
  // locally. Sorted.
  std::vector<std::string> subscribedNames() const;

 private:
  struct State;
  class WatchImpl;
  std::shared_ptr<State> state_;
};

}  // namespace sheave::network::tls
