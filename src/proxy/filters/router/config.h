#pragma once

#include "proxy/http/filter_registry.h"

namespace sheave::router {

// envoy.filters.http.router, under
// type.googleapis.com/envoy.extensions.filters.http.router.v3.Router.
void registerRouterFilter(http::FilterRegistry& registry);

}  // namespace sheave::router
