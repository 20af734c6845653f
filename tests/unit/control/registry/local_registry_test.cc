#include "control/registry/local_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace sheave::control {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ConfigSet parse(const std::string& yaml, const std::string& file = "test.yaml") {
  ConfigSet set = parseDocuments(yaml, file);
  for (const ResourceError& e : set.errors) ADD_FAILURE() << e.toString();
  return set;
}

RegistrySnapshot build(const ConfigSet& config, RegistryOptions options = {}) {
  Result<RegistrySnapshot> snapshot = buildRegistrySnapshot(config, options);
  EXPECT_TRUE(snapshot.ok()) << snapshot.error().message();
  return std::move(snapshot).value();
}

std::string errorsOf(const RegistrySnapshot& snapshot) {
  std::string out;
  for (const ResourceError& e : snapshot.errors()) out += e.toString() + "\n";
  return out;
}

// "address:port" of the endpoints serving one service port.
std::vector<std::string> endpointsOf(const RegistrySnapshot& snapshot, const std::string& host,
                                     uint32_t port) {
  std::vector<std::string> out;
  for (const Endpoint& e : snapshot.endpoints(host, port)) {
    out.push_back(e.address + ":" + std::to_string(e.port));
  }
  return out;
}

std::string workloadEntry(const std::string& name, const std::string& ns, const std::string& spec) {
  return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

constexpr const char* kReviewsService = R"(apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: bookinfo
  labels:
    app: reviews
spec:
  selector:
    app: reviews
  ports:
    - name: http
      port: 9080
    - name: grpc-api
      port: 9090
      targetPort: 19090
---
)";

std::string bookinfo() {
  return std::string(kReviewsService) +
         workloadEntry("reviews-v1", "bookinfo", R"(  address: 10.0.0.1
  labels:
    app: reviews
    version: v1
  ports:
    http: 8080
  serviceAccount: bookinfo-reviews
  locality: us-east1/us-east1-b
  network: net1
  weight: 3
)") + workloadEntry("reviews-v2", "bookinfo", R"(  address: 10.0.0.2
  labels:
    app: reviews
    version: v2
)") + workloadEntry("ratings-v1", "bookinfo", R"(  address: 10.0.0.3
  labels:
    app: ratings
)") +
         // Same labels, other namespace: a Service never selects across namespaces.
         workloadEntry("reviews-v1", "other", R"(  address: 10.9.9.9
  labels:
    app: reviews
)");
}

constexpr const char* kReviews = "reviews.bookinfo.svc.cluster.local";

TEST(LocalRegistryTest, ServiceSelectsWorkloadEntriesInItsNamespace) {
  const RegistrySnapshot snapshot = build(parse(bookinfo()));
  EXPECT_THAT(snapshot.errors(), IsEmpty()) << errorsOf(snapshot);
  ASSERT_EQ(snapshot.services().size(), 1u);
  const Service* reviews = snapshot.findService(kReviews);
  ASSERT_NE(reviews, nullptr);
  EXPECT_EQ(reviews->namespace_name, "bookinfo");
  EXPECT_EQ(reviews->resource_name, "reviews");
  EXPECT_EQ(reviews->origin, ServiceOrigin::kKubernetesService);
  EXPECT_EQ(reviews->resolution, Resolution::kClientSideLb);
  EXPECT_FALSE(reviews->mesh_external);
  EXPECT_EQ(reviews->labels.at("app"), "reviews");
  EXPECT_EQ(reviews->source.file, "test.yaml");
  EXPECT_EQ(reviews->source.line, 1);

  ASSERT_EQ(reviews->ports.size(), 2u);
  EXPECT_EQ(reviews->ports[0].port, 9080u);
  EXPECT_EQ(reviews->ports[0].protocol, Protocol::kHttp);
  EXPECT_EQ(reviews->ports[1].port, 9090u);
  EXPECT_EQ(reviews->ports[1].protocol, Protocol::kGrpc);
  EXPECT_EQ(reviews->ports[1].target_port, 19090u);
  EXPECT_EQ(reviews->findPortByName("grpc-api"), &reviews->ports[1]);
  EXPECT_EQ(reviews->findPort(9080), &reviews->ports[0]);
  EXPECT_EQ(reviews->findPort(1), nullptr);

  // The workload's own port for "http" wins; otherwise targetPort, else port.
  EXPECT_THAT(endpointsOf(snapshot, kReviews, 9080), ElementsAre("10.0.0.1:8080", "10.0.0.2:9080"));
  EXPECT_THAT(endpointsOf(snapshot, kReviews, 9090),
              ElementsAre("10.0.0.1:19090", "10.0.0.2:19090"));
  ASSERT_EQ(snapshot.endpoints(kReviews).size(), 4u);

  const Endpoint v1 = snapshot.endpoints(kReviews, 9080)[0];
  EXPECT_EQ(v1.workload_name, "reviews-v1");
  EXPECT_EQ(v1.namespace_name, "bookinfo");
  EXPECT_EQ(v1.service_port_name, "http");
  EXPECT_EQ(v1.labels.at("version"), "v1");
  EXPECT_EQ(v1.locality, "us-east1/us-east1-b");
  EXPECT_EQ(v1.network, "net1");
  EXPECT_EQ(v1.weight, 3u);
  EXPECT_EQ(v1.service_account, "bookinfo-reviews");
  EXPECT_EQ(v1.identity, "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews");

  const Endpoint v2 = snapshot.endpoints(kReviews, 9080)[1];
  EXPECT_EQ(v2.weight, 1u);  // unset
  EXPECT_EQ(v2.service_account, "default");
  EXPECT_EQ(v2.identity, "spiffe://cluster.local/ns/bookinfo/sa/default");
}

