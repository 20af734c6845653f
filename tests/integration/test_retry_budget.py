"""Retry budgets (circuit_breakers.thresholds.retry_budget).

Envoy facts relied on: with a retry budget, the retries circuit breaker allows at most budget_percent of the
cluster's active plus pending requests to be retries at a time, and never fewer than min_retry_concurrency
(defaults 20% and 3); the budget replaces max_retries. A retry refused by it is counted in
cluster.<name>.upstream_rq_retry_overflow and the last upstream response passes through. A retry holds its unit
from the retry decision until the request ends or retries again.

The upstream here fails every request after 50 ms: with three retries allowed per request, an unbounded
cluster sends four attempts per request; a budgeted one keeps retries near 20% of what it sends.
"""

import http.client
import threading
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

CLIENTS = 20
PER_CLIENT = 10
PATH = "/status/503?delay_ms=50"


def breakers(**threshold):
    t = {"priority": "DEFAULT"}
    t.update(threshold)
    return {"thresholds": [t]}


class RetryBudgetTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("failing")
        cls.port = P.free_port()
        retry = {"retry_on": "5xx", "num_retries": 3, "retry_back_off": {"base_interval": "0.005s"}}
        routes = [
            P.route("/", "budgeted", {"headers": [{"name": "x-cluster", "string_match": {"exact": "budgeted"}}]},
                    retry_policy=retry),
            P.route("/", "default_budget",
                    {"headers": [{"name": "x-cluster", "string_match": {"exact": "default_budget"}}]},
                    retry_policy=retry),
            P.route("/", "unbounded", retry_policy=retry),
        ]
        vh = P.virtual_host("all", routes, include_request_attempt_count=True)
        endpoints = [("127.0.0.1", cls.up.port)]
        cfg = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([vh], access_log=False))],
            [P.static_cluster("budgeted", endpoints, circuit_breakers=breakers(
                max_retries=100000,  # ignored: the budget replaces it
                retry_budget={"budget_percent": {"value": 20.0}, "min_retry_concurrency": 3})),
             P.static_cluster("default_budget", endpoints, circuit_breakers=breakers(retry_budget={})),
             P.static_cluster("unbounded", endpoints, circuit_breakers=breakers(max_retries=100000))],
            P.free_port())
        cls.proxy = cls.start_proxy(cfg)

    def load(self, cluster):
        """CLIENTS concurrent keep-alive clients, PER_CLIENT requests each; returns the status codes."""
        self.up.reset_counts()
        codes = []
        lock = threading.Lock()

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                for _ in range(PER_CLIENT):
                    try:
                        code = P.http_request(self.port, "GET", PATH, headers={"x-cluster": cluster},
                                              conn=conn).status
                    except (OSError, http.client.HTTPException) as e:
                        code = repr(e)
                    with lock:
                        codes.append(code)
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return codes

    def counts(self, cluster):
        s = self.proxy.stats()
        return {k: s.get("cluster.%s.%s" % (cluster, k), 0)
                for k in ("upstream_rq_total", "upstream_rq_retry", "upstream_rq_retry_overflow")}

    def test_unbounded_cluster_multiplies_load(self):
        codes = self.load("unbounded")
        requests = CLIENTS * PER_CLIENT
        self.assertEqual(codes, [503] * requests)
        c = self.counts("unbounded")
        self.assertEqual(c["upstream_rq_retry"], 3 * requests, c)
        self.assertEqual(c["upstream_rq_total"], 4 * requests, c)
        self.assertGreater(self.up.max_in_flight_retries, 0.5 * CLIENTS,
                           "without a budget most requests in flight are retries")

    def assert_budget_holds(self, cluster):
        codes = self.load(cluster)
        requests = CLIENTS * PER_CLIENT
        self.assertEqual(codes, [503] * requests, "a refused retry passes the upstream's 503 through")
        c = self.counts(cluster)
        self.assertEqual(c["upstream_rq_total"], requests + c["upstream_rq_retry"], c)
        self.assertGreater(c["upstream_rq_retry"], 0, c)
        self.assertGreater(c["upstream_rq_retry_overflow"], 0, c)
        # At most 20% of the CLIENTS requests in flight are retries (one more for the request whose failure
        # is being decided on: it still counts as active at the proxy when it has left the upstream).
        c["max_in_flight_retries"] = self.up.max_in_flight_retries
        self.assertLessEqual(c["max_in_flight_retries"], 0.2 * CLIENTS + 1, c)
        # Over the whole run: a fraction of one retry per request where the route allows three.
        self.assertLess(c["upstream_rq_retry"], 0.5 * requests, c)

    def test_budget_bounds_retries_to_20_percent(self):
        self.assert_budget_holds("budgeted")

    def test_empty_budget_takes_envoys_defaults(self):
        self.assert_budget_holds("default_budget")

    def test_clusters_shows_the_budget_limit(self):
        text = P.http_request(self.proxy.admin_port, "GET", "/clusters").body.decode()
        self.assertIn("budgeted::default_priority::max_retries::3\n", text,
                      "an idle budgeted cluster allows min_retry_concurrency retries")
        self.assertIn("unbounded::default_priority::max_retries::100000\n", text)


if __name__ == "__main__":
    unittest.main()
