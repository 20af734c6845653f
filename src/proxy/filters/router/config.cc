#include "proxy/filters/router/config.h"

#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "proxy/config/proto_json.h"
#include "proxy/filters/router/router.h"

namespace sheave::router {

void registerRouterFilter(http::FilterRegistry& registry) {
  registry.add(
      "envoy.extensions.filters.http.router.v3.Router",
      [](const google::protobuf::Any& any,
         http::FilterFactoryContext&) -> Result<http::FilterFactoryCb> {
        auto proto =
            config::unpackTypedConfig<envoy::extensions::filters::http::router::v3::Router>(
                any, "typed_config");
        if (!proto.ok()) return std::move(proto).error();
        auto config = std::make_shared<RouterConfig>();
        config->suppress_envoy_headers = proto->suppress_envoy_headers();
        return http::FilterFactoryCb([config](http::FilterChainBuilder& builder) {
          // Streams are created on workers; each has its own cluster view.
          builder.addDecoderFilter(
              std::make_unique<Router>(config, *upstream::ThreadLocalClusterManager::current()));
        });
      });
}

}  // namespace sheave::router
