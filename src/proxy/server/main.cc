#include <signal.h>

#include <cstdio>

#include "common/logging.h"
#include "proxy/server/options.h"
#include "proxy/server/server.h"

int main(int argc, char** argv) {
  // Signals are read from a signalfd on the main loop; every thread started
  // later inherits this mask, so none of them is interrupted.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string exit_message;
  auto options = sheave::server::Options::parse(argc, argv, exit_message);
  if (!options.ok()) {
    fprintf(stderr, "error: %s\n", options.error().message().c_str());
    return 1;
  }
  if (!exit_message.empty()) {
    fputs(exit_message.c_str(), stdout);
    return 0;
  }
  sheave::logging::init(options->log_level);
  if (auto status = sheave::logging::setLevel(options->log_level); !status.ok()) {
    fprintf(stderr, "error: --log-level: %s\n", status.error().message().c_str());
    return 1;
  }
  sheave::server::Server server(std::move(options).value());
  return server.run();
}
