#include "cli/runtime/interception.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sheave::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(InterceptionTest, DefaultRulesAreIstiosRedirectMode) {
  const std::string rules = interceptionRules(InterceptionOptions{});
  EXPECT_EQ(rules,
            "*nat\n"
            ":ISTIO_INBOUND - [0:0]\n"
            ":ISTIO_IN_REDIRECT - [0:0]\n"
            ":ISTIO_OUTPUT - [0:0]\n"
            ":ISTIO_REDIRECT - [0:0]\n"
            "-A PREROUTING -p tcp -j ISTIO_INBOUND\n"
            "-A OUTPUT -p tcp -j ISTIO_OUTPUT\n"
            "-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN\n"
            "-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN\n"
            "-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN\n"
            "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n"
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"
            "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n"
            "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j "
            "ISTIO_IN_REDIRECT\n"
            "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j "
            "ISTIO_IN_REDIRECT\n"
            "-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n"
            "-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n"
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
            "COMMIT\n");
}

TEST(InterceptionTest, ExclusionsAndPorts) {
  InterceptionOptions o;
  o.proxy_uid = 2000;
  o.outbound_port = 16001;
  o.exclude_inbound_ports = {22};
  o.exclude_outbound_ports = {5432};
  o.exclude_outbound_cidrs = {"10.0.0.0/8"};
  const std::string rules = interceptionRules(o);
  EXPECT_THAT(rules, HasSubstr("-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN\n"));
  EXPECT_THAT(rules, Not(HasSubstr("--dport 15020")));
  EXPECT_THAT(rules, HasSubstr("-m owner --uid-owner 2000 -j RETURN\n"));
  EXPECT_THAT(rules, HasSubstr("-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN\n"));
  EXPECT_THAT(rules, HasSubstr("-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN\n"));
  EXPECT_THAT(rules, HasSubstr("REDIRECT --to-ports 16001\n"));
  // Exclusions come before the catch-all redirect.
  EXPECT_LT(rules.find("10.0.0.0/8"), rules.find("-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
}

}  // namespace
}  // namespace sheave::cli
