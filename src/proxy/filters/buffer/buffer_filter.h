#pragma once

#include <cstdint>
#include <memory>

#include "proxy/http/filter.h"
#include "proxy/http/filter_registry.h"

namespace sheave::buffer {

struct BufferConfig {
  uint32_t max_request_bytes = 0;
};

// envoy.filters.http.buffer: holds the request until its body is complete
// (so the upstream sees it all at once), and answers 413 when the body is
// larger than max_request_bytes.
class BufferFilter : public http::StreamDecoderFilter {
 public:
  explicit BufferFilter(std::shared_ptr<const BufferConfig> config) : config_(std::move(config)) {}

  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  http::FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(network::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(HeaderMap& trailers) override;

 private:
  void tooLarge();

  std::shared_ptr<const BufferConfig> config_;
  http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  HeaderMap* headers_ = nullptr;
  uint64_t received_ = 0;
};

void registerBufferFilter(http::FilterRegistry& registry);

}  // namespace sheave::buffer
