#include "proxy/grpc/async_client.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "../network/tls/test_certs.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "proxy/network/tls/tls_socket_factory.h"

namespace sheave::grpc {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using std::chrono::milliseconds;

constexpr std::string_view kAdsPath =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

// An ADS server that echoes each DiscoveryRequest as a DiscoveryResponse (version_info,
// type_url, nonce <- response_nonce). Some type_urls steer it: "deny" ends the call with
// PERMISSION_DENIED, "hang" blocks until the call is cancelled.
class EchoAds final : public AggregatedDiscoveryService::Service {
 public:
  ::grpc::Status StreamAggregatedResources(
      ::grpc::ServerContext* context,
      ::grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* stream) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& [key, value] : context->client_metadata()) {
        seen_metadata_[std::string(key.data(), key.size())] =
            std::string(value.data(), value.size());
      }
      deadline_set_ = context->deadline() != std::chrono::system_clock::time_point::max();
    }
    auto echo = context->client_metadata().find("x-echo");
    if (echo != context->client_metadata().end()) {
      context->AddInitialMetadata("x-echoed",
                                  std::string(echo->second.data(), echo->second.size()));
    }
    calls_started_++;
    DiscoveryRequest request;
    while (stream->Read(&request)) {
      if (request.type_url() == "deny") {
        return ::grpc::Status(::grpc::StatusCode::PERMISSION_DENIED,
                              "not for you: d\xc3\xa9j\xc3\xa0 100%\nbye");
      }
      if (request.type_url() == "hang") {
        hanging_++;
        while (!context->IsCancelled()) std::this_thread::sleep_for(milliseconds(2));
        return ::grpc::Status::CANCELLED;
      }
      DiscoveryResponse response;
      response.set_version_info(request.version_info());
      response.set_type_url(request.type_url());
      response.set_nonce(request.response_nonce());
      if (!stream->Write(response)) break;
    }
    return ::grpc::Status::OK;
  }

  std::string metadata(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = seen_metadata_.find(key);
    return it == seen_metadata_.end() ? std::string() : it->second;
  }
  bool deadlineSet() {
    std::lock_guard<std::mutex> lock(mutex_);
    return deadline_set_;
  }

  std::atomic<int> calls_started_{0};
  std::atomic<int> hanging_{0};

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> seen_metadata_;
  bool deadline_set_ = false;
};

class GrpcServer {
 public:
  explicit GrpcServer(std::shared_ptr<::grpc::ServerCredentials> credentials =
                          ::grpc::InsecureServerCredentials()) {
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~GrpcServer() { shutdown(); }
  void shutdown(milliseconds grace = milliseconds(0)) {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + grace);
      server_->Wait();
      server_.reset();
    }
  }
  Address address() const { return *Address::parse("127.0.0.1", static_cast<uint16_t>(port_)); }
  EchoAds& service() { return service_; }

 private:
  EchoAds service_;
  int port_ = 0;
  std::unique_ptr<::grpc::Server> server_;
};

// Records one call's events and checks they come in the documented order.
class Recorder : public AsyncStreamCallbacks {
 public:
  void onReceiveInitialMetadata(HeaderMap&& metadata) override {
    EXPECT_FALSE(closed());
    EXPECT_TRUE(messages.empty());
    initial = std::move(metadata);
    initial_count++;
  }
  void onReceiveMessage(std::string&& message) override {
    EXPECT_FALSE(closed());
    DiscoveryResponse response;
    EXPECT_TRUE(response.ParseFromString(message));
    messages.push_back(std::move(response));
    if (on_message) on_message();
  }
  void onReceiveTrailingMetadata(HeaderMap&& metadata) override {
    EXPECT_FALSE(closed());
    trailing = std::move(metadata);
  }
  void onRemoteClose(StatusCode code, std::string message) override {
    close_count++;
    status = code;
    status_message = std::move(message);
    if (on_close) on_close();
  }

  bool closed() const { return close_count > 0; }

  HeaderMap initial;
  HeaderMap trailing;
  int initial_count = 0;
  std::vector<DiscoveryResponse> messages;
  int close_count = 0;
  std::optional<StatusCode> status;
  std::string status_message;
  std::function<void()> on_message;
  std::function<void()> on_close;
};

std::string request(std::string_view type_url, std::string_view version,
                    std::string_view nonce = "") {
  DiscoveryRequest r;
  r.set_type_url(std::string(type_url));
  r.set_version_info(std::string(version));
  r.set_response_nonce(std::string(nonce));
  return r.SerializeAsString();
}