TEST(LocalRegistryTest, SelectorNonMatchAndNoSelector) {
  const RegistrySnapshot snapshot = build(parse(R"(apiVersion: v1
kind: Service
metadata: {name: details, namespace: bookinfo}
spec:
  selector: {app: details, version: v9}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: bookinfo}
spec:
  ports: [{name: http, port: 80}]
---
)" + workloadEntry("details-v1", "bookinfo",
                   "  address: 10.0.1.1\n  labels: {app: details, version: v1}\n")));
  EXPECT_THAT(snapshot.endpoints("details.bookinfo.svc.cluster.local"), IsEmpty());
  // Kubernetes semantics: no selector selects nothing, not everything.
  EXPECT_THAT(snapshot.endpoints("manual.bookinfo.svc.cluster.local"), IsEmpty());
  EXPECT_THAT(snapshot.endpoints("nonexistent"), IsEmpty());
}

TEST(LocalRegistryTest, NamedTargetPortMapsThroughWorkloadPorts) {
  const RegistrySnapshot snapshot = build(parse(
      R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
    - {name: main, port: 80, targetPort: http-alt}
    - {name: admin, port: 81, targetPort: 9901}
---
)" +
      workloadEntry("web-1", "shop",
                    "  address: 10.0.2.1\n  labels: {app: web}\n  ports: {http-alt: 7000}\n") +
      workloadEntry("web-2", "shop",
                    "  address: unix:///var/run/web.sock\n  labels: {app: web}\n")));
  EXPECT_THAT(snapshot.errors(), IsEmpty()) << errorsOf(snapshot);
  const std::string host = "web.shop.svc.cluster.local";
  EXPECT_EQ(snapshot.findService(host)->ports[0].target_port_name, "http-alt");
  EXPECT_THAT(endpointsOf(snapshot, host, 80),
              ElementsAre("10.0.2.1:7000", "unix:///var/run/web.sock:0"));
  EXPECT_THAT(endpointsOf(snapshot, host, 81),
              ElementsAre("10.0.2.1:9901", "unix:///var/run/web.sock:0"));
}

TEST(LocalRegistryTest, WorkloadEntryWithoutIpIsRejectedForAClientSideService) {
  const RegistrySnapshot snapshot = build(parse(
      std::string(kReviewsService) +
      workloadEntry("vm", "bookinfo", "  address: vm.example.com\n  labels: {app: reviews}\n")));
  EXPECT_THAT(snapshot.endpoints(kReviews), IsEmpty());
  ASSERT_EQ(snapshot.errors().size(), 1u);
  EXPECT_EQ(snapshot.errors()[0].kind, "WorkloadEntry");
  EXPECT_EQ(snapshot.errors()[0].name, "vm");
  EXPECT_THAT(snapshot.errors()[0].error.message(),
              HasSubstr("test.yaml:18:1: spec.address: \"vm.example.com\" is not an IP address"));
}

