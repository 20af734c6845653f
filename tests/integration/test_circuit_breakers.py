"""Circuit breakers: with max_connections, max_pending_requests and max_requests all 1, a burst of concurrent slow
requests gets one through (plus one queued), and the rest are answered at once with 503 and flag UO, counted in
cluster.<name>.upstream_rq_pending_overflow (Envoy counts both the pending-queue and the max_requests overflow there).
"""

import threading
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

BURST = 6


class CircuitBreakerTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("slow")
        cls.port = P.free_port()
        breakers = {"thresholds": [{"priority": "DEFAULT", "max_connections": 1, "max_pending_requests": 1,
                                    "max_requests": 1, "max_retries": 0}]}
        cfg = P.simple_http_bootstrap(cls.up.port, cls.port, P.free_port(), cluster_name="limited",
                                      route_action={"timeout": "10s"},
                                      cluster_extra={"circuit_breakers": breakers})
        cls.proxy = cls.start_proxy(cfg)

    def test_overflow_is_503_UO_and_counted(self):
        results = [None] * BURST
        times = [None] * BURST

        def one(i):
            t0 = time.monotonic()
            try:
                results[i] = P.get(self.port, "/delay/1000", timeout=15).status
            except OSError as e:
                results[i] = repr(e)
            times[i] = time.monotonic() - t0

        threads = [threading.Thread(target=one, args=(i,)) for i in range(BURST)]
        for t in threads:
            t.start()
            time.sleep(0.02)  # let the first request take the connection before the rest arrive
        for t in threads:
            t.join(20)
        ok = [i for i, s in enumerate(results) if s == 200]
        rejected = [i for i, s in enumerate(results) if s == 503]
        self.assertEqual(len(ok) + len(rejected), BURST, results)
        self.assertGreaterEqual(len(ok), 1, results)
        self.assertLessEqual(len(ok), 2, "only one active and one pending request fit: %s" % results)
        for i in rejected:
            self.assertLess(times[i], 0.8, "an overflowing request must be rejected at once, not queued")
        self.assertLessEqual(self.up.count_path("/delay/1000"), 2)
        overflow = self.proxy.stat("cluster.limited.upstream_rq_pending_overflow")
        self.assertEqual(overflow, len(rejected))
        def logged_503s():
            lines = [P.parse_access_log_line(l) for l in self.proxy.access_log_lines()]
            return [f for f in lines if f and f["code"] == "503"]

        P.wait_until(lambda: len(logged_503s()) >= len(rejected), 3)
        uo = logged_503s()
        self.assertEqual(len(uo), len(rejected), self.proxy.stdout())
        for f in uo:
            self.assertIn("UO", f["flags"].split(","))
        # the breaker closes again once the burst is over
        r = P.get(self.port, "/echo/after")
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main()
