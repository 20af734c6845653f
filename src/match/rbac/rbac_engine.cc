#include "match/rbac/rbac_engine.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <variant>

#include "match/header_matcher.h"
#include "match/string_matcher.h"

namespace sheave::rbac {

namespace rbacv3 = envoy::config::rbac::v3;
namespace matcherv3 = envoy::type::matcher::v3;

// ---- addresses ----

std::optional<IpAddress> IpAddress::parse(std::string_view ip) {
  if (ip.empty() || ip.size() > INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(ip);
  IpAddress out;
  if (::inet_pton(AF_INET, s.c_str(), out.bytes.data()) == 1) {
    out.family = AF_INET;
    return out;
  }
  if (::inet_pton(AF_INET6, s.c_str(), out.bytes.data()) == 1) {
    out.family = AF_INET6;
    return out;
  }
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::parseIpPort(std::string_view ip_port) {
  std::string_view host;
  std::string_view port;
  if (!ip_port.empty() && ip_port.front() == '[') {
    const size_t close = ip_port.find(']');
    if (close == std::string_view::npos || close + 1 >= ip_port.size() ||
        ip_port[close + 1] != ':') {
      return std::nullopt;
    }
    host = ip_port.substr(1, close - 1);
    port = ip_port.substr(close + 2);
  } else {
    const size_t colon = ip_port.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = ip_port.substr(0, colon);
    port = ip_port.substr(colon + 1);
  }
  auto out = parse(host);
  if (!out || port.empty() || port.size() > 5) return std::nullopt;
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p > 65535) return std::nullopt;
  out->port = static_cast<uint16_t>(p);
  return out;
}

Result<CidrRange> CidrRange::create(const envoy::config::core::v3::CidrRange& proto) {
  auto ip = IpAddress::parse(proto.address_prefix());
  if (!ip) return invalidArgument("invalid CIDR address '" + proto.address_prefix() + "'");
  CidrRange out;
  out.family_ = ip->family;
  const uint32_t width = ip->family == AF_INET ? 32 : 128;
  out.prefix_len_ = proto.has_prefix_len() ? proto.prefix_len().value() : width;
  if (out.prefix_len_ > width) {
    return invalidArgument("CIDR prefix_len " + std::to_string(out.prefix_len_) + " exceeds " +
                           std::to_string(width) + " for '" + proto.address_prefix() + "'");
  }
  out.bytes_ = ip->bytes;
  return out;
}

bool CidrRange::contains(const IpAddress& ip) const {
  if (ip.family != family_) return false;
  const uint32_t full = prefix_len_ / 8;
  if (!std::equal(bytes_.begin(), bytes_.begin() + full, ip.bytes.begin())) return false;
  const uint32_t rest = prefix_len_ % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes_[full] & mask) == (ip.bytes[full] & mask);
}

// ---- metadata ----

class MetadataMatcher::ValueMatcher {
 public:
  static Result<std::shared_ptr<const ValueMatcher>> create(const matcherv3::ValueMatcher& proto) {
    auto out = std::make_shared<ValueMatcher>();
    switch (proto.match_pattern_case()) {
      case matcherv3::ValueMatcher::kNullMatch:
        out->kind_ = Kind::kNull;
        break;
      case matcherv3::ValueMatcher::kDoubleMatch: {
        const auto& d = proto.double_match();
        if (d.has_range()) {
          out->kind_ = Kind::kDoubleRange;
          out->lo_ = d.range().start();
          out->hi_ = d.range().end();
        } else if (d.match_pattern_case() == matcherv3::DoubleMatcher::kExact) {
          out->kind_ = Kind::kDoubleExact;
          out->lo_ = d.exact();
        } else {
          return invalidArgument("double_match: one of range or exact is required");
        }
        break;
      }
      case matcherv3::ValueMatcher::kStringMatch: {
        SHEAVE_ASSIGN_OR_RETURN(auto s, StringMatcher::create(proto.string_match()));
        out->kind_ = Kind::kString;
        out->string_ = std::move(s);
        break;
      }
      case matcherv3::ValueMatcher::kBoolMatch:
        out->kind_ = Kind::kBool;
        out->bool_ = proto.bool_match();
        break;
      case matcherv3::ValueMatcher::kPresentMatch:
        out->kind_ = Kind::kPresent;
        out->bool_ = proto.present_match();
        break;
      case matcherv3::ValueMatcher::kListMatch: {
        if (!proto.list_match().has_one_of()) return invalidArgument("list_match: one_of required");
        SHEAVE_ASSIGN_OR_RETURN(auto inner, create(proto.list_match().one_of()));
        out->kind_ = Kind::kListOneOf;
        out->children_.push_back(std::move(inner));
        break;
      }
      case matcherv3::ValueMatcher::kOrMatch:
        out->kind_ = Kind::kOr;
        for (const auto& v : proto.or_match().value_matchers()) {
          SHEAVE_ASSIGN_OR_RETURN(auto inner, create(v));
          out->children_.push_back(std::move(inner));
        }
        break;
      default:
        return invalidArgument("value matcher: a match pattern is required");
    }
    return std::shared_ptr<const ValueMatcher>(std::move(out));
  }

