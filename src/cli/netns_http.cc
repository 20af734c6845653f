#include "cli/netns_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace sheave::cli {

namespace {

// A socket in `netns`: setns() applies to the calling thread only, so a
// short-lived thread joins the namespace and makes the socket there; the
// socket stays in that namespace whoever uses it.
Result<int> socketIn(const std::string& netns) {
  if (netns.empty()) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ioError(std::string("socket: ") + std::strerror(errno));
    return fd;
  }
  int fd = -1;
  std::string error;
  std::thread t([&] {
    std::string path = "/run/netns/" + netns;
    int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) {
      error = "network namespace " + netns + ": " + std::strerror(errno);
      return;
    }
    if (::setns(ns, CLONE_NEWNET) != 0) {
      error = "cannot join network namespace " + netns + ": " + std::strerror(errno);
    } else {
      fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) error = std::string("socket: ") + std::strerror(errno);
    }
    ::close(ns);
  });
  t.join();
  if (fd < 0) return ioError(error);
  return fd;
}

bool waitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) == 1;
}

}  // namespace

Result<HttpReply> httpGet(const std::string& netns, const std::string& host, uint16_t port,
                          const std::string& path, std::chrono::milliseconds timeout) {
  return httpRequest("GET", netns, host, port, path, timeout);
}

Result<HttpReply> httpRequest(const std::string& method, const std::string& netns,
                              const std::string& host, uint16_t port, const std::string& path,
                              std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  SHEAVE_ASSIGN_OR_RETURN(int fd, socketIn(netns));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return invalidArgument(host + " is not an IPv4 address");
  }
  const std::string where =
      host + ":" + std::to_string(port) + (netns.empty() ? "" : " in " + netns);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return ioError("connect to " + where + ": " + std::strerror(errno));
  }
  if (!waitFor(fd, POLLOUT, deadline)) return ioError("connect to " + where + ": timed out");
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return ioError("connect to " + where + ": " + std::strerror(err));
  const std::string request =
      method + " " + path + " HTTP/1.0\r\nHost: " + host + "\r\nContent-Length: 0\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return ioError("send to " + where + ": " + std::strerror(errno));
  }
  std::string response;
  char buf[16384];
  while (true) {
    if (!waitFor(fd, POLLIN, deadline)) return ioError("reply from " + where + ": timed out");
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return ioError("reply from " + where + ": " + std::strerror(errno));
    if (n == 0) break;
    response.append(buf, static_cast<size_t>(n));
    if (response.size() > (16u << 20)) return ioError("reply from " + where + ": too large");
  }
  HttpReply reply;
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) {
    return ioError("reply from " + where + " is not HTTP");
  }
  reply.status = std::atoi(response.c_str() + 9);
  size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = response.substr(body + 4);
  return reply;
}

}  // namespace sheave::cli
