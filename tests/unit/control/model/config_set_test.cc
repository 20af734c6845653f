#include "control/model/config_set.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace sheave::control {
namespace {

using std::chrono::seconds;

std::string errorsOf(const ConfigSet& set) {
  std::string out;
  for (const ResourceError& e : set.errors) out += e.toString() + "\n";
  return out;
}

// Parses one document that must be rejected; returns its message.
std::string rejection(const std::string& yaml, const std::string& file = "bookinfo/reviews.yaml") {
  ConfigSet set = parseDocuments(yaml, file);
  EXPECT_EQ(set.resourceCount(), 0u);
  EXPECT_EQ(set.errors.size(), 1u);
  return set.errors.empty() ? "" : set.errors[0].error.message();
}

constexpr const char* kReviews = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
    - reviews
  http:
    - route:
        - destination:
            host: reviews
            subset: v1
          weight: %WEIGHT1%
        - destination:
            host: reviews
            subset: v2
          weight: 20
)";

std::string reviews(const std::string& weight1) {
  std::string text = kReviews;
  text.replace(text.find("%WEIGHT1%"), 9, weight1);
  return text;
}

TEST(ConfigSetTest, ValidVirtualServiceLoads) {
  ConfigSet set = parseDocuments(reviews("80"), "bookinfo/reviews.yaml");
  ASSERT_TRUE(set.errors.empty()) << errorsOf(set);
  ASSERT_EQ(set.virtual_services.size(), 1u);
  EXPECT_EQ(set.virtual_services[0].source.toString(), "bookinfo/reviews.yaml:1:1");
  EXPECT_EQ(set.virtual_services[0].spec.http[0].route[0].weight, 80);
}

TEST(ConfigSetTest, WrongTypeNamesFileLineColumnAndPath) {
  EXPECT_EQ(rejection(reviews("ten")),
            "bookinfo/reviews.yaml:14:19: spec.http[0].route[0].weight: "
            "expected an integer, got \"ten\"");
  // A quoted number is a string, as in Kubernetes' strict decoding.
  EXPECT_EQ(rejection(reviews("\"80\"")),
            "bookinfo/reviews.yaml:14:19: spec.http[0].route[0].weight: "
            "expected an integer, got \"80\"");
  EXPECT_EQ(rejection(reviews("[80]")),
            "bookinfo/reviews.yaml:14:19: spec.http[0].route[0].weight: "
            "expected an integer, got a list");
}

TEST(ConfigSetTest, WeightsMustBeInRangeAndAddUpTo100) {
  EXPECT_EQ(rejection(reviews("70")),
            "bookinfo/reviews.yaml:11:9: spec.http[0].route: "
            "weights of the destinations must add up to 100, got 90");
  EXPECT_EQ(rejection(reviews("120")),
            "bookinfo/reviews.yaml:14:19: spec.http[0].route[0].weight: "
            "weight must be in [0, 100], got 120");
}

TEST(ConfigSetTest, UnknownFieldIsAnError) {
  const std::string yaml = R"(apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simpel: ROUND_ROBIN
)";
  const std::string msg = rejection(yaml, "dr.yaml");
  EXPECT_EQ(msg, "dr.yaml:9:7: spec.trafficPolicy.loadBalancer.simpel: unknown field \"simpel\"");
  ConfigSet set = parseDocuments(yaml, "dr.yaml");
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_EQ(set.errors[0].kind, "DestinationRule");
  EXPECT_EQ(set.errors[0].namespace_name, "default");
  EXPECT_EQ(set.errors[0].name, "reviews");
  EXPECT_EQ(set.errors[0].source.toString(), "dr.yaml:1:1");
  EXPECT_EQ(set.errors[0].toString(), msg + " (DestinationRule default/reviews)");
}