  // `value` is null when the path leads nowhere.
  bool match(const nlohmann::json* value) const {
    switch (kind_) {
      case Kind::kNull:
        return value != nullptr && value->is_null();
      case Kind::kDoubleRange:
        return value != nullptr && value->is_number() && value->get<double>() >= lo_ &&
               value->get<double>() < hi_;
      case Kind::kDoubleExact:
        return value != nullptr && value->is_number() && value->get<double>() == lo_;
      case Kind::kString:
        return value != nullptr && value->is_string() &&
               string_->match(value->get_ref<const std::string&>());
      case Kind::kBool:
        return value != nullptr && value->is_boolean() && value->get<bool>() == bool_;
      case Kind::kPresent:
        // As Envoy: present_match false never matches.
        return bool_ && value != nullptr;
      case Kind::kListOneOf:
        if (value == nullptr || !value->is_array()) return false;
        for (const auto& element : *value) {
          if (children_[0]->match(&element)) return true;
        }
        return false;
      case Kind::kOr:
        for (const auto& child : children_) {
          if (child->match(value)) return true;
        }
        return false;
    }
    return false;
  }

  enum class Kind { kNull, kDoubleRange, kDoubleExact, kString, kBool, kPresent, kListOneOf, kOr };
  Kind kind_ = Kind::kNull;
  double lo_ = 0;
  double hi_ = 0;
  bool bool_ = false;
  std::optional<StringMatcher> string_;
  std::vector<std::shared_ptr<const ValueMatcher>> children_;
};

Result<MetadataMatcher> MetadataMatcher::create(const matcherv3::MetadataMatcher& proto) {
  MetadataMatcher out;
  out.filter_ = proto.filter();
  if (out.filter_.empty()) return invalidArgument("metadata matcher: filter is required");
  if (proto.path().empty()) return invalidArgument("metadata matcher: path is required");
  for (const auto& segment : proto.path()) {
    if (segment.key().empty()) return invalidArgument("metadata matcher: empty path key");
    out.path_.push_back(segment.key());
  }
  if (!proto.has_value()) return invalidArgument("metadata matcher: value is required");
  SHEAVE_ASSIGN_OR_RETURN(out.value_, ValueMatcher::create(proto.value()));
  out.invert_ = proto.invert();
  return out;
}

bool MetadataMatcher::match(const DynamicMetadata* metadata) const {
  const nlohmann::json* value = nullptr;
  if (metadata != nullptr) {
    auto it = metadata->find(filter_);
    if (it != metadata->end() && it->second != nullptr) {
      value = it->second.get();
      for (const auto& key : path_) {
        if (!value->is_object()) {
          value = nullptr;
          break;
        }
        auto child = value->find(key);
        if (child == value->end()) {
          value = nullptr;
          break;
        }
        value = &*child;
      }
    }
  }
  return value_->match(value) != invert_;
}

// ---- the matcher tree ----

namespace {

// url_path: the path without query or fragment, compared as forwarded.
std::string_view pathWithoutQuery(std::string_view path) {
  const size_t end = path.find_first_of("?#");
  return end == std::string_view::npos ? path : path.substr(0, end);
}

}  // namespace

// One Permission or Principal. Both share the combinators and most leaves.
class Node {
 public:
  enum class Kind {
    kAnd,
    kOr,
    kNot,
    kAny,
    kHeader,
    kUrlPath,
    kDestinationIp,
    kDestinationPort,
    kDestinationPortRange,
    kMetadata,
    kRequestedServerName,
    kAuthenticated,
    kDirectRemoteIp,
    kRemoteIp,
  };

