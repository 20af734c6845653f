#include "match/filter_chain_matcher.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <vector>

namespace sheave {
namespace {

using envoy::config::listener::v3::Listener;

Listener parseText(const std::string& text) {
  Listener listener;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &listener)) << text;
  return listener;
}

std::unique_ptr<const FilterChainMatcher> build(const std::string& text) {
  auto matcher = FilterChainMatcher::create(parseText(text));
  EXPECT_TRUE(matcher.ok()) << (matcher.ok() ? "" : matcher.error().message());
  return matcher.ok() ? std::move(matcher).value() : nullptr;
}

std::string buildError(const std::string& text) {
  auto matcher = FilterChainMatcher::create(parseText(text));
  EXPECT_FALSE(matcher.ok());
  return matcher.ok() ? std::string() : matcher.error().message();
}

Address addr(const std::string& ip_port) {
  auto a = Address::parseIpPort(ip_port);
  EXPECT_TRUE(a.ok()) << ip_port;
  return a.ok() ? *a : Address();
}

// A connection builder so each test states only what it varies.
struct Conn {
  std::string destination = "10.0.0.1:80";
  std::string source = "192.168.1.5:40000";
  std::string direct_source;
  std::string server_name;
  std::string transport;
  std::vector<std::string> alpn;

  Conn& dst(std::string v) {
    destination = std::move(v);
    return *this;
  }
  Conn& src(std::string v) {
    source = std::move(v);
    return *this;
  }
  Conn& direct(std::string v) {
    direct_source = std::move(v);
    return *this;
  }
  Conn& sni(std::string v) {
    server_name = std::move(v);
    return *this;
  }
  Conn& tp(std::string v) {
    transport = std::move(v);
    return *this;
  }
  Conn& protocols(std::vector<std::string> v) {
    alpn = std::move(v);
    return *this;
  }

  std::optional<size_t> on(const FilterChainMatcher& m) const {
    ConnectionView view;
    view.destination = addr(destination);
    view.source = addr(source);
    if (!direct_source.empty()) view.direct_source = addr(direct_source);
    view.server_name = server_name;
    view.transport_protocol = transport;
    view.application_protocols = alpn;
    return m.match(view);
  }
};

constexpr size_t kDefault = FilterChainMatcher::kDefaultChain;

TEST(FilterChainMatcherTest, EmptyMatchTakesEverything) {
  auto m = build(R"(filter_chains { name: "all" })");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().on(*m), 0u);
  EXPECT_EQ(Conn().dst("[::1]:443").src("[::1]:5000").sni("x").tp("tls").on(*m), 0u);
  EXPECT_EQ(m->chainCount(), 1u);
  EXPECT_FALSE(m->hasDefaultChain());
}

TEST(FilterChainMatcherTest, DestinationPortExactBeatsAnyAndDoesNotFallBack) {
  auto m = build(R"(
    filter_chains { filter_chain_match { destination_port { value: 80 } server_names: "a.com" } }
    filter_chains { }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().sni("a.com").on(*m), 0u);
  EXPECT_EQ(Conn().dst("10.0.0.1:81").sni("b.com").on(*m), 1u);
  // Port 80 has a chain, so the any-port chain is out even though the SNI then fails.
  EXPECT_EQ(Conn().sni("b.com").on(*m), std::nullopt);
}

TEST(FilterChainMatcherTest, DefaultChainWhenNothingMatches) {
  auto m = build(R"(
    filter_chains { filter_chain_match { destination_port { value: 80 } } }
    default_filter_chain { name: "fallback" }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().on(*m), 0u);
  EXPECT_EQ(Conn().dst("10.0.0.1:9").on(*m), kDefault);
  EXPECT_TRUE(m->hasDefaultChain());

  auto only_default = build(R"(default_filter_chain { })");
  ASSERT_NE(only_default, nullptr);
  EXPECT_EQ(Conn().on(*only_default), kDefault);
}

