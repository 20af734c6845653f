#include "cli/local_mesh.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/bootstrap.h"
#include "cli/mesh_plan.h"
#include "cli/netns_http.h"
#include "cli/runtime/command.h"
#include "cli/runtime/interception.h"
#include "cli/runtime/leftovers.h"
#include "cli/runtime/process.h"
#include "control/model/config_set.h"

namespace sheave::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr uint32_t kProxyUid = 1337;  // Istio's sidecar user, excluded from interception
constexpr uint16_t kSidecarAdminPort = 15000;
constexpr uint16_t kSecureXdsPort = 15012;
constexpr const char* kSystemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

void say(const std::string& line) {
  std::time_t now = std::time(nullptr);
  char stamp[16];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", std::localtime(&now));
  std::cout << stamp << " " << line << std::endl;
}

int fail(const std::string& sentence) {
  std::cerr << "sheave: " << sentence << std::endl;
  return 1;
}

std::string lastLines(const fs::path& log, size_t n) {
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > n) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += "    " + l + "\n";
  return out;
}

// Written aside and renamed in; the file has `mode` from its creation on (a
// token must never be readable by others, not even for a moment).
Status writeFile(const fs::path& path, const std::string& text, mode_t mode) {
  fs::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ioError("cannot write " + tmp.string() + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  std::error_code ec;
  if (ok) fs::rename(tmp, path, ec);
  if (!ok || ec) {
    ::unlink(tmp.c_str());
    return ioError("cannot write " + path.string());
  }
  return okStatus();
}

Result<std::string> readFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return ioError("cannot read " + path.string());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One process the mesh runs, and what the status shows about it.
struct Managed {
  std::string role;  // "control", "gateway", "sidecar", "app"
  std::string name;  // "default/reviews-v1-0"
  ProcessSpec spec;
  std::optional<Process> process;
  fs::path log;
  bool reported_exit = false;
  int restarts = 0;
  std::optional<Clock::time_point> restart_at;  // an exited application's next start
};

std::string statusOf(Managed& m) {
  if (!m.process) return "not started";
  if (m.process->running()) return "running";
  auto code = m.process->exitStatus();
  return "exited (" + std::to_string(code.value_or(-1)) + ")";
}

class LocalMesh {
 public:
  explicit LocalMesh(UpOptions options) : options_(std::move(options)) {}

  int run();

 private:
  Status prepareState();
  Status startControl();
  // Who a proxy is, for its bootstrap.
  struct ProxyIdentity {
    std::string namespace_name, name, workload, service_account;
    std::map<std::string, std::string> labels;
    std::string node_id;
  };
  Result<std::unique_ptr<Managed>> prepareProxy(const ProxyIdentity& who, uint16_t admin_port,
                                                std::optional<uint32_t> owner);
  Status prepareReplica(const ReplicaPlan& r);
  Status prepareGateway(const GatewayPlan& g);
  Status waitReady(Managed& m, const std::string& netns, uint16_t admin_port);
  Result<fs::path> waitForToken(const std::string& ns, const std::string& name);
  Status spawn(Managed& m);
  std::string resolveProgram(const std::string& program) const;
  void printTable() const;
  void writeStatus();
  void supervise();
  void shutdown();

  UpOptions options_;
  MeshPlan plan_;
  std::optional<MeshNetwork> network_;
  int lock_fd_ = -1;
  std::unique_ptr<Managed> control_;
  std::unique_ptr<Managed> gateway_;
  std::vector<std::unique_ptr<Managed>> sidecars_;  // same order as plan_.replicas
  std::vector<std::unique_ptr<Managed>> apps_;
  std::string last_status_;
};

fs::path pidFile(const fs::path& state) { return state / "up.pid"; }

// Alive and not a zombie (a `sheave up` whose parent has not reaped it yet has stopped).
bool processAlive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}
fs::path statusFile(const fs::path& state) { return state / "status.json"; }

