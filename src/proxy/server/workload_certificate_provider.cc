#include "proxy/server/workload_certificate_provider.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include "common/logging.h"
#include "istio/security/v1alpha1/ca.pb.h"
#include "proxy/network/tls/tls_socket_factory.h"

namespace sheave::server {

namespace tlsv3 = envoy::extensions::transport_sockets::tls::v3;
using std::chrono::system_clock;

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string bioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

X509Ptr parseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

system_clock::time_point asnTime(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return system_clock::from_time_t(timegm(&tm));
}

bool selfSigned(X509* cert) {
  return X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0 &&
         X509_check_issued(cert, cert) == X509_V_OK;
}

Result<std::string> readToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalidArgument("cannot read the token file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) return invalidArgument("the token file '" + path + "' is empty");
  return token;
}

}  // namespace

Result<KeyAndCsr> generateKeyAndCsr() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return internalError("cannot generate an ECDSA P-256 key");
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return internalError("cannot sign the certificate request");
  }
  KeyAndCsr out;
  BioPtr csr(BIO_new(BIO_s_mem()));
  BioPtr pkey(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(csr.get(), req.get()) != 1 ||
      PEM_write_bio_PrivateKey(pkey.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return internalError("cannot encode the key or the certificate request");
  }
  out.csr_pem = bioString(csr.get());
  out.key_pem = bioString(pkey.get());
  return out;
}

