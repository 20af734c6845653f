#include "match/rate_limit_policy.h"

#include "match/field_path.h"
#include "match/string_matcher.h"

namespace sheave {

Result<RateLimitPolicy> RateLimitPolicy::create(const envoy::config::route::v3::RateLimit& config,
                                                const std::string& where) {
  using A = envoy::config::route::v3::RateLimit::Action;
  RateLimitPolicy out;
  if (config.has_stage()) {
    if (config.stage().value() > 10) return invalidArgument("must be 0-10").at(where + ".stage");
    out.stage_ = config.stage().value();
  }
  if (config.actions_size() == 0) {
    return invalidArgument("at least one action is required").at(where + ".actions");
  }
  for (int i = 0; i < config.actions_size(); ++i) {
    const A& a = config.actions(i);
    const std::string at = where + ".actions[" + std::to_string(i) + "]";
    Action action;
    switch (a.action_specifier_case()) {
      case A::kDestinationCluster:
        action.kind = Action::Kind::kDestinationCluster;
        action.key = "destination_cluster";
        break;
      case A::kRequestHeaders:
        action.kind = Action::Kind::kRequestHeaders;
        action.header_name = asciiLower(a.request_headers().header_name());
        action.key = a.request_headers().descriptor_key();
        action.skip_if_absent = a.request_headers().skip_if_absent();
        if (action.header_name.empty() || action.key.empty()) {
          return invalidArgument("header_name and descriptor_key are required")
              .at(at + ".request_headers");
        }
        break;
      case A::kRemoteAddress:
        action.kind = Action::Kind::kRemoteAddress;
        action.key = "remote_address";
        break;
      case A::kGenericKey:
        action.kind = Action::Kind::kGenericKey;
        action.value = a.generic_key().descriptor_value();
        action.key = a.generic_key().descriptor_key().empty() ? "generic_key"
                                                              : a.generic_key().descriptor_key();
        if (action.value.empty()) {
          return invalidArgument("is required").at(at + ".generic_key.descriptor_value");
        }
        break;
      case A::kHeaderValueMatch: {
        const auto& m = a.header_value_match();
        action.kind = Action::Kind::kHeaderMatch;
        action.value = m.descriptor_value();
        action.key = m.descriptor_key().empty() ? "header_match" : m.descriptor_key();
        action.expect_match = !m.has_expect_match() || m.expect_match().value();
        if (action.value.empty()) {
          return invalidArgument("is required").at(at + ".header_value_match.descriptor_value");
        }
        if (m.headers_size() == 0) {
          return invalidArgument("at least one is required").at(at + ".header_value_match.headers");
        }
        for (int j = 0; j < m.headers_size(); ++j) {
          auto hm = HeaderMatcher::create(m.headers(j));
          if (!hm.ok()) {
            return nestError(std::move(hm).error(),
                             at + ".header_value_match.headers[" + std::to_string(j) + "]");
          }
          action.headers.push_back(std::move(hm).value());
        }
        break;
      }
      case A::kSourceCluster:
        return invalidArgument("is not supported (no local service cluster)")
            .at(at + ".source_cluster");
      default:
        return invalidArgument("an action is required").at(at);
    }
    out.actions_.push_back(std::move(action));
  }
  return out;
}

std::optional<RateLimitDescriptor> RateLimitPolicy::descriptor(const HeaderMap& headers,
                                                               const Address* remote,
                                                               std::string_view cluster) const {
  RateLimitDescriptor d;
  for (const Action& a : actions_) {
    switch (a.kind) {
      case Action::Kind::kDestinationCluster:
        if (cluster.empty()) return std::nullopt;
        d.emplace_back(a.key, std::string(cluster));
        break;
      case Action::Kind::kRequestHeaders:
        if (const std::string* v = headers.get(a.header_name)) {
          d.emplace_back(a.key, *v);
        } else if (!a.skip_if_absent) {
          return std::nullopt;
        }
        break;
      case Action::Kind::kRemoteAddress:
        if (remote == nullptr || remote->empty()) return std::nullopt;
        d.emplace_back(a.key, remote->ip());
        break;
      case Action::Kind::kGenericKey:
        d.emplace_back(a.key, a.value);
        break;
      case Action::Kind::kHeaderMatch: {
        bool all = true;
        for (const HeaderMatcher& m : a.headers) all = all && m.match(headers);
        if (all != a.expect_match) return std::nullopt;
        d.emplace_back(a.key, a.value);
        break;
      }
    }
  }
  if (d.empty()) return std::nullopt;
  return d;
}

}  // namespace sheave
