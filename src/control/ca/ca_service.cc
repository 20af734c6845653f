#include "control/ca/ca_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include "common/logging.h"

namespace sheave::ca {

namespace {

grpc::Status toGrpcStatus(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error.message());
    case ErrorCode::kUnauthenticated:
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, error.message());
    case ErrorCode::kPermissionDenied:
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, error.message());
    case ErrorCode::kNotFound:
      return grpc::Status(grpc::StatusCode::NOT_FOUND, error.message());
    case ErrorCode::kUnavailable:
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, error.message());
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
      break;
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, error.message());
}

CallerCredentials credentialsOf(const grpc::CallbackServerContext& context) {
  CallerCredentials out;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    std::string_view value(it->second.data(), it->second.size());
    // The scheme is case-insensitive (RFC 7235).
    if (value.size() > 7 && (value.substr(0, 7) == "Bearer " || value.substr(0, 7) == "bearer " ||
                             value.substr(0, 7) == "BEARER ")) {
      out.bearer_token = std::string(value.substr(7));
    }
  }
  if (auto auth = context.auth_context(); auth != nullptr) {
    // Our authenticator verifies the chain itself; gRPC's check at the
    // handshake is not relied upon.
    // The leaf first, from x509_pem_cert; what x509_pem_cert_chain adds
    // only helps find intermediates (its order and whether it holds the
    // leaf differ between client and server side).
    auto leaf = auth->FindPropertyValues("x509_pem_cert");
    if (!leaf.empty()) {
      out.peer_cert_chain_pem.assign(leaf.front().data(), leaf.front().size());
      for (const auto& pem : auth->FindPropertyValues("x509_pem_cert_chain")) {
        out.peer_cert_chain_pem.append(pem.data(), pem.size());
      }
    }
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> CaService::handle(
    const CallerCredentials& credentials, const istio::v1::auth::IstioCertificateRequest& request) {
  stats_.csr_count.fetch_add(1, std::memory_order_relaxed);
  auto caller = authenticator_.authenticate(credentials);
  if (!caller.ok()) {
    stats_.authentication_failure_count.fetch_add(1, std::memory_order_relaxed);
    return std::move(caller).error();
  }
  if (request.validity_duration() < 0) {
    stats_.csr_parsing_err_count.fetch_add(1, std::memory_order_relaxed);
    return invalidArgument("validity_duration must not be negative");
  }
  std::chrono::seconds ttl = request.validity_duration() == 0
                                 ? ca_.defaultTtl()
                                 : std::chrono::seconds(request.validity_duration());
  auto chain = ca_.sign(request.csr(), caller->identity, ttl);
  if (!chain.ok()) {
    switch (chain.error().code()) {
      case ErrorCode::kInvalidArgument:
        stats_.csr_parsing_err_count.fetch_add(1, std::memory_order_relaxed);
        break;
      case ErrorCode::kPermissionDenied:
        stats_.authentication_failure_count.fetch_add(1, std::memory_order_relaxed);
        break;
      default:
        stats_.csr_sign_err_count.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    return std::move(chain).error();
  }
  // Consumed only now, so a bad CSR does not burn a bootstrap token; and
  // atomically, so two racing requests with one token get one certificate.
  if (auto committed = authenticator_.commitIssuance(credentials, *caller); !committed.ok()) {
    stats_.authentication_failure_count.fetch_add(1, std::memory_order_relaxed);
    return std::move(committed).error();
  }
  stats_.success_cert_issuance_count.fetch_add(1, std::memory_order_relaxed);
  SHEAVE_LOG_DEBUG("CA: issued a certificate for {} ({}{}{})", caller->identity.toString(),
                   caller->authenticator, caller->workload_key.empty() ? "" : ", workload ",
                   caller->workload_key);
  return chain;
}

grpc::ServerUnaryReactor* CaService::CreateCertificate(
    grpc::CallbackServerContext* context, const istio::v1::auth::IstioCertificateRequest* request,
    istio::v1::auth::IstioCertificateResponse* response) {
  auto* reactor = context->DefaultReactor();
  // Signing takes well under a millisecond for an ECDSA CA: done inline on
  // the callback thread rather than handed to another.
  auto chain = handle(credentialsOf(*context), *request);
  if (!chain.ok()) {
    SHEAVE_LOG_INFO("CA: CreateCertificate from {} refused: {}", context->peer(),
                    chain.error().message());
    reactor->Finish(toGrpcStatus(chain.error()));
    return reactor;
  }
  for (auto& pem : *chain) response->add_cert_chain(std::move(pem));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

std::shared_ptr<grpc::ServerCredentials> makeServerCredentials(const ServingCertificate& serving,
                                                               const std::string& client_ca_pem) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = client_ca_pem;
  options.pem_key_cert_pairs.push_back({serving.private_key_pem, serving.cert_chain_pem});
  return grpc::SslServerCredentials(options);
}

}  // namespace sheave::ca