TEST(ConfigSetTest, UnknownEnumValueListsTheAllowedOnes) {
  const std::string msg = rejection(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
spec:
  mtls:
    mode: STRICTEST
)");
  EXPECT_EQ(msg,
            "bookinfo/reviews.yaml:7:11: spec.mtls.mode: unknown value \"STRICTEST\" "
            "(expected one of UNSET, DISABLE, PERMISSIVE, STRICT)");
}

TEST(ConfigSetTest, BadDuration) {
  const std::string msg = rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
    - route:
        - destination:
            host: reviews
      timeout: 10 seconds
)");
  EXPECT_EQ(msg,
            "bookinfo/reviews.yaml:11:16: spec.http[0].timeout: invalid duration "
            "\"10 seconds\": unknown unit \" seconds\"");
  EXPECT_NE(rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews}}]
      retries: {attempts: 2, perTryTimeout: 5}
)")
                .find("8:45: spec.http[0].retries.perTryTimeout: invalid duration \"5\": "
                      "missing unit"),
            std::string::npos);
}

TEST(ConfigSetTest, UnknownKind) {
  EXPECT_EQ(rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualServise
metadata:
  name: reviews
spec: {}
)"),
            "bookinfo/reviews.yaml:2:7: kind: unknown kind \"VirtualServise\" for apiVersion "
            "networking.istio.io/v1");
  // A Kubernetes kind the mesh does not read.
  EXPECT_EQ(rejection("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n"),
            "bookinfo/reviews.yaml:2:7: kind: unknown kind \"Pod\" for apiVersion v1");
  // A kind under the wrong group.
  EXPECT_EQ(rejection("apiVersion: security.istio.io/v1\nkind: VirtualService\n"
                      "metadata:\n  name: x\n"),
            "bookinfo/reviews.yaml:2:7: kind: unknown kind \"VirtualService\" for apiVersion "
            "security.istio.io/v1");
}

TEST(ConfigSetTest, BadApiVersion) {
  EXPECT_EQ(rejection("apiVersion: networking.istio.io/v2\nkind: VirtualService\n"
                      "metadata:\n  name: x\n"),
            "bookinfo/reviews.yaml:1:13: apiVersion: unsupported apiVersion "
            "\"networking.istio.io/v2\" (served versions: v1, v1beta1, v1alpha3)");
  EXPECT_EQ(rejection("apiVersion: telemetry.istio.io/v1beta1\nkind: Telemetry\n"
                      "metadata:\n  name: x\n"),
            "bookinfo/reviews.yaml:1:13: apiVersion: unsupported apiVersion "
            "\"telemetry.istio.io/v1beta1\" (served versions: v1, v1alpha1)");
  EXPECT_NE(rejection("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n")
                .find("1:13: apiVersion: unsupported apiVersion \"apps/v1\""),
            std::string::npos);
  EXPECT_EQ(rejection("kind: Gateway\nmetadata:\n  name: x\n"),
            "bookinfo/reviews.yaml:1:1: apiVersion: required");
}