TEST(LocalRegistryTest, ClusterIpHeadlessAndInvalidAddresses) {
  const RegistrySnapshot snapshot = build(parse(R"(apiVersion: v1
kind: Service
metadata: {name: fixed, namespace: default}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00::10"]
  ports: [{name: tcp-db, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: broken, namespace: default}
spec:
  clusterIP: not-an-ip
  ports: [{port: 80}]
)"));
  const Service* fixed = snapshot.findService("fixed.default.svc.cluster.local");
  ASSERT_NE(fixed, nullptr);
  EXPECT_EQ(fixed->vip, "10.96.0.10");
  EXPECT_FALSE(fixed->vip_allocated);
  EXPECT_THAT(fixed->addresses, ElementsAre("10.96.0.10", "fd00::10"));
  EXPECT_EQ(fixed->ports[0].protocol, Protocol::kTcp);
  EXPECT_THAT(snapshot.findServicesByAddress("fd00::10"), ElementsAre(fixed));

  const Service* headless = snapshot.findService("headless.default.svc.cluster.local");
  ASSERT_NE(headless, nullptr);
  EXPECT_TRUE(headless->headless);
  EXPECT_EQ(headless->resolution, Resolution::kPassthrough);
  EXPECT_EQ(headless->vip, "");

  const Service* broken = snapshot.findService("broken.default.svc.cluster.local");
  ASSERT_NE(broken, nullptr);
  EXPECT_TRUE(broken->vip_allocated);  // the bad address is dropped, a VIP given instead
  EXPECT_EQ(broken->ports[0].protocol, Protocol::kUnsupported);
  ASSERT_EQ(snapshot.errors().size(), 1u);
  EXPECT_THAT(snapshot.errors()[0].toString(),
              HasSubstr("spec.clusterIP: \"not-an-ip\" is not an IP address; ignored (Service "
                        "default/broken)"));
}

TEST(LocalRegistryTest, ExternalNameServiceResolvesByDns) {
  const RegistrySnapshot snapshot = build(parse(R"(apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  type: ExternalName
  externalName: db.example.com
  ports: [{name: tcp, port: 5432}]
)"));
  const Service* db = snapshot.findService("db.default.svc.cluster.local");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->resolution, Resolution::kDnsLb);
  EXPECT_TRUE(db->mesh_external);
  EXPECT_THAT(endpointsOf(snapshot, db->hostname, 5432), ElementsAre("db.example.com:5432"));
  EXPECT_EQ(snapshot.endpoints(db->hostname)[0].identity, "");
}

constexpr const char* kServiceEntries = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough, namespace: egress}
spec:
  hosts: [passthrough.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static, namespace: egress}
spec:
  hosts: [static.example.com]
  addresses: [192.0.2.10]
  ports:
    - {number: 80, name: web, protocol: HTTP, targetPort: 8080}
    - {number: 5000, name: api, protocol: GRPC}
  resolution: STATIC
  endpoints:
    - address: 192.0.2.21
      ports: {api: 5001}
      labels: {zone: a}
    - address: 192.0.2.20
    - address: bad.example.com
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: egress}
spec:
  hosts: [api.example.com, www.example.com, "*.wild.example.com"]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns-rr, namespace: egress}
spec:
  hosts: [rr.example.com]
  ports: [{number: 80, name: http}]
  resolution: DNS_ROUND_ROBIN
  endpoints:
    - address: rr-backend.example.com
      ports: {http: 8080}
---
)";

std::string serviceEntries() {
  return std::string(kServiceEntries) +
         workloadEntry("cart-vm", "shop",
                       "  address: 10.1.0.5\n  labels: {app: cart}\n  serviceAccount: cart\n") +
         workloadEntry("cart-elsewhere", "egress", "  address: 10.1.0.6\n  labels: {app: cart}\n");
}

