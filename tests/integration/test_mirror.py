"""Request mirroring (RouteAction.request_mirror_policies).

Envoy facts relied on: a mirrored ("shadow") request is a copy of the request, body included, sent to the mirror
cluster with "-shadow" appended to the host (before the port; not with disable_shadow_host_suffix_append); its
response is dropped and it is fire-and-forget: a mirror that is down, slow or failing neither delays nor fails the
primary request. runtime_fraction (default 100%) samples the requests mirrored; cluster_header takes the mirror
cluster from a request header; a mirror cluster that does not exist drops the copy. Istio's VirtualService
`mirror`/`mirrorPercentage`/`mirrors` compile to these policies.
"""

import json
import socket
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase


def on(value):
    return {"headers": [{"name": "x-test", "string_match": {"exact": value}}]}


def mirror(cluster, percent=None, **extra):
    m = {"cluster": cluster} if cluster else {}
    if percent is not None:
        m["runtime_fraction"] = {"default_value": {"numerator": percent, "denominator": "HUNDRED"}}
    m.update(extra)
    return m


class MirrorTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.primary = cls.start_upstream("primary")
        cls.mirror = cls.start_upstream("mirror")
        # Accepts connections (the kernel completes them) and never answers.
        cls.stall = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cls.stall.bind(("127.0.0.1", 0))
        cls.stall.listen(64)
        dead_port = P.free_port()
        cls.port = P.free_port()
        routes = [
            P.route("/", "primary", on("copy"), request_mirror_policies=[mirror("mirror")]),
            P.route("/", "primary", on("half"), request_mirror_policies=[mirror("mirror", 50)]),
            P.route("/", "primary", on("dead"), request_mirror_policies=[mirror("dead")]),
            P.route("/", "primary", on("stall"), timeout="1s", request_mirror_policies=[mirror("stall")]),
            P.route("/", "primary", on("missing"), request_mirror_policies=[mirror("no_such_cluster")]),
            P.route("/", "primary", on("header"),
                    request_mirror_policies=[mirror(None, cluster_header="x-mirror-to")]),
            P.route("/", "primary", on("nosuffix"),
                    request_mirror_policies=[mirror("mirror", disable_shadow_host_suffix_append=True)]),
            P.route("/", "primary"),
        ]
        cfg = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([P.virtual_host("all", routes)]))],
            [P.static_cluster("primary", [("127.0.0.1", cls.primary.port)]),
             P.static_cluster("mirror", [("127.0.0.1", cls.mirror.port)]),
             P.static_cluster("dead", [("127.0.0.1", dead_port)], connect_timeout="0.5s"),
             P.static_cluster("stall", [("127.0.0.1", cls.stall.getsockname()[1])])],
            P.free_port())
        cls.proxy = cls.start_proxy(cfg)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.stall.close()

    def setUp(self):
        self.mirror.reset_counts()
        self.primary.reset_counts()

    def mirrored(self, path, count=1, timeout=5.0):
        P.wait_until(lambda: self.mirror.count_path(path) >= count, timeout)
        return [(m, p, dict(h)) for m, p, h in self.mirror.requests() if p.split("?")[0] == path]

    def test_copy_with_body_and_shadow_host(self):
        body = b"x" * 70000 + b"end"
        r = P.http_request(self.port, "POST", "/echo/copy", host="reviews:9080", body=body,
                           headers={"x-test": "copy"})
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["server"], "primary", "the client gets the primary's response")
        seen = self.mirrored("/echo/copy")
        self.assertEqual(len(seen), 1, seen)
        method, _, headers = seen[0]
        self.assertEqual(method, "POST")
        self.assertEqual(headers.get("host"), "reviews-shadow:9080")
        self.assertEqual(headers.get("content-length"), str(len(body)))
        self.assertEqual(self.primary.count_path("/echo/copy"), 1)
        P.wait_until(lambda: self.proxy.stat("cluster.mirror.upstream_rq_200") >= 1, 3)
        self.assertGreaterEqual(self.proxy.stat("cluster.mirror.upstream_rq_200"), 1)

    def test_suffix_can_be_disabled(self):
        P.http_request(self.port, "GET", "/nosuffix", host="reviews", headers={"x-test": "nosuffix"})
        self.assertEqual(self.mirrored("/nosuffix")[0][2].get("host"), "reviews")

    def test_runtime_fraction_samples(self):
        for i in range(100):
            self.assertEqual(P.get(self.port, "/half", headers={"x-test": "half"}).status, 200)
        time.sleep(0.5)
        n = self.mirror.count_path("/half")
        self.assertTrue(25 <= n <= 75, "50%% of 100 requests mirrored, got %d" % n)

    def test_dead_mirror_changes_nothing(self):
        before = self.proxy.stat("cluster.dead.upstream_cx_connect_fail")
        for _ in range(10):
            r = P.get(self.port, "/dead", headers={"x-test": "dead"})
            self.assertEqual((r.status, r.body), (200, b"hello from primary"))
        self.assertTrue(P.wait_until(
            lambda: self.proxy.stat("cluster.dead.upstream_cx_connect_fail") > before, 3))

    def test_stalled_mirror_does_not_delay_the_primary(self):
        before = self.proxy.stat("cluster.stall.upstream_rq_timeout")
        t0 = time.monotonic()
        for _ in range(5):
            self.assertEqual(P.get(self.port, "/stalled", headers={"x-test": "stall"}).status, 200)
        self.assertLess(time.monotonic() - t0, 0.9, "the primary must not wait for its mirror")
        # The shadows give up at the route timeout (1 s), counted on the mirror cluster.
        self.assertTrue(P.wait_until(
            lambda: self.proxy.stat("cluster.stall.upstream_rq_timeout") >= before + 5, 4),
            self.proxy.stat("cluster.stall.upstream_rq_timeout"))

    def test_missing_mirror_cluster_is_skipped(self):
        self.assertEqual(P.get(self.port, "/missing", headers={"x-test": "missing"}).status, 200)

    def test_cluster_header(self):
        P.get(self.port, "/by-header", headers={"x-test": "header", "x-mirror-to": "mirror"})
        self.assertEqual(len(self.mirrored("/by-header")), 1)
        P.get(self.port, "/no-header", headers={"x-test": "header"})
        time.sleep(0.3)
        self.assertEqual(self.mirror.count_path("/no-header"), 0)


if __name__ == "__main__":
    unittest.main()
