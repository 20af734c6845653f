#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.h"

namespace sheave::control {

struct HttpRequest {
  std::string method;
  std::string path;                                       // without the query
  std::map<std::string, std::string, std::less<>> query;  // percent-decoded; last value wins
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpServerOptions {
  // A request head larger than this is answered 431 and the connection closed.
  size_t max_request_bytes = 8192;
  // From accept to the last byte written: a client that trickles its request
  // or never reads the answer is cut off after this, so it holds only its own
  // slot, never the server.
  std::chrono::milliseconds connection_timeout{5000};
  // Connections served at once; more are refused with 503.
  size_t max_connections = 64;
};

// The monitoring and debug endpoints' HTTP/1.1 server (port 15014 in Istio):
// GET only, one request per connection (Connection: close), one thread that
// multiplexes every connection with poll(), so a slow or hostile client never
// holds up the others. Handlers run on that thread and must not block for
// long; they are registered before start().
class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  explicit HttpServer(HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Exact path match ("/debug/syncz").
  void addHandler(std::string path, Handler handler);

  // Binds "127.0.0.1:15014" / "[::1]:0" and starts the thread.
  Status start(const std::string& address);
  int port() const { return port_; }
  // Closes the listener and every connection; idempotent.
  void stop();

  // What a request head (everything up to and including the blank line)
  // gets; exposed for tests.
  HttpResponse handle(std::string_view head) const;

 private:
  void run();

  const HttpServerOptions options_;
  std::map<std::string, Handler, std::less<>> handlers_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// "200 OK", "404 Not Found", ... for the status line.
std::string_view httpReason(int status);
// Serializes a response with Content-Length and Connection: close.
std::string serializeResponse(const HttpResponse& response);

}  // namespace sheave::control
