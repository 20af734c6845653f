#include "cli/analyze/message.h"

#include <algorithm>
#include <cctype>

namespace sheave::cli {

std::string_view levelName(Level level) {
  switch (level) {
    case Level::kInfo:
      return "Info";
    case Level::kWarning:
      return "Warning";
    case Level::kError:
      return "Error";
  }
  return "Error";
}

std::optional<Level> parseLevel(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "info") return Level::kInfo;
  if (lower == "warning") return Level::kWarning;
  if (lower == "error") return Level::kError;
  return std::nullopt;
}

namespace messages {
const MessageType kDeprecated{"IST0002", "Deprecated", Level::kWarning,
                              "The configuration uses a deprecated field."};
const MessageType kReferencedResourceNotFound{"IST0101", "ReferencedResourceNotFound",
                                              Level::kError,
                                              "A resource being referenced does not exist."};
const MessageType kSchemaValidationError{"IST0106", "SchemaValidationError", Level::kError,
                                         "The resource does not follow the kind's schema."};
const MessageType kConflictingMeshGatewayVirtualServiceHosts{
    "IST0109", "ConflictingMeshGatewayVirtualServiceHosts", Level::kError,
    "Several VirtualServices for the mesh gateway define the same host."};
const MessageType kConflictingSidecarWorkloadSelectors{
    "IST0110", "ConflictingSidecarWorkloadSelectors", Level::kError,
    "A Sidecar selects the same workload as another Sidecar."};
const MessageType kMultipleSidecarsWithoutWorkloadSelectors{
    "IST0111", "MultipleSidecarsWithoutWorkloadSelectors", Level::kError,
    "More than one Sidecar in a namespace has no workload selector."};
const MessageType kVirtualServiceDestinationPortSelectorRequired{
    "IST0112", "VirtualServiceDestinationPortSelectorRequired", Level::kError,
    "A route goes to a service with several ports without saying which."};
const MessageType kMTLSPolicyConflict{
    "IST0113", "MTLSPolicyConflict", Level::kError,
    "A DestinationRule and a PeerAuthentication disagree about mutual TLS."};
const MessageType kPortNameIsNotUnderNamingConvention{
    "IST0118", "PortNameIsNotUnderNamingConvention", Level::kInfo,
    "A service port declares no protocol; the sidecar sniffs it."};
const MessageType kInvalidRegexp{"IST0122", "InvalidRegexp", Level::kWarning,
                                 "A regular expression does not compile (RE2 syntax)."};
const MessageType kNoMatchingWorkloadsFound{"IST0127", "NoMatchingWorkloadsFound", Level::kWarning,
                                            "A resource's workload selector matches no workload."};
const MessageType kNoServerCertificateVerificationDestinationLevel{
    "IST0128", "NoServerCertificateVerificationDestinationLevel", Level::kWarning,
    "TLS origination without caCertificates does not verify the server."};
const MessageType kVirtualServiceUnreachableRule{
    "IST0130", "VirtualServiceUnreachableRule", Level::kWarning,
    "A route can never be used because an earlier route matches every request it would."};
const MessageType kVirtualServiceIneffectiveMatch{"IST0131", "VirtualServiceIneffectiveMatch",
                                                  Level::kInfo,
                                                  "A match repeats a match of an earlier route."};
const MessageType kVirtualServiceHostNotFoundInGateway{
    "IST0132", "VirtualServiceHostNotFoundInGateway", Level::kWarning,
    "A VirtualService host is not among the hosts of the Gateway it is bound to."};
const MessageType kServiceEntryAddressesRequired{
    "IST0134", "ServiceEntryAddressesRequired", Level::kWarning,
    "A ServiceEntry with TCP (or undeclared) ports needs addresses."};
const MessageType kConflictingGateways{
    "IST0145", "ConflictingGateways", Level::kError,
    "Gateways with the same selector and port claim the same host."};
const MessageType kMultipleTelemetriesWithoutWorkloadSelectors{
    "IST0160", "MultipleTelemetriesWithoutWorkloadSelectors", Level::kError,
    "More than one Telemetry in a namespace has no workload selector."};
const MessageType kDestinationRuleSubsetNotSelectPods{
    "IST0173", "DestinationRuleSubsetNotSelectPods", Level::kError,
    "A DestinationRule subset selects no workload: requests to it fail with 503 UH."};

const MessageType kRetriesExceedRouteTimeout{
    "SHV0001", "RetriesExceedRouteTimeout", Level::kWarning,
    "attempts x perTryTimeout is longer than the route's timeout: the last attempts never run."};
const MessageType kRetriesOnNonIdempotentRequests{
    "SHV0002", "RetriesOnNonIdempotentRequests", Level::kWarning,
    "A route retries after the request reached the upstream, for methods that are not "
    "idempotent."};
const MessageType kRetryAmplification{
    "SHV0003", "RetryAmplification", Level::kWarning,
    "Retries at more than one hop of a call chain multiply the load on the last service."};
const MessageType kStrictMtlsWithCallersOutsideMesh{
    "SHV0004", "StrictMtlsWithCallersOutsideMesh", Level::kWarning,
    "A STRICT workload is reachable by clients without a sidecar, whose requests will fail."};
const MessageType kDoubleEncryption{
    "SHV0005", "DoubleEncryption", Level::kInfo,
    "The application speaks TLS on a port that the mesh also wraps in mutual TLS."};
const MessageType kHttpRoutesOnTlsPort{
    "SHV0006", "HttpRoutesOnTlsPort", Level::kWarning,
    "HTTP routes for a host whose only ports carry application TLS never apply."};
const MessageType kAuthorizationPolicyShadowed{
    "SHV0007", "AuthorizationPolicyShadowed", Level::kWarning,
    "An AuthorizationPolicy decides every request, so other policies on the same workloads do "
    "nothing."};
const MessageType kAuthorizationRuleNeverMatches{
    "SHV0008", "AuthorizationRuleNeverMatches", Level::kWarning,
    "An AuthorizationPolicy rule can never match a request."};
const MessageType kAuthorizationPathNotNormalized{
    "SHV0009", "AuthorizationPathNotNormalized", Level::kWarning,
    "A path in an AuthorizationPolicy is not in normalized form: requests are normalized before "
    "matching, so it never matches."};
const MessageType kServerFirstProtocolUndeclared{
    "SHV0010", "ServerFirstProtocolUndeclared", Level::kWarning,
    "A port of a server-first protocol declares no protocol: connections wait for protocol "
    "sniffing to time out."};
const MessageType kConfigScopeTooWide{
    "SHV0011", "ConfigScopeTooWide", Level::kInfo,
    "A proxy receives configuration for far more services than it calls; a Sidecar resource "
    "would shrink it."};
}  // namespace messages

