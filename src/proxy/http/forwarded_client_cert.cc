#include "proxy/http/forwarded_client_cert.h"

namespace sheave::http {

namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;

namespace {

constexpr std::string_view kXfcc = "x-forwarded-client-cert";

// Subject values are quoted; a quote inside is escaped, as Envoy does.
std::string quoted(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

Result<ForwardClientCertConfig> ForwardClientCertConfig::create(
    const hcmv3::HttpConnectionManager& hcm) {
  ForwardClientCertConfig c;
  switch (hcm.forward_client_cert_details()) {
    case hcmv3::HttpConnectionManager::SANITIZE:
      c.mode = Mode::kSanitize;
      break;
    case hcmv3::HttpConnectionManager::FORWARD_ONLY:
      c.mode = Mode::kForwardOnly;
      break;
    case hcmv3::HttpConnectionManager::APPEND_FORWARD:
      c.mode = Mode::kAppendForward;
      break;
    case hcmv3::HttpConnectionManager::SANITIZE_SET:
      c.mode = Mode::kSanitizeSet;
      break;
    case hcmv3::HttpConnectionManager::ALWAYS_FORWARD_ONLY:
      c.mode = Mode::kAlwaysForwardOnly;
      break;
    default:
      return invalidArgument("forward_client_cert_details: unknown value");
  }
  const auto& details = hcm.set_current_client_cert_details();
  if (details.cert() || details.chain()) {
    return invalidArgument(
        "set_current_client_cert_details: cert and chain are not supported (subject, uri, dns "
        "are)");
  }
  c.subject = details.has_subject() && details.subject().value();
  c.uri = details.uri();
  c.dns = details.dns();
  return c;
}

std::string clientCertElement(const ForwardClientCertConfig& config,
                              const network::Connection& connection) {
  const auto* peer = connection.peerCertificate();
  if (peer == nullptr) return {};
  std::string out;
  auto add = [&out](std::string_view key, const std::string& value) {
    if (!out.empty()) out += ';';
    out.append(key).append("=").append(value);
  };
  if (const auto* local = connection.localCertificate(); local && !local->uri_sans.empty()) {
    add("By", local->uri_sans.front());
  }
  add("Hash", peer->sha256);
  if (config.subject) add("Subject", quoted(peer->subject));
  if (config.uri && !peer->uri_sans.empty()) add("URI", peer->uri_sans.front());
  if (config.dns) {
    for (const auto& dns : peer->dns_sans) add("DNS", dns);
  }
  return out;
}

void applyForwardClientCert(const ForwardClientCertConfig& config,
                            const network::Connection& connection, HeaderMap& headers) {
  using Mode = ForwardClientCertConfig::Mode;
  if (config.mode == Mode::kAlwaysForwardOnly) return;
  const bool mtls = connection.peerCertificate() != nullptr;
  if (!mtls || config.mode == Mode::kSanitize) {
    headers.remove(kXfcc);
    return;
  }
  if (config.mode == Mode::kForwardOnly) return;
  std::string element = clientCertElement(config, connection);
  if (config.mode == Mode::kSanitizeSet) {
    headers.set(kXfcc, element);
    return;
  }
  // APPEND_FORWARD: earlier hops' elements first, ours last.
  std::string value;
  for (std::string_view earlier : headers.getAll(kXfcc)) {
    if (earlier.empty()) continue;
    value.append(earlier).append(",");
  }
  value += element;
  headers.set(kXfcc, value);
}

}  // namespace sheave::http