std::string joinArgs(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

Status LocalMesh::prepareState() {
  std::error_code ec;
  fs::create_directories(options_.state_dir, ec);
  if (ec) return ioError("cannot create " + options_.state_dir.string() + ": " + ec.message());
  ::chmod(options_.state_dir.c_str(), 0755);
  // The sidecars run as uid 1337 and read their bootstrap below the state dir.
  for (fs::path p = fs::absolute(options_.state_dir); p != p.root_path(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
      return invalidArgument("the sidecars (uid 1337) cannot reach " + options_.state_dir.string() +
                             " because " + p.string() +
                             " is not searchable by others; choose another --state-dir or "
                             "chmod o+x " +
                             p.string());
    }
  }
  const fs::path lock = options_.state_dir / "lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return ioError("cannot open " + lock.string());
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    auto text = readFile(pidFile(options_.state_dir));
    std::string pid = text.ok() ? *text : "?";
    while (!pid.empty() && (pid.back() == '\n')) pid.pop_back();
    return invalidArgument("a mesh is already running here (sheave up, pid " + pid +
                           "); stop it with `sheave down` first");
  }
  // What an earlier run that crashed left behind.
  Leftovers left = findLeftovers(options_.network);
  if (!left.namespaces.empty() || !left.links.empty() || !left.pids.empty()) {
    say("cleaning up an earlier run: " + std::to_string(left.namespaces.size()) + " namespaces, " +
        std::to_string(left.links.size()) + " links, " + std::to_string(left.pids.size()) +
        " processes");
    SHEAVE_RETURN_IF_ERROR(removeLeftovers(left));
  }
  for (const char* dir : {"generated", "workloads", "logs", "tokens"}) {
    fs::remove_all(options_.state_dir / dir, ec);
    fs::create_directories(options_.state_dir / dir, ec);
    ::chmod((options_.state_dir / dir).c_str(), dir == std::string("tokens") ? 0700 : 0755);
  }
  return writeFile(pidFile(options_.state_dir), std::to_string(::getpid()) + "\n", 0644);
}

std::string LocalMesh::resolveProgram(const std::string& program) const {
  if (program.find('/') != std::string::npos) return program;
  fs::path local = options_.bin_dir / program;
  if (::access(local.c_str(), X_OK) == 0) return local.string();
  if (auto found = findExecutable(program)) return *found;
  return program;
}

Status LocalMesh::spawn(Managed& m) {
  auto process = Process::spawn(m.spec);
  if (!process.ok()) {
    return ioError("cannot start " + m.role + " " + m.name + " (" + joinArgs(m.spec.argv) +
                   "): " + process.error().message());
  }
  m.process.emplace(std::move(process).value());
  return okStatus();
}