const std::vector<const MessageType*>& allMessageTypes() {
  using namespace messages;
  static const std::vector<const MessageType*> all = {
      &kDeprecated,
      &kReferencedResourceNotFound,
      &kSchemaValidationError,
      &kConflictingMeshGatewayVirtualServiceHosts,
      &kConflictingSidecarWorkloadSelectors,
      &kMultipleSidecarsWithoutWorkloadSelectors,
      &kVirtualServiceDestinationPortSelectorRequired,
      &kMTLSPolicyConflict,
      &kPortNameIsNotUnderNamingConvention,
      &kInvalidRegexp,
      &kNoMatchingWorkloadsFound,
      &kNoServerCertificateVerificationDestinationLevel,
      &kVirtualServiceUnreachableRule,
      &kVirtualServiceIneffectiveMatch,
      &kVirtualServiceHostNotFoundInGateway,
      &kServiceEntryAddressesRequired,
      &kConflictingGateways,
      &kMultipleTelemetriesWithoutWorkloadSelectors,
      &kDestinationRuleSubsetNotSelectPods,
      &kRetriesExceedRouteTimeout,
      &kRetriesOnNonIdempotentRequests,
      &kRetryAmplification,
      &kStrictMtlsWithCallersOutsideMesh,
      &kDoubleEncryption,
      &kHttpRoutesOnTlsPort,
      &kAuthorizationPolicyShadowed,
      &kAuthorizationRuleNeverMatches,
      &kAuthorizationPathNotNormalized,
      &kServerFirstProtocolUndeclared,
      &kConfigScopeTooWide,
  };
  return all;
}

std::string ResourceRef::origin() const {
  std::string out = kind.empty() ? std::string("resource") : kind;
  if (!name.empty()) out += " " + (namespace_name.empty() ? name : namespace_name + "/" + name);
  return out;
}

std::string AnalysisMessage::toLogLine() const {
  std::string where = resource.origin();
  if (!resource.source.file.empty()) {
    control::SourceLocation line_only = resource.source;
    line_only.column = 0;
    where += " " + line_only.toString();
  }
  return std::string(levelName(level())) + " [" + std::string(type->code) + "] (" + where + ") " +
         text;
}

std::string documentationUrl(const MessageType& type) {
  std::string code(type.code);
  if (code.rfind("IST", 0) == 0) {
    std::string lower = code;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return "https://istio.io/latest/docs/reference/config/analysis/" + lower + "/";
  }
  std::string anchor = code;
  std::transform(anchor.begin(), anchor.end(), anchor.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return "docs/analyze.md#" + anchor;
}

}  // namespace sheave::cli