TEST(ConfigSetTest, InvalidYaml) {
  const std::string msg = rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: [reviews
)");
  EXPECT_NE(msg.find("bookinfo/reviews.yaml:5:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
}

TEST(ConfigSetTest, OneBadDocumentDoesNotStopTheOthers) {
  const std::string yaml = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
    - name: v1
      labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
    - route:
        - destination: {host: reviews, subset: v1}
          weight: 60
        - destination: {host: reviews, subset: v2}
          weight: 60
---
this: is: not: yaml
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: bookinfo
  labels: {app: reviews}
spec:
  selector:
    app: reviews
  ports:
    - name: http
      port: 9080
      targetPort: 9080
      appProtocol: http
    - name: grpc-admin
      port: 9090
      targetPort: admin
      protocol: TCP
  clusterIP: 10.0.0.12
---
# only a comment
)";
  ConfigSet set = parseDocuments(yaml, "mixed.yaml");
  EXPECT_EQ(set.destination_rules.size(), 1u);
  EXPECT_EQ(set.virtual_services.size(), 0u);
  ASSERT_EQ(set.services.size(), 1u);
  ASSERT_EQ(set.errors.size(), 2u) << errorsOf(set);
  EXPECT_EQ(set.errors[0].error.message(),
            "mixed.yaml:19:9: spec.http[0].route: weights of the destinations must add up to "
            "100, got 120");
  EXPECT_EQ(set.errors[0].kind, "VirtualService");
  EXPECT_EQ(set.errors[0].source.line, 11);
  EXPECT_NE(set.errors[1].error.message().find("mixed.yaml:24:"), std::string::npos)
      << set.errors[1].error.message();

  const Resource<KubernetesService>& svc = set.services[0];
  EXPECT_EQ(svc.source.line, 26);
  EXPECT_EQ(svc.metadata.namespace_name, "bookinfo");
  EXPECT_EQ(svc.spec.selector.at("app"), "reviews");
  EXPECT_EQ(svc.spec.cluster_ip, "10.0.0.12");
  ASSERT_EQ(svc.spec.ports.size(), 2u);
  EXPECT_EQ(svc.spec.ports[0].name, "http");
  EXPECT_EQ(svc.spec.ports[0].port, 9080);
  EXPECT_EQ(svc.spec.ports[0].target_port.number, 9080);
  EXPECT_EQ(svc.spec.ports[0].protocol, "TCP");
  EXPECT_EQ(svc.spec.ports[0].app_protocol, "http");
  EXPECT_EQ(svc.spec.ports[1].target_port.name, "admin");
}

TEST(ConfigSetTest, SemanticChecks) {
  // Subset names are unique.
  EXPECT_EQ(rejection(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
    - name: v1
    - name: v1
)"),
            "bookinfo/reviews.yaml:8:13: spec.subsets[1].name: duplicate subset name \"v1\"");
  // DestinationRule host is required.
  EXPECT_EQ(rejection("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                      "metadata: {name: reviews}\nspec:\n  subsets: []\n"),
            "bookinfo/reviews.yaml:5:3: spec.host: required");
  // StringMatch is a oneof.
  EXPECT_EQ(rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - match:
        - uri: {exact: /a, prefix: /b}
      route: [{destination: {host: reviews}}]
)"),
            "bookinfo/reviews.yaml:8:28: spec.http[0].match[0].uri: only one of exact, prefix, "
            "regex may be set");
  // An HTTP route needs exactly one action.
  EXPECT_EQ(rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - timeout: 1s
)"),
            "bookinfo/reviews.yaml:7:7: spec.http[0]: one of route, redirect, directResponse, "
            "delegate must be set");
  // Abort needs one error type; hosts must not be empty strings.
  EXPECT_NE(rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews}}]
      fault: {abort: {percentage: {value: 5}}}
)")
                .find("spec.http[0].fault.abort: one of httpStatus, grpcStatus, http2Error must "
                      "be set"),
            std::string::npos);
  EXPECT_NE(rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [""]
  tcp: [{route: [{destination: {host: reviews}}]}]
)")
                .find("5:11: spec.hosts[0]: host must not be empty"),
            std::string::npos);
  // Percentages are within [0, 100].
  EXPECT_NE(rejection(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews}}]
      mirror: {host: shadow}
      mirrorPercentage: {value: 150}
)")
                .find("spec.http[0].mirrorPercentage.value: percentage must be in [0, 100]"),
            std::string::npos);
  // CUSTOM needs a provider.
  EXPECT_NE(rejection("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                      "metadata: {name: ext}\nspec:\n  action: CUSTOM\n")
                .find("spec.provider: action CUSTOM requires a provider"),
            std::string::npos);
  // metadata.name is required.
  EXPECT_EQ(rejection("apiVersion: v1\nkind: Namespace\nmetadata:\n  labels: {a: b}\n"),
            "bookinfo/reviews.yaml:4:3: metadata.name: required");
  // A bare number is not a string (labels are strings in Kubernetes).
  EXPECT_EQ(rejection("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"
                      "  labels: {version: 1}\n"),
            "bookinfo/reviews.yaml:5:21: metadata.labels.version: expected a string, got 1");
}

