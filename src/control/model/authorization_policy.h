#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/model/workload_selector.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// security.istio.io AuthorizationPolicy, field for field with Istio's API.

struct Source {
  std::vector<std::string> principals;
  std::vector<std::string> not_principals;
  std::vector<std::string> request_principals;
  std::vector<std::string> not_request_principals;
  std::vector<std::string> namespaces;
  std::vector<std::string> not_namespaces;
  std::vector<std::string> ip_blocks;
  std::vector<std::string> not_ip_blocks;
  std::vector<std::string> remote_ip_blocks;
  std::vector<std::string> not_remote_ip_blocks;
  std::vector<std::string> service_accounts;
  std::vector<std::string> not_service_accounts;
};

struct Operation {
  std::vector<std::string> hosts;
  std::vector<std::string> not_hosts;
  std::vector<std::string> ports;  // strings in Istio's API ("8080")
  std::vector<std::string> not_ports;
  std::vector<std::string> methods;
  std::vector<std::string> not_methods;
  std::vector<std::string> paths;
  std::vector<std::string> not_paths;
};

struct Condition {
  std::string key;
  std::vector<std::string> values;
  std::vector<std::string> not_values;
};

struct Rule {
  struct From {
    std::optional<Source> source;
  };
  struct To {
    std::optional<Operation> operation;
  };
  std::vector<From> from;
  std::vector<To> to;
  std::vector<Condition> when;
};

enum class AuthorizationAction { kAllow, kDeny, kAudit, kCustom };
template <>
struct EnumTraits<AuthorizationAction> {
  static constexpr std::array<std::pair<std::string_view, AuthorizationAction>, 4> kNames{{
      {"ALLOW", AuthorizationAction::kAllow},
      {"DENY", AuthorizationAction::kDeny},
      {"AUDIT", AuthorizationAction::kAudit},
      {"CUSTOM", AuthorizationAction::kCustom},
  }};
};

struct ExtensionProvider {
  std::string name;
};

struct AuthorizationPolicy {
  std::optional<WorkloadSelector> selector;
  std::optional<PolicyTargetReference> target_ref;
  std::vector<PolicyTargetReference> target_refs;
  std::vector<Rule> rules;
  AuthorizationAction action = AuthorizationAction::kAllow;
  std::optional<ExtensionProvider> provider;  // oneof action_detail, with CUSTOM
};

}  // namespace sheave::control
