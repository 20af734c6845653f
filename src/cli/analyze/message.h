#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/source_location.h"

namespace sheave::cli {

// Istio's analyzer levels, in increasing severity.
enum class Level { kInfo, kWarning, kError };

std::string_view levelName(Level level);  // "Info", "Warning", "Error"
// Case-insensitive; nullopt for anything else.
std::optional<Level> parseLevel(std::string_view text);

// One kind of finding. The IST codes, names and levels are Istio's
// (istioctl analyze); the SHV codes are Sheave's own checks, documented in
// docs/analyze.md.
struct MessageType {
  std::string_view code;  // "IST0101", "SHV0001"
  std::string_view name;  // "ReferencedResourceNotFound"
  Level level;
  std::string_view description;
};

namespace messages {
// Istio's.
extern const MessageType kDeprecated;                                       // IST0002
extern const MessageType kReferencedResourceNotFound;                       // IST0101
extern const MessageType kSchemaValidationError;                            // IST0106
extern const MessageType kConflictingMeshGatewayVirtualServiceHosts;        // IST0109
extern const MessageType kConflictingSidecarWorkloadSelectors;              // IST0110
extern const MessageType kMultipleSidecarsWithoutWorkloadSelectors;         // IST0111
extern const MessageType kVirtualServiceDestinationPortSelectorRequired;    // IST0112
extern const MessageType kMTLSPolicyConflict;                               // IST0113
extern const MessageType kPortNameIsNotUnderNamingConvention;               // IST0118
extern const MessageType kInvalidRegexp;                                    // IST0122
extern const MessageType kNoMatchingWorkloadsFound;                         // IST0127
extern const MessageType kNoServerCertificateVerificationDestinationLevel;  // IST0128
extern const MessageType kVirtualServiceUnreachableRule;                    // IST0130
extern const MessageType kVirtualServiceIneffectiveMatch;                   // IST0131
extern const MessageType kVirtualServiceHostNotFoundInGateway;              // IST0132
extern const MessageType kServiceEntryAddressesRequired;                    // IST0134
extern const MessageType kConflictingGateways;                              // IST0145
extern const MessageType kMultipleTelemetriesWithoutWorkloadSelectors;      // IST0160
extern const MessageType kDestinationRuleSubsetNotSelectPods;               // IST0173
// Sheave's.
extern const MessageType kRetriesExceedRouteTimeout;         // SHV0001
extern const MessageType kRetriesOnNonIdempotentRequests;    // SHV0002
extern const MessageType kRetryAmplification;                // SHV0003
extern const MessageType kStrictMtlsWithCallersOutsideMesh;  // SHV0004
extern const MessageType kDoubleEncryption;                  // SHV0005
extern const MessageType kHttpRoutesOnTlsPort;               // SHV0006
extern const MessageType kAuthorizationPolicyShadowed;       // SHV0007
extern const MessageType kAuthorizationRuleNeverMatches;     // SHV0008
extern const MessageType kAuthorizationPathNotNormalized;    // SHV0009
extern const MessageType kServerFirstProtocolUndeclared;     // SHV0010
extern const MessageType kConfigScopeTooWide;                // SHV0011
}  // namespace messages

// Every message type, by code.
const std::vector<const MessageType*>& allMessageTypes();

// The resource a finding is about.
struct ResourceRef {
  std::string kind;            // "VirtualService"
  std::string namespace_name;  // empty for cluster-scoped kinds
  std::string name;
  control::SourceLocation source;  // file:line of the document

  // "VirtualService default/reviews".
  std::string origin() const;
};

struct AnalysisMessage {
  const MessageType* type = nullptr;
  ResourceRef resource;
  std::string text;  // what is wrong and, where it helps, what to do

  Level level() const { return type->level; }
  // istioctl's log line: "Error [IST0101] (VirtualService default/reviews
  // file.yaml:12) Referenced host not found: "reviewz"".
  std::string toLogLine() const;
};

// Where a message type is documented: istio.io for IST codes, Sheave's
// docs/analyze.md for SHV codes.
std::string documentationUrl(const MessageType& type);

}  // namespace sheave::cli
