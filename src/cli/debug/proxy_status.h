#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sheave::cli {

// One proxy connected to sheave-control, as `sheave proxy-status` lists it.
struct ProxySyncStatus {
  std::string name;     // "productpage-v1-0.default" (the node id's third part)
  std::string node_id;  // "sidecar~198.18.0.10~productpage-v1-0.default~default.svc.cluster.local"
  // Per xDS type: SYNCED (the last version sent was ACKed), NOT SENT, STALE (sent, not yet
  // ACKed) or NACKED (the proxy rejected it).
  std::string cds, lds, eds, rds, sds;
  std::vector<std::string> nacks;  // "LDS: <the proxy's error>"
};

// From sheave-control's /debug/syncz JSON; sorted by name.
Result<std::vector<ProxySyncStatus>> parseSyncz(std::string_view json_text);
// istioctl's table: NAME CDS LDS EDS RDS SDS ISTIOD, then the NACK errors.
std::string formatProxyStatus(const std::vector<ProxySyncStatus>& proxies,
                              std::string_view control_plane);

// What differs between what sheave-control would send a proxy (its
// /debug/config_dump?proxyID=) and what the proxy runs (its admin /config_dump):
// per type, resources only on one side and resources whose content differs.
// Lines such as "Clusters Match" or "Listeners Don't Match: ...".
Result<std::vector<std::string>> diffConfigDumps(std::string_view control_dump,
                                                 std::string_view proxy_dump);

}  // namespace sheave::cli
