"""Outlier detection (Cluster.outlier_detection) in sheave-proxy: a host that keeps failing is ejected from
the load-balancing set within one `interval`, stays out for base_ejection_time, comes back, and the stats and
/clusters say so. Upstreams are sheave-demo-app processes, whose faults can be changed while they run."""

import json
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase
from test_demo_app import DemoApp


class OutlierDetectionTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.apps = [DemoApp("--name", "up%d" % i) for i in range(3)]
        cls.port = P.free_port()
        cfg = P.simple_http_bootstrap(0, cls.port, P.free_port(), cluster_name="backend")
        cluster = cfg["static_resources"]["clusters"][0]
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"] = [
            {"endpoint": {"address": P.socket_address(a.port)}} for a in cls.apps]
        cluster["outlier_detection"] = {"consecutive_5xx": 3, "interval": "0.2s", "base_ejection_time": "1s",
                                        "max_ejection_percent": 50}
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": 0}}
        cls.proxy = cls.start_proxy(cfg)

    @classmethod
    def tearDownClass(cls):
        for a in cls.apps:
            a.stop()
        super().tearDownClass()

    def names(self, n):
        out = []
        for _ in range(n):
            r = P.get(self.port, "/")
            out.append(json.loads(r.body)["name"] if r.status == 200 else r.status)
        return out

    def test_failing_host_is_ejected_and_returns(self):
        self.assertEqual(set(self.names(30)), {"up0", "up1", "up2"})
        bad = self.apps[1]
        self.assertEqual(bad.get("/demo/fault", method="POST", body=b'{"fail_fraction": 1, "fail_status": 500}').status,
                         200)
        seen = self.names(30)  # round robin: up1 fails 3 times in a row within 9 requests
        self.assertIn(500, seen)
        time.sleep(0.5)  # the next interval ejects it
        self.assertEqual(self.proxy.stat("cluster.backend.outlier_detection.ejections_enforced_consecutive_5xx"), 1)
        self.assertEqual(self.proxy.stat("cluster.backend.outlier_detection.ejections_active"), 1)
        clusters = self.proxy.admin("GET", "/clusters")[2]
        self.assertIn("backend::127.0.0.1:%d::health_flags::/failed_outlier_check" % bad.port, clusters)
        self.assertEqual(set(self.names(40)), {"up0", "up2"})
        # Healthy again, and back after base_ejection_time (1 s, checked every 0.2 s).
        bad.get("/demo/fault", method="POST", body=b'{"fail_fraction": 0}')
        self.assertTrue(P.wait_until(lambda: "up1" in self.names(9), 3))
        self.assertEqual(self.proxy.stat("cluster.backend.outlier_detection.ejections_active"), 0)

    def test_max_ejection_percent_keeps_most_hosts(self):
        # With every host failing, at most 50% of 3 (one host) is ejected; the rest keep serving.
        for a in self.apps:
            a.get("/demo/fault", method="POST", body=b'{"fail_fraction": 1, "fail_status": 500}')
        try:
            self.names(30)
            time.sleep(0.5)
            self.names(30)
            time.sleep(0.5)
            self.assertLessEqual(self.proxy.stat("cluster.backend.outlier_detection.ejections_active"), 1)
            self.assertGreaterEqual(self.proxy.stat("cluster.backend.outlier_detection.ejections_overflow"), 1)
        finally:
            for a in self.apps:
                a.get("/demo/fault", method="POST", body=b'{"fail_fraction": 0}')


if __name__ == "__main__":
    unittest.main()
