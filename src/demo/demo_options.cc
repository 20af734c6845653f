#include "demo/demo_options.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

namespace sheave::demo {

Result<std::chrono::milliseconds> parseDuration(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 9)
    return invalidArgument("\"" + text + "\" is not a duration like 100ms or 2s");
  int64_t value = std::stoll(text.substr(0, digits));
  std::string unit = text.substr(digits);
  if (unit == "ms") return std::chrono::milliseconds(value);
  if (unit == "s" || unit.empty()) return std::chrono::milliseconds(value * 1000);
  if (unit == "m") return std::chrono::milliseconds(value * 60000);
  return invalidArgument("\"" + text + "\" is not a duration like 100ms or 2s");
}

Result<Upstream> parseUpstream(const std::string& url, const EnvLookup& env) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return invalidArgument("--upstream " + url + ": only http:// URLs are supported");
  }
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  Upstream u;
  u.url = url;
  u.host_header = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string host = u.host_header;
  int port = 80;
  if (size_t colon = host.rfind(':'); colon != std::string::npos && host.back() != ']') {
    std::string digits = host.substr(colon + 1);
    char* end = nullptr;
    long p = std::strtol(digits.c_str(), &end, 10);
    if (digits.empty() || *end != '\0' || p < 1 || p > 65535) {
      return invalidArgument("--upstream " + url + ": bad port");
    }
    port = static_cast<int>(p);
    host = host.substr(0, colon);
  }
  if (host.empty()) return invalidArgument("--upstream " + url + ": no host");
  u.connect_host = host;
  u.connect_port = port;
  // Kubernetes' service environment variables: REVIEWS_SERVICE_HOST for "reviews".
  std::string prefix;
  for (char c : host.substr(0, host.find('.'))) {
    prefix += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (env) {
    if (const char* h = env((prefix + "_SERVICE_HOST").c_str()); h != nullptr && *h != '\0') {
      u.connect_host = h;
    }
    if (const char* p = env((prefix + "_SERVICE_PORT").c_str()); p != nullptr && *p != '\0') {
      int value = std::atoi(p);
      if (value < 1 || value > 65535) {
        return invalidArgument(prefix + "_SERVICE_PORT=" + p + " is not a port");
      }
      u.connect_port = value;
    }
  }
  return u;
}

Result<DemoOptions> parseDemoOptions(int argc, const char* const* argv, EnvLookup env) {
  if (!env) env = [](const char* name) { return std::getenv(name); };
  DemoOptions o;
  CLI::App app{"sheave-demo-app: one HTTP server for every Bookinfo role"};
  std::string listen = "0.0.0.0:9080";
  std::vector<std::string> upstreams;
  std::string latency = "0ms";
  std::string timeout = "15s";
  auto fromEnv = [&](CLI::Option* opt, const char* name) {
    // CLI11's envname reads getenv; the injected lookup keeps tests hermetic.
    if (const char* v = env(name); v != nullptr && opt->count() == 0) {
      if (opt->get_items_expected_max() > 1) {
        // Repeatable flags take a comma- or space-separated list from the environment.
        std::string item;
        for (const char* c = v;; ++c) {
          if (*c == ',' || *c == ' ' || *c == '\0') {
            if (!item.empty()) opt->add_result(item);
            item.clear();
            if (*c == '\0') break;
          } else {
            item += *c;
          }
        }
      } else {
        opt->add_result(std::string(v));
      }
      opt->run_callback();
    }
  };
  std::vector<std::pair<CLI::Option*, const char*>> env_options = {
      {app.add_option("--name", o.name, "the role (productpage, reviews, ...)"), "DEMO_NAME"},
      {app.add_option("--version", o.version, "the version it answers with"), "DEMO_VERSION"},
      {app.add_option("--listen", listen, "host:port to listen on"), "DEMO_LISTEN"},
      {app.add_option("--threads", o.threads, "worker threads"), "DEMO_THREADS"},
      {app.add_option("--upstream", upstreams, "URL called on every request (repeatable)"),
       "DEMO_UPSTREAM"},
      {app.add_option("--forward-header", o.forward_headers, "another header to pass upstream"),
       "DEMO_FORWARD_HEADER"},
      {app.add_option("--upstream-timeout", timeout, "per upstream call"), "DEMO_UPSTREAM_TIMEOUT"},
      {app.add_option("--fail-fraction", o.fault.fail_fraction, "share of requests that fail"),
       "DEMO_FAIL_FRACTION"},
      {app.add_option("--fail-status", o.fault.fail_status, "status of a failed request"),
       "DEMO_FAIL_STATUS"},
      {app.add_option("--latency", latency, "added before every answer (100ms, 2s)"),
       "DEMO_LATENCY"},
      {app.add_option("--crash-after", o.crash_after, "exit(1) after this many requests"),
       "DEMO_CRASH_AFTER"},
  };
  app.add_flag("--tolerate-upstream-errors", o.tolerate_upstream_errors,
               "answer 200 even when an upstream fails");
  try {
    app.parse(argc, argv);
    for (auto& [opt, name] : env_options) fromEnv(opt, name);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    o.help = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return invalidArgument(e.what());
  }
  if (o.name.empty()) return invalidArgument("--name is required (e.g. --name reviews)");
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos)
    return invalidArgument("--listen " + listen + ": expected host:port");
  o.host = listen.substr(0, colon);
  if (o.host.size() > 1 && o.host.front() == '[') o.host = o.host.substr(1, o.host.size() - 2);
  o.port = std::atoi(listen.c_str() + colon + 1);
  if (o.port < 1 || o.port > 65535) return invalidArgument("--listen " + listen + ": bad port");
  if (o.threads < 1 || o.threads > 256) return invalidArgument("--threads must be in [1, 256]");
  if (o.fault.fail_fraction < 0 || o.fault.fail_fraction > 1) {
    return invalidArgument("--fail-fraction must be in [0, 1]");
  }
  if (o.fault.fail_status < 100 || o.fault.fail_status > 599) {
    return invalidArgument("--fail-status must be an HTTP status");
  }
  SHEAVE_ASSIGN_OR_RETURN(o.fault.latency, parseDuration(latency));
  SHEAVE_ASSIGN_OR_RETURN(auto upstream_timeout, parseDuration(timeout));
  if (upstream_timeout.count() < 1) return invalidArgument("--upstream-timeout must be positive");
  o.upstream_timeout = upstream_timeout;
  for (const std::string& url : upstreams) {
    SHEAVE_ASSIGN_OR_RETURN(Upstream u, parseUpstream(url, env));
    o.upstreams.push_back(std::move(u));
  }
  return o;
}

}  // namespace sheave::demo
