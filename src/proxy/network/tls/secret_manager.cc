#include "proxy/network/tls/secret_manager.h"

#include <set>
#include <vector>

#include "proxy/network/tls/tls_context.h"

namespace sheave::network::tls {

struct SecretManager::State {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const Secret>, std::less<>> secrets;
  // name -> (watch id -> callback). Callbacks are shared so one may run after its Watch was
  // destroyed on another thread only while setSecret() holds a copy; watchers guard their own
  // state (TlsSocketFactory uses a weak_ptr).
  std::map<std::string, std::map<uint64_t, std::shared_ptr<std::function<void()>>>> watches;
  uint64_t next_id = 1;
  std::map<std::string, int, std::less<>> dynamic_refs;  // name -> live dynamic watches
  std::set<std::string, std::less<>> static_names;
  std::set<std::string, std::less<>> local_names;
};

class SecretManager::WatchImpl final : public SecretManager::Watch {
 public:
  WatchImpl(std::weak_ptr<State> state, std::string name, uint64_t id, bool dynamic)
      : state_(std::move(state)), name_(std::move(name)), id_(id), dynamic_(dynamic) {}
  ~WatchImpl() override {
    auto state = state_.lock();
    if (!state) return;
    std::lock_guard<std::mutex> lock(state->mu);
    if (dynamic_) {
      auto ref = state->dynamic_refs.find(name_);
      if (ref != state->dynamic_refs.end() && --ref->second <= 0) state->dynamic_refs.erase(ref);
    }
    auto it = state->watches.find(name_);
    if (it == state->watches.end()) return;
    it->second.erase(id_);
    if (it->second.empty()) state->watches.erase(it);
  }

 private:
  std::weak_ptr<State> state_;
  std::string name_;
  uint64_t id_;
  bool dynamic_;
};

namespace {

Status checkSecret(const SecretManager::Secret& secret) {
  if (secret.name().empty()) return invalidArgument("name: required");
  switch (secret.type_case()) {
    case SecretManager::Secret::kTlsCertificate: {
      auto status = checkTlsCertificate(secret.tls_certificate());
      if (!status.ok()) return underField(std::move(status).error(), "tls_certificate");
      return okStatus();
    }
    case SecretManager::Secret::kValidationContext: {
      auto status = checkValidationContext(secret.validation_context());
      if (!status.ok()) return underField(std::move(status).error(), "validation_context");
      return okStatus();
    }
    case SecretManager::Secret::kSessionTicketKeys:
    case SecretManager::Secret::kGenericSecret:
      return okStatus();  // stored for later users; nothing references them yet
    default:
      return invalidArgument(
          "one of tls_certificate, validation_context, session_ticket_keys or "
          "generic_secret is required");
  }
}

}  // namespace

SecretManager::SecretManager() : state_(std::make_shared<State>()) {}
SecretManager::~SecretManager() = default;

Status SecretManager::setSecret(const Secret& secret) {
  auto status = checkSecret(secret);
  if (!status.ok()) {
    if (secret.name().empty()) return status;
    return underField(std::move(status).error(), "secret '" + secret.name() + "'");
  }
  std::vector<std::shared_ptr<std::function<void()>>> to_call;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->secrets[secret.name()] = std::make_shared<const Secret>(secret);
    auto it = state_->watches.find(secret.name());
    if (it != state_->watches.end()) {
      for (auto& [id, cb] : it->second) to_call.push_back(cb);
    }
  }
  for (auto& cb : to_call) (*cb)();
  return okStatus();
}

void SecretManager::removeSecret(const std::string& name) {
  std::vector<std::shared_ptr<std::function<void()>>> to_call;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->secrets.erase(name) == 0) return;
    auto it = state_->watches.find(name);
    if (it != state_->watches.end()) {
      for (auto& [id, cb] : it->second) to_call.push_back(cb);
    }
  }
  for (auto& cb : to_call) (*cb)();
}

Status SecretManager::addStaticSecrets(const google::protobuf::RepeatedPtrField<Secret>& secrets) {
  std::set<std::string> seen;
  for (int i = 0; i < secrets.size(); ++i) {
    std::string where = "[" + std::to_string(i) + "]";
    const auto& secret = secrets.Get(i);
    if (!seen.insert(secret.name()).second) {
      return invalidArgument(where + ".name: duplicate secret name '" + secret.name() + "'");
    }
    auto status = checkSecret(secret);
    if (!status.ok()) return underField(std::move(status).error(), where);
  }
  for (const auto& secret : secrets) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->static_names.insert(secret.name());
    }
    auto status = setSecret(secret);
    if (!status.ok()) return status;  // not reached: checked above
  }
  return okStatus();
}

std::shared_ptr<const SecretManager::Secret> SecretManager::find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->secrets.find(name);
  return it == state_->secrets.end() ? nullptr : it->second;
}

std::unique_ptr<SecretManager::Watch> SecretManager::watch(const std::string& name,
                                                           std::function<void()> on_update,
                                                           bool dynamic) {
  std::lock_guard<std::mutex> lock(state_->mu);
  uint64_t id = state_->next_id++;
  state_->watches[name][id] = std::make_shared<std::function<void()>>(std::move(on_update));
  if (dynamic) ++state_->dynamic_refs[name];
  return std::make_unique<WatchImpl>(state_, name, id, dynamic);
}

void SecretManager::provideLocally(const std::string& name) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->local_names.insert(name);
}

std::vector<std::shared_ptr<const SecretManager::Secret>> SecretManager::dynamicSecrets() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<std::shared_ptr<const Secret>> out;
  for (const auto& [name, secret] : state_->secrets) {
    if (state_->static_names.count(name) == 0) out.push_back(secret);
  }
  return out;
}

std::vector<std::string> SecretManager::subscribedNames() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<std::string> names;
  for (const auto& [name, count] : state_->dynamic_refs) {
    if (state_->static_names.count(name) == 0 && state_->local_names.count(name) == 0) {
      names.push_back(name);
    }
  }
  return names;
}

}  // namespace sheave::network::tls
