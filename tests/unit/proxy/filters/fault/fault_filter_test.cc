#include "proxy/filters/fault/fault_filter.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <chrono>

#include "../fake_filter_callbacks.h"
#include "proxy/stats/store.h"

namespace sheave::fault {
namespace {

using HTTPFault = envoy::extensions::filters::http::fault::v3::HTTPFault;
using testing::CollectingChainBuilder;
using testing::FakeFilterCallbacks;

template <typename T>
T fromJson(const std::string& json) {
  T out;
  auto status = google::protobuf::util::JsonStringToMessage(json, &out);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return out;
}

HeaderMap request(std::string path = "/",
                  std::vector<std::pair<std::string, std::string>> extra = {}) {
  HeaderMap h;
  h.add(":method", "GET");
  h.add(":path", path);
  h.add(":authority", "example.com");
  h.add(":scheme", "http");
  for (auto& [k, v] : extra) h.add(k, v);
  return h;
}

// Routes "/fault" with a per-route fault, "/vh" inheriting the virtual
// host's, everything else to cluster "backend".
constexpr const char* kRoutes = R"({
  "name": "r",
  "virtualHosts": [{
    "name": "vh", "domains": ["*"],
    "routes": [
      {"match": {"prefix": "/fault"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.fault": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
         "abort": {"httpStatus": 418, "percentage": {"numerator": 100}}}}},
      {"match": {"prefix": "/off"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.fault": {
         "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": true}}},
      {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}
    ]
  }]
})";

class FaultFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registerFaultFilter(registry_);
    store_ = std::move(stats::Store::create()).value();
    scope_ = store_->createScope("http.test");
    auto table =
        RouteTable::create(fromJson<envoy::config::route::v3::RouteConfiguration>(kRoutes));
    ASSERT_TRUE(table.ok()) << table.error().message();
    table_ = std::move(table).value();
  }

  Result<http::FilterFactoryCb> factory(const std::string& json) {
    google::protobuf::Any any;
    any.PackFrom(fromJson<HTTPFault>(json));
    http::FilterFactoryContext context{*scope_, "test", *scope_};
    const auto* f = registry_.find("envoy.extensions.filters.http.fault.v3.HTTPFault");
    EXPECT_NE(f, nullptr);
    return (*f)(any, context);
  }

  std::unique_ptr<http::StreamDecoderFilter> makeFilter(const std::string& json) {
    auto cb = factory(json);
    EXPECT_TRUE(cb.ok()) << cb.error().message();
    CollectingChainBuilder builder;
    (*cb)(builder);
    EXPECT_EQ(builder.decoders.size(), 1u);
    return std::move(builder.decoders.front());
  }

  // Runs the filter's headers through with `callbacks`.
  http::FilterHeadersStatus decode(http::StreamDecoderFilter& filter, FakeFilterCallbacks& cb,
                                   HeaderMap& headers) {
    cb.routeWith(*table_, headers);
    filter.setDecoderFilterCallbacks(cb);
    return filter.decodeHeaders(headers, true);
  }

  // Runs the loop for `ms` milliseconds.
  void runFor(int ms) {
    auto timer = loop_.createTimer([this] { loop_.exit(); });
    timer->enable(std::chrono::milliseconds(ms));
    loop_.run();
  }

  uint64_t counter(const std::string& name) { return scope_->counter("fault." + name).value(); }
  uint64_t active() { return scope_->gauge("fault.active_faults").value(); }

  http::FilterRegistry registry_;
  std::unique_ptr<stats::Store> store_;
  std::shared_ptr<stats::Scope> scope_;
  std::shared_ptr<const RouteTable> table_;
  network::EventLoop loop_;
};

TEST_F(FaultFilterTest, AbortsEveryRequestAtHundredPercent) {
  auto filter = makeFilter(R"({"abort": {"httpStatus": 503, "percentage": {"numerator": 100}}})");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(cb.local_reply_status, 503);
  EXPECT_EQ(cb.local_reply_body, "fault filter abort");
  EXPECT_EQ(cb.info.response_code_details, "fault_filter_abort");
  EXPECT_TRUE(cb.info.response_flags.has(ResponseFlag::kFaultInjected));
  EXPECT_EQ(counter("aborts_injected"), 1u);
  EXPECT_EQ(active(), 1u);
  filter->onDestroy();
  EXPECT_EQ(active(), 0u);
}

