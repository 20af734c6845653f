#include "control/server/http_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/address.h"
#include "common/logging.h"

namespace sheave::control {
namespace {

using Clock = std::chrono::steady_clock;

HttpResponse textResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  if (!r.body.empty() && r.body.back() != '\n') r.body.push_back('\n');
  return r;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query components use '+' for space (HTML forms); paths do not.
bool percentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hexValue(in[i + 1]);
      int lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool isTokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

struct Connection {
  int fd = -1;
  Clock::time_point deadline;
  std::string in;
  std::string out;
  size_t written = 0;
  bool responding = false;
};

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

std::string_view httpReason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string serializeResponse(const HttpResponse& response) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " ";
  out += httpReason(response.status);
  out += "\r\nContent-Type: " + response.content_type;
  out += "\r\nContent-Length: " + std::to_string(response.body.size());
  if (response.status == 405) out += "\r\nAllow: GET";
  out += "\r\nConnection: close\r\n\r\n";
  out += response.body;
  return out;
}

HttpServer::HttpServer(HttpServerOptions options) : options_(options) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::addHandler(std::string path, Handler handler) {
  handlers_[std::move(path)] = std::move(handler);
}

HttpResponse HttpServer::handle(std::string_view head) const {
  size_t line_end = head.find("\r\n");
  if (line_end == std::string_view::npos) return textResponse(400, "malformed request line");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return textResponse(400, "malformed request line");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty()) return textResponse(400, "malformed request line");
  for (char c : method) {
    if (!isTokenChar(c)) return textResponse(400, "malformed method");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.substr(0, 5) == "HTTP/") return textResponse(505, "only HTTP/1.x is served");
    return textResponse(400, "malformed HTTP version");
  }
  // Header lines are not used, but each must at least look like one, so
  // that garbage is refused rather than half-understood.
  std::string_view rest = head.substr(line_end + 2);
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    if (end == std::string_view::npos) return textResponse(400, "malformed header block");
    std::string_view field = rest.substr(0, end);
    rest.remove_prefix(end + 2);
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos) {
      return textResponse(400, "malformed header line");
    }
    for (char c : field.substr(0, colon)) {
      if (!isTokenChar(c)) return textResponse(400, "malformed header name");
    }
  }
  if (target.empty() || target.front() != '/') return textResponse(400, "target must be a path");
  HttpRequest request;
  request.method = std::string(method);
  size_t q = target.find('?');
  if (!percentDecode(target.substr(0, q), false, &request.path)) {
    return textResponse(400, "bad percent-encoding in the path");
  }
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view part = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (part.empty()) continue;
      size_t eq = part.find('=');
      std::string key, value;
      if (!percentDecode(part.substr(0, eq), true, &key) ||
          (eq != std::string_view::npos && !percentDecode(part.substr(eq + 1), true, &value))) {
        return textResponse(400, "bad percent-encoding in the query");
      }
      request.query[key] = value;
    }
  }
  if (request.method != "GET") return textResponse(405, "only GET is served");
  auto it = handlers_.find(request.path);
  if (it == handlers_.end()) return textResponse(404, "no such endpoint: " + request.path);
  try {
    return it->second(request);
  } catch (const std::exception& e) {
    return textResponse(500, std::string("internal error: ") + e.what());
  }
}

Status HttpServer::start(const std::string& address) {
  SHEAVE_ASSIGN_OR_RETURN(Address addr, Address::parseIpPort(address));
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ioError(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, addr.sockAddr(), addr.len()) != 0) {
    int err = errno;
    ::close(fd);
    return ioError("cannot listen on " + address + ": " + std::strerror(err));
  }
  if (::listen(fd, 128) != 0) {
    int err = errno;
    ::close(fd);
    return ioError("listen on " + address + ": " + std::strerror(err));
  }
  listen_fd_ = fd;
  port_ = Address::localOf(fd).port();
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return ioError(std::string("eventfd: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { run(); });
  return okStatus();
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void HttpServer::run() {
  std::vector<Connection> conns;
  std::vector<pollfd> fds;
  auto finish = [&](Connection& c, HttpResponse response) {
    c.out = serializeResponse(response);
    c.written = 0;
    c.responding = true;
    ::shutdown(c.fd, SHUT_RD);
  };
  while (!stopping_.load()) {
    auto now = Clock::now();
    int timeout_ms = -1;
    for (const Connection& c : conns) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count();
      left = std::max<int64_t>(left, 0) + 1;
      if (timeout_ms < 0 || left < timeout_ms) timeout_ms = static_cast<int>(left);
    }
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Connection& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.responding ? POLLOUT : POLLIN), 0});
    }
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      SHEAVE_LOG_ERROR("http: poll: {}", std::strerror(errno));
      break;
    }
    if (stopping_.load()) break;
    now = Clock::now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Connection& c = conns[i];
      short revents = fds[i + 2].revents;
      if (!c.responding && (revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[4096];
        ssize_t got = ::recv(c.fd, buf, sizeof(buf), 0);
        if (got > 0) {
          c.in.append(buf, static_cast<size_t>(got));
          size_t end = c.in.find("\r\n\r\n");
          if (end != std::string::npos && end + 4 <= options_.max_request_bytes) {
            finish(c, handle(std::string_view(c.in).substr(0, end + 4)));
          } else if (c.in.size() > options_.max_request_bytes) {
            finish(c, textResponse(431, "request head larger than " +
                                            std::to_string(options_.max_request_bytes) + " bytes"));
          }
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          c.deadline = now;  // peer gone before a full request: just close
          c.responding = false;
          c.in.clear();
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
      }
      if (c.responding && (revents & (POLLOUT | POLLHUP | POLLERR))) {
        ssize_t sent =
            ::send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
        if (sent > 0) {
          c.written += static_cast<size_t>(sent);
        } else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
          c.written = c.out.size();  // peer gone
        }
        if (c.written == c.out.size()) {
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
      }
      if (now >= c.deadline) {
        if (!c.responding && !c.in.empty()) {
          // Best effort: the client is slow, a short answer may still fit.
          std::string out = serializeResponse(textResponse(408, "request timed out"));
          [[maybe_unused]] ssize_t s = ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
        }
        ::close(c.fd);
        c.fd = -1;
      }
    }
    std::erase_if(conns, [](const Connection& c) { return c.fd < 0; });
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        if (conns.size() >= options_.max_connections) {
          std::string out = serializeResponse(textResponse(503, "too many connections"));
          [[maybe_unused]] ssize_t s = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
          ::close(fd);
          continue;
        }
        setNonBlocking(fd);
        Connection c;
        c.fd = fd;
        c.deadline = now + options_.connection_timeout;
        conns.push_back(std::move(c));
      }
    }
  }
  for (Connection& c : conns) ::close(c.fd);
}

}  // namespace sheave::control