Status LocalMesh::startControl() {
  control_ = std::make_unique<Managed>();
  control_->role = "control";
  control_->name = "sheave-control";
  control_->log = options_.state_dir / "logs" / "sheave-control.log";
  const std::string gw = network_->gatewayAddress();
  control_->spec.argv = {
      resolveProgram("sheave-control"), "--config", fs::absolute(options_.config_dir).string(),
      "--config", (options_.state_dir / "generated").string(), "--ca-dir",
      (options_.state_dir / "ca").string(), "--token-dir", (options_.state_dir / "tokens").string(),
      "--secure-xds-address", gw + ":" + std::to_string(kSecureXdsPort), "--http-address",
      options_.control_http_address,
      // Istio manifests put mesh-wide policy in istio-system.
      "--root-namespace", "istio-system"};
  control_->spec.env = {{"PATH", kSystemPath}};
  control_->spec.log_path = control_->log.string();
  // In the host namespace, so leftovers cleanup cannot find it by namespace:
  // if `sheave up` dies without stopping it, the kernel does.
  control_->spec.parent_death_signal = SIGTERM;
  SHEAVE_RETURN_IF_ERROR(spawn(*control_));
  const size_t colon = options_.control_http_address.rfind(':');
  const std::string host = options_.control_http_address.substr(0, colon);
  const auto port =
      static_cast<uint16_t>(std::stoi(options_.control_http_address.substr(colon + 1)));
  auto deadline = Clock::now() + options_.startup_timeout;
  while (Clock::now() < deadline) {
    if (!control_->process->running()) {
      return ioError("sheave-control exited at start; its log (" + control_->log.string() +
                     ") ends with:\n" + lastLines(control_->log, 5));
    }
    auto reply = httpGet("", host, port, "/ready");
    if (reply.ok() && reply->status == 200) return okStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ioError("sheave-control did not become ready in time; see " + control_->log.string());
}

Result<fs::path> LocalMesh::waitForToken(const std::string& ns, const std::string& name) {
  fs::path token = options_.state_dir / "tokens" / ns / name;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (fs::exists(token)) return token;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ioError("sheave-control wrote no bootstrap token for " + ns + "/" + name + "; see " +
                 control_->log.string());
}

// The sidecar's (or gateway's) own directory: bootstrap, its copy of the
// token (readable by the proxy's user only) and of the trust bundle.
Status prepareProxyFiles(const fs::path& dir, const fs::path& token, const fs::path& root_cert,
                         BootstrapSpec spec, std::optional<uint32_t> owner) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SHEAVE_ASSIGN_OR_RETURN(std::string token_text, readFile(token));
  SHEAVE_ASSIGN_OR_RETURN(std::string root_text, readFile(root_cert));
  SHEAVE_RETURN_IF_ERROR(writeFile(dir / "token", token_text, 0600));
  SHEAVE_RETURN_IF_ERROR(writeFile(dir / "root-cert.pem", root_text, 0644));
  spec.root_cert_path = (dir / "root-cert.pem").string();
  SHEAVE_RETURN_IF_ERROR(writeFile(dir / "envoy.json", proxyBootstrapJson(spec), 0644));
  if (owner) {
    if (::chown((dir / "token").c_str(), *owner, *owner) != 0) {
      return ioError("cannot hand " + (dir / "token").string() + " to uid " +
                     std::to_string(*owner));
    }
  }
  return okStatus();
}

// A proxy of the mesh (sidecar or gateway): its bootstrap token from
// sheave-control, its files, and how to run it.
Result<std::unique_ptr<Managed>> LocalMesh::prepareProxy(const ProxyIdentity& who,
                                                         uint16_t admin_port,
                                                         std::optional<uint32_t> owner) {
  SHEAVE_ASSIGN_OR_RETURN(fs::path token, waitForToken(who.namespace_name, who.name));
  const fs::path dir = options_.state_dir / "workloads" / (who.namespace_name + "-" + who.name);
  BootstrapSpec spec;
  spec.node_id = who.node_id;
  spec.cluster = who.workload + "." + who.namespace_name;
  spec.namespace_name = who.namespace_name;
  spec.workload_name = who.workload;
  spec.service_account = who.service_account;
  spec.labels = who.labels;
  spec.admin_port = admin_port;
  spec.xds_address = network_->gatewayAddress();
  spec.xds_port = kSecureXdsPort;
  SHEAVE_RETURN_IF_ERROR(
      prepareProxyFiles(dir, token, options_.state_dir / "ca" / "root-cert.pem", spec, owner));
  auto proxy = std::make_unique<Managed>();
  proxy->name = who.namespace_name + "/" + who.name;
  proxy->spec.argv = {resolveProgram("sheave-proxy"),
                      "-c",
                      (dir / "envoy.json").string(),
                      "--workload-token-file",
                      (dir / "token").string(),
                      "--concurrency",
                      "1",
                      "--drain-time-s",
                      "2"};
  proxy->spec.env = {{"PATH", kSystemPath}};
  proxy->spec.uid = owner;
  proxy->spec.gid = owner;
  proxy->spec.working_dir = dir.string();
  return proxy;
}

