#include "proxy/server/builtin_extensions.h"

#include "proxy/filters/buffer/buffer_filter.h"
#include "proxy/filters/cors/cors_filter.h"
#include "proxy/filters/fault/fault_filter.h"
#include "proxy/filters/istio_stats/istio_stats_filter.h"
#include "proxy/filters/jwt_authn/jwt_authn_filter.h"
#include "proxy/filters/local_ratelimit/local_ratelimit_filter.h"
#include "proxy/filters/peer_metadata/peer_metadata_filter.h"
#include "proxy/filters/rbac/rbac_filter.h"
#include "proxy/filters/router/config.h"

namespace sheave::server {

void registerBuiltinHttpFilters(http::FilterRegistry& registry) {
  buffer::registerBufferFilter(registry);
  cors::registerCorsFilter(registry);
  fault::registerFaultFilter(registry);
  istio_stats::registerIstioStatsFilter(registry);
  jwt_authn::registerJwtAuthnFilter(registry);
  local_ratelimit::registerLocalRateLimitFilter(registry);
  peer_metadata::registerPeerMetadataFilter(registry);
  rbac::registerRbacFilter(registry);
  router::registerRouterFilter(registry);
}

}  // namespace sheave::server
