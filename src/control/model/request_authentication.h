#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/model/duration.h"
#include "control/model/workload_selector.h"

namespace sheave::control {

// security.istio.io RequestAuthentication, field for field with Istio's API.

struct JWTHeader {
  std::string name;
  std::string prefix;
};

struct ClaimToHeader {
  std::string header;
  std::string claim;
};

struct JWTRule {
  std::string issuer;
  std::vector<std::string> audiences;
  std::string jwks_uri;
  std::string jwks;
  std::vector<JWTHeader> from_headers;
  std::vector<std::string> from_params;
  std::vector<std::string> from_cookies;
  std::string output_payload_to_header;
  bool forward_original_token = false;
  std::vector<ClaimToHeader> output_claim_to_headers;
  std::optional<Duration> timeout;
};

struct RequestAuthentication {
  std::optional<WorkloadSelector> selector;
  std::optional<PolicyTargetReference> target_ref;
  std::vector<PolicyTargetReference> target_refs;
  std::vector<JWTRule> jwt_rules;
};

}  // namespace sheave::control
