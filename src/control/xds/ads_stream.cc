#include "control/xds/ads_stream.h"

#include <xxhash.h>

namespace sheave::control::xds {

std::pair<std::string, std::string> splitPeer(const std::string& grpc_peer) {
  // gRPC names peers "ipv4:1.2.3.4:5", "ipv6:[::1]:5" or "unix:/path".
  std::string address = grpc_peer;
  if (auto colon = address.find(':');
      colon != std::string::npos &&
      (address.rfind("ipv4:", 0) == 0 || address.rfind("ipv6:", 0) == 0 ||
       address.rfind("unix:", 0) == 0)) {
    address = address.substr(colon + 1);
  }
  std::string ip = address;
  if (!ip.empty() && ip.front() == '[') {
    auto close = ip.find(']');
    ip = close == std::string::npos ? ip.substr(1) : ip.substr(1, close - 1);
  } else if (auto colon = ip.rfind(':'); colon != std::string::npos && ip.find(':') == colon) {
    ip = ip.substr(0, colon);
  }
  return {address, ip};
}

PeerCredentials peerCredentials(const grpc::ServerContextBase& ctx, std::string address) {
  PeerCredentials out;
  out.address = std::move(address);
  if (auto auth = ctx.auth_context(); auth != nullptr && auth->IsPeerAuthenticated()) {
    // gRPC verified the chain against the server's trust roots during the handshake.
    for (const auto& pem : auth->FindPropertyValues("x509_pem_cert")) {
      out.cert_chain_pem.emplace_back(pem.data(), pem.size());
    }
  }
  const auto& metadata = ctx.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    std::string_view value(it->second.data(), it->second.size());
    if (value.size() > 7 && (value.substr(0, 7) == "Bearer " || value.substr(0, 7) == "bearer ")) {
      out.bearer_token = std::string(value.substr(7));
    }
  }
  return out;
}

grpc::Status toGrpcStatus(const Error& error) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case ErrorCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case ErrorCode::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case ErrorCode::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case ErrorCode::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, error.message());
}

uint64_t hashResource(const google::protobuf::Any& resource) {
  const std::string& bytes = resource.value();
  uint64_t h = XXH3_64bits(bytes.data(), bytes.size());
  // The type is part of identity: two types may serialize to the same bytes.
  return h ^ XXH3_64bits(resource.type_url().data(), resource.type_url().size());
}

}  // namespace sheave::control::xds