class AsyncClientTest : public ::testing::Test {
 protected:
  // Runs the loop in this thread until done() holds or the bound passes.
  bool runUntil(const std::function<bool()>& done, milliseconds timeout = milliseconds(10000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_ptr<network::Timer> poll;
    poll = loop_.createTimer([&] {
      if (done() || std::chrono::steady_clock::now() >= deadline) {
        loop_.exit();
      } else {
        poll->enable(milliseconds(1));
      }
    });
    poll->enable(milliseconds(0));
    loop_.run();
    return done();
  }

  network::EventLoop loop_;
};

TEST_F(AsyncClientTest, BidiStreamEchoesManyMessages) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  HeaderMap metadata;
  metadata.add("x-echo", "hello");
  metadata.add("content-type", "text/plain");  // reserved: ignored
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, metadata, std::nullopt);
  ASSERT_NE(stream, nullptr);

  constexpr int kMessages = 200;
  for (int i = 0; i < kMessages / 2; ++i) {
    ASSERT_TRUE(stream->sendMessage(request("t", "v" + std::to_string(i), "n"), false).ok());
  }
  ASSERT_TRUE(runUntil([&] { return recorder.messages.size() == kMessages / 2; }));
  // Ping-pong for the second half: each response triggers the next request.
  recorder.on_message = [&] {
    const size_t n = recorder.messages.size();
    if (n < kMessages) {
      ASSERT_TRUE(stream->sendMessage(request("t", "v" + std::to_string(n)), false).ok());
    }
  };
  ASSERT_TRUE(stream->sendMessage(request("t", "v" + std::to_string(kMessages / 2)), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.messages.size() == kMessages; }));
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(recorder.messages[i].version_info(), "v" + std::to_string(i));
  }
  EXPECT_EQ(recorder.messages[0].nonce(), "n");
  EXPECT_EQ(recorder.initial_count, 1);
  ASSERT_NE(recorder.initial.get("x-echoed"), nullptr);
  EXPECT_EQ(*recorder.initial.get("x-echoed"), "hello");
  EXPECT_FALSE(recorder.initial.has(":status"));

  stream->closeStream();
  EXPECT_FALSE(stream->sendMessage(request("t", "late"), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kOk);
  EXPECT_EQ(recorder.close_count, 1);
  ASSERT_NE(recorder.trailing.get("grpc-status"), nullptr);
  EXPECT_TRUE(stream->closed());
  EXPECT_NE(server.service().metadata("user-agent").find("sheave-proxy"), std::string::npos);
  EXPECT_EQ(server.service().metadata("x-echo"), "hello");
  EXPECT_FALSE(server.service().deadlineSet());
  EXPECT_EQ(client.activeStreams(), 0u);
}

TEST_F(AsyncClientTest, OneMebibyteMessagesBothWays) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  std::string big(1024 * 1024, 'q');
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(stream->sendMessage(request("big", big), false).ok());
  ASSERT_TRUE(stream->sendMessage(request("big", big.substr(1)), true).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kOk) << recorder.status_message;
  ASSERT_EQ(recorder.messages.size(), 2u);
  EXPECT_EQ(recorder.messages[0].version_info(), big);
  EXPECT_EQ(recorder.messages[1].version_info(), big.substr(1));
}

TEST_F(AsyncClientTest, TwoConcurrentStreamsShareOneConnection) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder a, b;
  std::unique_ptr<AsyncStream> sa = client.start(kAdsPath, a, {}, std::nullopt);
  std::unique_ptr<AsyncStream> sb = client.start(kAdsPath, b, {}, std::nullopt);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(sa->sendMessage(request("a", std::to_string(i)), false).ok());
    ASSERT_TRUE(sb->sendMessage(request("b", std::to_string(i)), false).ok());
  }
  ASSERT_TRUE(runUntil([&] { return a.messages.size() == 20 && b.messages.size() == 20; }));
  EXPECT_EQ(client.activeStreams(), 2u);
  sa->closeStream();
  ASSERT_TRUE(runUntil([&] { return a.closed(); }));
  // b keeps going after a ended.
  ASSERT_TRUE(sb->sendMessage(request("b", "after"), true).ok());
  ASSERT_TRUE(runUntil([&] { return b.closed(); }));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(a.messages[i].type_url(), "a");
    EXPECT_EQ(b.messages[i].version_info(), std::to_string(i));
  }
  EXPECT_EQ(b.messages.back().version_info(), "after");
  EXPECT_EQ(a.status, StatusCode::kOk);
  EXPECT_EQ(b.status, StatusCode::kOk);
  EXPECT_EQ(client.connectionsOpened(), 1u);
  EXPECT_EQ(server.service().calls_started_.load(), 2);
}

