#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/address.h"
#include "common/result.h"
#include "proxy/network/event_loop.h"
#include "proxy/network/tcp_listener.h"

namespace sheave::server {

struct AdminRequest {
  std::string method;
  std::string path;   // without the query string
  std::string query;  // after '?', undecoded
  std::string body;
  // The value of a query parameter (percent-decoded), or empty.
  std::string param(std::string_view name) const;
  bool hasParam(std::string_view name) const;
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=UTF-8";
  std::string body;
  // Runs once the response is written and the connection closed (e.g.
  // /quitquitquit exits only after its "OK" reached the caller).
  std::function<void()> after_response;
};

// Envoy's admin interface: a small HTTP/1.1 server on the main thread's
// loop. Handlers run on the main thread, so they may read configuration and
// stats directly; they never touch a worker's objects.
class AdminServer {
 public:
  using Handler = std::function<AdminResponse(const AdminRequest&)>;

  explicit AdminServer(network::EventLoop& loop);
  ~AdminServer();

  // `mutating` handlers answer only POST (Envoy's rule for /quitquitquit,
  // /logging, /drain_listeners ...).
  void addHandler(std::string path, std::string help, bool mutating, Handler handler);
  Result<Address> bind(const Address& address);
  void close();

 private:
  class AdminConnection;
  friend class AdminConnection;

  AdminResponse handle(const AdminRequest& request);
  void onAccept(int fd, const Address& local, const Address& remote);
  void onConnectionClosed(AdminConnection& connection);

  struct Entry {
    std::string help;
    bool mutating;
    Handler handler;
  };
  network::EventLoop& loop_;
  std::unique_ptr<network::TcpListener> listener_;
  std::map<std::string, Entry> handlers_;
  std::unordered_map<AdminConnection*, std::unique_ptr<AdminConnection>> connections_;
};

}  // namespace sheave::server
