#pragma once

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/random.h"
#include "match/route_table.h"
#include "proxy/accesslog/stream_info.h"
#include "proxy/http/filter.h"
#include "proxy/network/event_loop.h"

namespace sheave::testing {

// What a filter under test did to its stream, recorded instead of sent.
class FakeFilterCallbacks : public http::StreamDecoderFilterCallbacks {
 public:
  explicit FakeFilterCallbacks(network::EventLoop& loop, uint64_t seed = 1)
      : loop_(loop), random_(seed) {}

  // The route a request matches, as the connection manager computes it.
  void routeWith(const RouteTable& table, const HeaderMap& headers) {
    route_ = table.route(headers, 0);
  }

  network::EventLoop& eventLoop() override { return loop_; }
  RandomGenerator& random() override { return random_; }
  const network::Connection& connection() const override { std::abort(); }
  StreamInfo& streamInfo() override { return info; }
  uint64_t streamId() const override { return 1; }
  const RouteMatchResult& route() override { return route_; }
  void continueDecoding() override { ++continued; }
  void encode1xxHeaders(HeaderMap&&) override {}
  void encodeHeaders(HeaderMap&& headers, bool end_stream) override {
    response = std::move(headers);
    response_end_stream = end_stream;
  }
  void encodeData(network::Buffer&, bool) override {}
  void encodeTrailers(HeaderMap&&) override {}
  void sendLocalReply(int status, std::string_view body, std::string_view details) override {
    local_reply_status = status;
    local_reply_body = std::string(body);
    info.response_code_details = std::string(details);
    HeaderMap h;
    h.add(":status", std::to_string(status));
    response = std::move(h);
  }
  void resetStream() override { ++resets; }
  bool responseStarted() const override { return response.has_value(); }
  void onDecoderFilterAboveWriteBufferHighWatermark() override {}
  void onDecoderFilterBelowWriteBufferLowWatermark() override {}
  void addDownstreamWatermarkCallbacks(http::DownstreamWatermarkCallbacks&) override {}
  void removeDownstreamWatermarkCallbacks(http::DownstreamWatermarkCallbacks&) override {}
  const network::Buffer* decodingBuffer() const override { return nullptr; }
  uint32_t bufferLimit() const override { return 1 << 20; }
  void setDecoderBufferLimit(uint32_t) override {}

  StreamInfo info;
  std::optional<HeaderMap> response;
  bool response_end_stream = false;
  std::optional<int> local_reply_status;
  std::string local_reply_body;
  int continued = 0;
  int resets = 0;

 private:
  network::EventLoop& loop_;
  RandomGenerator random_;
  RouteMatchResult route_{};
};

// Collects what a filter factory adds to a stream.
class CollectingChainBuilder : public http::FilterChainBuilder {
 public:
  void addDecoderFilter(http::StreamDecoderFilterPtr filter) override {
    decoders.push_back(std::move(filter));
  }
  void addStreamFilter(http::StreamFilterPtr filter) override {
    streams.push_back(std::move(filter));
  }
  std::vector<http::StreamDecoderFilterPtr> decoders;
  std::vector<http::StreamFilterPtr> streams;
};

}  // namespace sheave::testing
