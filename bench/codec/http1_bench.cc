// HTTP/1.1 codec micro-benchmarks: parse a typical ~500-byte browser-like request, whole and
// split across reads, and a chunked response; encode response headers.

#include <benchmark/benchmark.h>

#include <string>

#include "proxy/http/http1/encoder.h"
#include "proxy/http/http1/parser.h"

namespace {

using namespace sheave::http1;

const std::string kRequest =
    "GET /api/v1/products/12345/reviews?page=2&sort=newest HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://shop.example.com/products/12345\r\n"
    "Cookie: session=7f9c2ba4e88f827d616045507605853e; theme=dark\r\n"
    "X-Request-Id: 4bf92f35-77b3-4da6-a3ce-929d0e0e4736\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

class NullCallbacks : public ParserCallbacks {
 public:
  void onHeaders(sheave::HeaderMap&& headers, const MessageInfo& info) override {
    benchmark::DoNotOptimize(headers);
  }
  void onBody(std::string_view data) override { benchmark::DoNotOptimize(data.data()); }
  void onMessageComplete(sheave::HeaderMap&& trailers) override {}
};

void BM_ParseRequest(benchmark::State& state) {
  NullCallbacks cb;
  Parser parser(Mode::kRequest, Limits{}, cb);
  for (auto _ : state) {
    ParseResult r = parser.parse(kRequest);
    if (!r.ok() || r.consumed != kRequest.size()) state.SkipWithError("parse failed");
    parser.resume();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRequest.size()));
}
BENCHMARK(BM_ParseRequest);

// The same request arriving in reads of state.range(0) bytes.
void BM_ParseRequestSplit(benchmark::State& state) {
  NullCallbacks cb;
  Parser parser(Mode::kRequest, Limits{}, cb);
  const size_t step = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    std::string_view rest = kRequest;
    while (!rest.empty()) {
      ParseResult r = parser.parse(rest.substr(0, step));
      rest.remove_prefix(r.consumed);
    }
    parser.resume();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRequest.size()));
}
BENCHMARK(BM_ParseRequestSplit)->Arg(1)->Arg(16)->Arg(128);

void BM_ParseChunkedResponse(benchmark::State& state) {
  std::string response =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
      "Server: upstream\r\n\r\n";
  for (int i = 0; i < 16; ++i) response += "400\r\n" + std::string(1024, 'x') + "\r\n";
  response += "0\r\n\r\n";
  NullCallbacks cb;
  Parser parser(Mode::kResponse, Limits{}, cb);
  for (auto _ : state) {
    ParseResult r = parser.parse(response);
    if (!r.ok() || r.consumed != response.size()) state.SkipWithError("parse failed");
    parser.resume();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * response.size()));
}
BENCHMARK(BM_ParseChunkedResponse);

void BM_EncodeResponseHeaders(benchmark::State& state) {
  sheave::HeaderMap headers;
  headers.add(":status", "200");
  headers.add("content-type", "application/json");
  headers.add("content-length", "1234");
  headers.add("date", "Mon, 01 Jan 2024 00:00:00 GMT");
  headers.add("server", "envoy");
  headers.add("x-envoy-upstream-service-time", "3");
  std::string out;
  for (auto _ : state) {
    out.clear();
    encodeResponseHeaders(headers, 1, false, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeResponseHeaders);

}  // namespace

BENCHMARK_MAIN();