TEST_F(AsyncClientTest, ServerErrorStatusAndMessage) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  ASSERT_TRUE(stream->sendMessage(request("t", "1"), false).ok());
  ASSERT_TRUE(stream->sendMessage(request("deny", "2"), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kPermissionDenied);
  EXPECT_EQ(recorder.status_message, "not for you: d\xc3\xa9j\xc3\xa0 100%\nbye");
  EXPECT_EQ(recorder.messages.size(), 1u);
  ASSERT_NE(recorder.trailing.get("grpc-status"), nullptr);
  EXPECT_EQ(*recorder.trailing.get("grpc-status"), "7");
  EXPECT_FALSE(stream->sendMessage(request("t", "3"), false).ok());
  // The connection stays usable for the next call.
  Recorder next;
  std::unique_ptr<AsyncStream> again = client.start(kAdsPath, next, {}, std::nullopt);
  ASSERT_TRUE(again->sendMessage(request("t", "x"), true).ok());
  ASSERT_TRUE(runUntil([&] { return next.closed(); }));
  EXPECT_EQ(next.status, StatusCode::kOk);
  EXPECT_EQ(client.connectionsOpened(), 1u);
  EXPECT_EQ(recorder.close_count, 1);
}

TEST_F(AsyncClientTest, ConnectionRefusedIsUnavailable) {
  // A port that was just free: nothing listens on it.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  Address address = Address::localOf(fd);
  ::close(fd);

  AsyncClient client(loop_, address);
  Recorder a, b;
  std::unique_ptr<AsyncStream> sa = client.start(kAdsPath, a, {}, std::nullopt);
  std::unique_ptr<AsyncStream> sb = client.start(kAdsPath, b, {}, std::nullopt);
  // Queued while connecting; the failure reaches both calls.
  EXPECT_TRUE(sa->sendMessage(request("t", "1"), false).ok());
  ASSERT_TRUE(runUntil([&] { return a.closed() && b.closed(); }));
  EXPECT_EQ(a.status, StatusCode::kUnavailable);
  EXPECT_EQ(b.status, StatusCode::kUnavailable);
  EXPECT_NE(a.status_message.find("refused"), std::string::npos) << a.status_message;
  EXPECT_EQ(a.initial_count, 0);
  // The next call tries a new connection (and fails the same way).
  Recorder c;
  std::unique_ptr<AsyncStream> sc = client.start(kAdsPath, c, {}, std::nullopt);
  ASSERT_TRUE(runUntil([&] { return c.closed(); }));
  EXPECT_EQ(c.status, StatusCode::kUnavailable);
  EXPECT_EQ(client.connectionsOpened(), 2u);
  EXPECT_EQ(a.close_count + b.close_count + c.close_count, 3);
}

TEST_F(AsyncClientTest, ServerShutdownMidStreamIsUnavailable) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  ASSERT_TRUE(stream->sendMessage(request("t", "1"), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.messages.size() == 1; }));
  // Shutdown blocks until the handler returns, so it runs beside the loop.
  std::thread stopper([&] { server.shutdown(); });
  const bool closed = runUntil([&] { return recorder.closed(); });
  stopper.join();
  ASSERT_TRUE(closed);
  EXPECT_EQ(recorder.status, StatusCode::kUnavailable)
      << statusName(*recorder.status) << ": " << recorder.status_message;
  EXPECT_EQ(recorder.close_count, 1);
  // A call after the server is gone fails too, through a new connection.
  Recorder after;
  std::unique_ptr<AsyncStream> again = client.start(kAdsPath, after, {}, std::nullopt);
  ASSERT_TRUE(runUntil([&] { return after.closed(); }));
  EXPECT_EQ(after.status, StatusCode::kUnavailable);
}