  bool match(const RbacRequest& r) const {
    switch (kind_) {
      case Kind::kAnd:
        for (const auto& c : children_) {
          if (!c.match(r)) return false;
        }
        return true;
      case Kind::kOr:
        for (const auto& c : children_) {
          if (c.match(r)) return true;
        }
        return false;
      case Kind::kNot:
        return !children_[0].match(r);
      case Kind::kAny:
        return true;
      case Kind::kHeader:
        // No headers (TCP): Envoy's header matchers see an empty map.
        if (r.headers == nullptr) {
          static const HeaderMap kEmpty;
          return header_->match(kEmpty);
        }
        return header_->match(*r.headers);
      case Kind::kUrlPath:
        // matchingPolicy() stripped the query once for the whole tree.
        return r.headers != nullptr && string_->match(r.path);
      case Kind::kDestinationIp:
        return cidr_->contains(r.destination_ip);
      case Kind::kDestinationPort:
        return r.destination_ip.family != AF_UNSPEC && r.destination_ip.port == port_start_;
      case Kind::kDestinationPortRange:
        return r.destination_ip.family != AF_UNSPEC && r.destination_ip.port >= port_start_ &&
               r.destination_ip.port < port_end_;
      case Kind::kMetadata:
        return metadata_->match(r.dynamic_metadata);
      case Kind::kRequestedServerName:
        return string_->match(r.requested_server_name);
      case Kind::kAuthenticated:
        return matchAuthenticated(r);
      case Kind::kDirectRemoteIp:
        return cidr_->contains(r.direct_remote_ip);
      case Kind::kRemoteIp:
        return cidr_->contains(r.remote_ip);
    }
    return false;
  }

  static Result<Node> fromPermission(const rbacv3::Permission& p, int depth);
  static Result<Node> fromPrincipal(const rbacv3::Principal& p, int depth);

 private:
  // As Envoy: only on a TLS connection; without a name any TLS peer matches;
  // with one, each URI SAN, then each DNS SAN, then the subject is tried.
  bool matchAuthenticated(const RbacRequest& r) const {
    if (!r.secure) return false;
    if (!string_) return true;
    for (const auto& san : r.peer_uri_sans) {
      if (string_->match(san)) return true;
    }
    for (const auto& san : r.peer_dns_sans) {
      if (string_->match(san)) return true;
    }
    return string_->match(r.peer_subject);
  }

  static Result<Node> leafHeader(const envoy::config::route::v3::HeaderMatcher& h) {
    SHEAVE_ASSIGN_OR_RETURN(auto m, HeaderMatcher::create(h));
    Node n(Kind::kHeader);
    n.header_ = std::make_shared<const HeaderMatcher>(std::move(m));
    return n;
  }
  static Result<Node> leafString(Kind kind, const matcherv3::StringMatcher& s) {
    SHEAVE_ASSIGN_OR_RETURN(auto m, StringMatcher::create(s));
    Node n(kind);
    n.string_ = std::make_shared<const StringMatcher>(std::move(m));
    return n;
  }
  static Result<Node> leafPath(const matcherv3::PathMatcher& p) {
    if (!p.has_path()) return invalidArgument("url_path: path is required");
    return leafString(Kind::kUrlPath, p.path());
  }
  static Result<Node> leafCidr(Kind kind, const envoy::config::core::v3::CidrRange& c) {
    SHEAVE_ASSIGN_OR_RETURN(auto m, CidrRange::create(c));
    Node n(kind);
    n.cidr_ = std::make_shared<const CidrRange>(m);
    return n;
  }
  static Result<Node> leafMetadata(const matcherv3::MetadataMatcher& m) {
    SHEAVE_ASSIGN_OR_RETURN(auto mm, MetadataMatcher::create(m));
    Node n(Kind::kMetadata);
    n.metadata_ = std::make_shared<const MetadataMatcher>(std::move(mm));
    return n;
  }