TEST(ConfigSetTest, FullerVirtualServiceFields) {
  ConfigSet set = parseDocuments(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo, annotations: {team: a}, resourceVersion: "7"}
spec:
  hosts: [ratings]
  exportTo: ["."]
  http:
    - name: api
      match:
        - uri: {regex: "/v[0-9]+/.*"}
          method: {exact: GET}
          queryParams: {debug: {exact: "1"}}
          withoutHeaders: {x-skip: {}}
          sourceLabels: {app: productpage}
          sourceNamespace: bookinfo
          ignoreUriCase: true
          port: 9080
      rewrite: {uri: /, authority: ratings.internal}
      route:
        - destination: {host: ratings, subset: v1, port: {number: 9080}}
          headers:
            request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
      mirrors:
        - destination: {host: ratings-shadow}
          percentage: {value: 12.5}
      corsPolicy:
        allowOrigins: [{exact: "https://a.example"}]
        allowMethods: [GET, POST]
        maxAge: 24h
        allowCredentials: false
      headers:
        response: {remove: [server]}
    - redirect: {uri: /new, redirectCode: 308, derivePort: FROM_REQUEST_PORT}
    - directResponse: {status: 503, body: {string: "unavailable"}}
    - delegate: {name: ratings-delegate, namespace: team}
  tcp:
    - match: [{port: 3306}]
      route: [{destination: {host: mysql}}]
  tls:
    - match: [{sniHosts: [secure.example], port: 443}]
      route: [{destination: {host: secure}}]
)",
                                 "vs.yaml");
  ASSERT_TRUE(set.errors.empty()) << errorsOf(set);
  const Resource<VirtualService>& r = set.virtual_services[0];
  EXPECT_EQ(r.metadata.annotations.at("team"), "a");
  const VirtualService& vs = r.spec;
  EXPECT_EQ(vs.export_to, std::vector<std::string>{"."});
  ASSERT_EQ(vs.http.size(), 4u);
  const HTTPRoute& api = vs.http[0];
  EXPECT_EQ(api.name, "api");
  const HTTPMatchRequest& m = api.match[0];
  EXPECT_EQ(m.uri->kind, StringMatch::Kind::kRegex);
  EXPECT_EQ(m.method->value, "GET");
  EXPECT_EQ(m.query_params.at("debug").value, "1");
  EXPECT_EQ(m.without_headers.at("x-skip").kind, StringMatch::Kind::kNone);
  EXPECT_EQ(m.source_labels.at("app"), "productpage");
  EXPECT_TRUE(m.ignore_uri_case);
  EXPECT_EQ(m.port, 9080u);
  EXPECT_EQ(api.rewrite->authority, "ratings.internal");
  EXPECT_EQ(api.route[0].headers->request->set.at("x-a"), "1");
  EXPECT_EQ(api.route[0].headers->request->remove, std::vector<std::string>{"x-c"});
  EXPECT_EQ(api.mirrors[0].percentage, 12.5);
  EXPECT_EQ(api.cors_policy->allow_origins[0].value, "https://a.example");
  EXPECT_EQ(api.cors_policy->max_age, std::chrono::hours(24));
  EXPECT_EQ(api.cors_policy->allow_credentials, false);
  EXPECT_EQ(api.headers->response->remove, std::vector<std::string>{"server"});
  EXPECT_EQ(vs.http[1].redirect->redirect_code, 308u);
  EXPECT_EQ(vs.http[1].redirect->derive_port, RedirectPortSelection::kFromRequestPort);
  EXPECT_EQ(vs.http[2].direct_response->status, 503u);
  EXPECT_EQ(vs.http[2].direct_response->body->string, "unavailable");
  EXPECT_EQ(vs.http[3].delegate->namespace_name, "team");
  EXPECT_EQ(vs.tcp[0].match[0].port, 3306u);
  EXPECT_EQ(vs.tls[0].match[0].sni_hosts, std::vector<std::string>{"secure.example"});
}

