#include "proxy/accesslog/stream_info.h"

#include <gtest/gtest.h>

namespace sheave {
namespace {

TEST(ResponseFlagsTest, NoneIsDash) {
  ResponseFlags flags;
  EXPECT_EQ(flags.toShortString(), "-");
  EXPECT_EQ(flags.toLongString(), "-");
}

TEST(ResponseFlagsTest, EnvoyOrderRegardlessOfSetOrder) {
  ResponseFlags flags;
  flags.set(ResponseFlag::kUpstreamRetryLimitExceeded);
  flags.set(ResponseFlag::kNoRouteFound);
  flags.set(ResponseFlag::kNoHealthyUpstream);
  flags.set(ResponseFlag::kUnconditionalDropOverload);
  EXPECT_EQ(flags.toShortString(), "UH,NR,URX,UDO");
  EXPECT_EQ(flags.toLongString(),
            "NoHealthyUpstream,NoRouteFound,UpstreamRetryLimitExceeded,UnconditionalDropOverload");
}

TEST(ResponseFlagsTest, FullShortList) {
  ResponseFlags all;
  for (int i = 0; i < static_cast<int>(ResponseFlag::kCount); ++i) {
    all.set(static_cast<ResponseFlag>(i));
  }
  EXPECT_EQ(all.toShortString(),
            "LH,UH,UT,LR,UR,UF,UC,UO,NR,DI,FI,RL,UAEX,RLSE,DC,URX,SI,IH,DPE,UMSDR,RFCF,NFCF,DT,UPE,"
            "NC,OM,DF,DO,DR,UDO");
}

TEST(ResponseFlagsTest, RoundTripShortStrings) {
  for (int i = 0; i < static_cast<int>(ResponseFlag::kCount); ++i) {
    const auto flag = static_cast<ResponseFlag>(i);
    EXPECT_EQ(responseFlagFromShortString(responseFlagShortString(flag)), flag);
  }
  EXPECT_EQ(responseFlagFromShortString("XX"), std::nullopt);
  EXPECT_EQ(responseFlagLongString(ResponseFlag::kOverloadManager), "OverloadManagerTerminated");
}

TEST(StreamInfoTest, RequestComplete) {
  StreamInfo info;
  info.start_time_monotonic = std::chrono::steady_clock::time_point(std::chrono::seconds(10));
  info.onRequestComplete(info.start_time_monotonic + std::chrono::milliseconds(42));
  EXPECT_EQ(*info.request_complete, std::chrono::milliseconds(42));
  info.setResponseFlag(ResponseFlag::kDelayInjected);
  EXPECT_TRUE(info.hasResponseFlag(ResponseFlag::kDelayInjected));
}

}  // namespace
}  // namespace sheave