TEST_F(AsyncClientTest, GoAwayDrainsRunningCallsAndNewCallsUseANewConnection) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  ASSERT_TRUE(stream->sendMessage(request("t", "before"), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.messages.size() == 1; }));
  // A graceful shutdown sends GOAWAY and lets the running call finish within the grace period.
  std::thread stopper([&] { server.shutdown(milliseconds(5000)); });
  // Once the GOAWAY has reached the client, a new call needs a new connection (refused: the
  // server no longer listens), while the running call goes on.
  runUntil([] { return false; }, milliseconds(200));
  Recorder fresh;
  std::unique_ptr<AsyncStream> second = client.start(kAdsPath, fresh, {}, std::nullopt);
  ASSERT_TRUE(runUntil([&] { return fresh.closed(); }));
  EXPECT_EQ(fresh.status, StatusCode::kUnavailable);
  EXPECT_EQ(client.connectionsOpened(), 2u);
  ASSERT_TRUE(stream->sendMessage(request("t", "after"), true).ok());
  const bool closed = runUntil([&] { return recorder.closed(); });
  stopper.join();
  ASSERT_TRUE(closed);
  EXPECT_EQ(recorder.status, StatusCode::kOk) << recorder.status_message;
  ASSERT_EQ(recorder.messages.size(), 2u);
  EXPECT_EQ(recorder.messages[1].version_info(), "after");
}

TEST_F(AsyncClientTest, DeadlineExceeded) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, milliseconds(300));
  ASSERT_TRUE(stream->sendMessage(request("hang", "1"), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kDeadlineExceeded) << recorder.status_message;
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(250));
  EXPECT_TRUE(server.service().deadlineSet());
  EXPECT_EQ(recorder.close_count, 1);
  // Let a late RST_STREAM or trailers arrive: still exactly one close.
  runUntil([] { return false; }, milliseconds(100));
  EXPECT_EQ(recorder.close_count, 1);
}

TEST_F(AsyncClientTest, OversizedResponseIsResourceExhausted) {
  GrpcServer server;
  AsyncClientOptions options;
  options.max_receive_message_bytes = 64 * 1024;
  AsyncClient client(loop_, server.address(), options);
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  ASSERT_TRUE(stream->sendMessage(request("t", "small"), false).ok());
  ASSERT_TRUE(stream->sendMessage(request("t", std::string(128 * 1024, 'x')), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kResourceExhausted) << recorder.status_message;
  EXPECT_EQ(recorder.messages.size(), 1u);
}

TEST_F(AsyncClientTest, SendBufferIsBounded) {
  GrpcServer server;
  AsyncClientOptions options;
  options.max_send_buffer_bytes = 256 * 1024;
  AsyncClient client(loop_, server.address(), options);
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  // Not connected yet: at most the initial 64 KiB window leaves the stream's queue, so the
  // second message does not fit.
  ASSERT_TRUE(stream->sendMessage(request("t", std::string(240 * 1024, 'a')), false).ok());
  EXPECT_FALSE(stream->sendMessage(request("t", std::string(100 * 1024, 'b')), false).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.messages.size() == 1; }));
  // Once the peer's windows took it, there is room again.
  ASSERT_TRUE(stream->sendMessage(request("t", std::string(100 * 1024, 'b')), true).ok());
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kOk);
  EXPECT_EQ(recorder.messages.size(), 2u);
}

TEST_F(AsyncClientTest, StreamDestroyedInsideCallbackGetsNoMoreCallbacks) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  recorder.on_message = [&] { stream.reset(); };
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(stream->sendMessage(request("t", "m"), false).ok());
  ASSERT_TRUE(runUntil([&] { return stream == nullptr; }));
  runUntil([] { return false; }, milliseconds(100));
  EXPECT_EQ(recorder.messages.size(), 1u);
  EXPECT_EQ(recorder.close_count, 0);
  // The server saw the cancellation; the connection still serves new calls.
  Recorder next;
  std::unique_ptr<AsyncStream> again = client.start(kAdsPath, next, {}, std::nullopt);
  ASSERT_TRUE(again->sendMessage(request("t", "x"), true).ok());
  ASSERT_TRUE(runUntil([&] { return next.closed(); }));
  EXPECT_EQ(next.status, StatusCode::kOk);
  EXPECT_EQ(client.connectionsOpened(), 1u);
}

TEST_F(AsyncClientTest, ClientDestroyedInsideCallbackSilencesEveryStream) {
  GrpcServer server;
  auto client = std::make_unique<AsyncClient>(loop_, server.address());
  Recorder a, b;
  std::unique_ptr<AsyncStream> sa = client->start(kAdsPath, a, {}, std::nullopt);
  std::unique_ptr<AsyncStream> sb = client->start(kAdsPath, b, {}, milliseconds(5000));
  a.on_message = [&] { client.reset(); };
  ASSERT_TRUE(sb->sendMessage(request("hang", "1"), false).ok());
  ASSERT_TRUE(sa->sendMessage(request("t", "1"), false).ok());
  ASSERT_TRUE(runUntil([&] { return client == nullptr; }));
  runUntil([] { return false; }, milliseconds(100));
  EXPECT_EQ(a.close_count, 0);
  EXPECT_EQ(b.close_count, 0);
  EXPECT_FALSE(sa->sendMessage(request("t", "2"), false).ok());
  sa->closeStream();
  sb->resetStream();
  sa.reset();
  sb.reset();
  runUntil([] { return false; }, milliseconds(10));
}

