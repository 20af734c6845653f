#include "cli/runtime/mesh_network.h"

#include <arpa/inet.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cli/runtime/command.h"

namespace sheave::cli {

namespace {

struct Cidr {
  uint32_t base = 0;  // host order
  int length = 0;
};

Result<Cidr> parseCidr(const std::string& text) {
  size_t slash = text.find('/');
  in_addr addr{};
  if (slash == std::string::npos ||
      ::inet_pton(AF_INET, text.substr(0, slash).c_str(), &addr) != 1) {
    return invalidArgument(text + " is not an IPv4 CIDR");
  }
  int length = std::atoi(text.c_str() + slash + 1);
  if (length < 8 || length > 30) return invalidArgument(text + ": prefix length must be 8..30");
  uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - length);
  return Cidr{ntohl(addr.s_addr) & mask, length};
}

std::string format(uint32_t host_order) {
  in_addr addr{};
  addr.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &addr, buf, sizeof(buf));
  return buf;
}

bool overlaps(const Cidr& a, const Cidr& b) {
  int shorter = std::min(a.length, b.length);
  uint32_t mask = shorter == 0 ? 0 : ~uint32_t{0} << (32 - shorter);
  return (a.base & mask) == (b.base & mask);
}

// "10.1.2.3/24" or "10.1.2.3" (a /32) to a Cidr; lengths 0..32 accepted.
std::optional<Cidr> parseAny(const std::string& text) {
  size_t slash = text.find('/');
  in_addr addr{};
  if (::inet_pton(AF_INET, text.substr(0, slash).c_str(), &addr) != 1) return std::nullopt;
  int length = slash == std::string::npos ? 32 : std::atoi(text.c_str() + slash + 1);
  if (length < 0 || length > 32) return std::nullopt;
  uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - length);
  return Cidr{ntohl(addr.s_addr) & mask, length};
}

// An IPv4 address or route already on the machine that overlaps `range`, as
// "<what> on <device>"; empty when there is none.
std::string findOverlap(const Cidr& range) {
  if (auto addrs = runChecked({"ip", "-o", "-4", "addr", "show"}); addrs.ok()) {
    // "3: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\..."
    std::istringstream in(*addrs);
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string index, dev, family, address;
      words >> index >> dev >> family >> address;
      auto c = parseAny(address);
      if (family == "inet" && c && overlaps(*c, range)) return "address " + address + " on " + dev;
    }
  }
  if (auto routes = runChecked({"ip", "-4", "route", "show", "table", "main"}); routes.ok()) {
    std::istringstream in(*routes);
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string first;
      words >> first;
      if (first == "unicast" || first == "unreachable" || first == "blackhole" ||
          first == "prohibit" || first == "throw") {
        words >> first;
      }
      // A broader route (a VPN's 0.0.0.0/1, say) loses to the bridge's more
      // specific one; only routes into our range would steal traffic.
      auto c = parseAny(first);
      if (!c || c->length < range.length || !overlaps(*c, range)) continue;
      std::string word, dev = "this machine";
      while (words >> word) {
        if (word == "dev" && (words >> dev)) break;
      }
      return "route " + first + " on " + dev;
    }
  }
  return "";
}

bool hasNetAdmin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return ::geteuid() == 0;
  return (data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32))) != 0;
}

}  // namespace

Status checkNetworkPrerequisites() {
  if (!hasNetAdmin()) {
    return permissionDenied(
        "sheave up needs root (CAP_NET_ADMIN) to create network namespaces and iptables rules; "
        "run it as root");
  }
  if (!findExecutable("ip")) {
    return notFound(
        "the `ip` command (Debian package iproute2) is not installed; install it with "
        "apt-get install iproute2");
  }
  if (!findExecutable("iptables-restore")) {
    return notFound(
        "the `iptables-restore` command (Debian package iptables) is not installed; "
        "install it with apt-get install iptables");
  }
  return okStatus();
}

std::string vethName(const std::string& netns) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : netns) h = (h ^ c) * 16777619u;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "shv%08x", h);
  return buf;
}

