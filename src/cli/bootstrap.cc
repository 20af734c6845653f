#include "cli/bootstrap.h"

#include <nlohmann/json.hpp>

namespace sheave::cli {

std::string proxyBootstrapJson(const BootstrapSpec& spec) {
  using nlohmann::json;
  json labels = json::object();
  for (const auto& [k, v] : spec.labels) labels[k] = v;
  json ads_source = {{"ads", json::object()}, {"resource_api_version", "V3"}};
  json bootstrap = {
      {"node",
       {{"id", spec.node_id},
        {"cluster", spec.cluster},
        {"metadata",
         {{"NAMESPACE", spec.namespace_name},
          {"NAME", spec.workload_name},
          {"WORKLOAD_NAME", spec.workload_name},
          {"SERVICE_ACCOUNT", spec.service_account},
          {"LABELS", labels},
          {"CLUSTER_ID", "Kubernetes"},
          {"MESH_ID", "cluster.local"}}}}},
      {"admin",
       {{"address",
         {{"socket_address",
           {{"address", spec.admin_address}, {"port_value", spec.admin_port}}}}}}},
      {"dynamic_resources",
       {{"ads_config",
         {{"api_type", "GRPC"},
          {"transport_api_version", "V3"},
          {"grpc_services", json::array({{{"envoy_grpc", {{"cluster_name", "xds-grpc"}}}}})}}},
        {"cds_config", ads_source},
        {"lds_config", ads_source}}},
      {"static_resources",
       {{"clusters",
         json::array(
             {{{"name", "xds-grpc"},
               {"type", "STATIC"},
               {"connect_timeout", "1s"},
               {"load_assignment",
                {{"cluster_name", "xds-grpc"},
                 {"endpoints",
                  json::array({{{"lb_endpoints",
                                 json::array({{{"endpoint",
                                                {{"address",
                                                  {{"socket_address",
                                                    {{"address", spec.xds_address},
                                                     {"port_value", spec.xds_port}}}}}}}}})}}})}}},
               {"transport_socket",
                {{"name", "envoy.transport_sockets.tls"},
                 {"typed_config",
                  {{"@type",
                    "type.googleapis.com/"
                    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"},
                   {"sni", "istiod.sheave-system.svc"},
                   {"common_tls_context",
                    {{"alpn_protocols", json::array({"h2"})},
                     {"tls_certificate_sds_secret_configs",
                      json::array(
                          {{{"name", "default"}, {"sds_config", {{"ads", json::object()}}}}})},
                     {"validation_context",
                      {{"trusted_ca", {{"filename", spec.root_cert_path}}}}}}}}}}}}})}}}};
  return bootstrap.dump(2) + "\n";
}

}  // namespace sheave::cli
