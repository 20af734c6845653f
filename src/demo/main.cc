// sheave-demo-app: one small HTTP/1.1 server that plays every Bookinfo role in
// the local mesh. It answers with its name and version, who called it (the
// identity its sidecar verified) and the headers it got; calls its upstreams
// through the mesh by service name; and fails, slows down or crashes on
// request, to exercise the mesh's resilience features.
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "demo/demo_options.h"

namespace {

using nlohmann::json;
using sheave::demo::DemoOptions;
using sheave::demo::Fault;
using sheave::demo::Upstream;

// Headers a mesh application forwards so routing, tracing and identity work
// across hops (Bookinfo's productpage forwards the same kind of list).
const char* const kForwarded[] = {
    "x-request-id",      "traceparent",  "tracestate",    "x-b3-traceid", "x-b3-spanid",
    "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",    "b3",           "x-ot-span-context",
    "user-agent",        "end-user",     "x-canary-user", "cookie",       "authorization"};

class DemoApp {
 public:
  explicit DemoApp(DemoOptions options) : options_(std::move(options)), fault_(options_.fault) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    hostname_ = host;
  }

  int run() {
    server_.new_task_queue = [this] { return new httplib::ThreadPool(options_.threads); };
    server_.set_tcp_nodelay(true);
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_.Post("/demo/fault", [this](const httplib::Request& req, httplib::Response& res) {
      setFault(req, res);
    });
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Put(".*", handler);
    server_.Delete(".*", handler);
    server_.Patch(".*", handler);
    server_.Options(".*", handler);
    // A request is handled on one worker thread from routing to logging, so
    // thread-locals carry its start time and crash verdict to the logger.
    server_.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      request_start_ = std::chrono::steady_clock::now();
      crash_after_this_ = false;
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // The logger runs once the response is written: --crash-after exits here
    // so the Nth request still gets its answer.
    server_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      auto took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                            request_start_);
      std::printf("%s %s %d %.1fms\n", req.method.c_str(), req.path.c_str(), res.status,
                  took.count());
      std::fflush(stdout);
      if (crash_after_this_) {
        std::fprintf(
            stderr, "sheave-demo-app: exiting with 1 after the requests --crash-after asked for\n");
        std::_Exit(1);
      }
    });
    if (!server_.bind_to_port(options_.host, options_.port)) {
      std::fprintf(stderr, "sheave-demo-app: cannot listen on %s:%d\n", options_.host.c_str(),
                   options_.port);
      return 1;
    }
    std::printf("sheave-demo-app %s %s listening on %s:%d\n", options_.name.c_str(),
                options_.version.c_str(), options_.host.c_str(), options_.port);
    std::fflush(stdout);
    std::thread stopper([this] {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGTERM);
      sigaddset(&set, SIGINT);
      int sig = 0;
      sigwait(&set, &sig);
      server_.stop();
      // In-flight requests get 5 s (an upstream call may hang longer).
      std::this_thread::sleep_for(std::chrono::seconds(5));
      std::fflush(stdout);
      std::_Exit(0);
    });
    stopper.detach();
    server_.listen_after_bind();
    std::fflush(stdout);
    return 0;
  }

 private:
  Fault fault() {
    std::lock_guard<std::mutex> lock(mu_);
    return fault_;
  }

  void setFault(const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      res.status = 400;
      res.set_content("body must be a JSON object\n", "text/plain");
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    Fault next = fault_;
    if (body.contains("fail_fraction")) next.fail_fraction = body["fail_fraction"].get<double>();
    if (body.contains("fail_status")) next.fail_status = body["fail_status"].get<int>();
    if (body.contains("latency_ms")) {
      next.latency = std::chrono::milliseconds(body["latency_ms"].get<int64_t>());
    }
    if (next.fail_fraction < 0 || next.fail_fraction > 1 || next.fail_status < 100 ||
        next.fail_status > 599 || next.latency.count() < 0) {
      res.status = 400;
      res.set_content("fail_fraction must be in [0,1], fail_status an HTTP status\n", "text/plain");
      return;
    }
    fault_ = next;
    res.set_content(json{{"fail_fraction", fault_.fail_fraction},
                         {"fail_status", fault_.fail_status},
                         {"latency_ms", fault_.latency.count()}}
                            .dump() +
                        "\n",
                    "application/json");
  }

  static json callerOf(const httplib::Request& req) {
    // x-forwarded-client-cert: the first element's URI is the verified peer.
    std::string xfcc = req.get_header_value("x-forwarded-client-cert");
    std::string element = xfcc.substr(0, xfcc.find(','));
    size_t uri = element.find("URI=");
    if (uri == std::string::npos) return nullptr;
    std::string value = element.substr(uri + 4);
    return value.substr(0, value.find(';'));
  }

  json callUpstream(const Upstream& u, const httplib::Request& req) {
    json out = {{"url", u.url}};
    httplib::Client client(u.connect_host, u.connect_port);
    client.set_tcp_nodelay(true);
    client.set_connection_timeout(options_.upstream_timeout);
    client.set_read_timeout(options_.upstream_timeout);
    client.set_write_timeout(options_.upstream_timeout);
    httplib::Headers headers;
    for (const char* name : kForwarded) {
      if (req.has_header(name)) headers.emplace(name, req.get_header_value(name));
    }
    for (const auto& name : options_.forward_headers) {
      if (req.has_header(name)) headers.emplace(name, req.get_header_value(name));
    }
    headers.emplace("Host", u.host_header);
    httplib::Request call;
    call.method = req.method;
    call.path = u.path;
    call.headers = std::move(headers);
    httplib::Result r = client.send(call);
    if (!r) {
      out["status"] = 0;
      out["error"] = httplib::to_string(r.error());
      return out;
    }
    out["status"] = r->status;
    json parsed = json::parse(r->body, nullptr, false);
    out["body"] = parsed.is_discarded() ? json(r->body) : parsed;
    return out;
  }

  void serve(const httplib::Request& req, httplib::Response& res) {
    const uint64_t n = ++requests_;
    if (options_.crash_after > 0 && n > options_.crash_after) {
      // Raced the Nth request's exit: answer nothing, like a dead process.
      std::_Exit(1);
    }
    crash_after_this_ = options_.crash_after > 0 && n == options_.crash_after;
    Fault f = fault();
    if (f.latency.count() > 0) std::this_thread::sleep_for(f.latency);
    bool fail = false;
    if (f.fail_fraction > 0) {
      thread_local std::mt19937_64 rng(std::random_device{}());
      fail = std::uniform_real_distribution<double>(0, 1)(rng) < f.fail_fraction;
    }
    json headers = json::object();
    for (const auto& [k, v] : req.headers) {
      std::string key = k;
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      // cpp-httplib lists the socket's addresses among the headers.
      if (key == "remote_addr" || key == "remote_port" || key == "local_addr" ||
          key == "local_port") {
        continue;
      }
      headers[key] = v;
    }
    json body = {{"name", options_.name}, {"version", options_.version},
                 {"hostname", hostname_}, {"method", req.method},
                 {"path", req.path},      {"caller", callerOf(req)},
                 {"headers", headers},    {"upstreams", json::array()}};
    if (fail) {
      body["fault"] = "injected by --fail-fraction";
      res.status = f.fail_status;
      res.set_content(body.dump() + "\n", "application/json");
      return;
    }
    bool upstream_failed = false;
    for (const Upstream& u : options_.upstreams) {
      json answer = callUpstream(u, req);
      int status = answer["status"].get<int>();
      if (status == 0 || status >= 500) upstream_failed = true;
      body["upstreams"].push_back(std::move(answer));
    }
    res.status = upstream_failed && !options_.tolerate_upstream_errors ? 502 : 200;
    res.set_content(body.dump() + "\n", "application/json");
  }

  DemoOptions options_;
  std::string hostname_;
  httplib::Server server_;
  std::mutex mu_;
  Fault fault_;
  std::atomic<uint64_t> requests_{0};
  static thread_local std::chrono::steady_clock::time_point request_start_;
  static thread_local bool crash_after_this_;
};

thread_local std::chrono::steady_clock::time_point DemoApp::request_start_;
thread_local bool DemoApp::crash_after_this_ = false;

}  // namespace

int main(int argc, char** argv) {
  // SIGTERM/SIGINT are taken by the stopper thread; block them everywhere else.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  auto options = sheave::demo::parseDemoOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "sheave-demo-app: %s\n", options.error().message().c_str());
    return 2;
  }
  if (options->help) return 0;
  return DemoApp(std::move(options).value()).run();
}
