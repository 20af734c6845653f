#include "control/ca/bootstrap_token_authenticator.h"

#include <openssl/sha.h>

namespace sheave::ca {

namespace {

// Tokens issued by us are 43 characters; anything much longer is not one of
// ours and is not worth hashing.
constexpr size_t kMaxTokenLength = 256;

std::string sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

std::string base64Url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3f];
  return out;
}

}  // namespace

BootstrapTokenAuthenticator::BootstrapTokenAuthenticator(Clock clock) : clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::system_clock::now(); };
}

Result<std::string> BootstrapTokenAuthenticator::issue(const WorkloadBinding& binding,
                                                       std::chrono::seconds ttl) {
  SHEAVE_RETURN_IF_ERROR(binding.identity.validate());
  if (ttl.count() <= 0) return invalidArgument("bootstrap token TTL must be positive");
  SHEAVE_ASSIGN_OR_RETURN(std::string bytes, randomBytes(32));
  std::string token = base64Url(bytes);
  std::lock_guard lock(mutex_);
  SystemTime now = clock_();
  pruneLocked(now);
  tokens_[sha256(token)] = Entry{binding, now + ttl, false};
  return token;
}

Result<BootstrapTokenAuthenticator::Entry*> BootstrapTokenAuthenticator::findUsableLocked(
    std::string_view token, SystemTime now) {
  if (token.size() > kMaxTokenLength) {
    return permissionDenied("bootstrap token is not valid");
  }
  auto it = tokens_.find(sha256(token));
  if (it == tokens_.end()) {
    return permissionDenied("bootstrap token is not valid (unknown or expired)");
  }
  if (now >= it->second.expiry) {
    return permissionDenied("bootstrap token has expired");
  }
  if (it->second.spent) {
    return permissionDenied("bootstrap token was already used for a certificate");
  }
  return &it->second;
}

Result<AuthenticatedCaller> BootstrapTokenAuthenticator::authenticate(
    const CallerCredentials& credentials) {
  if (credentials.bearer_token.empty()) {
    return unauthenticated("no bearer token");
  }
  std::lock_guard lock(mutex_);
  SHEAVE_ASSIGN_OR_RETURN(Entry * entry, findUsableLocked(credentials.bearer_token, clock_()));
  if (!credentials.claimed_workload.empty() &&
      credentials.claimed_workload != entry->binding.workload_key) {
    return permissionDenied("bootstrap token is bound to another workload than " +
                            credentials.claimed_workload);
  }
  return AuthenticatedCaller{entry->binding.identity, entry->binding.workload_key,
                             std::string(name())};
}

Status BootstrapTokenAuthenticator::markSpent(std::string_view token) {
  std::lock_guard lock(mutex_);
  SHEAVE_ASSIGN_OR_RETURN(Entry * entry, findUsableLocked(token, clock_()));
  entry->spent = true;
  return okStatus();
}

Status BootstrapTokenAuthenticator::commitIssuance(const CallerCredentials& credentials,
                                                   const AuthenticatedCaller& caller) {
  (void)caller;
  return markSpent(credentials.bearer_token);
}

void BootstrapTokenAuthenticator::revokeWorkload(std::string_view workload_key) {
  std::lock_guard lock(mutex_);
  std::erase_if(tokens_,
                [&](const auto& kv) { return kv.second.binding.workload_key == workload_key; });
}

size_t BootstrapTokenAuthenticator::size() const {
  std::lock_guard lock(mutex_);
  return tokens_.size();
}

void BootstrapTokenAuthenticator::pruneLocked(SystemTime now) {
  std::erase_if(tokens_, [&](const auto& kv) { return now >= kv.second.expiry; });
}

Status writeTokenFile(const std::string& path, std::string_view token) {
  return writeFileAtomic(path, token, 0600);
}

}  // namespace sheave::ca
