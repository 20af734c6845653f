"""Runs sheave-proxy for a test: renders an Envoy v3 bootstrap, starts the process, waits for /ready, captures
stdout (the access log) and stderr, and stops it with SIGTERM (asserting exit code 0). Every wait is bounded.

Also: bootstrap builders for the shapes the tests use (all field names are Envoy's), a small HTTP client and a
parser for Envoy's default access-log format.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.abspath(os.path.join(INTEGRATION_DIR, "..", ".."))

HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
BUFFER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"
TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
STDOUT_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
HTTP_PROTOCOL_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def proxy_binary():
    env = os.environ.get("SHEAVE_PROXY")
    if env:
        return env
    for candidate in (os.path.join(REPO_ROOT, "build", "bin", "sheave-proxy"),
                      os.path.join(REPO_ROOT, "build-integ", "bin", "sheave-proxy")):
        if os.path.exists(candidate):
            return candidate
    return os.path.join(REPO_ROOT, "build", "bin", "sheave-proxy")


_handed_out = set()


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (bind port 0, read it, release it), and never one this
    process was given before: the kernel may hand a just-released port out again, and two of a test's ports
    (a listener and its admin) must differ even before anything binds them."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise OSError("no fresh free port on 127.0.0.1")


def port_is_free(port):
    """True if nothing listens on 127.0.0.1:port (SO_REUSEADDR: leftover TIME_WAIT sockets do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------------
# Bootstrap builders (plain dicts in Envoy's v3 JSON shape).


def socket_address(port, address="127.0.0.1"):
    return {"socket_address": {"address": address, "port_value": port}}


def static_cluster(name, endpoints, lb_policy="ROUND_ROBIN", connect_timeout="1s", **extra):
    """endpoints: list of (address, port)."""
    c = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "lb_policy": lb_policy,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(p, a)}} for a, p in endpoints]}],
        },
    }
    c.update(extra)
    return c


def stdout_access_log(fmt=None):
    cfg = {"@type": STDOUT_LOG_TYPE}
    if fmt is not None:
        cfg["log_format"] = {"text_format_source": {"inline_string": fmt}}
    return {"name": "envoy.access_loggers.stdout", "typed_config": cfg}


def route(prefix, cluster, match_extra=None, **action):
    """A route on a path prefix to a cluster; `action` adds RouteAction fields (timeout, retry_policy, ...)."""
    m = {"prefix": prefix}
    m.update(match_extra or {})
    a = {"cluster": cluster}
    a.update(action)
    return {"match": m, "route": a}


def virtual_host(name, routes, domains=("*",), **extra):
    vh = {"name": name, "domains": list(domains), "routes": routes}
    vh.update(extra)
    return vh


def hcm(virtual_hosts, stat_prefix="ingress_http", http_filters=None, access_log=True, route_config_extra=None,
        **extra):
    rc = {"name": "local_route", "virtual_hosts": virtual_hosts}
    rc.update(route_config_extra or {})
    cfg = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "route_config": rc,
        "http_filters": (http_filters or []) + [{"name": "envoy.filters.http.router",
                                                 "typed_config": {"@type": ROUTER_TYPE}}],
    }
    if access_log is True:
        cfg["access_log"] = [stdout_access_log()]
    elif access_log:
        cfg["access_log"] = access_log
    cfg.update(extra)
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": cfg}


def listener(name, port, network_filter, **extra):
    l = {"name": name, "address": socket_address(port), "filter_chains": [{"filters": [network_filter]}]}
    l.update(extra)
    return l


