#pragma once

#include <string>

namespace sheave::network {

// Disables Nagle; every TCP socket of the proxy gets it (latency over packet count).
bool setTcpNoDelay(int fd);
// Makes close() send a RST instead of a FIN.
bool setAbortOnClose(int fd);
// An errno as a short lower-case sentence for failureReason(): "connection refused".
std::string errnoReason(int err);

}  // namespace sheave::network
