#include "proxy/accesslog/access_log.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "envoy/config/accesslog/v3/accesslog.pb.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"
#include "proxy/stats/store.h"

namespace sheave::accesslog {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<AccessLogFilter> filterFromJson(std::string_view json) {
  envoy::config::accesslog::v3::AccessLogFilter proto;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(json), &proto).ok()) << json;
  auto filter = accessLogFilterFromProto(proto);
  EXPECT_TRUE(filter.ok()) << (filter.ok() ? "" : filter.error().message());
  return filter.ok() ? std::move(filter).value() : nullptr;
}

TEST(AccessLogFilterTest, StatusCode) {
  StreamInfo info;
  auto ge = filterFromJson(
      R"({"status_code_filter":{"comparison":{"op":"GE","value":{"default_value":500,"runtime_key":"k"}}}})");
  EXPECT_FALSE(ge->evaluate(info));  // no response: 0
  info.response_code = 503;
  EXPECT_TRUE(ge->evaluate(info));
  info.response_code = 404;
  EXPECT_FALSE(ge->evaluate(info));
  EXPECT_TRUE(StatusCodeFilter(ComparisonOp::kEq, 404).evaluate(info));
  EXPECT_TRUE(StatusCodeFilter(ComparisonOp::kLe, 404).evaluate(info));
  EXPECT_FALSE(StatusCodeFilter(ComparisonOp::kNe, 404).evaluate(info));
}

TEST(AccessLogFilterTest, Duration) {
  StreamInfo info;
  auto f = filterFromJson(
      R"({"duration_filter":{"comparison":{"op":"GE","value":{"default_value":100}}}})");
  EXPECT_FALSE(f->evaluate(info));  // not finished
  info.request_complete = milliseconds(99);
  EXPECT_FALSE(f->evaluate(info));
  info.request_complete = milliseconds(100);
  EXPECT_TRUE(f->evaluate(info));
}

TEST(AccessLogFilterTest, ResponseFlags) {
  StreamInfo info;
  auto any = filterFromJson(R"({"response_flag_filter":{}})");
  auto some = filterFromJson(R"({"response_flag_filter":{"flags":["UH","NR"]}})");
  EXPECT_FALSE(any->evaluate(info));
  info.setResponseFlag(ResponseFlag::kUpstreamRetryLimitExceeded);
  EXPECT_TRUE(any->evaluate(info));
  EXPECT_FALSE(some->evaluate(info));
  info.setResponseFlag(ResponseFlag::kNoRouteFound);
  EXPECT_TRUE(some->evaluate(info));
}

TEST(AccessLogFilterTest, NotHealthCheckAndOr) {
  StreamInfo info;
  auto f = filterFromJson(R"({"and_filter":{"filters":[
      {"not_health_check_filter":{}},
      {"or_filter":{"filters":[
          {"status_code_filter":{"comparison":{"op":"GE","value":{"default_value":500}}}},
          {"response_flag_filter":{}}]}}]}})");
  EXPECT_FALSE(f->evaluate(info));
  info.response_code = 502;
  EXPECT_TRUE(f->evaluate(info));
  info.health_check_request = true;
  EXPECT_FALSE(f->evaluate(info));
  info.health_check_request = false;
  info.response_code = 200;
  info.setResponseFlag(ResponseFlag::kDownstreamConnectionTermination);
  EXPECT_TRUE(f->evaluate(info));
}

TEST(AccessLogFilterTest, Errors) {
  envoy::config::accesslog::v3::AccessLogFilter proto;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  R"({"or_filter":{"filters":[{"not_health_check_filter":{}},)"
                  R"({"response_flag_filter":{"flags":["XX"]}}]}})",
                  &proto)
                  .ok());
  auto r = accessLogFilterFromProto(proto);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "or_filter.filters[1]: response_flag_filter.flags[0]: unknown response flag 'XX'");
  proto.Clear();
  proto.mutable_runtime_filter();
  EXPECT_FALSE(accessLogFilterFromProto(proto).ok());
}