  explicit Node(Kind kind) : kind_(kind) {}

  Kind kind_;
  std::vector<Node> children_;
  std::shared_ptr<const HeaderMatcher> header_;
  std::shared_ptr<const StringMatcher> string_;
  std::shared_ptr<const CidrRange> cidr_;
  std::shared_ptr<const MetadataMatcher> metadata_;
  uint32_t port_start_ = 0;
  uint32_t port_end_ = 0;
};

namespace {
// Deeply nested configs would otherwise overflow the stack at evaluation.
constexpr int kMaxDepth = 64;
}  // namespace

Result<Node> Node::fromPermission(const rbacv3::Permission& p, int depth) {
  if (depth > kMaxDepth) return invalidArgument("permission nested too deeply");
  using P = rbacv3::Permission;
  switch (p.rule_case()) {
    case P::kAndRules:
    case P::kOrRules: {
      Node n(p.rule_case() == P::kAndRules ? Kind::kAnd : Kind::kOr);
      const auto& set = p.rule_case() == P::kAndRules ? p.and_rules() : p.or_rules();
      for (int i = 0; i < set.rules_size(); ++i) {
        auto child = fromPermission(set.rules(i), depth + 1);
        if (!child.ok()) return std::move(child).error().at("rules[" + std::to_string(i) + "]");
        n.children_.push_back(std::move(child).value());
      }
      return n;
    }
    case P::kAny:
      if (!p.any()) return invalidArgument("any: must be true");
      return Node(Kind::kAny);
    case P::kHeader:
      return leafHeader(p.header());
    case P::kUrlPath:
      return leafPath(p.url_path());
    case P::kDestinationIp:
      return leafCidr(Kind::kDestinationIp, p.destination_ip());
    case P::kDestinationPort: {
      if (p.destination_port() > 65535) return invalidArgument("destination_port: above 65535");
      Node n(Kind::kDestinationPort);
      n.port_start_ = p.destination_port();
      return n;
    }
    case P::kDestinationPortRange: {
      const auto& r = p.destination_port_range();
      if (r.start() < 0 || r.end() > 65536 || r.start() > r.end()) {
        return invalidArgument("destination_port_range: invalid range");
      }
      Node n(Kind::kDestinationPortRange);
      n.port_start_ = static_cast<uint32_t>(r.start());
      n.port_end_ = static_cast<uint32_t>(r.end());
      return n;
    }
    case P::kMetadata:
      return leafMetadata(p.metadata());
    case P::kNotRule: {
      SHEAVE_ASSIGN_OR_RETURN(auto child, fromPermission(p.not_rule(), depth + 1));
      Node n(Kind::kNot);
      n.children_.push_back(std::move(child));
      return n;
    }
    case P::kRequestedServerName:
      return leafString(Kind::kRequestedServerName, p.requested_server_name());
    default:
      return invalidArgument("permission: a rule is required");
  }
}

Result<Node> Node::fromPrincipal(const rbacv3::Principal& p, int depth) {
  if (depth > kMaxDepth) return invalidArgument("principal nested too deeply");
  using P = rbacv3::Principal;
  switch (p.identifier_case()) {
    case P::kAndIds:
    case P::kOrIds: {
      Node n(p.identifier_case() == P::kAndIds ? Kind::kAnd : Kind::kOr);
      const auto& set = p.identifier_case() == P::kAndIds ? p.and_ids() : p.or_ids();
      for (int i = 0; i < set.ids_size(); ++i) {
        auto child = fromPrincipal(set.ids(i), depth + 1);
        if (!child.ok()) return std::move(child).error().at("ids[" + std::to_string(i) + "]");
        n.children_.push_back(std::move(child).value());
      }
      return n;
    }
    case P::kAny:
      if (!p.any()) return invalidArgument("any: must be true");
      return Node(Kind::kAny);
    case P::kAuthenticated: {
      Node n(Kind::kAuthenticated);
      if (p.authenticated().has_principal_name()) {
        SHEAVE_ASSIGN_OR_RETURN(auto m, StringMatcher::create(p.authenticated().principal_name()));
        n.string_ = std::make_shared<const StringMatcher>(std::move(m));
      }
      return n;
    }
    case P::kSourceIp:  // deprecated alias of direct_remote_ip, still accepted as Envoy does
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      return leafCidr(Kind::kDirectRemoteIp, p.source_ip());
#pragma GCC diagnostic pop
    case P::kDirectRemoteIp:
      return leafCidr(Kind::kDirectRemoteIp, p.direct_remote_ip());
    case P::kRemoteIp:
      return leafCidr(Kind::kRemoteIp, p.remote_ip());
    case P::kHeader:
      return leafHeader(p.header());
    case P::kUrlPath:
      return leafPath(p.url_path());
    case P::kMetadata:
      return leafMetadata(p.metadata());
    case P::kNotId: {
      SHEAVE_ASSIGN_OR_RETURN(auto child, fromPrincipal(p.not_id(), depth + 1));
      Node n(Kind::kNot);
      n.children_.push_back(std::move(child));
      return n;
    }
    default:
      return invalidArgument("principal: an identifier is required");
  }
}

// ---- the engine ----

struct RbacEngine::Policy {
  std::string name;
  std::vector<Node> permissions;
  std::vector<Node> principals;