TEST(ConfigSetTest, FullerDestinationRuleAndOtherKinds) {
  ConfigSet set = parseDocuments(R"(apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings.bookinfo.svc.cluster.local
  workloadSelector: {matchLabels: {app: productpage}}
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {name: user, ttl: 0s}
        ringHash: {minimumRingSize: 1024}
      localityLbSetting:
        enabled: true
        failover: [{from: us-east, to: us-west}]
      warmupDurationSecs: 60s
    connectionPool:
      tcp:
        tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}
        maxConnectionDuration: 1h
        idleTimeout: 30m
      http: {idleTimeout: 1.5s, useClientProtocol: true, maxConcurrentStreams: 100}
    outlierDetection:
      consecutiveLocalOriginFailures: 4
      splitExternalLocalOriginErrors: true
      minHealthPercent: 30
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/client.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem
      subjectAltNames: [ratings.example]
      sni: ratings.example
      insecureSkipVerify: false
    portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {simple: RANDOM}
        tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: bookinfo}
spec:
  address: 127.0.0.2
  ports: {http: 19080}
  labels: {app: ratings, version: v1}
  locality: us-east/zone-a
  weight: 3
  serviceAccount: ratings
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9080: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: bookinfo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: ingress}]
  jwtRules:
    - issuer: issuer.example
      audiences: [bookinfo]
      jwks: '{"keys": []}'
      fromHeaders: [{name: x-jwt, prefix: "Bearer "}]
      fromParams: [token]
      outputPayloadToHeader: x-jwt-payload
      forwardOriginalToken: true
      outputClaimToHeaders: [{header: x-sub, claim: sub}]
)",
                                 "more.yaml");
  ASSERT_TRUE(set.errors.empty()) << errorsOf(set);
  const TrafficPolicy& tp = *set.destination_rules[0].spec.traffic_policy;
  EXPECT_EQ(set.destination_rules[0].spec.workload_selector->match_labels.at("app"), "productpage");
  const ConsistentHashLB& ch = *tp.load_balancer->consistent_hash;
  EXPECT_EQ(ch.http_cookie->name, "user");
  EXPECT_EQ(ch.http_cookie->ttl, seconds(0));
  EXPECT_EQ(ch.ring_hash->minimum_ring_size, 1024u);
  EXPECT_EQ(tp.load_balancer->locality_lb_setting->enabled, true);
  EXPECT_EQ(tp.load_balancer->locality_lb_setting->failover[0].to, "us-west");
  EXPECT_EQ(tp.load_balancer->warmup_duration_secs, seconds(60));
  EXPECT_EQ(tp.connection_pool->tcp->tcp_keepalive->probes, 3u);
  EXPECT_EQ(tp.connection_pool->tcp->tcp_keepalive->interval, seconds(75));
  EXPECT_EQ(tp.connection_pool->tcp->max_connection_duration, std::chrono::hours(1));
  EXPECT_EQ(tp.connection_pool->tcp->idle_timeout, std::chrono::minutes(30));
  EXPECT_EQ(tp.connection_pool->http->idle_timeout, std::chrono::milliseconds(1500));
  EXPECT_TRUE(tp.connection_pool->http->use_client_protocol);
  EXPECT_EQ(tp.connection_pool->http->max_concurrent_streams, 100);
  EXPECT_EQ(tp.outlier_detection->consecutive_local_origin_failures, 4u);
  EXPECT_TRUE(tp.outlier_detection->split_external_local_origin_errors);
  EXPECT_EQ(tp.outlier_detection->min_health_percent, 30);
  EXPECT_EQ(tp.tls->mode, ClientTLSMode::kMutual);
  EXPECT_EQ(tp.tls->ca_certificates, "/etc/certs/ca.pem");
  EXPECT_EQ(tp.tls->sni, "ratings.example");
  EXPECT_EQ(tp.tls->insecure_skip_verify, false);
  ASSERT_EQ(tp.port_level_settings.size(), 1u);
  EXPECT_EQ(tp.port_level_settings[0].port->number, 9080u);
  EXPECT_EQ(tp.port_level_settings[0].load_balancer->simple, SimpleLB::kRandom);
  EXPECT_EQ(tp.port_level_settings[0].tls->mode, ClientTLSMode::kIstioMutual);

  const WorkloadEntry& we = set.workload_entries[0].spec;
  EXPECT_EQ(we.address, "127.0.0.2");
  EXPECT_EQ(we.ports.at("http"), 19080u);
  EXPECT_EQ(we.weight, 3u);
  EXPECT_EQ(we.service_account, "ratings");

  const PeerAuthentication& pa = set.peer_authentications[0].spec;
  EXPECT_EQ(pa.port_level_mtls.at(9080).mode, MutualTLSMode::kPermissive);

  const RequestAuthentication& ra = set.request_authentications[0].spec;
  EXPECT_EQ(ra.target_refs[0].kind, "Gateway");
  const JWTRule& rule = ra.jwt_rules[0];
  EXPECT_EQ(rule.jwks, "{\"keys\": []}");
  EXPECT_EQ(rule.from_headers[0].prefix, "Bearer ");
  EXPECT_EQ(rule.from_params, std::vector<std::string>{"token"});
  EXPECT_EQ(rule.output_payload_to_header, "x-jwt-payload");
  EXPECT_TRUE(rule.forward_original_token);
  EXPECT_EQ(rule.output_claim_to_headers[0].claim, "sub");

  // simple and consistentHash are a oneof.
  EXPECT_NE(rejection(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  trafficPolicy:
    loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}
)")
                .find("7:36: spec.trafficPolicy.loadBalancer: only one of simple, consistentHash"),
            std::string::npos);
}