// A MESH_INTERNAL ServiceEntry selecting WorkloadEntries. Built in C++: the
// YAML key of ServiceEntry.workloadSelector is being corrected in the model
// (Istio's networking WorkloadSelector has `labels`, not `matchLabels`).
void addCartEntry(ConfigSet& config) {
  Resource<ServiceEntry> entry;
  entry.api_version = "networking.istio.io/v1";
  entry.kind = "ServiceEntry";
  entry.metadata.name = "vms";
  entry.metadata.namespace_name = "shop";
  entry.spec.hosts = {"cart.shop.internal"};
  entry.spec.ports = {ServicePort{8080, "HTTP", "http", 0}};
  entry.spec.location = ServiceEntryLocation::kMeshInternal;
  entry.spec.resolution = ServiceEntryResolution::kStatic;
  entry.spec.workload_selector.emplace();
  entry.spec.workload_selector->match_labels = {{"app", "cart"}};
  config.service_entries.push_back(std::move(entry));
}

TEST(LocalRegistryTest, ServiceEntryResolutionNone) {
  const RegistrySnapshot snapshot = build(parse(serviceEntries()));
  const Service* se = snapshot.findService("passthrough.example.com");
  ASSERT_NE(se, nullptr);
  EXPECT_EQ(se->origin, ServiceOrigin::kServiceEntry);
  EXPECT_EQ(se->resolution, Resolution::kPassthrough);
  EXPECT_TRUE(se->mesh_external);  // MESH_EXTERNAL is the default location
  EXPECT_EQ(se->vip, "");          // as Istio: no VIP for NONE without addresses
  EXPECT_EQ(se->ports[0].protocol, Protocol::kTls);
  EXPECT_THAT(snapshot.endpoints(se->hostname), IsEmpty());
}

TEST(LocalRegistryTest, ServiceEntryResolutionStatic) {
  const RegistrySnapshot snapshot = build(parse(serviceEntries()));
  const Service* se = snapshot.findService("static.example.com");
  ASSERT_NE(se, nullptr);
  EXPECT_EQ(se->resolution, Resolution::kClientSideLb);
  EXPECT_EQ(se->vip, "192.0.2.10");
  EXPECT_FALSE(se->vip_allocated);
  EXPECT_EQ(se->ports[0].protocol, Protocol::kHttp);
  EXPECT_EQ(se->ports[1].protocol, Protocol::kGrpc);
  EXPECT_THAT(endpointsOf(snapshot, se->hostname, 80),
              ElementsAre("192.0.2.20:8080", "192.0.2.21:8080"));
  EXPECT_THAT(endpointsOf(snapshot, se->hostname, 5000),
              ElementsAre("192.0.2.20:5000", "192.0.2.21:5001"));
  EXPECT_EQ(snapshot.endpoints(se->hostname, 80)[1].labels.at("zone"), "a");
  // Mesh-external endpoints have no mesh identity unless they name one.
  EXPECT_EQ(snapshot.endpoints(se->hostname, 80)[0].identity, "");
  EXPECT_THAT(errorsOf(snapshot),
              HasSubstr("spec.endpoints[2].address: \"bad.example.com\" is not an IP address"));
  EXPECT_THAT(snapshot.findServicesByAddress("192.0.2.10"), ElementsAre(se));
}

TEST(LocalRegistryTest, ServiceEntryResolutionDnsWithSeveralHosts) {
  const RegistrySnapshot snapshot = build(parse(serviceEntries()));
  const Service* api = snapshot.findService("api.example.com");
  const Service* www = snapshot.findService("www.example.com");
  const Service* wild = snapshot.findService("*.wild.example.com");
  ASSERT_TRUE(api && www && wild);
  EXPECT_EQ(api->resolution, Resolution::kDnsLb);
  EXPECT_EQ(api->resource_name, "dns");
  EXPECT_EQ(api->ports[0].protocol, Protocol::kHttps);
  // Without endpoints, the proxy resolves the host itself.
  EXPECT_THAT(endpointsOf(snapshot, "api.example.com", 443), ElementsAre("api.example.com:443"));
  EXPECT_THAT(endpointsOf(snapshot, "www.example.com", 443), ElementsAre("www.example.com:443"));
  EXPECT_THAT(snapshot.endpoints("*.wild.example.com"), IsEmpty());
  // One VIP per host; none for the wildcard.
  EXPECT_TRUE(api->vip_allocated);
  EXPECT_TRUE(www->vip_allocated);
  EXPECT_NE(api->vip, www->vip);
  EXPECT_EQ(wild->vip, "");
  EXPECT_THAT(snapshot.findServicesByAddress(api->vip), ElementsAre(api));
}

