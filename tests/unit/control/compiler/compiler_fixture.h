#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "control/compiler/mesh_config.h"
#include "control/compiler/proxy_context.h"
#include "control/compiler/push_context.h"
#include "control/model/config_set.h"
#include "control/registry/local_registry.h"
#include "envoy/config/core/v3/base.pb.h"

// Shared by the compiler core tests: the bookinfo sample as Services plus
// WorkloadEntries, and a way from YAML to a PushContext and a proxy.
namespace sheave::control::testing {

inline std::string workloadEntry(const std::string& name, const std::string& ns,
                                 const std::string& address, const std::string& labels,
                                 const std::string& sa, const std::string& extra = "") {
  return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  address: " + address + "\n  labels: " + labels +
         "\n  serviceAccount: " + sa + "\n" + extra + "---\n";
}

inline std::string kubernetesService(const std::string& name, const std::string& ns,
                                     const std::string& ports) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
         "\nspec:\n  selector:\n    app: " + name + "\n  ports:\n" + ports + "---\n";
}

// productpage, details, ratings, reviews v1/v2/v3 in `default`, port 9080 (http).
inline std::string bookinfo() {
  const std::string http = "    - name: http\n      port: 9080\n";
  return kubernetesService("productpage", "default", http) +
         kubernetesService("details", "default", http) +
         kubernetesService("ratings", "default", http) +
         kubernetesService("reviews", "default", http) +
         workloadEntry("productpage-v1", "default", "10.0.0.10", "{app: productpage, version: v1}",
                       "bookinfo-productpage") +
         workloadEntry("details-v1", "default", "10.0.0.40", "{app: details, version: v1}",
                       "bookinfo-details") +
         workloadEntry("ratings-v1", "default", "10.0.0.30", "{app: ratings, version: v1}",
                       "bookinfo-ratings") +
         workloadEntry("reviews-v1", "default", "10.0.0.21", "{app: reviews, version: v1}",
                       "bookinfo-reviews", "  locality: us-east1/us-east1-b\n") +
         workloadEntry("reviews-v2", "default", "10.0.0.22", "{app: reviews, version: v2}",
                       "bookinfo-reviews", "  locality: us-east1/us-east1-c\n  weight: 3\n") +
         workloadEntry("reviews-v3", "default", "10.0.0.23", "{app: reviews, version: v3}",
                       "bookinfo-reviews", "  locality: us-east1/us-east1-b\n");
}

// A parsed config, its registry and a push context over both.
struct Mesh {
  std::shared_ptr<const ConfigSet> config;
  std::shared_ptr<const RegistrySnapshot> registry;
  std::shared_ptr<const PushContext> push;
};

inline Mesh buildMesh(const std::string& yaml, MeshConfig mesh_config = {}) {
  auto config = std::make_shared<ConfigSet>(parseDocuments(yaml, "test.yaml"));
  for (const ResourceError& e : config->errors) ADD_FAILURE() << e.toString();
  Result<RegistrySnapshot> snapshot = buildRegistrySnapshot(*config, RegistryOptions{});
  EXPECT_TRUE(snapshot.ok());
  Mesh mesh;
  mesh.config = config;
  mesh.registry = std::make_shared<const RegistrySnapshot>(std::move(snapshot).value());
  for (const ResourceError& e : mesh.registry->errors()) ADD_FAILURE() << e.toString();
  mesh.push = PushContext::build(mesh.config, mesh.registry, std::move(mesh_config));
  return mesh;
}

inline envoy::config::core::v3::Node sidecarNode(const std::string& ip, const std::string& pod,
                                                 const std::string& ns) {
  envoy::config::core::v3::Node node;
  node.set_id("sidecar~" + ip + "~" + pod + "." + ns + "~" + ns + ".svc.cluster.local");
  return node;
}

// The proxy at ip in ns, attached to the registry's workload there.
inline ProxyContext proxyAt(const Mesh& mesh, const std::string& ip, const std::string& pod,
                            const std::string& ns = "default") {
  Result<ProxyContext> proxy = ProxyContext::fromNode(sidecarNode(ip, pod, ns), "cluster.local");
  EXPECT_TRUE(proxy.ok()) << proxy.error().message();
  ProxyContext out = std::move(proxy).value();
  out.attachWorkload(*mesh.registry, "cluster.local");
  return out;
}

}  // namespace sheave::control::testing
