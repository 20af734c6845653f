"""Retries, timeouts and the router's x-envoy-* headers.

Envoy facts relied on: after the last allowed retry the last upstream response is passed through and the
response flag URX is set (cluster.<name>.upstream_rq_retry_limit_exceeded counts it); a connect failure is a 503
with flag UF and a body starting "upstream connect error or disconnect/reset before headers"; the route timeout
gives 504, flag UT, body "upstream request timeout"; per_try_timeout bounds each attempt and a per-try timeout is
retriable under retry_on 5xx.
"""

import threading
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase


def retry(retry_on, n, **extra):
    p = {"retry_on": retry_on, "num_retries": n}
    p.update(extra)
    return p


class RetriesTimeoutsTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        admin = P.free_port()
        dead_port = P.free_port()  # nothing listens there: connections are refused
        routes = [
            {"match": {"prefix": "/delay/", "headers": [{"name": "x-test", "string_match": {"exact": "pertry"}}]},
             "route": {"cluster": "backend", "timeout": "5s",
                       "retry_policy": retry("5xx", 2, per_try_timeout="0.3s")}},
            P.route("/fail-first/", "backend", retry_policy=retry("5xx", 2)),
            P.route("/reset", "backend", retry_policy=retry("reset", 1)),
            P.route("/delay/", "backend", timeout="0.5s"),
            P.route("/dead-retry", "dead", retry_policy=retry("connect-failure", 2)),
            P.route("/dead", "dead"),
            P.route("/", "backend"),
        ]
        vh = P.virtual_host("all", routes, include_request_attempt_count=True,
                            include_attempt_count_in_response=True)
        cfg = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([vh]))],
            [P.static_cluster("backend", [("127.0.0.1", cls.up.port)]),
             P.static_cluster("dead", [("127.0.0.1", dead_port)], connect_timeout="0.5s")],
            admin)
        cls.proxy = cls.start_proxy(cfg)

    def log_for(self, path):
        line = self.proxy.wait_for_log(lambda l: '"GET %s ' % path in l)
        self.assertIsNotNone(line, "no access-log line for %s:\n%s" % (path, self.proxy.stdout()))
        fields = P.parse_access_log_line(line)
        self.assertIsNotNone(fields, line)
        return fields

    def flags_of(self, path):
        return set(self.log_for(path)["flags"].split(","))

    def test_retry_on_5xx_until_success(self):
        r = P.get(self.port, "/fail-first/2/ok")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.count_path("/fail-first/2/ok"), 3)
        self.assertEqual(r.headers.get("x-envoy-attempt-count"), "3")
        self.assertEqual(self.log_for("/fail-first/2/ok")["flags"], "-")

    def test_attempt_count_sent_upstream(self):
        P.get(self.port, "/fail-first/1/attempts")
        seen = [dict(h).get("x-envoy-attempt-count") for m, p, h in self.up.requests() if p == "/fail-first/1/attempts"]
        self.assertEqual(seen, ["1", "2"])

    def test_retries_exhausted_pass_last_response_with_URX(self):
        before = self.proxy.stat("cluster.backend.upstream_rq_retry_limit_exceeded")
        r = P.get(self.port, "/fail-first/5/exhaust")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.body, b"failing 3 of 5", "the upstream's own last response must pass through")
        self.assertEqual(self.up.count_path("/fail-first/5/exhaust"), 3)
        self.assertIn("URX", self.flags_of("/fail-first/5/exhaust"))
        self.assertEqual(self.proxy.stat("cluster.backend.upstream_rq_retry_limit_exceeded"), before + 1)
        self.assertGreaterEqual(self.proxy.stat("cluster.backend.upstream_rq_retry"), 2)

    def test_connect_failure_is_503_UF(self):
        r = P.get(self.port, "/dead")
        self.assertEqual(r.status, 503)
        self.assertTrue(r.body.startswith(b"upstream connect error or disconnect/reset before headers"), r.body)
        self.assertIn("UF", self.flags_of("/dead"))
        self.assertGreaterEqual(self.proxy.stat("cluster.dead.upstream_cx_connect_fail"), 1)

    def test_connect_failure_retried_then_URX(self):
        before = self.proxy.stat("cluster.dead.upstream_cx_connect_fail")
        r = P.get(self.port, "/dead-retry")
        self.assertEqual(r.status, 503)
        flags = self.flags_of("/dead-retry")
        self.assertIn("UF", flags)
        self.assertIn("URX", flags)
        self.assertEqual(self.proxy.stat("cluster.dead.upstream_cx_connect_fail") - before, 3)

    def test_upstream_reset_is_retried_under_retry_on_reset(self):
        r = P.get(self.port, "/reset")
        self.assertEqual(r.status, 503)
        self.assertEqual(self.up.count_path("/reset"), 2)
        flags = self.flags_of("/reset")
        self.assertTrue(flags & {"UC", "UR"}, flags)
        self.assertIn("URX", flags)

    def test_route_timeout_is_504_UT(self):
        t0 = time.monotonic()
        r = P.get(self.port, "/delay/3000")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 504)
        self.assertEqual(r.body, b"upstream request timeout")
        self.assertGreater(elapsed, 0.4)
        self.assertLess(elapsed, 2.0)
        self.assertIn("UT", self.flags_of("/delay/3000"))
        self.assertGreaterEqual(self.proxy.stat("cluster.backend.upstream_rq_timeout"), 1)

    def test_per_try_timeout_with_retries(self):
        before = self.up.count_path("/delay/2000")
        t0 = time.monotonic()
        r = P.get(self.port, "/delay/2000", headers={"x-test": "pertry"})
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 504)
        # three attempts of 0.3 s each, well inside the 5 s route timeout
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 2.5)
        self.assertTrue(P.wait_until(lambda: self.up.count_path("/delay/2000") - before == 3, 3.0),
                        "expected 3 attempts, upstream saw %d" % (self.up.count_path("/delay/2000") - before))
        self.assertGreaterEqual(self.proxy.stat("cluster.backend.upstream_rq_per_try_timeout"), 3)

    def test_upstream_service_time_header(self):
        r = P.get(self.port, "/echo/st")
        self.assertEqual(r.status, 200)
        self.assertRegex(r.headers.get("x-envoy-upstream-service-time", ""), r"^\d+$")

    def test_timeout_does_not_block_other_requests(self):
        # A request stuck behind a slow upstream must not delay an unrelated one on another connection.
        slow = threading.Thread(target=lambda: P.get(self.port, "/delay/2500"))
        slow.start()
        try:
            t0 = time.monotonic()
            r = P.get(self.port, "/echo/fast")
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, 0.4)
        finally:
            slow.join(5)


