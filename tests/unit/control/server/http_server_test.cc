#include "control/server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace sheave::control {
namespace {

using std::chrono::milliseconds;

int connectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Sends raw bytes and reads until the server closes (bounded by SO_RCVTIMEO).
std::string roundTrip(int port, const std::string& request) {
  int fd = connectTo(port);
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

int statusOf(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 9, "HTTP/1.1 ") != 0) return -1;
  return std::stoi(response.substr(9, 3));
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.max_request_bytes = 1024;
    options.connection_timeout = milliseconds(300);
    server_ = std::make_unique<HttpServer>(options);
    server_->addHandler("/hello", [](const HttpRequest& r) {
      HttpResponse resp;
      auto it = r.query.find("name");
      resp.body = "hello " + (it == r.query.end() ? std::string("world") : it->second);
      return resp;
    });
    ASSERT_TRUE(server_->start("127.0.0.1:0").ok());
    port_ = server_->port();
    ASSERT_GT(port_, 0);
  }
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpServerTest, ServesRegisteredPathWithDecodedQuery) {
  std::string r = roundTrip(port_, "GET /hello?name=a%20b+c HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(statusOf(r), 200) << r;
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  EXPECT_NE(r.find("Content-Length: 11"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\n\r\nhello a b c"), std::string::npos) << r;
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  EXPECT_EQ(statusOf(roundTrip(port_, "GET /nope HTTP/1.1\r\n\r\n")), 404);
}

TEST_F(HttpServerTest, OnlyGet) {
  std::string r = roundTrip(port_, "POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(statusOf(r), 405);
  EXPECT_NE(r.find("Allow: GET"), std::string::npos);
}

TEST_F(HttpServerTest, MalformedRequestsAre400) {
  EXPECT_EQ(statusOf(roundTrip(port_, "GARBAGE\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port_, "GET  /hello HTTP/1.1\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port_, "GET hello HTTP/1.1\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port_, "GET /hello HTTP/1.1\r\nno colon here\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port_, "GET /hello%zz HTTP/1.1\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port_, "GET /hello?a=%4 HTTP/1.1\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port_, "G\x01T /hello HTTP/1.1\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port_, "GET /hello HTTP/2.0\r\n\r\n")), 505);
  EXPECT_EQ(statusOf(roundTrip(port_, "GET /hello FTP/1.0\r\n\r\n")), 400);
}

TEST_F(HttpServerTest, OversizedHeadIs431) {
  std::string big = "GET /hello HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n";
  EXPECT_EQ(statusOf(roundTrip(port_, big)), 431);
}

TEST_F(HttpServerTest, SlowClientDoesNotBlockOthers) {
  // A client that sends half a request and then nothing.
  int slow = connectTo(port_);
  std::string partial = "GET /hello HTTP/1.1\r\n";
  ::send(slow, partial.data(), partial.size(), MSG_NOSIGNAL);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(statusOf(roundTrip(port_, "GET /hello HTTP/1.1\r\n\r\n")), 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(250));
  // The slow one is cut off at its deadline (408 then close).
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::recv(slow, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(slow);
  EXPECT_EQ(statusOf(out), 408) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
}

TEST_F(HttpServerTest, IdleConnectionIsClosedSilently) {
  int fd = connectTo(port_);
  char buf[16];
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(::recv(fd, buf, sizeof(buf), 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
  ::close(fd);
}

TEST_F(HttpServerTest, HandlerExceptionIs500) {
  HttpServer local;
  local.addHandler("/boom",
                   [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("kaboom"); });
  HttpResponse r = local.handle("GET /boom HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("kaboom"), std::string::npos);
}

TEST(HttpServerStartTest, PortInUseIsAnError) {
  HttpServer a;
  ASSERT_TRUE(a.start("127.0.0.1:0").ok());
  HttpServer b;
  Status s = b.start("127.0.0.1:" + std::to_string(a.port()));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("cannot listen"), std::string::npos);
  HttpServer c;
  EXPECT_FALSE(c.start("not-an-address").ok());
}

}  // namespace
}  // namespace sheave::control