TEST_F(FaultFilterTest, ZeroPercentNeverFires) {
  auto filter = makeFilter(
      R"({"abort": {"httpStatus": 503, "percentage": {"numerator": 0}},
          "delay": {"fixedDelay": "1s", "percentage": {"numerator": 0}}})");
  for (int i = 0; i < 50; ++i) {
    FakeFilterCallbacks cb(loop_, i);
    auto h = request();
    EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kContinue);
  }
  EXPECT_EQ(counter("aborts_injected"), 0u);
  EXPECT_EQ(counter("delays_injected"), 0u);
}

TEST_F(FaultFilterTest, OtherDenominators) {
  auto filter = makeFilter(
      R"({"abort": {"httpStatus": 500,
                    "percentage": {"numerator": 1000000, "denominator": "MILLION"}}})");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(cb.local_reply_status, 500);

  FaultPercentage p{50, 10000};
  int on = 0;
  for (uint64_t r = 0; r < 10000; ++r) on += p.enabled(r) ? 1 : 0;
  EXPECT_EQ(on, 50);
}

TEST_F(FaultFilterTest, GrpcAbortIsATrailersOnlyGrpcResponse) {
  auto filter = makeFilter(R"({"abort": {"grpcStatus": 14, "percentage": {"numerator": 100}}})");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
  ASSERT_TRUE(cb.response.has_value());
  EXPECT_FALSE(cb.local_reply_status.has_value());
  EXPECT_EQ(cb.response->status(), "200");
  EXPECT_EQ(*cb.response->get("content-type"), "application/grpc");
  EXPECT_EQ(*cb.response->get("grpc-status"), "14");
  EXPECT_TRUE(cb.response_end_stream);
  EXPECT_TRUE(cb.info.response_flags.has(ResponseFlag::kFaultInjected));
}

TEST_F(FaultFilterTest, FixedDelayHoldsTheRequestThenContinues) {
  auto filter =
      makeFilter(R"({"delay": {"fixedDelay": "0.030s", "percentage": {"numerator": 100}}})");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
  EXPECT_TRUE(cb.info.response_flags.has(ResponseFlag::kDelayInjected));
  EXPECT_EQ(counter("delays_injected"), 1u);
  EXPECT_EQ(active(), 1u);
  network::Buffer body;
  EXPECT_EQ(filter->decodeData(body, false), http::FilterDataStatus::kStopIterationAndBuffer);
  EXPECT_EQ(cb.continued, 0);
  runFor(150);
  EXPECT_EQ(cb.continued, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
  EXPECT_EQ(filter->decodeData(body, true), http::FilterDataStatus::kContinue);
  filter->onDestroy();
  EXPECT_EQ(active(), 0u);
}

TEST_F(FaultFilterTest, DelayThenAbortCountsOneActiveFault) {
  auto filter = makeFilter(
      R"({"delay": {"fixedDelay": "0.010s", "percentage": {"numerator": 100}},
          "abort": {"httpStatus": 502, "percentage": {"numerator": 100}},
          "maxActiveFaults": 1})");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
  EXPECT_FALSE(cb.local_reply_status.has_value());
  runFor(100);
  EXPECT_EQ(cb.local_reply_status, 502);
  EXPECT_EQ(cb.continued, 0);
  EXPECT_TRUE(cb.info.response_flags.has(ResponseFlag::kDelayInjected));
  EXPECT_TRUE(cb.info.response_flags.has(ResponseFlag::kFaultInjected));
  EXPECT_EQ(counter("faults_overflow"), 0u);
  filter->onDestroy();
  EXPECT_EQ(active(), 0u);
}

TEST_F(FaultFilterTest, ClientGoingAwayCancelsTheDelay) {
  auto filter =
      makeFilter(R"({"delay": {"fixedDelay": "0.020s", "percentage": {"numerator": 100}}})");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
  filter->onDestroy();
  EXPECT_EQ(active(), 0u);
  runFor(60);
  EXPECT_EQ(cb.continued, 0);
}