Result<IssuedCertificate> parseIssuedChain(const std::vector<std::string>& cert_chain,
                                           const std::string& key_pem,
                                           system_clock::time_point now) {
  if (cert_chain.empty()) return invalidArgument("the CA returned an empty certificate chain");
  std::vector<X509Ptr> certs;
  for (size_t i = 0; i < cert_chain.size(); ++i) {
    X509Ptr cert = parseCert(cert_chain[i]);
    if (!cert) {
      return invalidArgument("cert_chain[" + std::to_string(i) + "]: not a PEM certificate");
    }
    certs.push_back(std::move(cert));
  }
  BioPtr kbio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  KeyPtr key(PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
  X509* leaf = certs.front().get();
  if (!key || EVP_PKEY_eq(X509_get0_pubkey(leaf), key.get()) != 1) {
    return invalidArgument("the issued certificate does not hold this proxy's key");
  }
  IssuedCertificate out;
  std::unique_ptr<GENERAL_NAMES, NamesFree> sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  int uris = 0;
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
    if (name->type != GEN_URI) continue;
    ++uris;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    out.spiffe_id.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                         static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  if (uris != 1 || out.spiffe_id.rfind("spiffe://", 0) != 0) {
    return invalidArgument("the issued certificate must carry exactly one spiffe:// URI SAN");
  }
  out.not_before = asnTime(X509_get0_notBefore(leaf));
  out.not_after = asnTime(X509_get0_notAfter(leaf));
  out.received = std::max(out.not_before, now);
  if (now < out.not_before || now >= out.not_after) {
    return invalidArgument("the issued certificate is not valid now");
  }
  // `default` holds the leaf and any intermediates; the root is the ROOTCA secret's business.
  size_t end = certs.size();
  if (end > 1 && selfSigned(certs.back().get())) --end;
  for (size_t i = 0; i < end; ++i) {
    out.chain_pem += cert_chain[i];
    if (!out.chain_pem.empty() && out.chain_pem.back() != '\n') out.chain_pem += '\n';
  }
  return out;
}

system_clock::time_point renewalTime(system_clock::time_point start,
                                     system_clock::time_point not_after, double ratio,
                                     double jitter, double unit) {
  const auto lifetime = std::chrono::duration<double>(not_after - start);
  const double offset = ratio + jitter * (2.0 * unit - 1.0);
  return start + std::chrono::duration_cast<system_clock::duration>(lifetime *
                                                                    std::clamp(offset, 0.0, 1.0));
}

// One CreateCertificate call: a unary gRPC call over the client's connection.
class WorkloadCertificateProvider::Call : public grpc::AsyncStreamCallbacks {
 public:
  Call(WorkloadCertificateProvider& parent) : parent_(parent) {}
  void start(grpc::AsyncClient& client, const std::string& csr, const std::string& token) {
    HeaderMap metadata;
    if (!token.empty()) metadata.add("authorization", "Bearer " + token);
    stream_ =
        client.start(kCreateCertificateMethod, *this, metadata, parent_.options_.request_timeout);
    istio::v1::auth::IstioCertificateRequest request;
    request.set_csr(csr);
    request.set_validity_duration(parent_.options_.requested_ttl.count());
    (void)stream_->sendMessage(request.SerializeAsString(), /*end_stream=*/true);
  }
  void onReceiveInitialMetadata(HeaderMap&&) override {}
  void onReceiveMessage(std::string&& message) override { message_ = std::move(message); }
  void onReceiveTrailingMetadata(HeaderMap&&) override {}
  void onRemoteClose(grpc::StatusCode code, std::string message) override {
    Result<std::vector<std::string>> result = std::vector<std::string>();
    if (code != grpc::StatusCode::kOk) {
      result = Error(ErrorCode::kUnavailable, std::string(grpc::statusName(code)) + ": " + message);
    } else {
      istio::v1::auth::IstioCertificateResponse response;
      if (!message_.has_value() || !response.ParseFromString(*message_)) {
        result = invalidArgument("the CA's response is not an IstioCertificateResponse");
      } else {
        result =
            std::vector<std::string>(response.cert_chain().begin(), response.cert_chain().end());
      }
    }
    // The parent deletes this call (deferred) from inside its handler.
    parent_.onResponse(std::move(result));
  }

 private:
  WorkloadCertificateProvider& parent_;
  std::unique_ptr<grpc::AsyncStream> stream_;
  std::optional<std::string> message_;
};

WorkloadCertificateProvider::WorkloadCertificateProvider(network::EventLoop& loop,
                                                         network::tls::SecretManager& secrets,
                                                         stats::Scope& root,
                                                         RandomGenerator& random, Options options)
    : loop_(loop),
      secrets_(secrets),
      random_(random),
      options_(std::move(options)),
      days_until_expiring_(root.gauge("server.days_until_first_cert_expiring",
                                      stats::Gauge::ImportMode::kNeverImport)),
      renewals_(root.counter("sds.default.update_success")),
      failures_(root.counter("sds.default.update_failure")) {
  secrets_.provideLocally(std::string(kWorkloadCertificateSecret));
  renew_timer_ = loop_.createTimer([this] { request(); });
  expiry_timer_ = loop_.createTimer([this] { onExpiryCheck(); });
}

WorkloadCertificateProvider::~WorkloadCertificateProvider() {
  if (call_) loop_.deferredDelete(std::move(call_));
  if (client_) loop_.deferredDelete(std::move(client_));
}

void WorkloadCertificateProvider::start(std::function<void()> on_first_certificate) {
  on_first_ = std::move(on_first_certificate);
  request();
}

void WorkloadCertificateProvider::request() {
  if (call_) return;
  auto generated = generateKeyAndCsr();
  if (!generated.ok()) {
    SHEAVE_LOG_ERROR("workload certificate: {}", generated.error().message());
    scheduleRetry();
    return;
  }
  pending_ = std::move(generated).value();
  // The first certificate is bought with the bootstrap token; renewals prove the identity with
  // the certificate being renewed (the token is single-use).
  std::string token;
  tlsv3::UpstreamTlsContext tls = options_.ca_tls;
  auto* common = tls.mutable_common_tls_context();
  common->clear_tls_certificate_sds_secret_configs();
  common->clear_tls_certificates();
  if (current_) {
    auto* cert = common->add_tls_certificates();
    cert->mutable_certificate_chain()->set_inline_string(current_->chain_pem);
    cert->mutable_private_key()->set_inline_string(current_key_pem_);
  } else {
    auto read = readToken(options_.token_file);
    if (!read.ok()) {
      SHEAVE_LOG_WARN("workload certificate: {}", read.error().message());
      failures_.inc();
      scheduleRetry();
      return;
    }
    token = std::move(read).value();
  }
  if (common->alpn_protocols_size() == 0) common->add_alpn_protocols("h2");
  auto factory = network::tls::TlsSocketFactory::createClient(tls, nullptr);
  if (!factory.ok()) {
    SHEAVE_LOG_ERROR("workload certificate: the CA's TLS settings: {}", factory.error().message());
    scheduleRetry();
    return;
  }
  grpc::AsyncClientOptions client_options;
  client_options.authority = options_.ca_authority;
  std::shared_ptr<network::tls::TlsSocketFactory> tls_factory = std::move(factory).value();
  client_options.transport_socket_factory = [tls_factory] {
    return tls_factory->createTransportSocket();
  };
  if (client_) loop_.deferredDelete(std::move(client_));
  client_ = std::make_unique<grpc::AsyncClient>(loop_, options_.ca_address, client_options);
  call_ = std::make_unique<Call>(*this);
  call_->start(*client_, pending_.csr_pem, token);
}

void WorkloadCertificateProvider::onResponse(Result<std::vector<std::string>> chain) {
  loop_.deferredDelete(std::move(call_));
  Result<IssuedCertificate> issued =
      chain.ok() ? parseIssuedChain(*chain, pending_.key_pem, options_.clock())
                 : Result<IssuedCertificate>(std::move(chain).error());
  if (!issued.ok()) {
    failures_.inc();
    SHEAVE_LOG_WARN("workload certificate: the CA refused or failed: {}", issued.error().message());
    scheduleRetry();
    return;
  }
  envoy::extensions::transport_sockets::tls::v3::Secret secret;
  secret.set_name(std::string(kWorkloadCertificateSecret));
  secret.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string(
      issued->chain_pem);
  secret.mutable_tls_certificate()->mutable_private_key()->set_inline_string(pending_.key_pem);
  if (auto status = secrets_.setSecret(secret); !status.ok()) {
    failures_.inc();
    SHEAVE_LOG_WARN("workload certificate: not usable: {}", status.error().message());
    scheduleRetry();
    return;
  }
  current_ = std::move(issued).value();
  current_key_pem_ = std::move(pending_.key_pem);
  pending_ = {};
  ++issued_;
  renewals_.inc();
  backoff_ = std::chrono::milliseconds(0);
  warned_ = false;
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(current_->not_after - options_.clock());
  SHEAVE_LOG_INFO("workload certificate for {} installed, expires in {} s", current_->spiffe_id,
                  seconds.count());
  updateExpiryGauge();
  scheduleRenewal();
  if (on_first_) {
    auto cb = std::move(on_first_);
    on_first_ = nullptr;
    cb();
  }
}

void WorkloadCertificateProvider::scheduleRetry() {
  backoff_ = backoff_.count() == 0 ? options_.initial_backoff
                                   : std::min(backoff_ * 2, options_.max_backoff);
  // Full jitter in [backoff/2, backoff], so proxies restarted together do not retry together.
  const auto half = backoff_.count() / 2;
  const auto delay = std::chrono::milliseconds(
      half + static_cast<int64_t>(random_.uniform(static_cast<uint64_t>(half) + 1)));
  renew_timer_->enable(delay);
  if (current_) onExpiryCheck();
}

void WorkloadCertificateProvider::scheduleRenewal() {
  const double unit = static_cast<double>(random_.uniform(1000000)) / 1e6;
  const auto at = renewalTime(current_->received, current_->not_after, options_.grace_ratio,
                              options_.jitter, unit);
  const auto delay =
      std::max(std::chrono::milliseconds(0),
               std::chrono::duration_cast<std::chrono::milliseconds>(at - options_.clock()));
  renew_timer_->enable(delay);
  expiry_timer_->enable(std::chrono::duration_cast<std::chrono::milliseconds>(current_->not_after -
                                                                              options_.clock()));
}

void WorkloadCertificateProvider::onExpiryCheck() {
  if (!current_) return;
  const auto now = options_.clock();
  updateExpiryGauge();
  if (now >= current_->not_after) {
    // Going on with an expired certificate would fail every peer's verification anyway; taking
    // it away makes our own listeners refuse mTLS too instead of half-working.
    SHEAVE_LOG_ERROR(
        "workload certificate for {} expired and could not be renewed; mTLS stops "
        "until the CA answers",
        current_->spiffe_id);
    current_.reset();
    current_key_pem_.clear();
    secrets_.removeSecret(std::string(kWorkloadCertificateSecret));
    return;
  }
  const auto lifetime = current_->not_after - current_->received;
  if (!warned_ && now - current_->received > lifetime * 3 / 4) {
    warned_ = true;
    SHEAVE_LOG_WARN(
        "workload certificate for {} expires in {} s and renewal keeps failing",
        current_->spiffe_id,
        std::chrono::duration_cast<std::chrono::seconds>(current_->not_after - now).count());
  }
}

void WorkloadCertificateProvider::updateExpiryGauge() {
  if (!current_) {
    days_until_expiring_.set(0);
    return;
  }
  const auto left = current_->not_after - options_.clock();
  days_until_expiring_.set(static_cast<uint64_t>(
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::hours>(left).count() / 24)));
}

}  // namespace sheave::server