  bool match(const RbacRequest& r) const {
    bool permitted = false;
    for (const auto& p : permissions) {
      if (p.match(r)) {
        permitted = true;
        break;
      }
    }
    if (!permitted) return false;
    for (const auto& p : principals) {
      if (p.match(r)) return true;
    }
    return false;
  }
};

RbacEngine::~RbacEngine() = default;

Result<std::shared_ptr<const RbacEngine>> RbacEngine::create(const rbacv3::RBAC& proto) {
  std::shared_ptr<RbacEngine> engine(new RbacEngine());
  switch (proto.action()) {
    case rbacv3::RBAC::ALLOW:
      engine->action_ = Action::kAllow;
      break;
    case rbacv3::RBAC::DENY:
      engine->action_ = Action::kDeny;
      break;
    case rbacv3::RBAC::LOG:
      engine->action_ = Action::kLog;
      break;
    default:
      return invalidArgument("action: unknown value " + std::to_string(proto.action()));
  }
  // Sorted by name: protobuf maps have no order, Envoy iterates a std::map.
  std::map<std::string, const rbacv3::Policy*> sorted;
  for (const auto& [name, policy] : proto.policies()) sorted.emplace(name, &policy);
  for (const auto& [name, policy] : sorted) {
    const std::string where = "policies[\"" + name + "\"]";
    if (policy->permissions().empty()) return invalidArgument(where + ".permissions: required");
    if (policy->principals().empty()) return invalidArgument(where + ".principals: required");
    Policy compiled;
    compiled.name = name;
    for (int i = 0; i < policy->permissions_size(); ++i) {
      auto n = Node::fromPermission(policy->permissions(i), 0);
      if (!n.ok()) {
        return std::move(n).error().at(where + ".permissions[" + std::to_string(i) + "]");
      }
      compiled.permissions.push_back(std::move(n).value());
    }
    for (int i = 0; i < policy->principals_size(); ++i) {
      auto n = Node::fromPrincipal(policy->principals(i), 0);
      if (!n.ok()) {
        return std::move(n).error().at(where + ".principals[" + std::to_string(i) + "]");
      }
      compiled.principals.push_back(std::move(n).value());
    }
    engine->policies_.push_back(std::move(compiled));
  }
  return std::shared_ptr<const RbacEngine>(std::move(engine));
}

const std::string* RbacEngine::matchingPolicy(const RbacRequest& request) const {
  RbacRequest stripped = request;
  stripped.path = pathWithoutQuery(request.path);
  for (const auto& p : policies_) {
    if (p.match(stripped)) return &p.name;
  }
  return nullptr;
}

RbacResult RbacEngine::evaluate(const RbacRequest& request) const {
  RbacResult out;
  const std::string* matched = matchingPolicy(request);
  if (matched != nullptr) out.matched_policy_name = *matched;
  switch (action_) {
    case Action::kAllow:
      out.allowed = matched != nullptr;
      break;
    case Action::kDeny:
      out.allowed = matched == nullptr;
      break;
    case Action::kLog:
      out.allowed = true;
      break;
  }
  return out;
}

}  // namespace sheave::rbac
