#include "control/compiler/authorization_policy_builder.h"

#include <optional>

#include "common/logging.h"
#include "control/compiler/deterministic_any.h"
#include "control/compiler/peer_authentication_policy.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb.h"

namespace sheave::control {
namespace {

namespace rbac = envoy::config::rbac::v3;
using envoy::type::matcher::v3::StringMatcher;

constexpr std::string_view kJwtAuthnFilter = "envoy.filters.http.jwt_authn";
constexpr std::string_view kHttpRbacName = "envoy.filters.http.rbac";
constexpr std::string_view kNetworkRbacName = "envoy.filters.network.rbac";

// Builds the AND of the clauses of one rule side; clauses that are dropped
// leave the rest in place.
template <typename T>
struct Conjunction {
  std::vector<T> clauses;
  void add(T clause) { clauses.push_back(std::move(clause)); }
  T build() const {
    T out;
    if (clauses.empty()) {
      out.set_any(true);
    } else if (clauses.size() == 1) {
      out = clauses.front();
    } else if constexpr (std::is_same_v<T, rbac::Permission>) {
      for (const auto& c : clauses) *out.mutable_and_rules()->add_rules() = c;
    } else {
      for (const auto& c : clauses) *out.mutable_and_ids()->add_ids() = c;
    }
    return out;
  }
};

template <typename T>
T anyOf(std::vector<T> items) {
  if (items.size() == 1) return std::move(items.front());
  T out;
  for (auto& item : items) {
    if constexpr (std::is_same_v<T, rbac::Permission>) {
      *out.mutable_or_rules()->add_rules() = std::move(item);
    } else {
      *out.mutable_or_ids()->add_ids() = std::move(item);
    }
  }
  if (items.empty()) {
    // An empty OR matches nothing; spell it as NOT(any).
    if constexpr (std::is_same_v<T, rbac::Permission>) {
      out.mutable_not_rule()->set_any(true);
    } else {
      out.mutable_not_id()->set_any(true);
    }
  }
  return out;
}

template <typename T>
T negate(T inner) {
  T out;
  if constexpr (std::is_same_v<T, rbac::Permission>) {
    *out.mutable_not_rule() = std::move(inner);
  } else {
    *out.mutable_not_id() = std::move(inner);
  }
  return out;
}

// Istio's string semantics: "*" any non-empty value, "abc*" prefix,
// "*abc" suffix, else exact.
StringMatcher istioString(std::string_view value, std::string_view prefix = "") {
  StringMatcher m;
  if (value == "*") {
    m.mutable_safe_regex()->set_regex(".+");
  } else if (value.size() > 1 && value.back() == '*') {
    m.set_prefix(std::string(prefix) + std::string(value.substr(0, value.size() - 1)));
  } else if (value.size() > 1 && value.front() == '*') {
    m.set_suffix(std::string(value.substr(1)));
  } else {
    m.set_exact(std::string(prefix) + std::string(value));
  }
  return m;
}

std::string escapeRegex(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// Paths add Istio's URI templates: "{*}" one segment, "{**}" any number.
StringMatcher pathMatcher(std::string_view value) {
  if (value.find("{*") == std::string_view::npos) return istioString(value);
  std::string regex;
  size_t pos = 0;
  while (pos < value.size()) {
    size_t open = value.find("{*", pos);
    if (open == std::string_view::npos) {
      regex += escapeRegex(value.substr(pos));
      break;
    }
    regex += escapeRegex(value.substr(pos, open - pos));
    if (value.substr(open, 4) == "{**}") {
      regex += ".*";
      pos = open + 4;
    } else if (value.substr(open, 3) == "{*}") {
      regex += "[^/]+";
      pos = open + 3;
    } else {
      regex += escapeRegex(value.substr(open, 2));
      pos = open + 2;
    }
  }
  StringMatcher m;
  m.mutable_safe_regex()->set_regex(regex);
  return m;
}

rbac::Principal principalName(std::string_view value) {
  rbac::Principal p;
  auto* name = p.mutable_authenticated()->mutable_principal_name();
  // Istio writes principals without the scheme; a suffix or "*" needs none.
  *name = istioString(value, value.front() == '*' ? "" : "spiffe://");
  return p;
}

rbac::Principal namespacePrincipal(std::string_view ns) {
  rbac::Principal p;
  auto* name = p.mutable_authenticated()->mutable_principal_name();
  if (ns == "*") {
    name->mutable_safe_regex()->set_regex(".+");
  } else {
    name->mutable_safe_regex()->set_regex(".*/ns/" + escapeRegex(ns) + "/.*");
  }
  return p;
}

bool parseCidr(std::string_view text, envoy::config::core::v3::CidrRange* out) {
  auto slash = text.find('/');
  std::string ip(text.substr(0, slash));
  if (ip.empty()) return false;
  uint32_t len = ip.find(':') != std::string::npos ? 128 : 32;
  if (slash != std::string_view::npos) {
    std::string digits(text.substr(slash + 1));
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return false;
    len = static_cast<uint32_t>(std::stoul(digits));
  }
  out->set_address_prefix(ip);
  out->mutable_prefix_len()->set_value(len);
  return true;
}

// A claim of one issuer's payload that jwt_authn stored under the issuer.
rbac::Principal claimPrincipal(const std::string& issuer, const std::vector<std::string>& claim,
                               std::optional<StringMatcher> value) {
  rbac::Principal p;
  auto* md = p.mutable_metadata();
  md->set_filter(std::string(kJwtAuthnFilter));
  md->add_path()->set_key(issuer);
  for (const auto& key : claim) md->add_path()->set_key(key);
  if (!value.has_value()) {
    md->mutable_value()->set_present_match(true);
  } else {
    // A claim may be a string or a list of strings (aud, groups).
    auto* any = md->mutable_value()->mutable_or_match();
    *any->add_value_matchers()->mutable_string_match() = *value;
    *any->add_value_matchers()->mutable_list_match()->mutable_one_of()->mutable_string_match() =
        *value;
  }
  return p;
}

// "iss/sub" (or "*", "iss/*", "*/sub", "*sub"): the issuer is everything
// before the last '/'.
rbac::Principal requestPrincipal(std::string_view value, const AuthorizationInputs& inputs) {
  std::vector<rbac::Principal> options;
  if (value == "*") {
    for (const auto& iss : inputs.jwt_issuers) options.push_back(claimPrincipal(iss, {"sub"}, {}));
    return anyOf(std::move(options));
  }
  auto slash = value.rfind('/');
  std::string iss = slash == std::string_view::npos ? "*" : std::string(value.substr(0, slash));
  std::string sub = std::string(slash == std::string_view::npos ? value : value.substr(slash + 1));
  std::optional<StringMatcher> sub_matcher;
  if (sub != "*") sub_matcher = istioString(sub);
  if (iss == "*" || (iss.size() > 1 && iss.front() == '*')) {
    for (const auto& known : inputs.jwt_issuers) {
      options.push_back(claimPrincipal(known, {"sub"}, sub_matcher));
    }
    return anyOf(std::move(options));
  }
  return claimPrincipal(iss, {"sub"}, sub_matcher);
}

// A list and its "not" list on one side: OR of the values, AND NOT OR of the
// not-values.
template <typename T, typename F>
void addValues(Conjunction<T>& conj, const std::vector<std::string>& values,
               const std::vector<std::string>& not_values, F&& make) {
  if (!values.empty()) {
    std::vector<T> items;
    for (const auto& v : values) items.push_back(make(v));
    conj.add(anyOf(std::move(items)));
  }
  if (!not_values.empty()) {
    std::vector<T> items;
    for (const auto& v : not_values) items.push_back(make(v));
    conj.add(negate(anyOf(std::move(items))));
  }
}

rbac::Permission headerPermission(std::string name, StringMatcher value) {
  rbac::Permission p;
  p.mutable_header()->set_name(std::move(name));
  *p.mutable_header()->mutable_string_match() = std::move(value);
  return p;
}

uint32_t portOf(const std::string& text, bool* ok) {
  *ok = !text.empty() && text.size() <= 5 &&
        text.find_first_not_of("0123456789") == std::string::npos;
  return *ok ? static_cast<uint32_t>(std::stoul(text)) : 0;
}

// Whether a field is only meaningful for HTTP.
bool hasHttpOnly(const Rule& rule) {
  for (const auto& from : rule.from) {
    if (from.source && (!from.source->request_principals.empty() ||
                        !from.source->not_request_principals.empty())) {
      return true;
    }
  }
  for (const auto& to : rule.to) {
    if (!to.operation) continue;
    const Operation& op = *to.operation;
    if (!op.hosts.empty() || !op.not_hosts.empty() || !op.methods.empty() ||
        !op.not_methods.empty() || !op.paths.empty() || !op.not_paths.empty()) {
      return true;
    }
  }
  for (const auto& when : rule.when) {
    if (when.key.rfind("request.", 0) == 0) return true;
  }
  return false;
}

}  // namespace

bool buildRbacPolicy(const Rule& rule, AuthorizationAction action, bool tcp,
                     const AuthorizationInputs& inputs, rbac::Policy* out,
                     std::vector<std::string>* problems) {
  if (tcp && action == AuthorizationAction::kAllow && hasHttpOnly(rule)) return false;

  // Permissions: OR over `to`, each the AND of its operation's fields.
  Conjunction<rbac::Permission> permissions;
  std::vector<rbac::Permission> operations;
  for (const auto& to : rule.to) {
    Conjunction<rbac::Permission> conj;
    if (to.operation) {
      const Operation& op = *to.operation;
      if (!tcp) {
        addValues(conj, op.hosts, op.not_hosts, [](const std::string& h) {
          auto m = istioString(h);
          m.set_ignore_case(true);
          return headerPermission(":authority", m);
        });
        addValues(conj, op.methods, op.not_methods,
                  [](const std::string& m) { return headerPermission(":method", istioString(m)); });
        addValues(conj, op.paths, op.not_paths, [](const std::string& path) {
          rbac::Permission p;
          *p.mutable_url_path()->mutable_path() = pathMatcher(path);
          return p;
        });
      }
      addValues(conj, op.ports, op.not_ports, [&](const std::string& port) {
        rbac::Permission p;
        bool ok = false;
        uint32_t number = portOf(port, &ok);
        if (!ok) {
          problems->push_back("invalid port \"" + port + "\"");
          p.mutable_not_rule()->set_any(true);
        } else {
          p.set_destination_port(number);
        }
        return p;
      });
    }
    operations.push_back(conj.build());
  }
  if (!operations.empty()) permissions.add(anyOf(std::move(operations)));

  // Principals: OR over `from`, each the AND of its source's fields.
  Conjunction<rbac::Principal> principals;
  std::vector<rbac::Principal> sources;
  for (const auto& from : rule.from) {
    Conjunction<rbac::Principal> conj;
    if (from.source) {
      const Source& src = *from.source;
      addValues(conj, src.principals, src.not_principals,
                [](const std::string& v) { return principalName(v); });
      addValues(conj, src.namespaces, src.not_namespaces,
                [](const std::string& v) { return namespacePrincipal(v); });
      auto cidr = [&](bool remote) {
        return [&, remote](const std::string& v) {
          rbac::Principal p;
          auto* range = remote ? p.mutable_remote_ip() : p.mutable_direct_remote_ip();
          if (!parseCidr(v, range)) {
            problems->push_back("invalid IP block \"" + v + "\"");
            p.Clear();
            p.mutable_not_id()->set_any(true);
          }
          return p;
        };
      };
      addValues(conj, src.ip_blocks, src.not_ip_blocks, cidr(false));
      addValues(conj, src.remote_ip_blocks, src.not_remote_ip_blocks, cidr(true));
      if (!tcp) {
        addValues(conj, src.request_principals, src.not_request_principals,
                  [&](const std::string& v) { return requestPrincipal(v, inputs); });
      }
    }
    sources.push_back(conj.build());
  }
  if (!sources.empty()) principals.add(anyOf(std::move(sources)));

  // Conditions go to the side they describe.
  for (const auto& when : rule.when) {
    const std::string& key = when.key;
    auto bracket = [&](std::string_view prefix) -> std::optional<std::string> {
      if (key.rfind(prefix, 0) != 0 || key.back() != ']') return std::nullopt;
      return key.substr(prefix.size(), key.size() - prefix.size() - 1);
    };
    if (tcp && key.rfind("request.", 0) == 0) continue;
    if (auto header = bracket("request.headers[")) {
      addValues(principals, when.values, when.not_values, [&](const std::string& v) {
        rbac::Principal p;
        p.mutable_header()->set_name(*header);
        *p.mutable_header()->mutable_string_match() = istioString(v);
        return p;
      });
    } else if (auto claim = key == "request.auth.audiences"   ? std::optional<std::string>("aud")
                            : key == "request.auth.presenter" ? std::optional<std::string>("azp")
                                                              : bracket("request.auth.claims[")) {
      // Nested claims are written claims[a][b].
      std::vector<std::string> path;
      std::string rest = *claim;
      size_t pos = 0;
      while (true) {
        size_t sep = rest.find("][", pos);
        path.push_back(rest.substr(pos, sep == std::string::npos ? std::string::npos : sep - pos));
        if (sep == std::string::npos) break;
        pos = sep + 2;
      }
      addValues(principals, when.values, when.not_values, [&](const std::string& v) {
        std::vector<rbac::Principal> options;
        for (const auto& iss : inputs.jwt_issuers) {
          options.push_back(claimPrincipal(iss, path, istioString(v)));
        }
        return anyOf(std::move(options));
      });
    } else if (key == "request.auth.principal") {
      addValues(principals, when.values, when.not_values,
                [&](const std::string& v) { return requestPrincipal(v, inputs); });
    } else if (key == "source.ip" || key == "remote.ip") {
      bool remote = key == "remote.ip";
      addValues(principals, when.values, when.not_values, [&](const std::string& v) {
        rbac::Principal p;
        auto* range = remote ? p.mutable_remote_ip() : p.mutable_direct_remote_ip();
        if (!parseCidr(v, range)) {
          problems->push_back("invalid IP \"" + v + "\" in " + key);
          p.Clear();
          p.mutable_not_id()->set_any(true);
        }
        return p;
      });
    } else if (key == "source.namespace") {
      addValues(principals, when.values, when.not_values,
                [](const std::string& v) { return namespacePrincipal(v); });
    } else if (key == "source.principal") {
      addValues(principals, when.values, when.not_values,
                [](const std::string& v) { return principalName(v); });
    } else if (key == "destination.ip") {
      addValues(permissions, when.values, when.not_values, [&](const std::string& v) {
        rbac::Permission p;
        if (!parseCidr(v, p.mutable_destination_ip())) {
          problems->push_back("invalid IP \"" + v + "\" in " + key);
          p.Clear();
          p.mutable_not_rule()->set_any(true);
        }
        return p;
      });
    } else if (key == "destination.port") {
      addValues(permissions, when.values, when.not_values, [&](const std::string& v) {
        rbac::Permission p;
        bool ok = false;
        uint32_t number = portOf(v, &ok);
        if (ok) {
          p.set_destination_port(number);
        } else {
          problems->push_back("invalid port \"" + v + "\" in " + key);
          p.mutable_not_rule()->set_any(true);
        }
        return p;
      });
    } else if (key == "connection.sni") {
      addValues(permissions, when.values, when.not_values, [](const std::string& v) {
        rbac::Permission p;
        *p.mutable_requested_server_name() = istioString(v);
        return p;
      });
    } else {
      problems->push_back("unsupported condition key \"" + key + "\"");
      if (action == AuthorizationAction::kAllow) return false;
    }
  }
  *out->add_permissions() = permissions.build();
  *out->add_principals() = principals.build();
  return true;
}

AuthorizationFilters buildAuthorizationFilters(
    const std::vector<Resource<AuthorizationPolicy>>& policies, const AuthorizationInputs& inputs,
    std::vector<ResourceError>* errors) {
  struct Bucket {
    bool any = false;  // a policy of this action applies (even without rules)
    rbac::RBAC http;
    rbac::RBAC tcp;
    bool any_shadow = false;
    rbac::RBAC http_shadow;
    rbac::RBAC tcp_shadow;
  };
  // Evaluation order: AUDIT (log only), DENY, ALLOW.
  const std::vector<std::pair<AuthorizationAction, rbac::RBAC::Action>> kOrder{
      {AuthorizationAction::kAudit, rbac::RBAC::LOG},
      {AuthorizationAction::kDeny, rbac::RBAC::DENY},
      {AuthorizationAction::kAllow, rbac::RBAC::ALLOW}};
  std::map<AuthorizationAction, Bucket> buckets;

  for (const auto& policy : policies) {
    const std::string& ns = policy.metadata.namespace_name;
    const AuthorizationPolicy& spec = policy.spec;
    if (!spec.target_refs.empty() || spec.target_ref.has_value()) continue;  // gateways/waypoints
    bool applies = false;
    if (isNamespaceWide(spec.selector)) {
      applies = ns == inputs.root_namespace || ns == inputs.workload_namespace;
    } else {
      applies = (ns == inputs.root_namespace || ns == inputs.workload_namespace) &&
                selectorMatches(*spec.selector, inputs.labels);
    }
    if (!applies) continue;
    if (spec.action == AuthorizationAction::kCustom) {
      SHEAVE_LOG_INFO("AuthorizationPolicy {}/{}: CUSTOM action is not supported; skipped", ns,
                      policy.metadata.name);
      continue;
    }
    auto annotation = policy.metadata.annotations.find("istio.io/dry-run");
    bool dry_run = annotation != policy.metadata.annotations.end() && annotation->second == "true";
    Bucket& bucket = buckets[spec.action];
    (dry_run ? bucket.any_shadow : bucket.any) = true;
    for (size_t i = 0; i < spec.rules.size(); ++i) {
      std::string name =
          "ns[" + ns + "]-policy[" + policy.metadata.name + "]-rule[" + std::to_string(i) + "]";
      for (bool tcp : {false, true}) {
        rbac::Policy compiled;
        std::vector<std::string> problems;
        bool keep = buildRbacPolicy(spec.rules[i], spec.action, tcp, inputs, &compiled, &problems);
        if (!tcp && errors != nullptr) {
          for (auto& problem : problems) {
            errors->push_back(ResourceError{policy.source, policy.kind, ns, policy.metadata.name,
                                            invalidArgument(policy.source.toString() + ": rules[" +
                                                            std::to_string(i) + "]: " + problem)});
          }
        }
        if (!keep) continue;
        rbac::RBAC& target = tcp ? (dry_run ? bucket.tcp_shadow : bucket.tcp)
                                 : (dry_run ? bucket.http_shadow : bucket.http);
        (*target.mutable_policies())[name] = std::move(compiled);
      }
    }
  }

  AuthorizationFilters out;
  for (const auto& [action, envoy_action] : kOrder) {
    auto it = buckets.find(action);
    if (it == buckets.end()) continue;
    Bucket& b = it->second;
    std::string prefix = action == AuthorizationAction::kAllow  ? "istio_dry_run_allow_"
                         : action == AuthorizationAction::kDeny ? "istio_dry_run_deny_"
                                                                : "istio_dry_run_audit_";
    envoy::extensions::filters::http::rbac::v3::RBAC http;
    envoy::extensions::filters::network::rbac::v3::RBAC tcp;
    tcp.set_stat_prefix("tcp.");
    if (b.any) {
      b.http.set_action(envoy_action);
      b.tcp.set_action(envoy_action);
      *http.mutable_rules() = b.http;
      *tcp.mutable_rules() = b.tcp;
    }
    if (b.any_shadow) {
      b.http_shadow.set_action(envoy_action);
      b.tcp_shadow.set_action(envoy_action);
      *http.mutable_shadow_rules() = b.http_shadow;
      http.set_shadow_rules_stat_prefix(prefix);
      *tcp.mutable_shadow_rules() = b.tcp_shadow;
      tcp.set_shadow_rules_stat_prefix(prefix);
    }
    auto& hf = out.http.emplace_back();
    hf.set_name(std::string(kHttpRbacName));
    packDeterministicInto(http, hf.mutable_typed_config());
    auto& nf = out.network.emplace_back();
    nf.set_name(std::string(kNetworkRbacName));
    packDeterministicInto(tcp, nf.mutable_typed_config());
  }
  return out;
}

}  // namespace sheave::control
