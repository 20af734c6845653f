#include "proxy/filters/peer_metadata/tcp_exchange.h"

#include <gtest/gtest.h>

#include <string>

namespace sheave::peer_metadata {
namespace {

using State = ExchangeReader::State;

PeerWorkloadMetadata reviews() {
  PeerWorkloadMetadata w;
  w.workload_name = "reviews-v2";
  w.namespace_name = "shop";
  w.app_name = "reviews";
  w.app_version = "v2";
  return w;
}

// Istio's framing: magic 0x3D230467 and the payload length, both big-endian.
TEST(TcpExchangeTest, FramingIsIstios) {
  const std::string bytes = encodeExchange(reviews(), "sidecar~1.2.3.4~reviews-v2.shop~shop.svc");
  ASSERT_GT(bytes.size(), 8U);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x3D\x23\x04\x67", 4));
  const uint32_t size = (uint32_t(uint8_t(bytes[4])) << 24) | (uint32_t(uint8_t(bytes[5])) << 16) |
                        (uint32_t(uint8_t(bytes[6])) << 8) | uint32_t(uint8_t(bytes[7]));
  EXPECT_EQ(size, bytes.size() - 8);
  EXPECT_NE(bytes.find("type.googleapis.com/google.protobuf.Struct"), std::string::npos);
  EXPECT_NE(bytes.find("x-envoy-peer-metadata-id"), std::string::npos);
}

TEST(TcpExchangeTest, ReadsAnExchangeSplitAnywhereAndKeepsWhatFollows) {
  const std::string wire = encodeExchange(reviews(), "id") + "application bytes";
  for (size_t cut = 0; cut <= wire.size(); cut += 7) {
    ExchangeReader reader;
    network::Buffer out;
    network::Buffer first;
    first.add(wire.substr(0, cut));
    State state = reader.feed(first, out);
    if (state == State::kReading) EXPECT_EQ(out.length(), 0U);
    // Bytes after the exchange pass straight through.
    network::Buffer second;
    second.add(wire.substr(cut));
    state = reader.feed(second, out);
    ASSERT_EQ(state, State::kDone) << "cut at " << cut;
    ASSERT_NE(reader.peer(), nullptr);
    EXPECT_EQ(reader.peer()->workload_name, "reviews-v2");
    EXPECT_EQ(reader.peer()->app_version, "v2");
    EXPECT_EQ(out.toString(), "application bytes");
  }
}

TEST(TcpExchangeTest, WrongMagicPassesEveryByteOn) {
  ExchangeReader reader;
  network::Buffer in;
  network::Buffer out;
  in.add("GET / HTTP/1.1\r\n");
  EXPECT_EQ(reader.feed(in, out), State::kInvalid);
  EXPECT_EQ(out.toString(), "GET / HTTP/1.1\r\n");
  EXPECT_EQ(reader.peer(), nullptr);
  network::Buffer later;
  later.add("more");
  EXPECT_EQ(reader.feed(later, out), State::kInvalid);
  EXPECT_EQ(out.toString(), "GET / HTTP/1.1\r\nmore");
}

TEST(TcpExchangeTest, OversizedOrGarbledPayloadIsNotAnExchange) {
  {
    ExchangeReader reader;
    network::Buffer in;
    network::Buffer out;
    in.add(std::string("\x3D\x23\x04\x67\x7f\xff\xff\xff", 8));  // 2 GiB announced
    EXPECT_EQ(reader.feed(in, out), State::kInvalid);
    EXPECT_EQ(out.length(), 8U);
  }
  {
    ExchangeReader reader;
    network::Buffer in;
    network::Buffer out;
    in.add(std::string("\x3D\x23\x04\x67\x00\x00\x00\x03\xff\xff\xff", 11));
    EXPECT_EQ(reader.feed(in, out), State::kInvalid);
    EXPECT_EQ(out.length(), 11U);
  }
}

TEST(TcpExchangeTest, GivingUpReturnsWhatArrived) {
  ExchangeReader reader;
  network::Buffer in;
  network::Buffer out;
  in.add(std::string("\x3D\x23\x04", 3));
  EXPECT_EQ(reader.feed(in, out), State::kReading);
  reader.giveUp(out);
  EXPECT_EQ(reader.state(), State::kInvalid);
  EXPECT_EQ(out.length(), 3U);
}

}  // namespace
}  // namespace sheave::peer_metadata
