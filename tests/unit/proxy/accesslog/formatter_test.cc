#include "proxy/accesslog/formatter.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace sheave::accesslog {
namespace {

using std::chrono::milliseconds;

class FormatterTest : public testing::Test {
 protected:
  FormatterTest() {
    // 2024-03-05T06:07:08.123456789Z
    info_.start_time = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(1709618828) + std::chrono::nanoseconds(123456789)));
    request_.add(":method", "GET");
    request_.add(":path", "/productpage?x=1");
    request_.add(":authority", "bookinfo.local");
    request_.add("user-agent", "curl/7.88.1");
    request_.add("x-request-id", "4b1c7c1e-aaaa");
    response_.add(":status", "200");
    response_.add("x-envoy-upstream-service-time", "3");
    trailers_.add("grpc-status", "0");
  }

  std::string render(std::string_view format, FormatOptions options = {}) {
    auto f = TextFormatter::create(format, options);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message());
    if (!f.ok()) return "<error>";
    return (*f)->format(info_);
  }

  void fillHttp() {
    info_.protocol = "HTTP/1.1";
    info_.response_code = 200;
    info_.request_headers = &request_;
    info_.response_headers = &response_;
    info_.response_trailers = &trailers_;
    info_.bytes_received = 12;
    info_.bytes_sent = 345;
    info_.request_complete = milliseconds(7);
    info_.upstream_host = "10.0.0.7:9080";
  }

  StreamInfo info_;
  HeaderMap request_, response_, trailers_;
};

TEST_F(FormatterTest, DefaultFormatGoldenLine) {
  fillHttp();
  EXPECT_EQ(render(kDefaultFormat),
            "[2024-03-05T06:07:08.123Z] \"GET /productpage?x=1 HTTP/1.1\" 200 - 12 345 7 3 \"-\" "
            "\"curl/7.88.1\" \"4b1c7c1e-aaaa\" \"bookinfo.local\" \"10.0.0.7:9080\"\n");
}

TEST_F(FormatterTest, DefaultFormatForTcpWithNothingSet) {
  EXPECT_EQ(render(kDefaultFormat),
            "[2024-03-05T06:07:08.123Z] \"- - -\" 0 - 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\"\n");
}

TEST_F(FormatterTest, StartTimeFormats) {
  EXPECT_EQ(render("%START_TIME%"), "2024-03-05T06:07:08.123Z");
  EXPECT_EQ(render("%START_TIME(%Y/%m/%d %H:%M:%S)%"), "2024/03/05 06:07:08");
  EXPECT_EQ(render("%START_TIME(%s.%3f)%"), "1709618828.123");
  EXPECT_EQ(render("%START_TIME(%s.%6f)%"), "1709618828.123456");
  EXPECT_EQ(render("%START_TIME(%s.%f)%"), "1709618828.123456789");
  EXPECT_EQ(render("%START_TIME(%E6S)%"), "08.123456");
  EXPECT_EQ(render("%START_TIME(%%f)%"), "%f");
}

TEST_F(FormatterTest, HeaderOperators) {
  fillHttp();
  EXPECT_EQ(render("%REQ(:PATH)%"), "/productpage?x=1");
  EXPECT_EQ(render("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"), "/productpage?x=1");
  request_.add("x-envoy-original-path", "/orig");
  EXPECT_EQ(render("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"), "/orig");
  EXPECT_EQ(render("%REQ(:PATH):5%"), "/prod");
  EXPECT_EQ(render("%REQ(USER-AGENT):4%"), "curl");
  EXPECT_EQ(render("%REQ(missing)%"), "-");
  EXPECT_EQ(render("%RESP(:STATUS)%"), "200");
  EXPECT_EQ(render("%TRAILER(GRPC-STATUS)%"), "0");
  info_.response_trailers = nullptr;
  EXPECT_EQ(render("%TRAILER(GRPC-STATUS)%"), "-");
}

