#pragma once

#include "proxy/http/filter_registry.h"

namespace sheave::server {

// Every HTTP filter sheave-proxy ships, keyed by its Envoy type URL. A new
// filter is a folder under src/proxy/filters/ and one line here.
void registerBuiltinHttpFilters(http::FilterRegistry& registry);

}  // namespace sheave::server
