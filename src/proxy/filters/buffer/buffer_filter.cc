#include "proxy/filters/buffer/buffer_filter.h"

#include <charconv>

#include "envoy/extensions/filters/http/buffer/v3/buffer.pb.h"
#include "proxy/config/proto_json.h"

namespace sheave::buffer {

http::FilterHeadersStatus BufferFilter::decodeHeaders(HeaderMap& headers, bool end_stream) {
  if (end_stream) return http::FilterHeadersStatus::kContinue;
  headers_ = &headers;
  if (const std::string* cl = headers.get("content-length")) {
    uint64_t length = 0;
    auto [p, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), length);
    if (ec == std::errc() && length > config_->max_request_bytes) {
      // No need to read a body we already know is too large.
      tooLarge();
      return http::FilterHeadersStatus::kStopIteration;
    }
  }
  callbacks_->setDecoderBufferLimit(config_->max_request_bytes);
  return http::FilterHeadersStatus::kStopIteration;
}

http::FilterDataStatus BufferFilter::decodeData(network::Buffer& data, bool end_stream) {
  received_ += data.length();
  if (received_ > config_->max_request_bytes) {
    tooLarge();
    return http::FilterDataStatus::kStopIterationNoBuffer;
  }
  if (!end_stream) return http::FilterDataStatus::kStopIterationAndBuffer;
  // The whole body is here: say how long it is, as Envoy's buffer filter does.
  if (headers_ && !headers_->has("content-length")) {
    headers_->set("content-length", std::to_string(received_));
  }
  return http::FilterDataStatus::kContinue;
}

http::FilterTrailersStatus BufferFilter::decodeTrailers(HeaderMap&) {
  return http::FilterTrailersStatus::kContinue;
}

void BufferFilter::tooLarge() {
  callbacks_->sendLocalReply(413, "Payload Too Large", "request_payload_too_large");
}

void registerBufferFilter(http::FilterRegistry& registry) {
  registry.add(
      "envoy.extensions.filters.http.buffer.v3.Buffer",
      [](const google::protobuf::Any& any,
         http::FilterFactoryContext&) -> Result<http::FilterFactoryCb> {
        auto proto =
            config::unpackTypedConfig<envoy::extensions::filters::http::buffer::v3::Buffer>(
                any, "typed_config");
        if (!proto.ok()) return std::move(proto).error();
        if (!proto->has_max_request_bytes() || proto->max_request_bytes().value() == 0) {
          return invalidArgument("max_request_bytes: must be greater than zero");
        }
        auto config = std::make_shared<BufferConfig>();
        config->max_request_bytes = proto->max_request_bytes().value();
        return http::FilterFactoryCb([config](http::FilterChainBuilder& builder) {
          builder.addDecoderFilter(std::make_unique<BufferFilter>(config));
        });
      });
}

}  // namespace sheave::buffer
