#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace sheave::cli {

// What a sidecar or gateway of the local mesh needs to find the control plane:
// the pieces of Istio's bootstrap that pilot-agent would write.
struct BootstrapSpec {
  std::string node_id;
  std::string cluster;  // node.cluster: "<workload>.<namespace>"
  std::string namespace_name;
  std::string workload_name;
  std::string service_account;
  std::map<std::string, std::string> labels;
  std::string admin_address = "127.0.0.1";
  uint16_t admin_port = 15000;
  std::string xds_address;  // sheave-control's TLS xDS port, e.g. 198.18.0.1
  uint16_t xds_port = 15012;
  std::string root_cert_path;  // the mesh's trust bundle, to check sheave-control
};

// An Envoy v3 bootstrap (JSON): ADS over TLS to xds-grpc (sheave-control, SNI
// istiod.<ns>.svc), LDS/CDS over ADS, node metadata with Istio's keys
// (NAMESPACE, LABELS, WORKLOAD_NAME, SERVICE_ACCOUNT, CLUSTER_ID, MESH_ID).
std::string proxyBootstrapJson(const BootstrapSpec& spec);

}  // namespace sheave::cli