Status LocalMesh::prepareReplica(const ReplicaPlan& r) {
  SHEAVE_ASSIGN_OR_RETURN(std::unique_ptr<Managed> sidecar,
                          prepareProxy({r.namespace_name, r.name, r.workload, r.service_account,
                                        r.spec.labels, r.node_id},
                                       kSidecarAdminPort, kProxyUid));
  SHEAVE_RETURN_IF_ERROR(applyInterception(r.netns, InterceptionOptions{}));
  sidecar->role = "sidecar";
  sidecar->log = options_.state_dir / "logs" / (r.namespace_name + "-" + r.name + ".proxy.log");
  sidecar->spec.log_path = sidecar->log.string();
  sidecar->spec.netns = r.netns;

  auto app = std::make_unique<Managed>();
  app->role = "app";
  app->name = r.namespace_name + "/" + r.name;
  app->log = options_.state_dir / "logs" / (r.namespace_name + "-" + r.name + ".log");
  app->spec.argv = r.spec.command;
  app->spec.argv[0] = resolveProgram(r.spec.command[0]);
  app->spec.env = {{"PATH", options_.bin_dir.string() + ":" + kSystemPath},
                   {"HOME", "/tmp"},
                   {"POD_NAME", r.name},
                   {"POD_NAMESPACE", r.namespace_name},
                   {"INSTANCE_IP", r.address},
                   {"SERVICE_ACCOUNT", r.service_account}};
  for (const auto& [k, v] : r.spec.env) app->spec.env.emplace_back(k, v);
  app->spec.netns = r.netns;
  app->spec.log_path = app->log.string();
  sidecars_.push_back(std::move(sidecar));
  apps_.push_back(std::move(app));
  return okStatus();
}

Status LocalMesh::prepareGateway(const GatewayPlan& g) {
  SHEAVE_ASSIGN_OR_RETURN(gateway_, prepareProxy({g.namespace_name,
                                                  g.name,
                                                  g.name,
                                                  g.service_account,
                                                  {{"app", g.name}, {"istio", "ingressgateway"}},
                                                  g.node_id},
                                                 options_.gateway_admin_port, std::nullopt));
  gateway_->role = "gateway";
  gateway_->log = options_.state_dir / "logs" / "istio-ingressgateway.log";
  gateway_->spec.log_path = gateway_->log.string();
  gateway_->spec.parent_death_signal = SIGTERM;  // host namespace, as sheave-control
  return spawn(*gateway_);
}