Status validateWorkloadSpec(const NetworkPlan& plan, const WorkloadNetworkSpec& spec) {
  if (!spec.netns.starts_with(plan.netns_prefix) || spec.netns.size() == plan.netns_prefix.size()) {
    return invalidArgument("namespace name " + spec.netns + " must start with " +
                           plan.netns_prefix);
  }
  // The name becomes a file under /run/netns and an argument of `ip`.
  bool plain = std::all_of(spec.netns.begin(), spec.netns.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
  if (!plain || spec.netns.size() > 200) {
    return invalidArgument("namespace name " + spec.netns +
                           " may only use letters, digits, '-', '_' and '.' (at most 200)");
  }
  SHEAVE_ASSIGN_OR_RETURN(Cidr cidr, parseCidr(plan.cidr));
  in_addr addr{};
  if (::inet_pton(AF_INET, spec.address.c_str(), &addr) != 1) {
    return invalidArgument(spec.address + " is not an IPv4 address");
  }
  uint32_t a = ntohl(addr.s_addr);
  uint32_t mask = ~uint32_t{0} << (32 - cidr.length);
  uint32_t broadcast = cidr.base | ~mask;
  if ((a & mask) != cidr.base || a == cidr.base || a == broadcast) {
    return invalidArgument(spec.address + " is not a host address of " + plan.cidr);
  }
  if (a == cidr.base + 1) {
    return invalidArgument(spec.address + " is the bridge's own address");
  }
  return okStatus();
}

Result<MeshNetwork> MeshNetwork::create(NetworkPlan plan) {
  SHEAVE_ASSIGN_OR_RETURN(Cidr cidr, parseCidr(plan.cidr));
  SHEAVE_ASSIGN_OR_RETURN(Cidr vips, parseCidr(plan.vip_cidr));
  (void)vips;
  auto exists = runCommand({"ip", "link", "show", plan.bridge});
  if (exists.ok() && exists->exit_code == 0) {
    return invalidArgument("the network bridge " + plan.bridge +
                           " already exists (another mesh, or a crashed one: `sheave down` "
                           "removes what it left)");
  }
  if (std::string clash = findOverlap(cidr); !clash.empty()) {
    return invalidArgument("the mesh's address range " + plan.cidr + " overlaps " + clash +
                           "; remove that (`sheave down` if a crashed mesh left it) or give the "
                           "mesh another range");
  }
  MeshNetwork net;
  net.plan_ = std::move(plan);
  net.gateway_ = format(cidr.base + 1);
  net.prefix_length_ = cidr.length;
  const std::string& br = net.plan_.bridge;
  SHEAVE_RETURN_IF_ERROR(runStep({"ip", "link", "add", br, "type", "bridge"}));
  auto undo = [&](Status s) -> Result<MeshNetwork> {
    (void)runCommand({"ip", "link", "del", br});
    return s.error();
  };
  if (Status s = runStep(
          {"ip", "addr", "add", net.gateway_ + "/" + std::to_string(cidr.length), "dev", br});
      !s.ok()) {
    return undo(s);
  }
  if (Status s = runStep({"ip", "link", "set", br, "up"}); !s.ok()) return undo(s);
  return net;
}

Status MeshNetwork::addWorkload(const WorkloadNetworkSpec& spec) {
  SHEAVE_RETURN_IF_ERROR(validateWorkloadSpec(plan_, spec));
  for (const auto& [ns, address] : workloads_) {
    if (ns == spec.netns) return invalidArgument("namespace " + ns + " was added twice");
    if (address == spec.address) {
      return invalidArgument("address " + address + " is taken by " + ns + " already; give " +
                             spec.netns + " another one");
    }
  }
  const std::string& ns = spec.netns;
  const std::string host_end = vethName(ns);
  SHEAVE_RETURN_IF_ERROR(runStep({"ip", "netns", "add", ns}));
  workloads_.emplace_back(ns, spec.address);
  const std::vector<std::vector<std::string>> steps = {
      // One step, so no half-made pair is ever left outside the bridge: the
      // host end is born on the bridge, the other end as eth0 in the namespace.
      {"ip", "link", "add", host_end, "master", plan_.bridge, "up", "type", "veth", "peer", "name",
       "eth0", "netns", ns},
      {"ip", "-n", ns, "addr", "add", spec.address + "/" + std::to_string(prefix_length_), "dev",
       "eth0"},
      {"ip", "-n", ns, "link", "set", "eth0", "up"},
      {"ip", "-n", ns, "link", "set", "lo", "up"},
      {"ip", "-n", ns, "route", "add", plan_.vip_cidr, "dev", "eth0"},
  };
  for (const auto& step : steps) SHEAVE_RETURN_IF_ERROR(runStep(step));

  std::filesystem::path dir = std::filesystem::path("/etc/netns") / ns;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::ofstream hosts(dir / "hosts", std::ios::trunc);
  hosts << "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  hosts << spec.address << "\t" << ns << "\n";
  for (const HostsEntry& e : spec.hosts) {
    hosts << e.address;
    for (const auto& n : e.names) hosts << "\t" << n;
    hosts << "\n";
  }
  if (!hosts) return ioError("cannot write " + (dir / "hosts").string());
  return okStatus();
}

Status MeshNetwork::removeWorkload(const std::string& netns) {
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path("/etc/netns") / netns, ec);
  std::erase_if(workloads_, [&](const auto& w) { return w.first == netns; });
  Status s = runStep({"ip", "netns", "del", netns});
  if (!s.ok()) return s;
  // Deleting the namespace deletes its end of the veth pair, and with it the host end.
  (void)runCommand({"ip", "link", "del", vethName(netns)});
  return okStatus();
}

Status MeshNetwork::destroy() {
  Status first = okStatus();
  for (const auto& [ns, address] : std::vector(workloads_)) {
    Status s = removeWorkload(ns);
    if (!s.ok() && first.ok()) first = s;
  }
  Status s = runStep({"ip", "link", "del", plan_.bridge});
  if (!s.ok() && first.ok()) first = s;
  return first;
}

}  // namespace sheave::cli
