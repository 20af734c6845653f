"""Active health checking (Cluster.health_checks).

Envoy facts relied on: a host of a health-checked cluster is checked every interval (no_traffic_interval until the
cluster has had traffic); an HTTP check passes on a status in expected_statuses (default 200 only) and a status
outside expected_statuses and retriable_statuses fails the host at once, while connect failures and timeouts count
toward unhealthy_threshold; a failed host needs healthy_threshold passing checks to return (a host never checked
needs one). Priority levels: a level keeps the share of load its health (available hosts x 140%) covers and the
rest spills to the next level. A TCP check sends `send` and passes when every `receive` block arrived in order (no receive: connecting
is enough). Failed hosts get no traffic (unless the panic threshold applies), show health_flags::/failed_active_hc
in /clusters, and are counted in cluster.<name>.health_check.{attempt,success,failure,network_failure,healthy}.
Envoy supports one health check per cluster.
"""

import json
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase


def http_check(**extra):
    hc = {"timeout": "0.5s", "interval": "0.1s", "no_traffic_interval": "0.1s", "unhealthy_threshold": 2,
          "healthy_threshold": 2, "http_health_check": {"path": "/health"}}
    hc.update(extra)
    return hc


class HealthCheckTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.ups = [cls.start_upstream("replica-%d" % i) for i in range(3)]
        cls.echo = cls.start_tcp_echo()
        cls.dead_port = P.free_port()
        cls.port = P.free_port()
        routes = [P.route("/", "failover", {"headers": [{"name": "x-cluster", "string_match": {"exact": "failover"}}]}),
                  P.route("/", "web")]
        # Priority levels: replica-0 is P0, replica-1 and replica-2 are P1.
        failover = P.static_cluster("failover", [], health_checks=[http_check()])
        failover["load_assignment"]["endpoints"] = [
            {"priority": 0, "lb_endpoints": [{"endpoint": {"address": P.socket_address(cls.ups[0].port)}}]},
            {"priority": 1, "lb_endpoints": [{"endpoint": {"address": P.socket_address(u.port)}}
                                             for u in cls.ups[1:]]},
        ]
        tcp_check = {"timeout": "0.5s", "interval": "0.1s", "no_traffic_interval": "0.1s",
                     "unhealthy_threshold": 1, "healthy_threshold": 1,
                     "tcp_health_check": {"send": {"text": "70696e67"}, "receive": [{"text": "70696e67"}]}}
        cfg = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([P.virtual_host("all", routes)], access_log=False))],
            [P.static_cluster("web", [("127.0.0.1", u.port) for u in cls.ups], health_checks=[http_check()]),
             P.static_cluster("tcp", [("127.0.0.1", cls.echo.port), ("127.0.0.1", cls.dead_port)],
                              health_checks=[tcp_check]),
             failover],
            P.free_port())
        cls.proxy = cls.start_proxy(cfg, concurrency=2)

    def setUp(self):
        for u in self.ups:
            P.get(u.port, "/__health/200")

    def hosts(self, cluster):
        """port -> (failed_active_health_check, health_flags) from /clusters."""
        doc = json.loads(P.http_request(self.proxy.admin_port, "GET", "/clusters?format=json").body)
        out = {}
        for c in doc["cluster_statuses"]:
            if c["name"] == cluster:
                for h in c["host_statuses"]:
                    port = h["address"]["socket_address"]["port_value"]
                    out[port] = h["health_status"].get("failed_active_health_check", False)
        return out

    def wait_failed(self, cluster, expected, timeout=5.0):
        ok = P.wait_until(lambda: self.hosts(cluster) == expected, timeout)
        self.assertTrue(ok, "%s hosts: %s, expected %s" % (cluster, self.hosts(cluster), expected))

    def served_by(self, n):
        return {P.get(self.port, "/").body.decode() for _ in range(n)}

    def assert_served(self, serve, expected, message=None):
        """The workers rebuild their balancers just after the main thread's health change (which /clusters
        shows at once): wait briefly until the traffic follows, then it must be exactly `expected`."""
        last = set()

        def follows():
            nonlocal last
            last = serve()
            return last == expected
        P.wait_until(follows, 3.0)
        self.assertEqual(last, expected, message)

    def test_failing_replica_gets_no_traffic_until_it_recovers(self):
        a, b, c = self.ups
        self.wait_failed("web", {a.port: False, b.port: False, c.port: False})
        self.assert_served(lambda: self.served_by(30),
                           {"hello from replica-0", "hello from replica-1", "hello from replica-2"})

        P.get(b.port, "/__health/503")  # outside expected_statuses: failed at the first such answer
        self.wait_failed("web", {a.port: False, b.port: True, c.port: False})
        self.assert_served(lambda: self.served_by(30), {"hello from replica-0", "hello from replica-2"})
        text = P.http_request(self.proxy.admin_port, "GET", "/clusters").body.decode()
        self.assertIn("web::127.0.0.1:%d::health_flags::/failed_active_hc\n" % b.port, text)
        self.assertEqual(self.proxy.stat("cluster.web.health_check.healthy"), 2)

        P.get(b.port, "/__health/200")
        self.wait_failed("web", {a.port: False, b.port: False, c.port: False})
        self.assert_served(lambda: self.served_by(30),
                           {"hello from replica-0", "hello from replica-1", "hello from replica-2"})
        stats = self.proxy.stats()
        self.assertGreater(stats["cluster.web.health_check.attempt"], 10)
        self.assertGreater(stats["cluster.web.health_check.failure"], 0)
        self.assertEqual(stats["cluster.web.health_check.healthy"], 3)

    def test_checks_go_to_the_health_path_with_envoys_user_agent(self):
        def checks():
            return [dict(h) for m, p, h in self.ups[0].requests() if p == "/health"]
        self.assertTrue(P.wait_until(lambda: checks(), 3), "no health check reached the upstream")
        seen = checks()
        self.assertEqual(seen[-1].get("user-agent"), "Envoy/HC")
        self.assertEqual(seen[-1].get("host"), "web", "without http_health_check.host the cluster's name")

    def test_priority_failover(self):
        a, b, c = self.ups
        self.wait_failed("failover", {a.port: False, b.port: False, c.port: False})

        def served():
            return {P.get(self.port, "/", headers={"x-cluster": "failover"}).body.decode() for _ in range(20)}
        self.assert_served(served, {"hello from replica-0"}, "a healthy P0 takes all the load")
        text = P.http_request(self.proxy.admin_port, "GET", "/clusters").body.decode()
        self.assertIn("failover::127.0.0.1:%d::priority::1\n" % b.port, text)
        P.get(a.port, "/__health/503")
        self.wait_failed("failover", {a.port: True, b.port: False, c.port: False})
        self.assert_served(served, {"hello from replica-1", "hello from replica-2"}, "P0 down: P1 takes over")
        P.get(a.port, "/__health/200")
        self.wait_failed("failover", {a.port: False, b.port: False, c.port: False})
        self.assert_served(served, {"hello from replica-0"}, "and gives the load back")

    def test_tcp_check_with_payloads(self):
        self.wait_failed("tcp", {self.echo.port: False, self.dead_port: True})
        self.assertGreater(self.proxy.stat("cluster.tcp.health_check.network_failure"), 0)


class HealthCheckConfigTest(ProxyTestCase):
    def check_rejected(self, checks, expect):
        cfg = P.simple_http_bootstrap(P.free_port(), P.free_port(), P.free_port(),
                                      cluster_extra={"health_checks": checks})
        p = self.new_proxy(cfg)
        code, out, err = p.run_mode("validate")
        self.assertEqual(code, 1, out + err)
        self.assertIn(expect, err)

    def test_timeout_required(self):
        hc = http_check()
        del hc["timeout"]
        self.check_rejected([hc], "health_checks[0]")

    def test_one_health_check_per_cluster(self):
        self.check_rejected([http_check(), http_check()], "multiple health checks")

    def test_grpc_not_supported(self):
        hc = http_check()
        del hc["http_health_check"]
        hc["grpc_health_check"] = {}
        self.check_rejected([hc], "grpc_health_check")


if __name__ == "__main__":
    unittest.main()
