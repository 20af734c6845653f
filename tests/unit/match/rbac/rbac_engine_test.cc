#include "match/rbac/rbac_engine.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sheave::rbac {
namespace {

std::shared_ptr<const RbacEngine> engine(const std::string& text) {
  envoy::config::rbac::v3::RBAC proto;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &proto)) << text;
  auto e = RbacEngine::create(proto);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message());
  return e.ok() ? *e : nullptr;
}

Error createError(const std::string& text) {
  envoy::config::rbac::v3::RBAC proto;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &proto)) << text;
  auto e = RbacEngine::create(proto);
  EXPECT_FALSE(e.ok());
  return e.ok() ? internalError("created") : std::move(e).error();
}

struct Req {
  HeaderMap headers;
  std::string path = "/";
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
  std::string subject;
  DynamicMetadata metadata;
  RbacRequest view;

  explicit Req(std::string p = "/", std::string method = "GET") : path(std::move(p)) {
    headers.add(":method", method);
    headers.add(":path", path);
    view.remote_ip = *IpAddress::parse("10.1.2.3");
    view.direct_remote_ip = *IpAddress::parse("127.0.0.1");
    view.destination_ip = *IpAddress::parseIpPort("127.0.0.1:8080");
  }
  const RbacRequest& get() {
    view.headers = &headers;
    view.path = path;
    view.peer_uri_sans = uri_sans;
    view.peer_dns_sans = dns_sans;
    view.peer_subject = subject;
    view.dynamic_metadata = &metadata;
    return view;
  }
};

TEST(RbacEngineTest, AllowWithNoPoliciesDeniesAll) {
  auto e = engine("action: ALLOW");
  Req r;
  EXPECT_FALSE(e->evaluate(r.get()).allowed);
  auto d = engine("action: DENY");
  EXPECT_TRUE(d->evaluate(r.get()).allowed);
}

constexpr const char* kAdminPolicy = R"(
  policies {
    key: "deny-admin"
    value {
      permissions { url_path { path { prefix: "/admin" } } }
      principals { any: true }
    }
  }
)";

TEST(RbacEngineTest, DenyByPath) {
  auto e = engine(std::string("action: DENY ") + kAdminPolicy);
  Req admin("/admin/x?q=1");
  auto res = e->evaluate(admin.get());
  EXPECT_FALSE(res.allowed);
  EXPECT_EQ(res.matched_policy_name, "deny-admin");
  Req other("/public?/admin");
  res = e->evaluate(other.get());
  EXPECT_TRUE(res.allowed);
  EXPECT_EQ(res.matched_policy_name, "");
  // Case-sensitive unless ignore_case.
  Req upper("/ADMIN");
  EXPECT_TRUE(e->evaluate(upper.get()).allowed);
}

TEST(RbacEngineTest, AllowNeedsPermissionAndPrincipal) {
  auto e = engine(R"(
    action: ALLOW
    policies {
      key: "get-from-net"
      value {
        permissions { header { name: ":method" string_match { exact: "GET" } } }
        permissions { destination_port: 9999 }
        principals { remote_ip { address_prefix: "10.1.0.0" prefix_len { value: 16 } } }
      }
    }
  )");
  Req get("/", "GET");
  EXPECT_TRUE(e->evaluate(get.get()).allowed);
  Req post("/", "POST");
  EXPECT_FALSE(e->evaluate(post.get()).allowed);
  Req far("/", "GET");
  far.view.remote_ip = *IpAddress::parse("10.2.0.1");
  EXPECT_FALSE(e->evaluate(far.get()).allowed);
  Req v6("/", "GET");
  v6.view.remote_ip = *IpAddress::parse("::ffff:10.1.2.3");
  EXPECT_FALSE(e->evaluate(v6.get()).allowed);
}

TEST(RbacEngineTest, Combinators) {
  auto e = engine(R"(
    action: ALLOW
    policies {
      key: "p"
      value {
        permissions {
          and_rules {
            rules { destination_port_range { start: 8000 end: 8081 } }
            rules { not_rule { url_path { path { exact: "/secret" } } } }
            rules { or_rules {
              rules { header { name: "x-a" present_match: true } }
              rules { header { name: "x-b" present_match: true } }
            } }
          }
        }
        principals { not_id { direct_remote_ip { address_prefix: "192.168.0.0" prefix_len { value: 16 } } } }
      }
    }
  )");
  Req ok("/x");
  ok.headers.add("x-b", "1");
  EXPECT_TRUE(e->evaluate(ok.get()).allowed);
  Req secret("/secret");
  secret.headers.add("x-a", "1");
  EXPECT_FALSE(e->evaluate(secret.get()).allowed);
  Req none("/x");
  EXPECT_FALSE(e->evaluate(none.get()).allowed);
  Req wrong_port("/x");
  wrong_port.headers.add("x-a", "1");
  wrong_port.view.destination_ip = *IpAddress::parseIpPort("127.0.0.1:8081");
  EXPECT_FALSE(e->evaluate(wrong_port.get()).allowed);
  Req lan("/x");
  lan.headers.add("x-a", "1");
  lan.view.direct_remote_ip = *IpAddress::parse("192.168.3.4");
  EXPECT_FALSE(e->evaluate(lan.get()).allowed);
}

