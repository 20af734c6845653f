#include "proxy/server/admin.h"

#include <unistd.h>

#include "common/logging.h"
#include "proxy/http/http1/encoder.h"
#include "proxy/http/http1/parser.h"
#include "proxy/network/connection.h"

namespace sheave::server {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

template <class F>
void forEachParam(std::string_view query, F&& f) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    f(pair.substr(0, eq), eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

std::string AdminRequest::param(std::string_view name) const {
  std::string out;
  forEachParam(query, [&](std::string_view k, std::string_view v) {
    if (out.empty() && percentDecode(k) == name) out = percentDecode(v);
  });
  return out;
}

bool AdminRequest::hasParam(std::string_view name) const {
  bool found = false;
  forEachParam(query, [&](std::string_view k, std::string_view) {
    if (percentDecode(k) == name) found = true;
  });
  return found;
}

class AdminServer::AdminConnection : public network::ConnectionCallbacks,
                                     public http1::ParserCallbacks,
                                     public network::DeferredDeletable {
 public:
  AdminConnection(AdminServer& server, std::unique_ptr<network::Connection> connection)
      : server_(server),
        connection_(std::move(connection)),
        parser_(http1::Mode::kRequest, http1::Limits{}, *this) {
    connection_->setCallbacks(*this);
  }

  void onData(network::Buffer& data, bool) override {
    while (data.length() > 0 && !closing_) {
      std::string_view chunk = data.frontSlice();
      auto result = parser_.parse(chunk);
      data.drain(result.consumed);
      if (!result.ok()) {
        respond(AdminResponse{result.error->http_status, "text/plain", ""}, false);
        return;
      }
      if (parser_.paused()) parser_.resume();
    }
  }

  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::kConnected) return;
    if (after_response_) server_.loop_.post(std::move(after_response_));
    server_.onConnectionClosed(*this);
  }

  void onHeaders(HeaderMap&& headers, const http1::MessageInfo& info) override {
    request_ = AdminRequest{};
    std::string_view target = headers.path();
    size_t q = target.find('?');
    request_.method = std::string(headers.method());
    request_.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) request_.query = std::string(target.substr(q + 1));
    keep_alive_ = info.keep_alive;
  }
  void onBody(std::string_view data) override {
    if (request_.body.size() < 1024 * 1024) request_.body.append(data);
  }
  void onMessageComplete(HeaderMap&&) override { respond(server_.handle(request_), keep_alive_); }

 private:
  void respond(const AdminResponse& response, bool keep_alive) {
    if (response.after_response) {
      after_response_ = response.after_response;
      keep_alive = false;
    }
    HeaderMap headers;
    headers.add(":status", std::to_string(response.status));
    headers.add("content-type", response.content_type);
    headers.add("cache-control", "no-cache, max-age=0");
    headers.add("x-content-type-options", "nosniff");
    headers.add("content-length", std::to_string(response.body.size()));
    if (!keep_alive) headers.add("connection", "close");
    std::string out;
    http1::encodeResponseHeaders(headers, 1, false, out);
    if (request_.method != "HEAD") out += response.body;
    network::Buffer b;
    b.add(out);
    connection_->write(b, false);
    if (!keep_alive) {
      closing_ = true;
      connection_->close(network::ConnectionCloseType::kFlushWrite);
    }
  }

  AdminServer& server_;
  std::unique_ptr<network::Connection> connection_;
  http1::Parser parser_;
  AdminRequest request_;
  std::function<void()> after_response_;
  bool keep_alive_ = true;
  bool closing_ = false;
};

AdminServer::AdminServer(network::EventLoop& loop) : loop_(loop) {
  addHandler("/help", "print out list of admin commands", false, [this](const AdminRequest&) {
    AdminResponse r;
    r.body = "admin commands are:\n";
    for (const auto& [path, entry] : handlers_) {
      r.body += "  " + path + ": " + entry.help + "\n";
    }
    return r;
  });
}

AdminServer::~AdminServer() = default;

void AdminServer::addHandler(std::string path, std::string help, bool mutating, Handler handler) {
  handlers_[std::move(path)] = Entry{std::move(help), mutating, std::move(handler)};
}

Result<Address> AdminServer::bind(const Address& address) {
  auto listener = network::TcpListener::create(
      loop_, address, false,
      [this](int fd, const Address& local, const Address& remote) { onAccept(fd, local, remote); });
  if (!listener.ok()) return std::move(listener).error().at("admin.address " + address.asString());
  listener_ = std::move(listener).value();
  return listener_->boundAddress();
}

void AdminServer::close() {
  listener_.reset();
  connections_.clear();
}

void AdminServer::onAccept(int fd, const Address& local, const Address& remote) {
  auto connection = network::Connection::createServer(loop_, fd, local, remote);
  auto admin = std::make_unique<AdminConnection>(*this, std::move(connection));
  AdminConnection* key = admin.get();
  connections_[key] = std::move(admin);
}

void AdminServer::onConnectionClosed(AdminConnection& connection) {
  auto it = connections_.find(&connection);
  if (it == connections_.end()) return;
  loop_.deferredDelete(std::move(it->second));
  connections_.erase(it);
}

AdminResponse AdminServer::handle(const AdminRequest& request) {
  auto it = handlers_.find(request.path);
  if (it == handlers_.end()) {
    AdminResponse r;
    r.status = 404;
    r.body = "invalid path. admin commands are:\n";
    for (const auto& [path, entry] : handlers_) r.body += "  " + path + ": " + entry.help + "\n";
    return r;
  }
  if (it->second.mutating && request.method != "POST") {
    return AdminResponse{405, "text/plain; charset=UTF-8", "This endpoint requires POST.\n"};
  }
  return it->second.handler(request);
}

}  // namespace sheave::server
