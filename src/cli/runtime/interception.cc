#include "cli/runtime/interception.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "cli/runtime/command.h"

namespace sheave::cli {

std::string interceptionRules(const InterceptionOptions& o) {
  const std::string uid = std::to_string(o.proxy_uid);
  const std::string gid = std::to_string(o.proxy_gid);
  std::string r;
  auto line = [&r](const std::string& text) { r += text + "\n"; };
  line("*nat");
  line(":ISTIO_INBOUND - [0:0]");
  line(":ISTIO_IN_REDIRECT - [0:0]");
  line(":ISTIO_OUTPUT - [0:0]");
  line(":ISTIO_REDIRECT - [0:0]");
  line("-A PREROUTING -p tcp -j ISTIO_INBOUND");
  line("-A OUTPUT -p tcp -j ISTIO_OUTPUT");
  for (uint16_t port : o.exclude_inbound_ports) {
    line("-A ISTIO_INBOUND -p tcp --dport " + std::to_string(port) + " -j RETURN");
  }
  line("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT");
  line("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports " + std::to_string(o.inbound_port));
  line("-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN");
  for (const auto& [flag, id] : {std::pair{"--uid-owner", uid}, std::pair{"--gid-owner", gid}}) {
    line("-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner " + std::string(flag) + " " + id +
         " -j ISTIO_IN_REDIRECT");
    line("-A ISTIO_OUTPUT -o lo -m owner ! " + std::string(flag) + " " + id + " -j RETURN");
    line("-A ISTIO_OUTPUT -m owner " + std::string(flag) + " " + id + " -j RETURN");
  }
  line("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN");
  for (uint16_t port : o.exclude_outbound_ports) {
    line("-A ISTIO_OUTPUT -p tcp --dport " + std::to_string(port) + " -j RETURN");
  }
  for (const std::string& cidr : o.exclude_outbound_cidrs) {
    line("-A ISTIO_OUTPUT -d " + cidr + " -j RETURN");
  }
  line("-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
  line("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports " + std::to_string(o.outbound_port));
  line("COMMIT");
  return r;
}

Status applyInterception(const std::string& netns, const InterceptionOptions& options) {
  // iptables-restore reads the rules from a file argument.
  char path[] = "/tmp/sheave-iptables-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return ioError("cannot write the interception rules to /tmp");
  const std::string rules = interceptionRules(options);
  bool written = ::write(fd, rules.data(), rules.size()) == static_cast<ssize_t>(rules.size());
  ::close(fd);
  Status s = written ? runStep({"ip", "netns", "exec", netns, "iptables-restore", path})
                     : ioError(std::string("cannot write ") + path);
  ::unlink(path);
  if (!s.ok()) {
    return ioError("cannot install the traffic interception rules in " + netns + ": " +
                   s.error().message());
  }
  return okStatus();
}

}  // namespace sheave::cli
