#include "proxy/filters/cors/cors_filter.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "../fake_filter_callbacks.h"
#include "proxy/stats/store.h"

namespace sheave::cors {
namespace {

using testing::CollectingChainBuilder;
using testing::FakeFilterCallbacks;

envoy::config::route::v3::RouteConfiguration routesFromJson(const std::string& json) {
  envoy::config::route::v3::RouteConfiguration out;
  auto status = google::protobuf::util::JsonStringToMessage(json, &out);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return out;
}

HeaderMap request(std::string method, std::string path,
                  std::vector<std::pair<std::string, std::string>> extra = {}) {
  HeaderMap h;
  h.add(":method", method);
  h.add(":path", path);
  h.add(":authority", "example.com");
  h.add(":scheme", "http");
  for (auto& [k, v] : extra) h.add(k, v);
  return h;
}

// "/typed": the filter's own CorsPolicy; "/legacy": the route's `cors`
// field; "/partial": a route policy that leaves allow_methods to the
// virtual host's; "/strict": no forwarding of non-matching preflights;
// "/off": disabled per route; "/none": no policy at the route, the virtual
// host's applies.
constexpr const char* kRoutes = R"({
  "virtualHosts": [{
    "name": "vh", "domains": ["*"],
    "typedPerFilterConfig": {"envoy.filters.http.cors": {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
      "allowOriginStringMatch": [{"exact": "https://vh.example"}],
      "allowMethods": "GET,PUT"}},
    "routes": [
      {"match": {"prefix": "/typed"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.cors": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
         "allowOriginStringMatch": [{"exact": "https://app.example"},
                                    {"suffix": ".trusted.example"}],
         "allowMethods": "GET,POST", "allowHeaders": "x-a,x-b", "maxAge": "600",
         "exposeHeaders": "x-total", "allowCredentials": true}}},
      {"match": {"prefix": "/legacy"}, "route": {"cluster": "backend",
         "cors": {"allowOriginStringMatch": [{"prefix": "https://legacy"}],
                  "allowMethods": "DELETE"}}},
      {"match": {"prefix": "/partial"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.cors": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
         "allowOriginStringMatch": [{"exact": "https://p.example"}]}}},
      {"match": {"prefix": "/strict"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.cors": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
         "allowOriginStringMatch": [{"exact": "https://app.example"}],
         "forwardNotMatchingPreflights": false}}},
      {"match": {"prefix": "/wild"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.cors": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
         "allowOriginStringMatch": [{"exact": "*"}]}}},
      {"match": {"prefix": "/shadow"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.cors": {
         "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
         "allowOriginStringMatch": [{"exact": "https://app.example"}],
         "filterEnabled": {"defaultValue": {"numerator": 0}},
         "shadowEnabled": {"defaultValue": {"numerator": 100}}}}},
      {"match": {"prefix": "/off"}, "route": {"cluster": "backend"},
       "typedPerFilterConfig": {"envoy.filters.http.cors": {
         "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": true}}},
      {"match": {"prefix": "/none"}, "route": {"cluster": "backend"}}
    ]
  }]
})";

class CorsFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registerCorsFilter(registry_);
    store_ = std::move(stats::Store::create()).value();
    scope_ = store_->createScope("http.test");
    auto table = RouteTable::create(routesFromJson(kRoutes));
    ASSERT_TRUE(table.ok()) << table.error().message();
    table_ = std::move(table).value();
    google::protobuf::Any any;
    any.set_type_url("type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors");
    http::FilterFactoryContext context{*scope_, "test", *scope_};
    auto cb = (*registry_.find("envoy.extensions.filters.http.cors.v3.Cors"))(any, context);
    ASSERT_TRUE(cb.ok()) << cb.error().message();
    factory_ = std::move(cb).value();
  }

  struct Run {
    std::unique_ptr<http::StreamFilter> filter;
    std::unique_ptr<FakeFilterCallbacks> cb;
    HeaderMap headers;
    http::FilterHeadersStatus status;
  };

  Run decode(HeaderMap headers) {
    CollectingChainBuilder builder;
    factory_(builder);
    EXPECT_EQ(builder.streams.size(), 1u);
    Run r{std::move(builder.streams.front()), std::make_unique<FakeFilterCallbacks>(loop_),
          std::move(headers), http::FilterHeadersStatus::kContinue};
    r.cb->routeWith(*table_, r.headers);
    r.filter->setDecoderFilterCallbacks(*r.cb);
    r.status = r.filter->decodeHeaders(r.headers, true);
    return r;
  }

  // The upstream's response as the client would see it.
  HeaderMap respond(Run& r) {
    HeaderMap response;
    response.add(":status", "200");
    r.filter->encodeHeaders(response, false);
    return response;
  }

  uint64_t counter(const std::string& name) { return scope_->counter("cors." + name).value(); }

  http::FilterRegistry registry_;
  std::unique_ptr<stats::Store> store_;
  std::shared_ptr<stats::Scope> scope_;
  std::shared_ptr<const RouteTable> table_;
  http::FilterFactoryCb factory_;
  network::EventLoop loop_;
};