class MaxConnectionDurationTest(ProxyTestCase):
    """Cluster common_http_protocol_options.max_connection_duration (Envoy): a connection that reaches it takes
    no new requests and closes once idle; a request in flight finishes; counted in
    cluster.<name>.upstream_cx_max_duration_reached."""

    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        options = {key: {"@type": P.HTTP_PROTOCOL_OPTIONS_TYPE,
                         "common_http_protocol_options": {"max_connection_duration": "0.5s"},
                         "explicit_http_config": {"http_protocol_options": {}}}}
        cfg = P.simple_http_bootstrap(cls.up.port, cls.port, P.free_port(),
                                      cluster_extra={"typed_extension_protocol_options": options})
        cls.proxy = cls.start_proxy(cfg)

    def test_connection_retires_after_its_duration(self):
        before = self.up.connections
        self.assertEqual(P.get(self.port, "/a").status, 200)
        self.assertEqual(P.get(self.port, "/b").status, 200)
        self.assertEqual(self.up.connections - before, 1, "requests within the duration share one connection")
        # A request running across the deadline is not cut.
        self.assertEqual(P.get(self.port, "/delay/700").status, 200)
        self.assertEqual(P.get(self.port, "/c").status, 200)
        self.assertEqual(self.up.connections - before, 2, "past the duration a new connection is opened")
        self.assertGreaterEqual(self.proxy.stat("cluster.backend.upstream_cx_max_duration_reached"), 1)


if __name__ == "__main__":
    unittest.main()