TEST(LocalRegistryTest, ServiceEntryResolutionDnsRoundRobin) {
  const RegistrySnapshot snapshot = build(parse(serviceEntries()));
  const Service* rr = snapshot.findService("rr.example.com");
  ASSERT_NE(rr, nullptr);
  EXPECT_EQ(rr->resolution, Resolution::kDnsRoundRobin);
  // Without a `protocol`, a ServiceEntry port is sniffed: names mean nothing there.
  EXPECT_EQ(rr->ports[0].protocol, Protocol::kUnsupported);
  EXPECT_THAT(endpointsOf(snapshot, "rr.example.com", 80),
              ElementsAre("rr-backend.example.com:8080"));
}

TEST(LocalRegistryTest, ServiceEntryWorkloadSelector) {
  ConfigSet config = parse(serviceEntries());
  addCartEntry(config);
  const RegistrySnapshot snapshot = build(config);
  const Service* cart = snapshot.findService("cart.shop.internal");
  ASSERT_NE(cart, nullptr);
  EXPECT_FALSE(cart->mesh_external);
  EXPECT_THAT(endpointsOf(snapshot, "cart.shop.internal", 8080), ElementsAre("10.1.0.5:8080"));
  EXPECT_EQ(snapshot.endpoints("cart.shop.internal")[0].identity,
            "spiffe://cluster.local/ns/shop/sa/cart");
  EXPECT_EQ(snapshot.endpoints("cart.shop.internal")[0].workload_name, "cart-vm");
}

TEST(LocalRegistryTest, ServiceEntryAddressesSharedByItsHosts) {
  const RegistrySnapshot snapshot = build(parse(R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pair, namespace: default}
spec:
  hosts: [b.example.com, a.example.com, a.example.com]
  addresses: [198.51.100.0/24, 198.51.100.7, "nope"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
)"));
  ASSERT_EQ(snapshot.services().size(), 2u);
  EXPECT_EQ(snapshot.services()[0].hostname, "a.example.com");
  EXPECT_EQ(snapshot.services()[0].vip, "198.51.100.0/24");
  EXPECT_THAT(snapshot.services()[0].addresses, ElementsAre("198.51.100.0/24", "198.51.100.7"));
  EXPECT_THAT(snapshot.findServicesByAddress("198.51.100.7"),
              ElementsAre(&snapshot.services()[0], &snapshot.services()[1]));
  EXPECT_THAT(errorsOf(snapshot), HasSubstr("spec.addresses[2]: \"nope\" is not an IP address"));
}

TEST(LocalRegistryTest, DuplicateHostFirstDefinitionWins) {
  const RegistrySnapshot snapshot =
      build(parse(std::string(kReviewsService) + R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shadow, namespace: bookinfo}
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  ports: [{number: 1, name: tcp, protocol: TCP}]
  resolution: STATIC
)"));
  ASSERT_EQ(snapshot.services().size(), 1u);
  EXPECT_EQ(snapshot.services()[0].origin, ServiceOrigin::kKubernetesService);
  ASSERT_EQ(snapshot.errors().size(), 1u);
  EXPECT_EQ(snapshot.errors()[0].kind, "ServiceEntry");
  EXPECT_THAT(snapshot.errors()[0].error.message(),
              HasSubstr("host \"reviews.bookinfo.svc.cluster.local\" is already defined by "
                        "Service bookinfo/reviews (test.yaml:1:1)"));
}

// Services named svc-<i> in namespace ns, no addresses.
std::string manyServices(int count, const std::string& ns = "default") {
  std::string out;
  for (int i = 0; i < count; ++i) {
    out += "apiVersion: v1\nkind: Service\nmetadata: {name: svc-" + std::to_string(i) +
           ", namespace: " + ns + "}\nspec:\n  ports: [{name: http, port: 80}]\n---\n";
  }
  return out;
}

TEST(LocalRegistryTest, VipsAreStableAcrossReloadsAndInRange) {
  const RegistrySnapshot first = build(parse(manyServices(50)));
  // Same services from other files, in another order, plus unrelated ones.
  ConfigSet reordered = parse(manyServices(20, "other"), "a.yaml");
  ConfigSet later = parse(manyServices(50), "b.yaml");
  std::reverse(later.services.begin(), later.services.end());
  reordered.merge(std::move(later));
  const RegistrySnapshot second = build(reordered);

  const Ipv4Range range = *Ipv4Range::parse("240.240.0.0/16");
  std::set<std::string> vips;
  for (const Service& service : first.services()) {
    ASSERT_TRUE(service.vip_allocated) << service.hostname;
    const std::optional<uint32_t> ip = parseIpv4(service.vip);
    ASSERT_TRUE(ip) << service.vip;
    EXPECT_TRUE(range.contains(*ip)) << service.vip;
    EXPECT_TRUE(vips.insert(service.vip).second) << "duplicate VIP " << service.vip;
    const Service* again = second.findService(service.hostname);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->vip, service.vip) << service.hostname;
  }
  EXPECT_EQ(second.services().size(), 70u);
}

