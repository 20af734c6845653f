// The listeners sheave-control generates for a sidecar (virtualOutbound, 0.0.0.0_<port>,
// <vip>_<port>, sniffed ports, TLS services by SNI, virtualInbound) must load in sheave-proxy's
// ListenerConfig as they are: the same check `sheave-proxy --mode validate` makes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "control/compiler/listener_generator.h"
#include "proxy/accesslog/access_log_sink.h"
#include "proxy/http/filter_registry.h"
#include "proxy/server/builtin_extensions.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/rds_manager.h"
#include "proxy/stats/store.h"

namespace sheave {
namespace {

using control::Protocol;
using control::Service;

Service makeService(std::string host, std::string vip,
                    std::vector<std::pair<uint32_t, Protocol>> ports) {
  Service s;
  s.hostname = std::move(host);
  s.namespace_name = "default";
  s.resource_name = s.hostname.substr(0, s.hostname.find('.'));
  s.vip = std::move(vip);
  for (auto [number, protocol] : ports) {
    control::ServicePortInfo p;
    p.port = number;
    p.protocol = protocol;
    p.name = std::string(control::protocolName(protocol)) + "-" + std::to_string(number);
    s.ports.push_back(p);
  }
  return s;
}

TEST(GeneratedListenersTest, SidecarListenersLoadInTheProxy) {
  Service reviews =
      makeService("reviews.default.svc.cluster.local", "240.240.0.2", {{9080, Protocol::kHttp}});
  Service grpc =
      makeService("grpc.default.svc.cluster.local", "240.240.0.3", {{7070, Protocol::kGrpc}});
  Service db = makeService("db.default.svc.cluster.local", "240.240.0.9", {{5432, Protocol::kTcp}});
  Service legacy = makeService("legacy.default.svc.cluster.local", "240.240.0.7",
                               {{8000, Protocol::kUnsupported}});
  Service tls_a = makeService("a.default.svc.cluster.local", "", {{443, Protocol::kTls}});
  Service tls_b = makeService("b.default.svc.cluster.local", "", {{443, Protocol::kTls}});
  Service web = makeService("web.default.svc.cluster.local", "", {{8081, Protocol::kHttp}});
  Service raw = makeService("raw.default.svc.cluster.local", "", {{8081, Protocol::kTcp}});

  control::ProxyContext proxy;
  proxy.id = "sidecar~10.1.0.5~productpage-v1.default~default.svc.cluster.local";
  proxy.ips = {"10.1.0.5"};
  proxy.namespace_name = "default";
  Service productpage = makeService("productpage.default.svc.cluster.local", "240.240.0.10",
                                    {{9080, Protocol::kHttp}, {3306, Protocol::kTcp}});
  proxy.service_instances = {
      {&productpage, 9080, "http", Protocol::kHttp, 9080},
      {&productpage, 3306, "tcp", Protocol::kTcp, 3307},
  };
  control::MeshConfig mesh;
  control::ListenerInputs in;
  in.proxy = &proxy;
  in.mesh = &mesh;
  in.services = {&tls_a, &tls_b, &db, &grpc, &legacy, &raw, &reviews, &web};
  std::vector<control::ResourceError> errors;
  auto listeners = control::buildSidecarListeners(in, &errors);
  ASSERT_GE(listeners.size(), 6u);

  auto store = stats::Store::create().value();
  http::FilterRegistry filters;
  server::registerBuiltinHttpFilters(filters);
  accesslog::AccessLogManager access_logs(*store);
  server::RdsManager rds;
  server::ListenerConfig::Context context{
      *store,      filters,
      access_logs, [](const std::string&) { return true; },
      nullptr,     [&rds](const std::string& name) { return rds.provider(name); }};

  std::vector<std::string> failures;
  for (const auto& proto : listeners) {
    auto config = server::ListenerConfig::create(proto, context);
    if (!config.ok()) {
      failures.push_back(proto.name() + ": " + config.error().message());
      continue;
    }
    EXPECT_EQ((*config)->filter_chains.size(), static_cast<size_t>(proto.filter_chains_size()));
    if (proto.name() == "virtualOutbound") {
      EXPECT_TRUE((*config)->use_original_dst);
      EXPECT_TRUE((*config)->hasListenerFilter(server::ListenerFilterKind::kOriginalDst));
      EXPECT_TRUE((*config)->bind_to_port);
    }
    if (proto.name() == "0.0.0.0_9080") {
      EXPECT_FALSE((*config)->bind_to_port);
    }
  }
  std::string all;
  for (const auto& f : failures) all += f + "\n";
  EXPECT_TRUE(failures.empty()) << all;
}

}  // namespace
}  // namespace sheave
