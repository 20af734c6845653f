#include "proxy/server/builtin_extensions.h"

#include "proxy/filters/buffer/buffer_filter.h"
#include "proxy/filters/router/config.h"

namespace sheave::server {

void registerBuiltinHttpFilters(http::FilterRegistry& registry) {
  buffer::registerBufferFilter(registry);
  router::registerRouterFilter(registry);
}

}  // namespace sheave::server
