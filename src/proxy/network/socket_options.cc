#include "proxy/network/socket_options.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cctype>
#include <cstring>

namespace sheave::network {

bool setTcpNoDelay(int fd) {
  int one = 1;
  return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

bool setAbortOnClose(int fd) {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  return ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == 0;
}

std::string errnoReason(int err) {
  // strerrordesc_np is thread-safe (strerror may use a static buffer for unknown codes).
  const char* desc = ::strerrordesc_np(err);
  std::string out = desc != nullptr ? desc : "error " + std::to_string(err);
  if (!out.empty()) out[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[0])));
  return out;
}

}  // namespace sheave::network
