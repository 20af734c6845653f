#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/random.h"
#include "match/header_map.h"
#include "match/route_table.h"
#include "proxy/accesslog/stream_info.h"
#include "proxy/network/buffer.h"
#include "proxy/network/event_loop.h"

namespace sheave::network {
class Connection;
}

namespace sheave::http {

// The shape follows Envoy's HTTP filter API so filters port naturally: a
// filter sees the request's headers, data and trailers in order and either
// lets them continue or stops iteration until it calls continueDecoding().
enum class FilterHeadersStatus { kContinue, kStopIteration };
enum class FilterDataStatus { kContinue, kStopIterationAndBuffer, kStopIterationNoBuffer };
enum class FilterTrailersStatus { kContinue, kStopIteration };

// Told when the downstream connection's write buffer crosses its watermarks,
// so the router can stop reading from the upstream (flow control).
class DownstreamWatermarkCallbacks {
 public:
  virtual ~DownstreamWatermarkCallbacks() = default;
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

// What the connection manager offers each decoder filter of one stream.
class StreamDecoderFilterCallbacks {
 public:
  virtual ~StreamDecoderFilterCallbacks() = default;

  virtual network::EventLoop& eventLoop() = 0;
  virtual RandomGenerator& random() = 0;
  virtual const network::Connection& connection() const = 0;
  virtual StreamInfo& streamInfo() = 0;
  virtual uint64_t streamId() const = 0;
  // The route chosen for the request headers (computed once, cached).
  virtual const RouteMatchResult& route() = 0;

  // Resumes a filter chain stopped by this filter.
  virtual void continueDecoding() = 0;

  // The response, toward the client. The connection manager adds what
  // every response gets (date, server, framing) and runs the access log.
  virtual void encode1xxHeaders(HeaderMap&& headers) = 0;
  virtual void encodeHeaders(HeaderMap&& headers, bool end_stream) = 0;
  virtual void encodeData(network::Buffer& data, bool end_stream) = 0;
  virtual void encodeTrailers(HeaderMap&& trailers) = 0;
  // An Envoy-style local reply: status, a short body, the response code
  // details for the access log (e.g. "route_not_found").
  virtual void sendLocalReply(int status, std::string_view body, std::string_view details) = 0;
  // Ends the stream abruptly (the client sees a reset / closed connection).
  virtual void resetStream() = 0;
  virtual bool responseStarted() const = 0;

  // Flow control: an upstream that cannot keep up stops the downstream
  // reads, and a downstream that cannot keep up stops the upstream reads.
  virtual void onDecoderFilterAboveWriteBufferHighWatermark() = 0;
  virtual void onDecoderFilterBelowWriteBufferLowWatermark() = 0;
  virtual void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) = 0;
  virtual void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) = 0;
  // The request body received so far when a filter buffered it
  // (kStopIterationAndBuffer), or nullptr.
  virtual const network::Buffer* decodingBuffer() const = 0;
  // Largest body a filter may buffer (per_connection_buffer_limit_bytes,
  // unless a filter such as the buffer filter raised it for this stream).
  virtual uint32_t bufferLimit() const = 0;
  virtual void setDecoderBufferLimit(uint32_t limit) = 0;
};

class StreamDecoderFilter {
 public:
  virtual ~StreamDecoderFilter() = default;
  virtual void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& callbacks) = 0;
  virtual FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus decodeData(network::Buffer& data, bool end_stream) = 0;
  virtual FilterTrailersStatus decodeTrailers(HeaderMap& trailers) = 0;
  // The stream is going away; release upstream resources. Called once.
  virtual void onDestroy() {}
};

using StreamDecoderFilterPtr = std::unique_ptr<StreamDecoderFilter>;

// The body and trailers half of a filter that decides on headers alone: they
// pass through (Envoy's PassThroughDecoderFilter). `Base` is the filter
// interface: StreamDecoderFilter, or StreamFilter for one that also sees the
// response headers.
template <typename Base>
class PassThroughDecoding : public Base {
 public:
  void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  FilterDataStatus decodeData(network::Buffer&, bool) override {
    return FilterDataStatus::kContinue;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap&) override {
    return FilterTrailersStatus::kContinue;
  }

 protected:
  StreamDecoderFilterCallbacks* callbacks_ = nullptr;
};

// The response side of a filter: sees the response headers on their way to
// the client, filters in reverse chain order (as Envoy runs encoder filters),
// before the connection manager adds date, server and framing. Local replies
// pass through it too. Headers may be changed (only kContinue so far); the
// body is observed as it streams (what filters that decorate or count
// responses need: CORS, rate limit headers, Istio's gRPC message counts).
class StreamEncoderFilter {
 public:
  virtual ~StreamEncoderFilter() = default;
  virtual FilterHeadersStatus encodeHeaders(HeaderMap& headers, bool end_stream) = 0;
  // Each piece of the response body, before it is framed for the client.
  virtual void encodeData(const network::Buffer& /*data*/, bool /*end_stream*/) {}
};

// A filter on both paths, owned once by the stream.
class StreamFilter : public StreamDecoderFilter, public StreamEncoderFilter {};
using StreamFilterPtr = std::unique_ptr<StreamFilter>;

// Subclasses implement decodeHeaders (and, for the stream filter, encodeHeaders).
using PassThroughDecoderFilter = PassThroughDecoding<StreamDecoderFilter>;
using PassThroughStreamFilter = PassThroughDecoding<StreamFilter>;

// Adds the filters of one HTTP filter chain entry to a new stream.
class FilterChainBuilder {
 public:
  virtual ~FilterChainBuilder() = default;
  virtual void addDecoderFilter(StreamDecoderFilterPtr filter) = 0;
  virtual void addStreamFilter(StreamFilterPtr filter) = 0;
};

// Built once per filter config at load time (parsing the proto once);
// called per stream to create the cheap per-stream filter.
using FilterFactoryCb = std::function<void(FilterChainBuilder&)>;

}  // namespace sheave::http