TEST(LocalRegistryTest, VipRangeOptionCollisionsAndExhaustion) {
  RegistryOptions options;
  options.vip_range = "10.10.0.0/29";  // 7 usable addresses
  // One explicit clusterIP inside the range, eight services wanting a VIP.
  const std::string yaml = manyServices(8) + R"(apiVersion: v1
kind: Service
metadata: {name: pinned, namespace: default}
spec:
  clusterIP: 10.10.0.3
  ports: [{name: http, port: 80}]
)";
  const RegistrySnapshot snapshot = build(parse(yaml), options);
  std::set<std::string> vips;
  int without = 0;
  for (const Service& service : snapshot.services()) {
    if (service.vip.empty()) {
      ++without;
      continue;
    }
    EXPECT_TRUE(vips.insert(service.vip).second) << "duplicate VIP " << service.vip;
    EXPECT_TRUE(Ipv4Range::parse("10.10.0.0/29")->contains(*parseIpv4(service.vip)));
  }
  EXPECT_EQ(vips.size(), 7u);
  EXPECT_EQ(without, 2);  // 1 + 8 services, 7 addresses
  EXPECT_EQ(snapshot.findService("pinned.default.svc.cluster.local")->vip, "10.10.0.3");
  EXPECT_EQ(snapshot.errors().size(), 2u);
  EXPECT_THAT(errorsOf(snapshot), HasSubstr("the VIP range 10.10.0.0/29 is exhausted"));
}

TEST(LocalRegistryTest, ResolveShortNamesFromANamespace) {
  RegistryOptions options;
  options.domain_suffix = "corp.internal";
  const RegistrySnapshot snapshot =
      build(parse(std::string(kReviewsService) + serviceEntries()), options);
  const Service* reviews = snapshot.findService("reviews.bookinfo.svc.corp.internal");
  ASSERT_NE(reviews, nullptr);
  EXPECT_EQ(snapshot.resolve("reviews", "bookinfo"), reviews);
  EXPECT_EQ(snapshot.resolve("reviews", "other"), nullptr);
  EXPECT_EQ(snapshot.resolve("reviews.bookinfo", "other"), reviews);
  EXPECT_EQ(snapshot.resolve("reviews.bookinfo.svc", "other"), reviews);
  EXPECT_EQ(snapshot.resolve("reviews.bookinfo.svc.corp.internal", "other"), reviews);
  EXPECT_EQ(snapshot.resolve("api.example.com", "other")->hostname, "api.example.com");
  EXPECT_EQ(snapshot.resolve(reviews->vip, "other"), nullptr);  // addresses: findServicesByAddress
  EXPECT_EQ(snapshot.findService("reviews.bookinfo.svc.cluster.local"), nullptr);
  EXPECT_EQ(snapshot.domainSuffix(), "corp.internal");
}

