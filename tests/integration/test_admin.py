"""The admin listener: Envoy's endpoints, paths and output shapes."""

import json
import re
import shutil
import subprocess
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

REQUESTS = 3


class AdminTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        cls.proxy = cls.start_proxy(P.simple_http_bootstrap(cls.up.port, cls.port, P.free_port()))
        for i in range(REQUESTS):
            r = P.get(cls.port, "/echo/admin%d" % i)
            assert r.status == 200, r

    def get(self, path):
        status, headers, body = self.proxy.admin("GET", path)
        self.assertEqual(status, 200, "%s -> %d %s" % (path, status, body[:300]))
        return headers, body

    def test_ready(self):
        _, body = self.get("/ready")
        self.assertEqual(body.strip(), "LIVE")

    def test_server_info(self):
        headers, body = self.get("/server_info")
        self.assertIn("application/json", headers.get("content-type", ""))
        info = json.loads(body)
        self.assertEqual(info["state"], "LIVE")
        self.assertTrue(info["version"])
        self.assertIn("uptime_current_epoch", info)
        self.assertIn("uptime_all_epochs", info)
        self.assertEqual(int(info["command_line_options"]["concurrency"]), 1)
        self.assertEqual(info["command_line_options"]["config_path"], self.proxy.config_path)

    def test_stats_text(self):
        _, body = self.get("/stats")
        stats = self.proxy.stats()
        self.assertGreaterEqual(stats.get("cluster.backend.upstream_rq_total", 0), REQUESTS, body[:2000])
        self.assertGreaterEqual(stats.get("cluster.backend.upstream_rq_200", 0), REQUESTS)
        self.assertGreaterEqual(stats.get("cluster.backend.upstream_cx_total", 0), 1)
        self.assertGreaterEqual(stats.get("http.ingress_http.downstream_rq_total", 0), REQUESTS)
        self.assertGreaterEqual(stats.get("http.ingress_http.downstream_rq_2xx", 0), REQUESTS)
        self.assertEqual(stats.get("server.live"), 1)
        self.assertEqual(stats.get("server.concurrency"), 1)
        for line in body.splitlines():
            self.assertRegex(line, r"^[A-Za-z0-9_.:\-\[\]/|]+: ", "not a 'name: value' line: %r" % line)

    def test_stats_filter(self):
        _, body = self.get("/stats?filter=upstream_rq_total")
        lines = [l for l in body.splitlines() if l.strip()]
        self.assertTrue(lines)
        for line in lines:
            self.assertIn("upstream_rq_total", line.split(":")[0])

    def test_stats_json(self):
        _, body = self.get("/stats?format=json")
        doc = json.loads(body)
        named = {s["name"]: s.get("value") for s in doc["stats"] if "name" in s}
        self.assertGreaterEqual(int(named["cluster.backend.upstream_rq_total"]), REQUESTS)

    def test_stats_prometheus(self):
        headers, body = self.get("/stats/prometheus")
        self.assertIn("text/plain", headers.get("content-type", ""))
        self.assertIn("# TYPE envoy_cluster_upstream_rq_total counter", body)
        m = re.search(r'^envoy_cluster_upstream_rq_total\{envoy_cluster_name="backend"\} (\d+)$', body, re.M)
        self.assertIsNotNone(m, body[:3000])
        self.assertGreaterEqual(int(m.group(1)), REQUESTS)
        self.assertRegex(body, r'(?m)^envoy_http_downstream_rq_total\{envoy_http_conn_manager_prefix="ingress_http"\} \d+$')
        # Every sample line belongs to a metric announced by a TYPE line, and names are valid Prometheus names.
        typed = set(re.findall(r"(?m)^# TYPE (\S+) (?:counter|gauge|histogram|summary|untyped)$", body))
        for line in body.splitlines():
            if not line or line.startswith("#"):
                continue
            name = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
            self.assertIsNotNone(name, line)
            base = re.sub(r"_(bucket|sum|count)$", "", name.group(1))
            self.assertTrue(name.group(1) in typed or base in typed, "no TYPE line for %r" % line)

    @unittest.skipUnless(shutil.which("promtool"), "promtool (package prometheus) not installed")
    def test_stats_prometheus_promtool(self):
        _, body = self.get("/stats/prometheus")
        p = subprocess.run(["promtool", "check", "metrics"], input=body.encode(), capture_output=True, timeout=30)
        # promtool exits 0 when clean, 3 when it only has lint findings (Envoy's counter names have no
        # _total suffix and no HELP text, as Envoy's own output), and 1 when the text does not parse.
        self.assertIn(p.returncode, (0, 3), p.stderr.decode() + p.stdout.decode())
        self.assertNotIn("error while linting", (p.stdout + p.stderr).decode())

    def test_clusters_text(self):
        _, body = self.get("/clusters")
        host = "backend::127.0.0.1:%d::" % self.up.port
        self.assertIn(host + "health_flags::healthy", body)
        m = re.search(r"^%srq_total::(\d+)$" % re.escape(host), body, re.M)
        self.assertIsNotNone(m, body)
        self.assertGreaterEqual(int(m.group(1)), REQUESTS)
        self.assertIn("backend::default_priority::max_connections::", body)

    def test_clusters_json(self):
        _, body = self.get("/clusters?format=json")
        doc = json.loads(body)
        backend = [c for c in doc["cluster_statuses"] if c["name"] == "backend"]
        self.assertEqual(len(backend), 1)
        addr = backend[0]["host_statuses"][0]["address"]["socket_address"]
        self.assertEqual((addr["address"], int(addr["port_value"])), ("127.0.0.1", self.up.port))

    def test_config_dump(self):
        headers, body = self.get("/config_dump")
        doc = json.loads(body)
        types = [c.get("@type") for c in doc["configs"]]
        for t in ("BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump"):
            self.assertIn("type.googleapis.com/envoy.admin.v3." + t, types)
        self.assertLess(types.index("type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"),
                        types.index("type.googleapis.com/envoy.admin.v3.ClustersConfigDump"))
        self.assertIn('"backend"', body)
        boot = doc["configs"][types.index("type.googleapis.com/envoy.admin.v3.BootstrapConfigDump")]
        clusters = boot["bootstrap"]["static_resources"]["clusters"]
        self.assertEqual(clusters[0]["name"], "backend")

    def test_listeners(self):
        _, body = self.get("/listeners")
        self.assertIn("listener_0::127.0.0.1:%d" % self.port, body)
        _, body = self.get("/listeners?format=json")
        doc = json.loads(body)
        self.assertEqual(doc["listener_statuses"][0]["name"], "listener_0")

    def test_logging(self):
        status, _, body = self.proxy.admin("POST", "/logging?level=debug")
        self.assertEqual(status, 200, body)
        status, _, body = self.proxy.admin("POST", "/logging?level=info")
        self.assertEqual(status, 200, body)
        self.assertIn("info", body)

    def test_unknown_path_is_404(self):
        status, _, _ = self.proxy.admin("GET", "/no-such-endpoint")
        self.assertEqual(status, 404)


class QuitQuitQuitTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.proxy = cls.start_proxy(P.simple_http_bootstrap(P.free_port(), P.free_port(), P.free_port()))

    def test_quitquitquit_exits_cleanly(self):
        status, _, _ = self.proxy.admin("POST", "/quitquitquit")
        self.assertEqual(status, 200)
        code = self.proxy.wait_exit(10)
        self.assertEqual(code, 0, self.proxy.stderr()[-2000:])
        self.assertTrue(P.port_is_free(self.proxy.admin_port))


if __name__ == "__main__":
    unittest.main()