Status LocalMesh::waitReady(Managed& m, const std::string& netns, uint16_t admin_port) {
  auto deadline = Clock::now() + options_.startup_timeout;
  while (Clock::now() < deadline) {
    if (!m.process->running()) {
      return ioError(m.role + " of " + m.name + " exited at start; its log (" + m.log.string() +
                     ") ends with:\n" + lastLines(m.log, 5));
    }
    auto reply = httpGet(netns, "127.0.0.1", admin_port, "/ready", std::chrono::seconds(1));
    if (reply.ok() && reply->status == 200) return okStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ioError(m.role + " of " + m.name + " did not become ready in " +
                 std::to_string(options_.startup_timeout.count()) + " s; see " + m.log.string());
}

void LocalMesh::printTable() const {
  std::printf("%-34s %-52s %-14s %s\n", "WORKLOAD", "IDENTITY", "ADDRESS", "STATUS");
  for (size_t i = 0; i < plan_.replicas.size(); ++i) {
    const ReplicaPlan& r = plan_.replicas[i];
    std::printf(
        "%-34s %-52s %-14s %s\n", (r.namespace_name + "/" + r.name).c_str(), r.identity.c_str(),
        r.address.c_str(),
        statusOf(*apps_[i]) == "running" && statusOf(*sidecars_[i]) == "running"
            ? "running"
            : ("app " + statusOf(*apps_[i]) + ", sidecar " + statusOf(*sidecars_[i])).c_str());
  }
  if (plan_.gateway) {
    std::printf("%-34s %-52s %-14s %s\n",
                (plan_.gateway->namespace_name + "/" + plan_.gateway->name).c_str(),
                plan_.gateway->identity.c_str(), "(host)", statusOf(*gateway_).c_str());
    for (size_t i = 0; i < plan_.gateway->ports.size(); ++i) {
      std::string host =
          plan_.gateway->binds[i] == "0.0.0.0" ? "localhost" : plan_.gateway->binds[i];
      std::printf("gateway:        http://%s:%u/\n", host.c_str(), plan_.gateway->ports[i]);
    }
  }
  std::printf("control plane:  http://%s/debug/syncz (xDS+CA on %s:%u)\n",
              options_.control_http_address.c_str(), network_->gatewayAddress().c_str(),
              kSecureXdsPort);
  std::printf("logs:           %s\n", (options_.state_dir / "logs").c_str());
  std::fflush(stdout);
}

void LocalMesh::writeStatus() {
  json s;
  s["pid"] = ::getpid();
  s["config_dir"] = fs::absolute(options_.config_dir).string();
  s["control"] = {{"http", options_.control_http_address},
                  {"xds", network_->gatewayAddress() + ":" + std::to_string(kSecureXdsPort)},
                  {"status", statusOf(*control_)},
                  {"pid", control_->process ? control_->process->pid() : 0}};
  json workloads = json::array();
  for (size_t i = 0; i < plan_.replicas.size(); ++i) {
    const ReplicaPlan& r = plan_.replicas[i];
    workloads.push_back({{"name", r.name},
                         {"workload", r.workload},
                         {"namespace", r.namespace_name},
                         {"identity", r.identity},
                         {"address", r.address},
                         {"netns", r.netns},
                         {"app", statusOf(*apps_[i])},
                         {"app_pid", apps_[i]->process ? apps_[i]->process->pid() : 0},
                         {"app_restarts", apps_[i]->restarts},
                         {"sidecar", statusOf(*sidecars_[i])},
                         {"sidecar_pid", sidecars_[i]->process ? sidecars_[i]->process->pid() : 0},
                         {"log", apps_[i]->log.string()},
                         {"sidecar_log", sidecars_[i]->log.string()}});
  }
  s["workloads"] = workloads;
  if (plan_.gateway && gateway_) {
    json urls = json::array();
    for (size_t i = 0; i < plan_.gateway->ports.size(); ++i) {
      std::string host =
          plan_.gateway->binds[i] == "0.0.0.0" ? "127.0.0.1" : plan_.gateway->binds[i];
      urls.push_back("http://" + host + ":" + std::to_string(plan_.gateway->ports[i]) + "/");
    }
    s["gateway"] = {{"identity", plan_.gateway->identity},
                    {"status", statusOf(*gateway_)},
                    {"admin", "127.0.0.1:" + std::to_string(options_.gateway_admin_port)},
                    {"urls", urls}};
  }
  std::string text = s.dump(2) + "\n";
  if (text == last_status_) return;
  last_status_ = text;
  (void)writeFile(statusFile(options_.state_dir), text, 0644);
}

volatile sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

void LocalMesh::supervise() {
  while (g_stop == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    // The control plane is restarted as Kubernetes would restart istiod; the
    // proxies keep their last configuration meanwhile and resync after.
    if (!control_->process->running()) {
      if (!control_->reported_exit && !options_.quiet) {
        say("event: sheave-control " + statusOf(*control_) + "; restarting it");
      }
      control_->reported_exit = true;
      if (spawn(*control_).ok()) {
        control_->restarts++;
        control_->reported_exit = false;
      }
    }
    auto report = [&](Managed& m) {
      if (m.reported_exit || !m.process || m.process->running()) return;
      m.reported_exit = true;
      if (!options_.quiet) {
        say("event: " + m.role + " of " + m.name + " " + statusOf(m) + "; log: " + m.log.string());
      }
    };
    // Applications are restarted as Kubernetes' restartPolicy Always restarts
    // a container: after a back-off that doubles from 1 s to at most 30 s,
    // so one that crashes at once does not spin.
    for (auto& m : apps_) {
      if (!m->process || m->process->running()) continue;
      report(*m);
      const auto now = Clock::now();
      if (!m->restart_at) {
        m->restart_at = now + std::chrono::seconds(std::min(30, 1 << std::min(m->restarts, 5)));
        continue;
      }
      if (now < *m->restart_at) continue;
      m->restart_at.reset();
      if (spawn(*m).ok()) {
        m->restarts++;
        m->reported_exit = false;
        if (!options_.quiet) say("event: restarted " + m->role + " of " + m->name);
      }
    }
    for (auto& m : sidecars_) report(*m);
    if (gateway_) report(*gateway_);
    writeStatus();
  }
}

void LocalMesh::shutdown() {
  if (!options_.quiet) say("stopping the mesh");
  // Applications first, while their sidecars still carry their last requests;
  // then the proxies (which drain), then the control plane.
  // One grace period for the whole group, then SIGKILL for what is left.
  auto stopAll = [](std::vector<std::unique_ptr<Managed>>& list, std::chrono::milliseconds grace) {
    for (auto& m : list) {
      if (m->process && m->process->running()) m->process->signal(SIGTERM);
    }
    auto deadline = Clock::now() + grace;
    for (auto& m : list) {
      if (!m->process) continue;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      m->process->stop(std::max(left, std::chrono::milliseconds(0)));
    }
  };
  stopAll(apps_, std::chrono::seconds(5));
  if (!options_.quiet) say("applications stopped; draining the proxies");
  std::vector<std::unique_ptr<Managed>> proxies;
  for (auto& m : sidecars_) proxies.push_back(std::move(m));
  if (gateway_) proxies.push_back(std::move(gateway_));
  stopAll(proxies, std::chrono::seconds(5));
  if (control_ && control_->process) control_->process->stop(std::chrono::seconds(5));
  if (!options_.quiet) say("processes stopped; removing the network");
  if (network_) {
    if (auto s = network_->destroy(); !s.ok())
      std::cerr << "sheave: " << s.error().message() << "\n";
  }
  std::error_code ec;
  fs::remove(statusFile(options_.state_dir), ec);
  fs::remove(pidFile(options_.state_dir), ec);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

int LocalMesh::run() {
  if (auto s = checkNetworkPrerequisites(); !s.ok()) return fail(s.error().message());
  auto config = control::loadDirectory(options_.config_dir);
  if (!config.ok()) return fail(config.error().message());
  for (const auto& e : config->errors) std::cerr << "sheave: warning: " << e.toString() << "\n";
  auto plan = planMesh(*config, PlanOptions{options_.network});
  if (!plan.ok()) return fail(plan.error().message());
  plan_ = std::move(plan).value();
  for (const auto& w : plan_.warnings) std::cerr << "sheave: warning: " << w << "\n";
  if (auto s = prepareState(); !s.ok()) return fail(s.error().message());

  struct sigaction sa {};
  sa.sa_handler = onSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  auto start = [&]() -> Status {
    SHEAVE_RETURN_IF_ERROR(
        writeFile(options_.state_dir / "generated" / "workloads.yaml", plan_.generated_yaml, 0644));
    SHEAVE_ASSIGN_OR_RETURN(MeshNetwork network, MeshNetwork::create(options_.network));
    network_.emplace(std::move(network));
    for (const ReplicaPlan& r : plan_.replicas) {
      SHEAVE_RETURN_IF_ERROR(network_->addWorkload({r.netns, r.address, r.hosts}));
    }
    SHEAVE_RETURN_IF_ERROR(startControl());
    for (const ReplicaPlan& r : plan_.replicas) SHEAVE_RETURN_IF_ERROR(prepareReplica(r));
    for (auto& s : sidecars_) SHEAVE_RETURN_IF_ERROR(spawn(*s));
    if (plan_.gateway) SHEAVE_RETURN_IF_ERROR(prepareGateway(*plan_.gateway));
    for (size_t i = 0; i < plan_.replicas.size(); ++i) {
      const ReplicaPlan& r = plan_.replicas[i];
      // holdApplicationUntilProxyStarts: the application's first request
      // must not race its sidecar's configuration.
      if (r.spec.hold_application_until_proxy_starts) {
        SHEAVE_RETURN_IF_ERROR(waitReady(*sidecars_[i], r.netns, kSidecarAdminPort));
      }
      SHEAVE_RETURN_IF_ERROR(spawn(*apps_[i]));
    }
    if (gateway_) SHEAVE_RETURN_IF_ERROR(waitReady(*gateway_, "", options_.gateway_admin_port));
    for (size_t i = 0; i < plan_.replicas.size(); ++i) {
      if (!plan_.replicas[i].spec.hold_application_until_proxy_starts) {
        SHEAVE_RETURN_IF_ERROR(
            waitReady(*sidecars_[i], plan_.replicas[i].netns, kSidecarAdminPort));
      }
    }
    // A command that exits at once is a mistake worth stopping for.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (auto& app : apps_) {
      if (!app->process->running()) {
        return invalidArgument("workload " + app->name + " (" + joinArgs(app->spec.argv) + ") " +
                               statusOf(*app) + " right after it started; its log (" +
                               app->log.string() + ") ends with:\n" + lastLines(app->log, 5));
      }
    }
    return okStatus();
  };
  Status started = g_stop ? invalidArgument("interrupted") : start();
  if (!started.ok()) {
    std::cerr << "sheave: " << started.error().message() << "\n";
    shutdown();
    return 1;
  }
  printTable();
  writeStatus();
  if (!options_.quiet) say("mesh is up; Ctrl-C or `sheave down` stops it");
  supervise();
  shutdown();
  return 0;
}

}  // namespace