TEST(RbacEngineTest, AuthenticatedPrincipal) {
  auto e = engine(R"(
    action: ALLOW
    policies {
      key: "spiffe"
      value {
        permissions { any: true }
        principals { authenticated { principal_name { exact: "spiffe://td/ns/a/sa/b" } } }
      }
    }
    policies {
      key: "any-tls"
      value {
        permissions { url_path { path { exact: "/tls" } } }
        principals { authenticated {} }
      }
    }
  )");
  Req plain("/x");
  EXPECT_FALSE(e->evaluate(plain.get()).allowed);
  Req good("/x");
  good.view.secure = true;
  good.uri_sans = {"spiffe://other", "spiffe://td/ns/a/sa/b"};
  auto res = e->evaluate(good.get());
  EXPECT_TRUE(res.allowed);
  EXPECT_EQ(res.matched_policy_name, "spiffe");
  Req bad("/x");
  bad.view.secure = true;
  bad.uri_sans = {"spiffe://td/ns/a/sa/c"};
  bad.subject = "CN=spiffe://td/ns/a/sa/b";
  EXPECT_FALSE(e->evaluate(bad.get()).allowed);
  Req subject("/x");
  subject.view.secure = true;
  subject.subject = "spiffe://td/ns/a/sa/b";
  EXPECT_TRUE(e->evaluate(subject.get()).allowed);
  Req tls("/tls");
  tls.view.secure = true;
  EXPECT_TRUE(e->evaluate(tls.get()).allowed);
}

TEST(RbacEngineTest, MetadataAndServerName) {
  auto e = engine(R"(
    action: DENY
    policies {
      key: "claims"
      value {
        permissions { requested_server_name { suffix: ".internal" } }
        principals { metadata {
          filter: "envoy.filters.http.jwt_authn"
          path { key: "payload" } path { key: "groups" }
          value { list_match { one_of { string_match { exact: "banned" } } } }
        } }
        principals { metadata {
          filter: "envoy.filters.http.jwt_authn"
          path { key: "payload" } path { key: "level" }
          value { double_match { range { start: 0 end: 2 } } }
        } }
      }
    }
  )");
  Req r("/");
  r.view.requested_server_name = "db.internal";
  EXPECT_TRUE(e->evaluate(r.get()).allowed);  // no metadata
  r.metadata["envoy.filters.http.jwt_authn"] = std::make_shared<const nlohmann::json>(
      nlohmann::json{{"payload", {{"groups", {"a", "banned"}}}}});
  EXPECT_FALSE(e->evaluate(r.get()).allowed);
  r.metadata["envoy.filters.http.jwt_authn"] =
      std::make_shared<const nlohmann::json>(nlohmann::json{{"payload", {{"level", 1}}}});
  EXPECT_FALSE(e->evaluate(r.get()).allowed);
  r.metadata["envoy.filters.http.jwt_authn"] =
      std::make_shared<const nlohmann::json>(nlohmann::json{{"payload", {{"level", 5}}}});
  EXPECT_TRUE(e->evaluate(r.get()).allowed);
  r.view.requested_server_name = "db.example";
  r.metadata["envoy.filters.http.jwt_authn"] =
      std::make_shared<const nlohmann::json>(nlohmann::json{{"payload", {{"level", 1}}}});
  EXPECT_TRUE(e->evaluate(r.get()).allowed);
}

TEST(RbacEngineTest, LogAlwaysAllows) {
  auto e = engine(std::string("action: LOG ") + kAdminPolicy);
  Req admin("/admin");
  auto res = e->evaluate(admin.get());
  EXPECT_TRUE(res.allowed);
  EXPECT_EQ(res.matched_policy_name, "deny-admin");
}

TEST(RbacEngineTest, PoliciesInNameOrder) {
  auto e = engine(R"(
    action: DENY
    policies { key: "b" value { permissions { any: true } principals { any: true } } }
    policies { key: "a" value { permissions { any: true } principals { any: true } } }
  )");
  Req r;
  EXPECT_EQ(e->evaluate(r.get()).matched_policy_name, "a");
}

TEST(RbacEngineTest, TcpHasNoHeadersOrPath) {
  auto e = engine(std::string("action: ALLOW ") + kAdminPolicy);
  RbacRequest tcp;
  tcp.path = "/admin";
  EXPECT_FALSE(e->evaluate(tcp).allowed);
}

TEST(RbacEngineTest, RejectsBadConfig) {
  EXPECT_NE(createError(R"(policies { key: "p" value { principals { any: true } } })")
                .message()
                .find("permissions"),
            std::string::npos);
  EXPECT_NE(createError(R"(policies { key: "p" value { permissions { any: true }
                           principals { remote_ip { address_prefix: "nope" } } } })")
                .message()
                .find("nope"),
            std::string::npos);
  createError(R"(policies { key: "p" value { permissions { any: true }
                 principals { remote_ip { address_prefix: "10.0.0.0" prefix_len { value: 33 } } } } })");
  createError(R"(policies { key: "p" value { permissions { } principals { any: true } } })");
}

TEST(IpAddressTest, Parse) {
  EXPECT_TRUE(IpAddress::parseIpPort("[::1]:80"));
  EXPECT_EQ(IpAddress::parseIpPort("[::1]:80")->port, 80);
  EXPECT_EQ(IpAddress::parseIpPort("1.2.3.4:65535")->port, 65535);
  EXPECT_FALSE(IpAddress::parseIpPort("1.2.3.4:65536"));
  EXPECT_FALSE(IpAddress::parseIpPort("1.2.3.4"));
  EXPECT_FALSE(IpAddress::parse("1.2.3"));
}

}  // namespace
}  // namespace sheave::rbac
