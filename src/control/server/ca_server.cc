#include "control/server/ca_server.h"

#include <grpcpp/security/server_credentials.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/logging.h"
#include "control/ca/spiffe_id.h"

namespace sheave::control {

Result<std::unique_ptr<CaServer>> CaServer::create(const CaServerOptions& options) {
  std::unique_ptr<CaServer> server(new CaServer());
  server->options_ = options;
  ca::CaOptions ca_options;
  ca_options.ca_dir = options.ca_dir;
  ca_options.trust_domain = options.trust_domain;
  ca_options.workload_cert_ttl = options.workload_cert_ttl;
  SHEAVE_ASSIGN_OR_RETURN(server->ca_, ca::CertificateAuthority::open(ca_options));
  SHEAVE_ASSIGN_OR_RETURN(server->serving_,
                          ca::ServingCredentials::create(*server->ca_, options.ca_dir + "/serving",
                                                         options.serving_names));
  server->tokens_ = std::make_shared<ca::BootstrapTokenAuthenticator>();
  server->certificates_ = std::make_shared<ca::CertificateAuthenticator>(*server->ca_);
  server->chain_ = std::make_unique<ca::ChainAuthenticator>(
      std::vector<std::shared_ptr<ca::Authenticator>>{server->tokens_, server->certificates_});
  server->service_ = std::make_unique<ca::CaService>(*server->ca_, *server->chain_);
  return server;
}

std::shared_ptr<grpc::ServerCredentials> CaServer::xdsCredentials() const {
  return serving_->serverCredentials();
}

Result<std::string> CaServer::authenticateStream(const xds::PeerCredentials& peer) {
  ca::CallerCredentials credentials;
  for (const std::string& pem : peer.cert_chain_pem) credentials.peer_cert_chain_pem += pem;
  if (credentials.peer_cert_chain_pem.empty()) {
    return unauthenticated(
        "xDS needs the workload certificate (get one from the CA with the bootstrap token)");
  }
  SHEAVE_ASSIGN_OR_RETURN(ca::AuthenticatedCaller caller, certificates_->authenticate(credentials));
  return caller.identity.toString();
}

void CaServer::syncTokens(const ConfigSet& config) {
  if (options_.token_dir.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> present;
  for (const auto& entry : config.workload_entries) {
    const std::string ns = entry.metadata.namespace_name;
    const std::string key = ns + "/" + entry.metadata.name;
    present.insert(key);
    const std::filesystem::path dir = std::filesystem::path(options_.token_dir) / ns;
    const std::filesystem::path file = dir / entry.metadata.name;
    std::error_code ec;
    if (token_workloads_.count(key) != 0 && std::filesystem::exists(file, ec)) continue;
    std::filesystem::create_directories(dir, ec);
    ::chmod(dir.c_str(), 0700);
    ca::WorkloadBinding binding;
    binding.identity.trust_domain = options_.trust_domain;
    binding.identity.ns = ns;
    binding.identity.sa =
        entry.spec.service_account.empty() ? "default" : entry.spec.service_account;
    binding.workload_key = key;
    auto token = tokens_->issue(binding, options_.token_ttl);
    if (!token.ok()) {
      SHEAVE_LOG_WARN("ca: no bootstrap token for {}: {}", key, token.error().message());
      continue;
    }
    if (auto status = ca::writeTokenFile(file.string(), *token); !status.ok()) {
      SHEAVE_LOG_WARN("ca: cannot write the bootstrap token of {}: {}", key,
                      status.error().message());
      continue;
    }
    token_workloads_.insert(key);
    SHEAVE_LOG_INFO("ca: bootstrap token for {} ({}) in {}", key, binding.identity.toString(),
                    file.string());
  }
  for (auto it = token_workloads_.begin(); it != token_workloads_.end();) {
    if (present.count(*it) != 0) {
      ++it;
      continue;
    }
    tokens_->revokeWorkload(*it);
    std::error_code ec;
    std::filesystem::remove(std::filesystem::path(options_.token_dir) / *it, ec);
    it = token_workloads_.erase(it);
  }
}

std::string CaServer::metrics() const {
  const ca::CaServiceStats& s = service_->stats();
  auto seconds = [](ca::SystemTime t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  };
  auto left = [this](ca::SystemTime t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t - ca_->now()).count();
  };
  std::string out;
  auto counter = [&out](const char* name, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(v) + "\n";
  };
  auto gauge = [&out](const char* name, const char* help, int64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name +
           " " + std::to_string(v) + "\n";
  };
  counter("citadel_server_csr_count", "The number of CSRs received by the CA.", s.csr_count);
  counter("citadel_server_success_cert_issuance_count",
          "The number of certificates issuances that have succeeded.",
          s.success_cert_issuance_count);
  counter("citadel_server_authentication_failure_count", "The number of authentication failures.",
          s.authentication_failure_count);
  counter("citadel_server_csr_parsing_err_count",
          "The number of errors occurred when parsing the CSR.", s.csr_parsing_err_count);
  counter("citadel_server_csr_sign_err_count",
          "The number of errors occurred when signing the CSR.", s.csr_sign_err_count);
  gauge("citadel_server_root_cert_expiry_timestamp",
        "The unix timestamp, in seconds, when the CA root certificate will expire.",
        seconds(ca_->rootExpiry()));
  gauge("citadel_server_root_cert_expiry_seconds",
        "The time remaining, in seconds, before the root certificate will expire.",
        left(ca_->rootExpiry()));
  gauge("citadel_server_cert_chain_expiry_timestamp",
        "The unix timestamp, in seconds, when the CA certificate chain will expire.",
        seconds(ca_->signingCertificateExpiry()));
  gauge("citadel_server_cert_chain_expiry_seconds",
        "The time remaining, in seconds, before the CA certificate chain will expire.",
        left(ca_->signingCertificateExpiry()));
  return out;
}

bool CaServer::maybeRotate() {
  auto rotated = ca_->maybeRotate(ca_->now());
  if (!rotated.ok()) {
    SHEAVE_LOG_WARN("ca: root rotation failed: {}", rotated.error().message());
    return false;
  }
  if (*rotated) SHEAVE_LOG_WARN("ca: the root certificate was rotated; pushing the new bundle");
  if (auto refreshed = serving_->maybeRefresh(); !refreshed.ok()) {
    SHEAVE_LOG_WARN("ca: cannot renew the xDS port's certificate: {}", refreshed.error().message());
  }
  const auto left = ca_->rootExpiry() - ca_->now();
  if (left < std::chrono::hours(24 * 30)) {
    SHEAVE_LOG_WARN("ca: the root certificate expires in {} days",
                    std::chrono::duration_cast<std::chrono::hours>(left).count() / 24);
  }
  return *rotated;
}

}  // namespace sheave::control