TEST_F(CorsFilterTest, PreflightFromAnAllowedOriginIsAnsweredLocally) {
  auto r = decode(
      request("OPTIONS", "/typed",
              {{"origin", "https://app.example"}, {"access-control-request-method", "POST"}}));
  EXPECT_EQ(r.status, http::FilterHeadersStatus::kStopIteration);
  ASSERT_TRUE(r.cb->response.has_value());
  const HeaderMap& h = *r.cb->response;
  EXPECT_EQ(h.status(), "200");
  EXPECT_TRUE(r.cb->response_end_stream);
  EXPECT_EQ(*h.get("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(*h.get("access-control-allow-methods"), "GET,POST");
  EXPECT_EQ(*h.get("access-control-allow-headers"), "x-a,x-b");
  EXPECT_EQ(*h.get("access-control-max-age"), "600");
  EXPECT_EQ(*h.get("access-control-allow-credentials"), "true");
  EXPECT_EQ(counter("origin_valid"), 1u);
}

TEST_F(CorsFilterTest, SimpleRequestGetsAllowOriginOnTheResponse) {
  auto r = decode(request("GET", "/typed", {{"origin", "https://x.trusted.example"}}));
  EXPECT_EQ(r.status, http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(r.cb->response.has_value());
  HeaderMap resp = respond(r);
  EXPECT_EQ(*resp.get("access-control-allow-origin"), "https://x.trusted.example");
  EXPECT_EQ(*resp.get("access-control-allow-credentials"), "true");
  EXPECT_EQ(*resp.get("access-control-expose-headers"), "x-total");
  EXPECT_FALSE(resp.has("access-control-allow-methods"));
}

TEST_F(CorsFilterTest, DisallowedOriginPassesThroughUntouched) {
  auto pre = decode(
      request("OPTIONS", "/typed",
              {{"origin", "https://evil.example"}, {"access-control-request-method", "POST"}}));
  EXPECT_EQ(pre.status, http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(pre.cb->response.has_value());
  HeaderMap resp = respond(pre);
  EXPECT_FALSE(resp.has("access-control-allow-origin"));

  auto get = decode(request("GET", "/typed", {{"origin", "https://evil.example"}}));
  HeaderMap resp2 = respond(get);
  EXPECT_FALSE(resp2.has("access-control-allow-origin"));
  EXPECT_EQ(counter("origin_invalid"), 2u);
  EXPECT_EQ(counter("origin_valid"), 0u);
}

TEST_F(CorsFilterTest, NoOriginNoCors) {
  auto r = decode(request("GET", "/typed"));
  EXPECT_EQ(r.status, http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(respond(r).has("access-control-allow-origin"));
  EXPECT_EQ(counter("origin_valid") + counter("origin_invalid"), 0u);
}

TEST_F(CorsFilterTest, NonMatchingPreflightAnsweredBareWhenNotForwarded) {
  auto r = decode(
      request("OPTIONS", "/strict",
              {{"origin", "https://evil.example"}, {"access-control-request-method", "GET"}}));
  EXPECT_EQ(r.status, http::FilterHeadersStatus::kStopIteration);
  ASSERT_TRUE(r.cb->response.has_value());
  EXPECT_EQ(r.cb->response->status(), "200");
  EXPECT_FALSE(r.cb->response->has("access-control-allow-origin"));
}

TEST_F(CorsFilterTest, LegacyRouteCorsField) {
  auto r = decode(
      request("OPTIONS", "/legacy",
              {{"origin", "https://legacy.example"}, {"access-control-request-method", "DELETE"}}));
  EXPECT_EQ(r.status, http::FilterHeadersStatus::kStopIteration);
  ASSERT_TRUE(r.cb->response.has_value());
  EXPECT_EQ(*r.cb->response->get("access-control-allow-methods"), "DELETE");
}

TEST_F(CorsFilterTest, FieldsMergeFromRouteToVirtualHost) {
  auto r =
      decode(request("OPTIONS", "/partial",
                     {{"origin", "https://p.example"}, {"access-control-request-method", "PUT"}}));
  ASSERT_TRUE(r.cb->response.has_value());
  EXPECT_EQ(*r.cb->response->get("access-control-allow-methods"), "GET,PUT");
  // The route's origin list replaces the virtual host's.
  auto vh = decode(request("GET", "/partial", {{"origin", "https://vh.example"}}));
  EXPECT_FALSE(respond(vh).has("access-control-allow-origin"));

  auto none = decode(request("GET", "/none", {{"origin", "https://vh.example"}}));
  EXPECT_EQ(*respond(none).get("access-control-allow-origin"), "https://vh.example");
}

TEST_F(CorsFilterTest, WildcardMatcherAllowsAnyOrigin) {
  auto r = decode(request("GET", "/wild", {{"origin", "https://anything.example"}}));
  EXPECT_EQ(*respond(r).get("access-control-allow-origin"), "https://anything.example");
}

TEST_F(CorsFilterTest, ShadowModeOnlyCounts) {
  auto r = decode(
      request("OPTIONS", "/shadow",
              {{"origin", "https://app.example"}, {"access-control-request-method", "GET"}}));
  EXPECT_EQ(r.status, http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(r.cb->response.has_value());
  EXPECT_FALSE(respond(r).has("access-control-allow-origin"));
  EXPECT_EQ(counter("origin_valid"), 1u);
}

TEST_F(CorsFilterTest, DisabledPerRoute) {
  auto r =
      decode(request("OPTIONS", "/off",
                     {{"origin", "https://vh.example"}, {"access-control-request-method", "GET"}}));
  EXPECT_EQ(r.status, http::FilterHeadersStatus::kContinue);
  EXPECT_FALSE(respond(r).has("access-control-allow-origin"));
}

TEST_F(CorsFilterTest, InvalidPolicyRejectsTheRouteTable) {
  auto table = RouteTable::create(routesFromJson(R"({
    "virtualHosts": [{"name": "vh", "domains": ["*"],
      "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend",
        "cors": {"allowOriginStringMatch": [{"safeRegex": {"regex": "("}}]}}}]}]})"));
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.error().message().find("route.cors.allow_origin_string_match[0]"),
            std::string::npos)
      << table.error().message();
}

}  // namespace
}  // namespace sheave::cors