int runUp(const UpOptions& options) { return LocalMesh(options).run(); }

int runDown(const fs::path& state_dir, std::chrono::seconds timeout) {
  auto pid_text = readFile(pidFile(state_dir));
  if (pid_text.ok()) {
    pid_t pid = std::atoi(pid_text->c_str());
    if (pid > 0 && ::kill(pid, SIGTERM) == 0) {
      auto deadline = Clock::now() + timeout;
      while (Clock::now() < deadline && processAlive(pid)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (processAlive(pid)) {
        return fail("sheave up (pid " + std::to_string(pid) + ") did not stop within " +
                    std::to_string(timeout.count()) + " s");
      }
      std::cout << "mesh stopped" << std::endl;
      return 0;
    }
  }
  // No running `sheave up`: clean what a crashed one may have left.
  Leftovers left = findLeftovers(NetworkPlan{});
  if (left.namespaces.empty() && left.links.empty() && left.pids.empty()) {
    std::cout << "no mesh is running" << std::endl;
    return 0;
  }
  if (auto s = removeLeftovers(left); !s.ok()) return fail(s.error().message());
  std::error_code ec;
  fs::remove(statusFile(state_dir), ec);
  fs::remove(pidFile(state_dir), ec);
  std::cout << "removed what an earlier run left behind" << std::endl;
  return 0;
}

int runStatus(const fs::path& state_dir, bool as_json) {
  auto text = readFile(statusFile(state_dir));
  if (!text.ok()) {
    if (as_json) {
      std::cout << "{\"running\": false}" << std::endl;
    } else {
      std::cout << "no mesh is running" << std::endl;
    }
    return 3;
  }
  json s = json::parse(*text, nullptr, false);
  if (s.is_discarded()) return fail(statusFile(state_dir).string() + " is not valid JSON");
  bool up = s.contains("pid") && processAlive(s["pid"].get<int>());
  s["running"] = up;
  if (as_json) {
    std::cout << s.dump(2) << std::endl;
    return up ? 0 : 3;
  }
  if (!up) std::cout << "sheave up is not running (stale state from pid " << s["pid"] << ")\n";
  std::printf("%-34s %-14s %-12s %-12s %s\n", "WORKLOAD", "ADDRESS", "APP", "SIDECAR", "RESTARTS");
  for (const auto& w : s["workloads"]) {
    std::printf("%-34s %-14s %-12s %-12s %d\n",
                (w["namespace"].get<std::string>() + "/" + w["name"].get<std::string>()).c_str(),
                w["address"].get<std::string>().c_str(), w["app"].get<std::string>().c_str(),
                w["sidecar"].get<std::string>().c_str(), w.value("app_restarts", 0));
  }
  if (s.contains("gateway")) {
    std::printf("%-34s %-14s %-12s %s\n", "istio-system/istio-ingressgateway", "(host)", "-",
                s["gateway"]["status"].get<std::string>().c_str());
  }
  std::printf("control plane: %s (%s)\n", s["control"]["http"].get<std::string>().c_str(),
              s["control"]["status"].get<std::string>().c_str());
  return up ? 0 : 3;
}

}  // namespace sheave::cli