class AccessLogFromProtoTest : public testing::Test {
 protected:
  void SetUp() override {
    auto store = stats::Store::create();
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    manager_ = std::make_unique<AccessLogManager>(*store_);
    path_ = testing::TempDir() + "sheave_access_log_proto_" + std::to_string(::getpid()) + "_" +
            testing::UnitTest::GetInstance()->current_test_info()->name() + ".log";
    std::remove(path_.c_str());
  }
  void TearDown() override { std::remove(path_.c_str()); }

  Result<std::unique_ptr<AccessLog>> build(const std::string& json) {
    envoy::config::accesslog::v3::AccessLog proto;
    auto status = google::protobuf::util::JsonStringToMessage(json, &proto);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return accessLogFromProto(proto, *manager_);
  }

  std::string contents() {
    auto file = manager_->file(path_);
    EXPECT_TRUE(file.ok());
    (*file)->flush();
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::unique_ptr<stats::Store> store_;
  std::unique_ptr<AccessLogManager> manager_;
  std::string path_;
};

TEST_F(AccessLogFromProtoTest, FileWithJsonLogFormatAndFilter) {
  auto log = build(R"({
    "name": "envoy.access_loggers.file",
    "filter": {"status_code_filter": {"comparison": {"op": "GE", "value": {"default_value": 400}}}},
    "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      "path": ")" + path_ +
                   R"(",
      "log_format": {"json_format": {"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%"}}
    }})");
  ASSERT_TRUE(log.ok()) << log.error().message();
  StreamInfo info;
  info.response_code = 200;
  (*log)->log(info);  // filtered out
  info.response_code = 503;
  info.setResponseFlag(ResponseFlag::kNoHealthyUpstream);
  (*log)->log(info);
  EXPECT_EQ(contents(), "{\"code\":503,\"flags\":\"UH\"}\n");
}

TEST_F(AccessLogFromProtoTest, FileWithTextFormatSource) {
  auto log = build(R"({
    "name": "envoy.access_loggers.file",
    "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      "path": ")" + path_ +
                   R"(",
      "log_format": {"text_format_source": {"inline_string": "%PROTOCOL% %RESPONSE_CODE%\n"},
                     "omit_empty_values": true}
    }})");
  ASSERT_TRUE(log.ok()) << log.error().message();
  StreamInfo info;
  info.response_code = 204;
  (*log)->log(info);
  info.protocol = "HTTP/2";
  (*log)->log(info);
  EXPECT_EQ(contents(), " 204\nHTTP/2 204\n");
}

TEST_F(AccessLogFromProtoTest, FileDefaultFormat) {
  auto log = build(R"({
    "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      "path": ")" + path_ +
                   R"("}})");
  ASSERT_TRUE(log.ok()) << log.error().message();
  StreamInfo info;
  (*log)->log(info);
  const std::string line = contents();
  EXPECT_EQ(line.substr(0, 1), "[");
  EXPECT_NE(line.find("] \"- - -\" 0 - 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\"\n"), std::string::npos)
      << line;
}

TEST_F(AccessLogFromProtoTest, StdoutLogger) {
  auto log = build(R"({
    "name": "envoy.access_loggers.stdout",
    "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
      "log_format": {"text_format": "%RESPONSE_CODE%\n"}}})");
  ASSERT_TRUE(log.ok()) << log.error().message();
}

TEST_F(AccessLogFromProtoTest, ErrorsCarryFieldPaths) {
  auto bad_format = build(R"({
    "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      "path": ")" + path_ +
                          R"(",
      "log_format": {"text_format": "%BOGUS%"}}})");
  ASSERT_FALSE(bad_format.ok());
  EXPECT_NE(bad_format.error().message().find(
                "typed_config.log_format: text_format: access log format '%BOGUS%': unknown "
                "command operator BOGUS at position 0"),
            std::string::npos)
      << bad_format.error().message();

  auto no_config = build(R"({"name": "x"})");
  ASSERT_FALSE(no_config.ok());

  auto bad_path = build(R"({
    "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      "path": "/nonexistent-dir/x.log"}})");
  ASSERT_FALSE(bad_path.ok());
}

}  // namespace
}  // namespace sheave::accesslog
