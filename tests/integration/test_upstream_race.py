"""The "503 UC" race: an upstream closes an idle keep-alive connection just as the proxy reuses it.

The upstream closes connections idle for 0.3 s; requests arrive at intervals spread around 0.3 s, so many of them
meet a pooled connection at the moment its server closes it. No retry policy is configured: the proxy itself must
never turn that race into a 503 (it must notice the close, or replay a request that provably never reached the
upstream on a fresh connection).
"""

import http.client
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

SERVER_IDLE = 0.3
INTERVALS = [SERVER_IDLE + d for d in (-0.03, -0.015, -0.005, 0.0, 0.002, 0.005, 0.01, 0.02, 0.04)]


class UpstreamRaceTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("racy", keepalive_timeout=SERVER_IDLE)
        cls.port = P.free_port()
        cls.proxy = cls.start_proxy(P.simple_http_bootstrap(cls.up.port, cls.port, P.free_port()))

    def test_no_503_when_upstream_closes_idle_connections(self):
        statuses = []
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for i in range(36):  # ~11 s
                r = P.http_request(self.port, "GET", "/echo/race%d" % i, conn=conn)
                statuses.append(r.status)
                time.sleep(INTERVALS[i % len(INTERVALS)])
        finally:
            conn.close()
        self.assertEqual([s for s in statuses if s != 200], [], "statuses: %s\naccess log:\n%s"
                         % (statuses, self.proxy.stdout()[-3000:]))
        self.assertGreater(self.up.connections, 5, "the upstream was meant to close idle connections")


if __name__ == "__main__":
    unittest.main()