TEST_F(FormatterTest, EveryStreamInfoOperator) {
  fillHttp();
  info_.response_code_details = "via_upstream";
  info_.connection_termination_details = "idle";
  info_.setResponseFlag(ResponseFlag::kUpstreamRetryLimitExceeded);
  info_.setResponseFlag(ResponseFlag::kUpstreamConnectionFailure);
  info_.last_downstream_rx_byte_received = milliseconds(1);
  info_.last_upstream_tx_byte_sent = milliseconds(2);
  info_.first_upstream_rx_byte_received = milliseconds(4);
  info_.last_downstream_tx_byte_sent = milliseconds(6);
  info_.upstream_cluster = "outbound|9080||reviews.default.svc.cluster.local";
  info_.upstream_local_address = "10.0.0.1:40000";
  info_.upstream_transport_failure_reason = "TLS error";
  info_.route_name = "default";
  info_.downstream_local_address = "10.0.0.1:9080";
  info_.downstream_remote_address = "[2001:db8::1]:5555";
  info_.downstream_direct_remote_address = "127.0.0.1:5556";
  info_.requested_server_name = "reviews.default";
  info_.downstream_peer_uri_san = "spiffe://cluster.local/ns/default/sa/productpage";
  info_.upstream_peer_uri_san = "spiffe://cluster.local/ns/default/sa/reviews";
  info_.upstream_local_uri_san = "spiffe://cluster.local/ns/default/sa/productpage";
  info_.downstream_peer_subject = "CN=productpage";
  info_.attempt_count = 2;
  info_.connection_id = 17;
  info_.request_id = "rid";

  const std::pair<std::string_view, std::string_view> cases[] = {
      {"%RESPONSE_CODE%", "200"},
      {"%RESPONSE_CODE_DETAILS%", "via_upstream"},
      {"%CONNECTION_TERMINATION_DETAILS%", "idle"},
      {"%RESPONSE_FLAGS%", "UF,URX"},
      {"%RESPONSE_FLAGS_LONG%", "UpstreamConnectionFailure,UpstreamRetryLimitExceeded"},
      {"%BYTES_RECEIVED%", "12"},
      {"%BYTES_SENT%", "345"},
      {"%DURATION%", "7"},
      {"%REQUEST_DURATION%", "1"},
      {"%REQUEST_TX_DURATION%", "2"},
      {"%RESPONSE_DURATION%", "4"},
      {"%RESPONSE_TX_DURATION%", "2"},
      {"%UPSTREAM_HOST%", "10.0.0.7:9080"},
      {"%UPSTREAM_REMOTE_ADDRESS%", "10.0.0.7:9080"},
      {"%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.0.7"},
      {"%UPSTREAM_CLUSTER%", "outbound|9080||reviews.default.svc.cluster.local"},
      {"%UPSTREAM_LOCAL_ADDRESS%", "10.0.0.1:40000"},
      {"%UPSTREAM_TRANSPORT_FAILURE_REASON%", "TLS error"},
      {"%DOWNSTREAM_REMOTE_ADDRESS%", "[2001:db8::1]:5555"},
      {"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "2001:db8::1"},
      {"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%", "127.0.0.1:5556"},
      {"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%", "127.0.0.1"},
      {"%DOWNSTREAM_LOCAL_ADDRESS%", "10.0.0.1:9080"},
      {"%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "10.0.0.1"},
      {"%DOWNSTREAM_PEER_URI_SAN%", "spiffe://cluster.local/ns/default/sa/productpage"},
      {"%DOWNSTREAM_PEER_SUBJECT%", "CN=productpage"},
      {"%DOWNSTREAM_LOCAL_URI_SAN%", "-"},
      {"%UPSTREAM_PEER_URI_SAN%", "spiffe://cluster.local/ns/default/sa/reviews"},
      {"%UPSTREAM_LOCAL_URI_SAN%", "spiffe://cluster.local/ns/default/sa/productpage"},
      {"%ROUTE_NAME%", "default"},
      {"%PROTOCOL%", "HTTP/1.1"},
      {"%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "2"},
      {"%REQUESTED_SERVER_NAME%", "reviews.default"},
      {"%CONNECTION_ID%", "17"},
      {"%STREAM_ID%", "rid"},
      {"100%% %PROTOCOL%", "100% HTTP/1.1"},
  };
  for (const auto& [format, expected] : cases) EXPECT_EQ(render(format), expected) << format;

  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(render("%HOSTNAME%"), host);
}

TEST_F(FormatterTest, MissingValuesAndOmitEmpty) {
  EXPECT_EQ(render("%PROTOCOL%|%DURATION%|%UPSTREAM_HOST%|%RESPONSE_CODE%"), "-|-|-|0");
  EXPECT_EQ(render("%PROTOCOL%|%DURATION%|%RESPONSE_CODE%", {true}), "||0");
}

TEST_F(FormatterTest, ErrorsNamePosition) {
  auto expectError = [](std::string_view format, std::string_view fragment) {
    auto f = TextFormatter::create(format);
    ASSERT_FALSE(f.ok()) << format;
    EXPECT_NE(f.error().message().find(fragment), std::string::npos)
        << format << " -> " << f.error().message();
  };
  expectError("abc %FOO% x", "unknown command operator FOO at position 4");
  expectError("%REQ(:PATH)", "unterminated command operator REQ (expected '%') at position 0");
  expectError("x %REQ(:PATH%", "unterminated '(' of REQ at position 6");
  expectError("%REQ%", "REQ needs a parameter");
  expectError("%PROTOCOL(x)%", "PROTOCOL takes no parameter");
  expectError("50% off", "at position 2");
  expectError("%REQ(A?B?C)%", "expected REQ(header)");
  expectError("%REQ(A):x%", "expected a length");
}

TEST_F(FormatterTest, JsonFormatTypedValues) {
  fillHttp();
  google::protobuf::Struct format;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "code": "%RESPONSE_CODE%",
    "bytes": "%BYTES_SENT%",
    "flags": "%RESPONSE_FLAGS%",
    "mixed": "%REQ(:METHOD)% %PROTOCOL%",
    "missing": "%REQ(x-forwarded-for)%",
    "literal_number": 5,
    "literal_bool": true,
    "nested": {"host": "%UPSTREAM_HOST%", "sni": "%REQUESTED_SERVER_NAME%"},
    "list": ["%RESPONSE_CODE%", "x"]
  })",
                                                          &format)
                  .ok());
  auto f = JsonFormatter::create(format);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ((*f)->format(info_),
            R"({"bytes":345,"code":200,"flags":"-","list":[200,"x"],"literal_bool":true,)"
            R"("literal_number":5,"method":"GET","missing":null,"mixed":"GET HTTP/1.1",)"
            R"("nested":{"host":"10.0.0.7:9080","sni":null},)"
            R"("start_time":"2024-03-05T06:07:08.123Z"})"
            "\n");

  auto omit = JsonFormatter::create(format, {true});
  ASSERT_TRUE(omit.ok());
  EXPECT_EQ((*omit)->format(info_),
            R"({"bytes":345,"code":200,"flags":"-","list":[200,"x"],"literal_bool":true,)"
            R"("literal_number":5,"method":"GET","mixed":"GET HTTP/1.1",)"
            R"("nested":{"host":"10.0.0.7:9080"},"start_time":"2024-03-05T06:07:08.123Z"})"
            "\n");
}