TEST_F(FaultFilterTest, HeaderControlledDelay) {
  auto filter = makeFilter(R"({"delay": {"headerDelay": {}, "percentage": {"numerator": 100}}})");
  {
    FakeFilterCallbacks cb(loop_);
    auto h = request("/", {{"x-envoy-fault-delay-request", "10"}});
    EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
    runFor(60);
    EXPECT_EQ(cb.continued, 1);
    filter->onDestroy();
  }
  auto plain = makeFilter(R"({"delay": {"headerDelay": {}, "percentage": {"numerator": 100}}})");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  EXPECT_EQ(decode(*plain, cb, h), http::FilterHeadersStatus::kContinue);
  auto zero = makeFilter(R"({"delay": {"headerDelay": {}, "percentage": {"numerator": 100}}})");
  FakeFilterCallbacks cb2(loop_);
  auto h2 = request("/", {{"x-envoy-fault-delay-request", "10"},
                          {"x-envoy-fault-delay-request-percentage", "0"}});
  EXPECT_EQ(decode(*zero, cb2, h2), http::FilterHeadersStatus::kContinue);
  EXPECT_EQ(counter("delays_injected"), 1u);
}

TEST_F(FaultFilterTest, HeaderControlledAbort) {
  const char* config = R"({"abort": {"headerAbort": {}, "percentage": {"numerator": 100}}})";
  {
    auto filter = makeFilter(config);
    FakeFilterCallbacks cb(loop_);
    auto h = request("/", {{"x-envoy-fault-abort-request", "429"}});
    EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
    EXPECT_EQ(cb.local_reply_status, 429);
  }
  for (const char* bad : {"abc", "700", "199", ""}) {
    auto filter = makeFilter(config);
    FakeFilterCallbacks cb(loop_);
    auto h = request("/", {{"x-envoy-fault-abort-request", bad}});
    EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kContinue) << bad;
  }
  {
    auto filter = makeFilter(config);
    FakeFilterCallbacks cb(loop_);
    auto h = request("/", {{"x-envoy-fault-abort-grpc-request", "4"}});
    EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kStopIteration);
    ASSERT_TRUE(cb.response.has_value());
    EXPECT_EQ(*cb.response->get("grpc-status"), "4");
  }
  {
    auto filter = makeFilter(config);
    FakeFilterCallbacks cb(loop_);
    auto h = request("/", {{"x-envoy-fault-abort-request", "503"},
                           {"x-envoy-fault-abort-request-percentage", "0"}});
    EXPECT_EQ(decode(*filter, cb, h), http::FilterHeadersStatus::kContinue);
  }
}

TEST_F(FaultFilterTest, PercentageHeaderCannotRaiseTheConfiguredRate) {
  FaultPercentage configured{20, 100};
  HeaderMap h;
  h.add("x-p", "80");
  EXPECT_EQ(configured.withHeader(h, "x-p").numerator, 20u);
  h.set("x-p", "5");
  EXPECT_EQ(configured.withHeader(h, "x-p").numerator, 5u);
  h.set("x-p", "junk");
  EXPECT_EQ(configured.withHeader(h, "x-p").numerator, 20u);
}

TEST_F(FaultFilterTest, OnlyMatchingRequestsClustersAndNodes) {
  const char* abort = R"("abort": {"httpStatus": 503, "percentage": {"numerator": 100}})";
  auto byHeader =
      makeFilter(std::string("{") + abort +
                 R"(, "headers": [{"name": "x-user", "stringMatch": {"exact": "t"}}]})");
  FakeFilterCallbacks cb1(loop_);
  auto h1 = request();
  EXPECT_EQ(decode(*byHeader, cb1, h1), http::FilterHeadersStatus::kContinue);
  FakeFilterCallbacks cb2(loop_);
  auto h2 = request("/", {{"x-user", "t"}});
  EXPECT_EQ(decode(*byHeader, cb2, h2), http::FilterHeadersStatus::kStopIteration);

  auto otherCluster = makeFilter(std::string("{") + abort + R"(, "upstreamCluster": "other"})");
  FakeFilterCallbacks cb3(loop_);
  auto h3 = request();
  EXPECT_EQ(decode(*otherCluster, cb3, h3), http::FilterHeadersStatus::kContinue);
  auto sameCluster = makeFilter(std::string("{") + abort + R"(, "upstreamCluster": "backend"})");
  FakeFilterCallbacks cb4(loop_);
  auto h4 = request();
  EXPECT_EQ(decode(*sameCluster, cb4, h4), http::FilterHeadersStatus::kStopIteration);

  auto nodes = makeFilter(std::string("{") + abort + R"(, "downstreamNodes": ["n1"]})");
  FakeFilterCallbacks cb5(loop_);
  auto h5 = request("/", {{"x-envoy-downstream-service-node", "n2"}});
  EXPECT_EQ(decode(*nodes, cb5, h5), http::FilterHeadersStatus::kContinue);
  FakeFilterCallbacks cb6(loop_);
  auto h6 = request("/", {{"x-envoy-downstream-service-node", "n1"}});
  EXPECT_EQ(decode(*nodes, cb6, h6), http::FilterHeadersStatus::kStopIteration);
}