TEST(ConfigSetTest, DuplicateNamesAreRejectedAfterTheFirst) {
  const std::string doc =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
      "metadata: {name: default, namespace: prod}\nspec: {mtls: {mode: STRICT}}\n";
  ConfigSet set = parseDocuments(doc + "---\n" + doc, "pa.yaml");
  ASSERT_EQ(set.peer_authentications.size(), 1u);
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_EQ(set.errors[0].error.message(),
            "pa.yaml:6:1: metadata.name: duplicate PeerAuthentication prod/default, first "
            "defined at pa.yaml:1:1");
}

TEST(ConfigSetTest, LoadDirectoryReadsYamlFilesRecursivelyInOrder) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("sheave-model-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "nested");
  auto write = [&](const std::filesystem::path& p, const std::string& text) {
    std::ofstream(dir / p) << text;
  };
  write("b.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n");
  write("nested/a.yml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n");
  write("nested/bad.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: c, extra: 1}\n");
  write("notes.txt", "not a manifest");
  Result<ConfigSet> set = loadDirectory(dir);
  ASSERT_TRUE(set.ok()) << set.error().message();
  ASSERT_EQ(set->namespaces.size(), 2u);
  EXPECT_EQ(set->namespaces[0].metadata.name, "b");  // "b.yaml" < "nested/..."
  EXPECT_EQ(set->namespaces[1].metadata.name, "a");
  EXPECT_EQ(set->namespaces[1].source.file, (dir / "nested/a.yml").string());
  ASSERT_EQ(set->errors.size(), 1u);
  EXPECT_EQ(set->errors[0].error.message(),
            (dir / "nested/bad.yaml").string() + ":3:21: metadata.extra: unknown field \"extra\"");
  std::filesystem::remove_all(dir);

  EXPECT_FALSE(loadDirectory(dir).ok());
  EXPECT_FALSE(loadFile(dir / "missing.yaml").ok());
}

}  // namespace
}  // namespace sheave::control