TEST(LocalRegistryTest, TrustDomainOption) {
  RegistryOptions options;
  options.trust_domain = "corp.example";
  const RegistrySnapshot snapshot = build(parse(bookinfo()), options);
  EXPECT_EQ(snapshot.endpoints(kReviews)[0].identity,
            "spiffe://corp.example/ns/bookinfo/sa/bookinfo-reviews");
}

TEST(LocalRegistryTest, OutputIsDeterministic) {
  const std::string yaml = bookinfo() + serviceEntries() + manyServices(10);
  const RegistrySnapshot a = build(parse(yaml));
  const RegistrySnapshot b = build(parse(yaml));
  ASSERT_EQ(a.services().size(), b.services().size());
  for (size_t i = 0; i < a.services().size(); ++i) {
    EXPECT_EQ(a.services()[i], b.services()[i]);
    EXPECT_EQ(a.endpoints(a.services()[i].hostname), b.endpoints(b.services()[i].hostname));
    if (i > 0) {
      EXPECT_LT(a.services()[i - 1].hostname, a.services()[i].hostname);
    }
  }
}

TEST(LocalRegistryTest, CreateRejectsBadOptions) {
  RegistryOptions options;
  options.vip_range = "240.240.0.0";
  EXPECT_FALSE(LocalRegistry::create(options).ok());
  EXPECT_FALSE(buildRegistrySnapshot(ConfigSet{}, options).ok());
  options = {};
  options.domain_suffix = "";
  EXPECT_FALSE(LocalRegistry::create(options).ok());
}

TEST(LocalRegistryTest, UpdatesNotifyHandlersWithWhatChanged) {
  Result<std::unique_ptr<LocalRegistry>> created = LocalRegistry::create();
  ASSERT_TRUE(created.ok());
  LocalRegistry& registry = **created;
  EXPECT_EQ(registry.snapshot()->version(), 0u);
  EXPECT_THAT(registry.snapshot()->services(), IsEmpty());

  std::vector<RegistryChange> changes;
  const Registry::HandlerId id =
      registry.addChangeHandler([&](const RegistryChange& change) { changes.push_back(change); });

  registry.update(parse(bookinfo() + manyServices(1)));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_THAT(changes[0].added,
              ElementsAre(kReviews, std::string("svc-0.default.svc.cluster.local")));
  EXPECT_EQ(changes[0].current, registry.snapshot());
  EXPECT_EQ(registry.snapshot()->version(), 1u);

  // The same content again (even from another file): no change, no call.
  const RegistryChange none = registry.update(parse(bookinfo() + manyServices(1), "moved.yaml"));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(changes.size(), 1u);
  EXPECT_EQ(registry.snapshot()->version(), 1u);

  // A workload moves: an endpoint-only change.
  std::string moved = bookinfo() + manyServices(1);
  moved.replace(moved.find("10.0.0.2"), 8, "10.0.0.8");
  registry.update(parse(moved));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_THAT(changes[1].endpoints_changed, ElementsAre(kReviews));
  EXPECT_THAT(changes[1].updated, IsEmpty());
  EXPECT_EQ(changes[1].previous->version(), 1u);
  EXPECT_EQ(changes[1].current->version(), 2u);

  // A port changes: the service is updated; svc-0 goes away.
  std::string ported = moved;
  ported.replace(ported.find("port: 9090"), 10, "port: 9091");
  registry.update(parse(
      ported.substr(0, ported.find("apiVersion: v1\nkind: Service\nmetadata: {name: svc-0"))));
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_THAT(changes[2].updated, ElementsAre(kReviews));
  EXPECT_THAT(changes[2].removed, ElementsAre("svc-0.default.svc.cluster.local"));
  EXPECT_THAT(changes[2].added, IsEmpty());
  EXPECT_NE(registry.snapshot()->findService(kReviews)->findPort(9091), nullptr);

  registry.removeChangeHandler(id);
  registry.update(ConfigSet{});
  EXPECT_EQ(changes.size(), 3u);
  EXPECT_THAT(registry.snapshot()->services(), IsEmpty());
  EXPECT_EQ(registry.snapshot()->version(), 4u);
}

}  // namespace
}  // namespace sheave::control
