#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/model/duration.h"
#include "control/model/virtual_service.h"
#include "control/model/workload_selector.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// networking.istio.io DestinationRule, field for field with Istio's API.

struct LocalityLoadBalancerSetting {
  struct Distribute {
    std::string from;
    std::map<std::string, uint32_t> to;  // locality -> weight
  };
  struct Failover {
    std::string from;
    std::string to;
  };
  std::vector<Distribute> distribute;
  std::vector<Failover> failover;
  std::vector<std::string> failover_priority;
  std::optional<bool> enabled;
};

enum class SimpleLB { kUnspecified, kLeastConn, kRandom, kPassthrough, kRoundRobin, kLeastRequest };
template <>
struct EnumTraits<SimpleLB> {
  static constexpr std::array<std::pair<std::string_view, SimpleLB>, 6> kNames{{
      {"UNSPECIFIED", SimpleLB::kUnspecified},
      {"LEAST_CONN", SimpleLB::kLeastConn},  // deprecated alias of LEAST_REQUEST
      {"RANDOM", SimpleLB::kRandom},
      {"PASSTHROUGH", SimpleLB::kPassthrough},
      {"ROUND_ROBIN", SimpleLB::kRoundRobin},
      {"LEAST_REQUEST", SimpleLB::kLeastRequest},
  }};
};

struct ConsistentHashLB {
  struct HTTPCookie {
    std::string name;
    std::string path;
    std::optional<Duration> ttl;
  };
  struct RingHash {
    uint64_t minimum_ring_size = 0;
  };
  struct MagLev {
    uint64_t table_size = 0;
  };
  // oneof hash_key
  std::string http_header_name;
  std::optional<HTTPCookie> http_cookie;
  bool use_source_ip = false;
  std::string http_query_parameter_name;
  // oneof hash_algorithm
  std::optional<RingHash> ring_hash;
  std::optional<MagLev> maglev;
  uint64_t minimum_ring_size = 0;  // deprecated; ringHash.minimumRingSize
};

struct LoadBalancerSettings {
  // oneof lb_policy
  std::optional<SimpleLB> simple;
  std::optional<ConsistentHashLB> consistent_hash;
  std::optional<LocalityLoadBalancerSetting> locality_lb_setting;
  std::optional<Duration> warmup_duration_secs;
};

enum class H2UpgradePolicy { kDefault, kDoNotUpgrade, kUpgrade };
template <>
struct EnumTraits<H2UpgradePolicy> {
  static constexpr std::array<std::pair<std::string_view, H2UpgradePolicy>, 3> kNames{{
      {"DEFAULT", H2UpgradePolicy::kDefault},
      {"DO_NOT_UPGRADE", H2UpgradePolicy::kDoNotUpgrade},
      {"UPGRADE", H2UpgradePolicy::kUpgrade},
  }};
};

struct ConnectionPoolSettings {
  struct TCPSettings {
    struct TcpKeepalive {
      uint32_t probes = 0;
      std::optional<Duration> time;
      std::optional<Duration> interval;
    };
    int32_t max_connections = 0;
    std::optional<Duration> connect_timeout;
    std::optional<TcpKeepalive> tcp_keepalive;
    std::optional<Duration> max_connection_duration;
    std::optional<Duration> idle_timeout;
  };
  struct HTTPSettings {
    int32_t http1_max_pending_requests = 0;
    int32_t http2_max_requests = 0;
    int32_t max_requests_per_connection = 0;
    int32_t max_retries = 0;
    std::optional<Duration> idle_timeout;
    H2UpgradePolicy h2_upgrade_policy = H2UpgradePolicy::kDefault;
    bool use_client_protocol = false;
    int32_t max_concurrent_streams = 0;
  };
  std::optional<TCPSettings> tcp;
  std::optional<HTTPSettings> http;
};

struct OutlierDetection {
  int32_t consecutive_errors = 0;  // deprecated
  bool split_external_local_origin_errors = false;
  std::optional<uint32_t> consecutive_local_origin_failures;
  std::optional<uint32_t> consecutive_gateway_errors;
  std::optional<uint32_t> consecutive_5xx_errors;
  std::optional<Duration> interval;
  std::optional<Duration> base_ejection_time;
  int32_t max_ejection_percent = 0;
  int32_t min_health_percent = 0;
};

enum class ClientTLSMode { kDisable, kSimple, kMutual, kIstioMutual };
template <>
struct EnumTraits<ClientTLSMode> {
  static constexpr std::array<std::pair<std::string_view, ClientTLSMode>, 4> kNames{{
      {"DISABLE", ClientTLSMode::kDisable},
      {"SIMPLE", ClientTLSMode::kSimple},
      {"MUTUAL", ClientTLSMode::kMutual},
      {"ISTIO_MUTUAL", ClientTLSMode::kIstioMutual},
  }};
};

struct ClientTLSSettings {
  ClientTLSMode mode = ClientTLSMode::kDisable;
  std::string client_certificate;
  std::string private_key;
  std::string ca_certificates;
  std::string credential_name;
  std::vector<std::string> subject_alt_names;
  std::string sni;
  std::optional<bool> insecure_skip_verify;
  std::string ca_crl;
};

struct TunnelSettings {
  std::string protocol;  // CONNECT (default) or POST
  std::string target_host;
  uint32_t target_port = 0;
};

enum class ProxyProtocolVersion { kV1, kV2 };
template <>
struct EnumTraits<ProxyProtocolVersion> {
  static constexpr std::array<std::pair<std::string_view, ProxyProtocolVersion>, 2> kNames{{
      {"V1", ProxyProtocolVersion::kV1},
      {"V2", ProxyProtocolVersion::kV2},
  }};
};

struct ProxyProtocol {
  ProxyProtocolVersion version = ProxyProtocolVersion::kV1;
};

struct PortTrafficPolicy {
  std::optional<PortSelector> port;
  std::optional<LoadBalancerSettings> load_balancer;
  std::optional<ConnectionPoolSettings> connection_pool;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<ClientTLSSettings> tls;
};

struct TrafficPolicy {
  std::optional<LoadBalancerSettings> load_balancer;
  std::optional<ConnectionPoolSettings> connection_pool;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<ClientTLSSettings> tls;
  std::vector<PortTrafficPolicy> port_level_settings;
  std::optional<TunnelSettings> tunnel;
  std::optional<ProxyProtocol> proxy_protocol;
};

struct Subset {
  std::string name;
  std::map<std::string, std::string> labels;
  std::optional<TrafficPolicy> traffic_policy;
};

struct DestinationRule {
  std::string host;
  std::optional<TrafficPolicy> traffic_policy;
  std::vector<Subset> subsets;
  std::vector<std::string> export_to;
  std::optional<WorkloadSelector> workload_selector;
};

}  // namespace sheave::control