namespace sheave::control {
namespace {

// ServiceEntry and Sidecar select workloads with `labels` (networking's
// WorkloadSelector); the security and DestinationRule selectors say
// `matchLabels`.
TEST(ConfigSetTest, NetworkingWorkloadSelectorUsesLabels) {
  ConfigSet set = parseDocuments(R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: vms
spec:
  hosts: [vm.example.internal]
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  workloadSelector:
    labels:
      app: vm
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
spec:
  workloadSelector:
    labels:
      app: ratings
  egress:
  - hosts: ["./*"]
)",
                                 "se.yaml");
  ASSERT_TRUE(set.errors.empty()) << errorsOf(set);
  ASSERT_EQ(set.service_entries.size(), 1u);
  ASSERT_TRUE(set.service_entries[0].spec.workload_selector.has_value());
  EXPECT_EQ(set.service_entries[0].spec.workload_selector->match_labels.at("app"), "vm");
  ASSERT_EQ(set.sidecars.size(), 1u);
  EXPECT_EQ(set.sidecars[0].spec.workload_selector->match_labels.at("app"), "ratings");
  // matchLabels is not a field of this selector.
  ConfigSet bad = parseDocuments(R"(apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
spec:
  workloadSelector:
    matchLabels:
      app: ratings
)",
                                 "sc.yaml");
  ASSERT_EQ(bad.errors.size(), 1u);
}

}  // namespace
}  // namespace sheave::control

namespace sheave::control {
namespace {

TEST(ConfigSetTest, LocalWorkloadLoadsWithDefaults) {
  ConfigSet set = parseDocuments(R"(apiVersion: sheave.io/v1alpha1
kind: LocalWorkload
metadata:
  name: reviews-v1
spec:
  command: [sheave-demo-app, --name, reviews]
  env: {DEMO_VERSION: v1}
  serviceAccount: bookinfo-reviews
  labels: {app: reviews, version: v1}
  ports: {http: 9080}
)",
                                 "local.yaml");
  ASSERT_EQ(set.local_workloads.size(), 1u) << errorsOf(set);
  const LocalWorkload& w = set.local_workloads[0].spec;
  EXPECT_EQ(set.local_workloads[0].metadata.namespace_name, "default");
  EXPECT_EQ(w.command.size(), 3u);
  EXPECT_EQ(w.env.at("DEMO_VERSION"), "v1");
  EXPECT_EQ(w.replicas, 1u);
  EXPECT_TRUE(w.hold_application_until_proxy_starts);
  EXPECT_EQ(w.ports.at("http"), 9080u);
}

TEST(ConfigSetTest, LocalWorkloadNeedsACommandAndSanePortsAndReplicas) {
  const std::string head =
      "apiVersion: sheave.io/v1alpha1\nkind: LocalWorkload\nmetadata:\n  name: w\nspec:\n";
  EXPECT_NE(rejection(head + "  replicas: 1\n").find("spec.command: required"), std::string::npos);
  EXPECT_NE(rejection(head + "  command: [x]\n  ports: {http: 70000}\n").find("spec.ports.http"),
            std::string::npos);
  EXPECT_NE(rejection(head + "  command: [x]\n  replicas: 65\n").find("spec.replicas"),
            std::string::npos);
  EXPECT_NE(rejection(head + "  command: [x]\n  image: nginx\n").find("spec.image"),
            std::string::npos);
  EXPECT_NE(rejection("apiVersion: sheave.io/v1\nkind: LocalWorkload\nmetadata:\n  name: w\n"
                      "spec:\n  command: [x]\n")
                .find("v1alpha1"),
            std::string::npos);
}

}  // namespace
}  // namespace sheave::control
