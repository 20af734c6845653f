"""Locality-weighted load balancing (common_lb_config.locality_weighted_lb_config).

Envoy facts relied on: with locality weighting on, a request first picks a locality of its priority level by the
locality's effective weight (LocalityLbEndpoints.load_balancing_weight x min(1, overprovisioning factor 1.4 x the
share of its hosts that are available)), then a host of that locality; a locality without a weight gets no
traffic. /clusters shows each host's region, zone and sub_zone. (The effective weight's health term is covered by
the unit tests.)
"""

import json
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

REQUESTS = 200


def locality(zone, weight, ups):
    out = {"locality": {"region": "local", "zone": zone},
           "lb_endpoints": [{"endpoint": {"address": P.socket_address(u.port)}} for u in ups]}
    if weight is not None:
        out["load_balancing_weight"] = weight
    return out


class LocalityWeightedTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.a = [cls.start_upstream("zone-a-%d" % i) for i in range(2)]
        cls.b = cls.start_upstream("zone-b")
        cls.c = cls.start_upstream("zone-c")
        cls.port = P.free_port()
        cluster = P.static_cluster("zones", [], common_lb_config={"locality_weighted_lb_config": {}})
        cluster["load_assignment"]["endpoints"] = [locality("a", 3, cls.a), locality("b", 1, [cls.b]),
                                                   locality("c", None, [cls.c])]
        cfg = P.bootstrap([P.listener("listener_0", cls.port, P.hcm([P.virtual_host("all", [P.route("/", "zones")])],
                                                                      access_log=False))],
                          [cluster], P.free_port())
        cls.proxy = cls.start_proxy(cfg)

    def spread(self, n=REQUESTS):
        counts = {}
        for _ in range(n):
            r = P.get(self.port, "/")
            zone = r.body.decode().split("hello from zone-")[1][0]
            counts[zone] = counts.get(zone, 0) + 1
        return counts

    def test_localities_share_by_weight(self):
        counts = self.spread()
        self.assertNotIn("c", counts, "a locality without a weight gets no traffic: %s" % counts)
        self.assertTrue(0.65 * REQUESTS <= counts.get("a", 0) <= 0.85 * REQUESTS, counts)
        doc = json.loads(P.http_request(self.proxy.admin_port, "GET", "/clusters?format=json").body)
        zones = {h["locality"].get("zone") for c in doc["cluster_statuses"] if c["name"] == "zones"
                 for h in c["host_statuses"]}
        self.assertEqual(zones, {"a", "b", "c"})


if __name__ == "__main__":
    unittest.main()