TEST(FilterChainMatcherTest, DestinationIpLongestPrefixIPv4) {
  auto m = build(R"(
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.0.0.0" prefix_len { value: 8 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.1.0.0" prefix_len { value: 16 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.1.2.3" prefix_len { value: 32 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.1.2.0" prefix_len { value: 23 } } } }
    filter_chains { }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().dst("10.9.9.9:80").on(*m), 0u);
  EXPECT_EQ(Conn().dst("10.1.9.9:80").on(*m), 1u);
  EXPECT_EQ(Conn().dst("10.1.2.3:80").on(*m), 2u);
  EXPECT_EQ(Conn().dst("10.1.3.200:80").on(*m), 3u);  // 10.1.2.0/23 covers 10.1.3.x
  EXPECT_EQ(Conn().dst("10.1.4.1:80").on(*m), 1u);
  EXPECT_EQ(Conn().dst("11.0.0.1:80").on(*m), 4u);
  EXPECT_EQ(Conn().dst("[2001:db8::1]:80").on(*m), 4u);
}

TEST(FilterChainMatcherTest, DestinationIpLongestPrefixIPv6) {
  auto m = build(R"(
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "2001:db8::" prefix_len { value: 32 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "2001:db8:aa00::" prefix_len { value: 41 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "2001:db8:aa00::7" prefix_len { value: 128 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.0.0.0" prefix_len { value: 8 } } } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().dst("[2001:db8:1::1]:80").on(*m), 0u);
  EXPECT_EQ(Conn().dst("[2001:db8:aa7f::1]:80").on(*m), 1u);  // inside /41
  EXPECT_EQ(Conn().dst("[2001:db8:aa80::1]:80").on(*m), 0u);  // just outside /41
  EXPECT_EQ(Conn().dst("[2001:db8:aa00::7]:80").on(*m), 2u);
  EXPECT_EQ(Conn().dst("[2001:db9::1]:80").on(*m), std::nullopt);
  // An IPv4 range never matches an IPv6 address and vice versa.
  EXPECT_EQ(Conn().dst("10.0.0.1:80").on(*m), 3u);
  EXPECT_EQ(Conn().dst("11.0.0.1:80").on(*m), std::nullopt);
}

TEST(FilterChainMatcherTest, HostBitsOfARangeAreIgnoredAndMissingLengthMeansZero) {
  auto m = build(R"(
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.1.2.3" prefix_len { value: 16 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "192.168.0.1" } server_names: "x" } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().dst("10.1.200.1:80").on(*m), 0u);
  EXPECT_EQ(Conn().dst("8.8.8.8:80").sni("x").on(*m), 1u);  // no prefix_len: 0, as Envoy
}

TEST(FilterChainMatcherTest, ExplicitZeroRangeAndNoRangeAreTheSameRule) {
  EXPECT_NE(buildError(R"(
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "0.0.0.0" prefix_len { value: 0 } } } }
    filter_chains { }
  )")
                .find("same matching rules"),
            std::string::npos);
}

TEST(FilterChainMatcherTest, DestinationIpNarrowsBeforeServerName) {
  auto m = build(R"(
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.0.0.0" prefix_len { value: 8 } } server_names: "a.com" } }
    filter_chains { filter_chain_match { server_names: "b.com" } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().sni("a.com").on(*m), 0u);
  // 10/8 is more specific than "any IP", so chain 1 is gone before SNI is looked at.
  EXPECT_EQ(Conn().sni("b.com").on(*m), std::nullopt);
  EXPECT_EQ(Conn().dst("11.0.0.1:80").sni("b.com").on(*m), 1u);
}

TEST(FilterChainMatcherTest, ServerNamesExactThenLongestWildcardThenAny) {
  auto m = build(R"(
    filter_chains { filter_chain_match { server_names: "www.example.com" } }
    filter_chains { filter_chain_match { server_names: "*.example.com" } }
    filter_chains { filter_chain_match { server_names: "*.com" server_names: "other.org" } }
    filter_chains { filter_chain_match { server_names: "*.a.b.example.com" } }
    filter_chains { }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().sni("www.example.com").on(*m), 0u);
  EXPECT_EQ(Conn().sni("WWW.Example.COM").on(*m), 0u);  // DNS names compare case-insensitively
  EXPECT_EQ(Conn().sni("api.example.com").on(*m), 1u);
  EXPECT_EQ(Conn().sni("x.y.example.com").on(*m), 1u);  // wildcard spans several labels
  EXPECT_EQ(Conn().sni("z.a.b.example.com").on(*m), 3u);
  EXPECT_EQ(Conn().sni("example.com").on(*m), 2u);  // "*.example.com" needs a label before it
  EXPECT_EQ(Conn().sni("foo.com").on(*m), 2u);
  EXPECT_EQ(Conn().sni("other.org").on(*m), 2u);
  EXPECT_EQ(Conn().sni("foo.org").on(*m), 4u);
  EXPECT_EQ(Conn().sni("com").on(*m), 4u);
  EXPECT_EQ(Conn().sni("").on(*m), 4u);  // no SNI: only chains without server_names
  EXPECT_EQ(Conn().sni("com.").on(*m), 4u);
}

TEST(FilterChainMatcherTest, NoSniDoesNotMatchChainsThatNeedOne) {
  auto m = build(R"(filter_chains { filter_chain_match { server_names: "*.example.com" } })");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().on(*m), std::nullopt);
}

TEST(FilterChainMatcherTest, TransportProtocolExactThenAnyRawBufferByDefault) {
  auto m = build(R"(
    filter_chains { filter_chain_match { transport_protocol: "tls" } }
    filter_chains { filter_chain_match { transport_protocol: "raw_buffer" } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().tp("tls").on(*m), 0u);
  EXPECT_EQ(Conn().tp("raw_buffer").on(*m), 1u);
  EXPECT_EQ(Conn().on(*m), 1u);  // nothing detected counts as raw_buffer
  EXPECT_EQ(Conn().tp("quic").on(*m), std::nullopt);

  auto with_any = build(R"(
    filter_chains { filter_chain_match { transport_protocol: "tls" } }
    filter_chains { }
  )");
  ASSERT_NE(with_any, nullptr);
  EXPECT_EQ(Conn().tp("tls").on(*with_any), 0u);
  EXPECT_EQ(Conn().on(*with_any), 1u);
}

TEST(FilterChainMatcherTest, ServerNameNarrowsBeforeTransportProtocol) {
  auto m = build(R"(
    filter_chains { filter_chain_match { server_names: "a.com" transport_protocol: "tls" } }
    filter_chains { filter_chain_match { transport_protocol: "raw_buffer" } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().sni("a.com").tp("tls").on(*m), 0u);
  EXPECT_EQ(Conn().sni("a.com").tp("raw_buffer").on(*m), std::nullopt);
  EXPECT_EQ(Conn().sni("b.com").tp("raw_buffer").on(*m), 1u);
}

TEST(FilterChainMatcherTest, ApplicationProtocolsFirstKnownInClientOrderThenAny) {
  auto m = build(R"(
    filter_chains { filter_chain_match { application_protocols: "h2" } }
    filter_chains { filter_chain_match { application_protocols: "http/1.1" application_protocols: "http/1.0" } }
    filter_chains { }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().protocols({"h2", "http/1.1"}).on(*m), 0u);
  EXPECT_EQ(Conn().protocols({"http/1.1", "h2"}).on(*m), 1u);
  EXPECT_EQ(Conn().protocols({"spdy/3", "http/1.0"}).on(*m), 1u);
  EXPECT_EQ(Conn().protocols({"spdy/3"}).on(*m), 2u);
  EXPECT_EQ(Conn().on(*m), 2u);
}

TEST(FilterChainMatcherTest, TransportNarrowsBeforeApplicationProtocols) {
  auto m = build(R"(
    filter_chains { filter_chain_match { transport_protocol: "tls" application_protocols: "h2" } }
    filter_chains { filter_chain_match { application_protocols: "istio" } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().tp("tls").protocols({"h2"}).on(*m), 0u);
  EXPECT_EQ(Conn().tp("tls").protocols({"istio"}).on(*m), std::nullopt);
  EXPECT_EQ(Conn().protocols({"istio"}).on(*m), 1u);
}

TEST(FilterChainMatcherTest, DirectSourceIsTheSourceUnlessSet) {
  auto m = build(R"(
    filter_chains { filter_chain_match { direct_source_prefix_ranges { address_prefix: "192.168.0.0" prefix_len { value: 16 } } } }
    filter_chains { filter_chain_match { source_prefix_ranges { address_prefix: "172.16.0.0" prefix_len { value: 12 } } } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().on(*m), 0u);
  EXPECT_EQ(Conn().src("172.16.0.9:1").on(*m), 1u);
  // PROXY protocol rewrote the source; the direct peer is the load balancer in 192.168/16,
  // which narrows to chain 0, whose source step accepts any source.
  EXPECT_EQ(Conn().src("172.16.0.9:1").direct("192.168.7.7:2").on(*m), 0u);
}

TEST(FilterChainMatcherTest, SourceTypeLocalOrExternalBeatsAny) {
  auto m = build(R"(
    filter_chains { filter_chain_match { source_type: SAME_IP_OR_LOOPBACK } }
    filter_chains { filter_chain_match { source_type: ANY } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().dst("127.0.0.1:80").src("127.0.0.1:5").on(*m), 0u);
  EXPECT_EQ(Conn().dst("10.0.0.1:80").src("127.0.0.2:5").on(*m), 0u);  // loopback source
  EXPECT_EQ(Conn().dst("10.0.0.1:80").src("10.0.0.1:5").on(*m), 0u);   // same IP
  EXPECT_EQ(Conn().dst("[::1]:80").src("[::1]:5").on(*m), 0u);
  EXPECT_EQ(Conn().on(*m), 1u);  // external source falls back to ANY

  auto ext = build(R"(
    filter_chains { filter_chain_match { source_type: EXTERNAL } }
    filter_chains { filter_chain_match { source_type: SAME_IP_OR_LOOPBACK } }
  )");
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(Conn().on(*ext), 0u);
  EXPECT_EQ(Conn().src("127.0.0.1:5").on(*ext), 1u);

  auto only_ext = build(R"(filter_chains { filter_chain_match { source_type: EXTERNAL } })");
  ASSERT_NE(only_ext, nullptr);
  EXPECT_EQ(Conn().src("127.0.0.1:5").on(*only_ext), std::nullopt);
}

TEST(FilterChainMatcherTest, SourceTypeNarrowsBeforeSourceIp) {
  auto m = build(R"(
    filter_chains { filter_chain_match { source_type: EXTERNAL source_prefix_ranges { address_prefix: "1.1.1.1" prefix_len { value: 32 } } } }
    filter_chains { filter_chain_match { source_prefix_ranges { address_prefix: "192.168.0.0" prefix_len { value: 16 } } } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().src("1.1.1.1:9").on(*m), 0u);
  EXPECT_EQ(Conn().on(*m), std::nullopt);  // EXTERNAL chosen, then 192.168.1.5 fails its range
  EXPECT_EQ(Conn().src("192.168.1.5:9").dst("192.168.1.5:80").on(*m), 1u);  // local: ANY
}

TEST(FilterChainMatcherTest, SourceIpLongestPrefixThenSourcePort) {
  auto m = build(R"(
    filter_chains { filter_chain_match { source_prefix_ranges { address_prefix: "192.168.0.0" prefix_len { value: 16 } } } }
    filter_chains { filter_chain_match { source_prefix_ranges { address_prefix: "192.168.1.0" prefix_len { value: 24 } } source_ports: 40000 } }
    filter_chains { filter_chain_match { source_prefix_ranges { address_prefix: "fd00::" prefix_len { value: 8 } } } }
    filter_chains { filter_chain_match { source_ports: 1234 } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().src("192.168.9.9:40000").on(*m), 0u);
  EXPECT_EQ(Conn().src("192.168.1.5:40000").on(*m), 1u);
  // /24 wins the IP step, then its only port does not match: no fallback to /16.
  EXPECT_EQ(Conn().src("192.168.1.5:40001").on(*m), std::nullopt);
  EXPECT_EQ(Conn().src("[fd12::1]:7").on(*m), 2u);
  EXPECT_EQ(Conn().src("8.8.8.8:1234").on(*m), 3u);
  EXPECT_EQ(Conn().src("8.8.8.8:1235").on(*m), std::nullopt);
}

TEST(FilterChainMatcherTest, SourcePortExactBeatsAny) {
  auto m = build(R"(
    filter_chains { filter_chain_match { source_ports: 5 source_ports: 6 } }
    filter_chains { }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().src("1.2.3.4:5").on(*m), 0u);
  EXPECT_EQ(Conn().src("1.2.3.4:6").on(*m), 0u);
  EXPECT_EQ(Conn().src("1.2.3.4:7").on(*m), 1u);
}

TEST(FilterChainMatcherTest, IstioInboundShape) {
  // virtualInbound: per-port chains for mTLS (tls + istio ALPN) and plaintext, with a
  // passthrough chain for other ports.
  auto m = build(R"(
    filter_chains { name: "9080-mtls" filter_chain_match { destination_port { value: 9080 } transport_protocol: "tls" application_protocols: "istio-peer-exchange" application_protocols: "istio" } }
    filter_chains { name: "9080-plain" filter_chain_match { destination_port { value: 9080 } transport_protocol: "raw_buffer" } }
    filter_chains { name: "passthrough-v4" filter_chain_match { prefix_ranges { address_prefix: "0.0.0.0" prefix_len { value: 0 } } } }
    filter_chains { name: "passthrough-v6" filter_chain_match { prefix_ranges { address_prefix: "::" prefix_len { value: 0 } } } }
  )");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Conn().dst("10.0.0.1:9080").tp("tls").protocols({"istio", "h2"}).on(*m), 0u);
  EXPECT_EQ(Conn().dst("10.0.0.1:9080").on(*m), 1u);
  EXPECT_EQ(Conn().dst("10.0.0.1:9080").tp("tls").protocols({"h2"}).on(*m), std::nullopt);
  EXPECT_EQ(Conn().dst("10.0.0.1:8000").tp("tls").on(*m), 2u);
  EXPECT_EQ(Conn().dst("[fd00::1]:8000").on(*m), 3u);
}

TEST(FilterChainMatcherTest, DuplicateMatchersAreRejected) {
  const std::string same = buildError(R"(
    filter_chains { name: "a" filter_chain_match { server_names: "x.com" } }
    filter_chains { name: "b" filter_chain_match { server_names: "x.com" } }
  )");
  EXPECT_NE(same.find("multiple filter chains with the same matching rules"), std::string::npos)
      << same;
  EXPECT_NE(same.find("filter_chains[1] ('b')"), std::string::npos) << same;
  EXPECT_NE(same.find("filter_chains[0] ('a')"), std::string::npos) << same;

  // Overlap in one value of a list is enough.
  EXPECT_NE(buildError(R"(
    filter_chains { filter_chain_match { application_protocols: "h2" application_protocols: "http/1.1" } }
    filter_chains { filter_chain_match { application_protocols: "http/1.1" } }
  )")
                .find("same matching rules"),
            std::string::npos);

  // Two empty matches.
  EXPECT_NE(buildError("filter_chains {} filter_chains {}").find("same matching rules"),
            std::string::npos);

  // Same network spelled with different host bits.
  EXPECT_NE(buildError(R"(
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.0.0.0" prefix_len { value: 8 } } } }
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.9.9.9" prefix_len { value: 8 } } } }
  )")
                .find("same matching rules"),
            std::string::npos);

  // Case differences in server names do not make them different.
  EXPECT_NE(buildError(R"(
    filter_chains { filter_chain_match { server_names: "X.com" } }
    filter_chains { filter_chain_match { server_names: "x.COM" } }
  )")
                .find("same matching rules"),
            std::string::npos);

  EXPECT_NE(
      buildError(R"(filter_chains { filter_chain_match { source_ports: 5 source_ports: 5 } })")
          .find("repeats"),
      std::string::npos);
}

TEST(FilterChainMatcherTest, DifferentRulesAreNotDuplicates) {
  EXPECT_NE(build(R"(
    filter_chains { filter_chain_match { server_names: "x.com" } }
    filter_chains { filter_chain_match { server_names: "*.x.com" } }
    filter_chains { filter_chain_match { server_names: "x.com" transport_protocol: "tls" } }
    filter_chains { filter_chain_match { destination_port { value: 1 } server_names: "x.com" } }
    filter_chains { filter_chain_match { source_type: EXTERNAL server_names: "x.com" } }
  )"),
            nullptr);
}

TEST(FilterChainMatcherTest, InvalidConfigurationIsRejectedWithItsFieldPath) {
  EXPECT_EQ(
      buildError(
          R"(filter_chains { } filter_chains { filter_chain_match { server_names: "w*.example.com" } })"),
      "filter_chains[1].filter_chain_match.server_names[0]: 'w*.example.com': partial "
      "wildcards are not supported, only a leading '*.'");
  EXPECT_NE(buildError(R"(filter_chains { filter_chain_match { server_names: "*" } })")
                .find("partial wildcards"),
            std::string::npos);
  EXPECT_NE(buildError(R"(filter_chains { filter_chain_match { server_names: "*.*.com" } })")
                .find("partial wildcards"),
            std::string::npos);
  EXPECT_NE(buildError(R"(filter_chains { filter_chain_match { server_names: "" } })")
                .find("server_names[0]: must not be empty"),
            std::string::npos);
  EXPECT_NE(
      buildError(
          R"(filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.0.0.0" prefix_len { value: 33 } } } })")
          .find("prefix_ranges[0]: prefix_len 33"),
      std::string::npos);
  EXPECT_NE(
      buildError(
          R"(filter_chains { filter_chain_match { source_prefix_ranges { address_prefix: "::" prefix_len { value: 129 } } } })")
          .find("source_prefix_ranges[0]"),
      std::string::npos);
  EXPECT_NE(
      buildError(
          R"(filter_chains { filter_chain_match { direct_source_prefix_ranges { address_prefix: "not-an-ip" } } })")
          .find("direct_source_prefix_ranges[0]: malformed IP address"),
      std::string::npos);
  EXPECT_NE(
      buildError(R"(filter_chains { filter_chain_match { destination_port { value: 70000 } } })")
          .find("destination_port"),
      std::string::npos);
  EXPECT_NE(buildError(R"(filter_chains { filter_chain_match { source_ports: 0 } })")
                .find("source_ports[0]"),
            std::string::npos);
  EXPECT_NE(buildError(R"(filter_chains { filter_chain_match { application_protocols: "" } })")
                .find("application_protocols[0]"),
            std::string::npos);
  EXPECT_NE(buildError(R"(filter_chains { filter_chain_match { address_suffix: "x" } })")
                .find("not implemented"),
            std::string::npos);
  EXPECT_NE(buildError("name: \"empty\"").find("no filter chains"), std::string::npos);
}

TEST(FilterChainMatcherTest, CombinatorialExplosionIsRefused) {
  std::string text = "filter_chains { filter_chain_match {";
  for (int i = 0; i < 200; ++i) text += " server_names: \"s" + std::to_string(i) + ".com\"";
  for (int i = 0; i < 100; ++i) text += " application_protocols: \"p" + std::to_string(i) + "\"";
  for (int i = 1; i <= 100; ++i) text += " source_ports: " + std::to_string(i);
  text += " } }";
  EXPECT_NE(buildError(text).find("multiply out"), std::string::npos);
}

TEST(FilterChainMatcherTest, UnknownDestinationMatchesOnlyCatchAllRanges) {
  auto m = build(R"(
    filter_chains { filter_chain_match { prefix_ranges { address_prefix: "10.0.0.0" prefix_len { value: 8 } } } }
    filter_chains { filter_chain_match { server_names: "x" } }
  )");
  ASSERT_NE(m, nullptr);
  ConnectionView view;  // no addresses at all
  view.server_name = "x";
  EXPECT_EQ(m->match(view), 1u);
}

}  // namespace
}  // namespace sheave