def bootstrap(listeners, clusters, admin_port):
    return {
        "admin": {"address": socket_address(admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def simple_http_bootstrap(upstream_port, listen_port, admin_port, route_action=None, hcm_extra=None,
                          cluster_extra=None, cluster_name="backend", http_filters=None):
    """One listener, one catch-all route to one STATIC cluster: the common case."""
    r = route("/", cluster_name, **(route_action or {}))
    return bootstrap(
        [listener("listener_0", listen_port,
                  hcm([virtual_host("all", [r])], http_filters=http_filters, **(hcm_extra or {})))],
        [static_cluster(cluster_name, [("127.0.0.1", upstream_port)], **(cluster_extra or {}))],
        admin_port,
    )


# ---------------------------------------------------------------------------------------------------------------
# The process.


class ProxyError(Exception):
    pass


class Proxy:
    """One sheave-proxy process.

    config: a dict (written as JSON, or YAML when fmt="yaml" — JSON is valid YAML, so the dict is dumped as JSON
    text into a .yaml file) or a str (written as is). The listener ports are the caller's; `admin_port` is read
    from the dict when possible.
    """

    def __init__(self, config, fmt="json", concurrency=1, log_level="info", extra_args=(), drain_time_s=None,
                 config_path=None):
        self.config = config
        self.fmt = fmt
        self.concurrency = concurrency
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.drain_time_s = drain_time_s
        self.dir = tempfile.mkdtemp(prefix="sheave-integ-")
        self.config_path = config_path or os.path.join(self.dir, "bootstrap." + ("json" if fmt == "json" else "yaml"))
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.admin_port = None
        if isinstance(config, dict):
            try:
                self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
            except KeyError:
                pass

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def write_config(self):
        """Writes the config (None: use the file already at config_path as is)."""
        if self.config is not None:
            text = json.dumps(self.config, indent=2) if isinstance(self.config, dict) else self.config
            with open(self.config_path, "w") as f:
                f.write(text)
        return self.config_path

    def command(self, mode=None):
        cmd = [proxy_binary(), "-c", self.config_path, "--concurrency", str(self.concurrency),
               "--log-level", self.log_level]
        if self.drain_time_s is not None:
            cmd += ["--drain-time-s", str(self.drain_time_s)]
        if mode:
            cmd += ["--mode", mode]
        return cmd + self.extra_args

    def start(self, ready_timeout=15.0):
        binary = proxy_binary()
        if not os.path.exists(binary):
            raise ProxyError("sheave-proxy not found at %s (build it, or set SHEAVE_PROXY)" % binary)
        self.write_config()
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL)
        if self.admin_port is not None:
            self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProxyError("sheave-proxy exited with %s before ready; stderr:\n%s"
                                 % (self.proc.returncode, self.stderr()))
            try:
                status, _, body = self.admin("GET", "/ready", timeout=1.0)
                if status == 200:
                    return
                last = (status, body)
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise ProxyError("sheave-proxy not ready within %.0fs (last: %r); stderr:\n%s" % (timeout, last, self.stderr()))

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Waits up to `timeout` seconds; returns the exit code or None if still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10.0):
        """SIGTERM, then wait; returns the exit code (kills and raises if it does not exit in time)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.wait_exit(timeout)
            if code is None:
                self.kill()
                raise ProxyError("sheave-proxy did not exit within %.0fs of SIGTERM" % timeout)
        self._close_files()
        return self.proc.returncode

    def stop_and_assert_clean(self, testcase, timeout=10.0):
        code = self.stop(timeout)
        testcase.assertEqual(code, 0, "sheave-proxy exit code after SIGTERM; stderr tail:\n%s" % self.stderr()[-3000:])

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f and not f.closed:
                f.close()

    def cleanup(self):
        self.kill()
        if os.environ.get("SHEAVE_KEEP_TMP"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def run_mode(self, mode="validate", timeout=15.0):
        """Runs the binary once with --mode MODE; returns (exit code, stdout, stderr)."""
        self.write_config()
        p = subprocess.run(self.command(mode), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    # -- output ---------------------------------------------------------------------------------------------------

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def access_log_lines(self):
        return [l for l in self.stdout().splitlines() if l.strip()]

    def wait_for_log(self, predicate, timeout=11.0):
        """Waits for an access-log line matching `predicate`.

        Envoy buffers access logs and flushes them every 10 s by default (--file-flush-interval-msec), so a proxy
        that does the same still passes; one that writes at once costs no waiting.
        """
        deadline = time.monotonic() + timeout
        while True:
            for line in self.access_log_lines():
                if predicate(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    # -- admin ----------------------------------------------------------------------------------------------------

    def admin(self, method, path, timeout=5.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body.decode(errors="replace")
        finally:
            conn.close()

    def stats(self):
        """/stats as {name: int} (counters and gauges; histogram lines are skipped)."""
        status, _, body = self.admin("GET", "/stats")
        if status != 200:
            raise ProxyError("/stats returned %d" % status)
        out = {}
        for line in body.splitlines():
            name, sep, value = line.partition(": ")
            if sep and re.fullmatch(r"-?\d+", value.strip()):
                out[name.strip()] = int(value)
        return out

    def stat(self, name, default=0):
        return self.stats().get(name, default)

    def wait_stat(self, name, predicate, timeout=5.0):
        """Polls /stats until predicate(value) holds; returns the last value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.stat(name)
            if predicate(v) or time.monotonic() >= deadline:
                return v
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------------------
# Clients and log parsing.


class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-cased name -> value (repeated headers joined with ",")
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "HttpResult(%d, %r)" % (self.status, self.body[:200])


def http_request(port, method, path, host="example.com", headers=None, body=None, timeout=10.0, conn=None):
    """One request with an explicit Host (http.client would otherwise send 127.0.0.1:port)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            k = k.lower()
            hdrs[k] = hdrs[k] + "," + v if k in hdrs else v
        return HttpResult(r.status, hdrs, data)
    finally:
        if own:
            conn.close()


def get(port, path, **kw):
    return http_request(port, "GET", path, **kw)


_DEFAULT_LOG_RE = re.compile(
    r'^\[(?P<start_time>[^\]]*)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<code>\d+) '
    r'(?P<flags>\S+) (?P<bytes_received>\d+) (?P<bytes_sent>\d+) (?P<duration>\S+) (?P<upstream_service_time>\S+) '
    r'"(?P<xff>[^"]*)" "(?P<user_agent>[^"]*)" "(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" '
    r'"(?P<upstream_host>[^"]*)"')


def parse_access_log_line(line):
    """Parses Envoy's default access-log format; returns a dict of its fields or None."""
    m = _DEFAULT_LOG_RE.match(line.strip())
    return m.groupdict() if m else None


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)