TEST_F(FaultFilterTest, MaxActiveFaultsOverflowLetsRequestsThrough) {
  const char* config =
      R"({"delay": {"fixedDelay": "10s", "percentage": {"numerator": 100}}, "maxActiveFaults": 1})";
  auto first = makeFilter(config);
  auto second = makeFilter(config);
  FakeFilterCallbacks cb1(loop_);
  FakeFilterCallbacks cb2(loop_);
  auto h1 = request();
  auto h2 = request();
  EXPECT_EQ(decode(*first, cb1, h1), http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(decode(*second, cb2, h2), http::FilterHeadersStatus::kContinue);
  EXPECT_EQ(counter("faults_overflow"), 1u);
  EXPECT_EQ(active(), 1u);
  first->onDestroy();
  second->onDestroy();
  EXPECT_EQ(active(), 0u);
}

TEST_F(FaultFilterTest, PerRouteConfigReplacesTheListenersAndCanDisable) {
  // The listener's config is empty: faults only where a route asks.
  auto filter = makeFilter("{}");
  FakeFilterCallbacks cb1(loop_);
  auto h1 = request("/fault/x");
  EXPECT_EQ(decode(*filter, cb1, h1), http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(cb1.local_reply_status, 418);

  auto filter2 = makeFilter("{}");
  FakeFilterCallbacks cb2(loop_);
  auto h2 = request("/plain");
  EXPECT_EQ(decode(*filter2, cb2, h2), http::FilterHeadersStatus::kContinue);

  auto everywhere =
      makeFilter(R"({"abort": {"httpStatus": 503, "percentage": {"numerator": 100}}})");
  FakeFilterCallbacks cb3(loop_);
  auto h3 = request("/off");
  EXPECT_EQ(decode(*everywhere, cb3, h3), http::FilterHeadersStatus::kContinue);
}

TEST_F(FaultFilterTest, VirtualHostConfigAppliesWhenTheRouteHasNone) {
  auto table = RouteTable::create(fromJson<envoy::config::route::v3::RouteConfiguration>(R"({
    "virtualHosts": [{"name": "vh", "domains": ["*"],
      "typedPerFilterConfig": {"envoy.filters.http.fault": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        "abort": {"httpStatus": 451, "percentage": {"numerator": 100}}}},
      "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]}]})"));
  ASSERT_TRUE(table.ok()) << table.error().message();
  auto filter = makeFilter("{}");
  FakeFilterCallbacks cb(loop_);
  auto h = request();
  cb.routeWith(**table, h);
  filter->setDecoderFilterCallbacks(cb);
  EXPECT_EQ(filter->decodeHeaders(h, true), http::FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(cb.local_reply_status, 451);
}

TEST_F(FaultFilterTest, InvalidConfigIsRejected) {
  auto bad = factory(R"({"abort": {"httpStatus": 99}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("abort.http_status"), std::string::npos);
  EXPECT_FALSE(factory(R"({"delay": {"percentage": {"numerator": 1}}})").ok());
  EXPECT_FALSE(factory(R"({"delay": {"fixedDelay": "0s"}})").ok());

  auto table = RouteTable::create(fromJson<envoy::config::route::v3::RouteConfiguration>(R"({
    "virtualHosts": [{"name": "vh", "domains": ["*"],
      "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"},
        "typedPerFilterConfig": {"envoy.filters.http.fault": {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
          "abort": {"httpStatus": 700}}}}]}]})"));
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.error().message().find(
                "routes[0].typed_per_filter_config[envoy.filters.http.fault].abort.http_status"),
            std::string::npos)
      << table.error().message();
}

}  // namespace
}  // namespace sheave::fault