TEST_F(AsyncClientTest, ResetStreamCancelsWithoutCallback) {
  GrpcServer server;
  AsyncClient client(loop_, server.address());
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  ASSERT_TRUE(stream->sendMessage(request("hang", "1"), false).ok());
  ASSERT_TRUE(runUntil([&] { return server.service().hanging_.load() == 1; }));
  stream->resetStream();
  EXPECT_TRUE(stream->closed());
  EXPECT_FALSE(stream->sendMessage(request("t", "1"), false).ok());
  runUntil([] { return false; }, milliseconds(100));
  EXPECT_EQ(recorder.close_count, 0);
  EXPECT_EQ(client.activeStreams(), 0u);
}

// TLS with ALPN h2 through a transport socket factory, against grpc++'s TLS server.
TEST_F(AsyncClientTest, TlsWithAlpnH2) {
  using network::tls::testing::TestPki;
  const TestPki& pki = TestPki::get();
  ::grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({pki.server.keyPem(), pki.server.certPem()});
  GrpcServer server(::grpc::SslServerCredentials(ssl));

  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
  tls.set_sni("server.test");
  tls.mutable_common_tls_context()->add_alpn_protocols("h2");
  tls.mutable_common_tls_context()
      ->mutable_validation_context()
      ->mutable_trusted_ca()
      ->set_inline_string(pki.ca.certPem());
  auto factory = network::tls::TlsSocketFactory::createClient(tls, nullptr);
  ASSERT_TRUE(factory.ok()) << factory.error().message();
  AsyncClientOptions options;
  options.authority = "server.test";
  options.transport_socket_factory = [f = *factory] { return f->createTransportSocket(); };
  AsyncClient client(loop_, server.address(), options);
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, milliseconds(10000));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(stream->sendMessage(request("tls", std::to_string(i)), i == 9).ok());
  }
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kOk) << recorder.status_message;
  EXPECT_EQ(recorder.messages.size(), 10u);
}

// Without ALPN h2 there is no HTTP/2 over TLS: grpc++ completes the handshake without ALPN, and
// the client refuses to speak HTTP/2 over it (UNAVAILABLE) rather than guess the protocol.
TEST_F(AsyncClientTest, TlsWithoutAlpnH2IsUnavailable) {
  using network::tls::testing::TestPki;
  const TestPki& pki = TestPki::get();
  ::grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({pki.server.keyPem(), pki.server.certPem()});
  GrpcServer server(::grpc::SslServerCredentials(ssl));

  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;  // no ALPN offered
  tls.set_sni("server.test");
  tls.mutable_common_tls_context()
      ->mutable_validation_context()
      ->mutable_trusted_ca()
      ->set_inline_string(pki.ca.certPem());
  auto factory = network::tls::TlsSocketFactory::createClient(tls, nullptr);
  ASSERT_TRUE(factory.ok()) << factory.error().message();
  AsyncClientOptions options;
  options.transport_socket_factory = [f = *factory] { return f->createTransportSocket(); };
  AsyncClient client(loop_, server.address(), options);
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start(kAdsPath, recorder, {}, std::nullopt);
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kUnavailable) << recorder.status_message;
  EXPECT_NE(recorder.status_message.find("ALPN"), std::string::npos);
}

TEST_F(AsyncClientTest, BadPathFailsFromTheLoop) {
  AsyncClient client(loop_, *Address::parse("127.0.0.1", 1));
  Recorder recorder;
  std::unique_ptr<AsyncStream> stream = client.start("no-slash", recorder, {}, std::nullopt);
  EXPECT_EQ(recorder.close_count, 0);  // never from inside start()
  ASSERT_TRUE(runUntil([&] { return recorder.closed(); }));
  EXPECT_EQ(recorder.status, StatusCode::kInvalidArgument);
  EXPECT_EQ(client.connectionsOpened(), 0u);
}

}  // namespace
}  // namespace sheave::grpc