TEST_F(FormatterTest, JsonEscapesAndReportsErrors) {
  request_.add("user-agent-2", "a\"b\\c\n");
  info_.request_headers = &request_;
  google::protobuf::Struct format;
  (*format.mutable_fields())["ua"].set_string_value("%REQ(user-agent-2)%");
  auto f = JsonFormatter::create(format);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->format(info_), "{\"ua\":\"a\\\"b\\\\c\\n\"}\n");

  google::protobuf::Struct bad;
  (*(*bad.mutable_fields())["outer"].mutable_struct_value()->mutable_fields())["inner"]
      .set_string_value("%NOPE%");
  auto e = JsonFormatter::create(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("json_format.outer.inner"), std::string::npos)
      << e.error().message();
}

TEST_F(FormatterTest, GrpcStatus) {
  fillHttp();
  // Not a gRPC request: nothing to say.
  EXPECT_EQ(render("%GRPC_STATUS%"), "-");
  request_.add("content-type", "application/grpc+proto");
  trailers_.set("grpc-status", "14");
  EXPECT_EQ(render("%GRPC_STATUS% %GRPC_STATUS(SNAKE_STRING)% %GRPC_STATUS(NUMBER)% "
                   "%GRPC_STATUS_NUMBER%"),
            "Unavailable UNAVAILABLE 14 14");
  // Trailers-Only: the status is in the headers.
  info_.response_trailers = nullptr;
  response_.add("grpc-status", "1");
  EXPECT_EQ(render("%GRPC_STATUS%"), "Canceled");
  // A local reply without grpc-status: gRPC's reading of the HTTP status.
  response_.remove("grpc-status");
  info_.response_code = 503;
  EXPECT_EQ(render("%GRPC_STATUS%"), "Unavailable");
  auto bad = TextFormatter::create("%GRPC_STATUS(LOUD)%", {});
  EXPECT_FALSE(bad.ok());
}

TEST(AddressWithoutPortTest, Forms) {
  EXPECT_EQ(addressWithoutPort("1.2.3.4:80"), "1.2.3.4");
  EXPECT_EQ(addressWithoutPort("[::1]:80"), "::1");
  EXPECT_EQ(addressWithoutPort("::1"), "::1");
  EXPECT_EQ(addressWithoutPort("/tmp/sock"), "/tmp/sock");
}

}  // namespace
}  // namespace sheave::accesslog
