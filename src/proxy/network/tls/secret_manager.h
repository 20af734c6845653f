#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"

namespace sheave::network::tls {

// Named TLS secrets (Envoy's envoy.extensions.transport_sockets.tls.v3.Secret): certificates and
// validation contexts that TLS contexts reference by name through sds_config. Today they come
// from the bootstrap's static_resources.secrets; an SDS subscription will feed setSecret() the
// same way, so everything downstream already handles rotation: each watcher of a name is told
// after the secret changes and rebuilds its SSL_CTX, and new handshakes pick up the new one.
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
  // Bootstrap static_resources.secrets: names must be unique. Errors are prefixed "[i]" (and the
  // field path inside the secret).
  Status addStaticSecrets(const google::protobuf::RepeatedPtrField<Secret>& secrets);
  // Null when no secret has that name (yet).
  std::shared_ptr<const Secret> find(std::string_view name) const;

  std::unique_ptr<Watch> watch(const std::string& name, std::function<void()> on_update);

 private:
  struct State;
  class WatchImpl;
  std::shared_ptr<State> state_;
};

}  // namespace sheave::network::tls
