"""sheave-proxy driven over ADS by a real gRPC server (python3-grpcio): CDS, EDS, LDS and RDS applied in
Envoy's order, updates taking effect without failed requests, NACKs keeping the last good config, and traffic
flowing on when the management server goes away."""

import time
import unittest

from lib import proxy as P
from lib import xds
from lib.base import ProxyTestCase

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def cluster_msg(name, eds=False, port=None, **extra):
    Cluster = xds.module("envoy.config.cluster.v3.cluster_pb2").Cluster
    c = {"name": name, "connect_timeout": "1s"}
    if eds:
        c.update({"type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}})
    else:
        c.update({"type": "STATIC", "load_assignment": {"cluster_name": name, "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": P.socket_address(port)}}]}]}})
    c.update(extra)
    return name, xds.from_json(Cluster, c)


def assignment_msg(name, ports):
    CLA = xds.module("envoy.config.endpoint.v3.endpoint_pb2").ClusterLoadAssignment
    return name, xds.from_json(CLA, {"cluster_name": name, "endpoints": [
        {"lb_endpoints": [{"endpoint": {"address": P.socket_address(p)}} for p in ports]}]})


def listener_msg(name, port, route_name):
    Listener = xds.module("envoy.config.listener.v3.listener_pb2").Listener
    return name, xds.from_json(Listener, {
        "name": name, "address": P.socket_address(port),
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": HCM, "stat_prefix": name,
            "rds": {"route_config_name": route_name, "config_source": {"ads": {}, "resource_api_version": "V3"}},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}}]}]})


def route_msg(name, cluster=None, direct_status=None):
    RC = xds.module("envoy.config.route.v3.route_pb2").RouteConfiguration
    action = {"route": {"cluster": cluster}} if cluster else {"direct_response": {"status": direct_status}}
    r = {"match": {"prefix": "/"}}
    r.update(action)
    return name, xds.from_json(RC, {"name": name, "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [r]}]})


class AdsProxyTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up_a = cls.start_upstream(name="a")
        cls.up_b = cls.start_upstream(name="b")
        cls.server = xds.AdsServer().start()
        cls.port = P.free_port()
        cls.server.set(xds.CLUSTER, [cluster_msg("static_a", port=cls.up_a.port), cluster_msg("eds_b", eds=True)], 1)
        cls.server.set(xds.ENDPOINT, [assignment_msg("eds_b", [cls.up_b.port])], 1)
        cls.server.set(xds.LISTENER, [listener_msg("http", cls.port, "r1")], 1)
        cls.server.set(xds.ROUTE, [route_msg("r1", cluster="static_a")], 1)
        node = "sidecar~127.0.0.1~app-1.default~default.svc.cluster.local"
        cls.proxy = cls.start_proxy(xds.ads_bootstrap(node, cls.server.port, P.free_port()))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.server.stop()

    def get(self, path="/"):
        return P.get(self.port, path)

    def wait_for_upstream(self, name, timeout=3.0):
        ok = P.wait_until(lambda: self.get().status == 200 and self.get().headers.get("x-upstream-name") == name, timeout)
        self.assertTrue(ok, "traffic did not reach upstream %s" % name)

    def test_1_initial_config_served_in_envoy_order(self):
        r = self.get()
        self.assertEqual(r.status, 200)
        types = [req.type_url for req in self.server.requests() if not req.response_nonce]
        # Clusters are asked for before listeners; routes only once a listener names them.
        self.assertLess(types.index(xds.CLUSTER), types.index(xds.LISTENER))
        self.assertLess(types.index(xds.LISTENER), types.index(xds.ROUTE))
        first = self.server.requests()[0]
        self.assertEqual(first.node.id, "sidecar~127.0.0.1~app-1.default~default.svc.cluster.local")
        eds = self.server.requests(xds.ENDPOINT)
        self.assertEqual(list(eds[0].resource_names), ["eds_b"])
        # Every response was ACKed with its version.
        acks = [r for r in self.server.requests(xds.CLUSTER) if r.response_nonce]
        self.assertTrue(acks and acks[-1].version_info == "1" and not acks[-1].HasField("error_detail"))
        self.assertEqual(self.proxy.stat("cluster_manager.cds.update_success"), 1)

    def test_2_route_update_switches_without_failures(self):
        self.server.set(xds.ROUTE, [route_msg("r1", cluster="eds_b")], 2)
        self.server.push(xds.ROUTE)
        failures = 0
        deadline = time.monotonic() + 3.0
        switched = False
        while time.monotonic() < deadline and not switched:
            r = self.get()
            failures += r.status != 200
            switched = r.headers.get("x-upstream-name") == "b"
        self.assertTrue(switched)
        self.assertEqual(failures, 0)

    def test_3_endpoint_update(self):
        self.server.set(xds.ROUTE, [route_msg("r1", cluster="eds_b")], 3)
        self.server.push(xds.ROUTE)
        self.wait_for_upstream("b")
        self.server.set(xds.ENDPOINT, [assignment_msg("eds_b", [self.up_a.port])], 3)
        self.server.push(xds.ENDPOINT)
        self.wait_for_upstream("a")

    def test_4_bad_cluster_is_nacked_and_the_rest_keeps_working(self):
        bad_name, bad = cluster_msg("broken", port=1, lb_policy="CLUSTER_PROVIDED")  # only for ORIGINAL_DST
        self.server.set(xds.CLUSTER, [cluster_msg("static_a", port=self.up_a.port), cluster_msg("eds_b", eds=True),
                                      (bad_name, bad)], 4)
        self.server.push(xds.CLUSTER)
        ok = P.wait_until(lambda: any(r.HasField("error_detail") for r in self.server.requests(xds.CLUSTER)), 3.0)
        self.assertTrue(ok, "no NACK for the bad cluster")
        nack = [r for r in self.server.requests(xds.CLUSTER) if r.HasField("error_detail")][-1]
        self.assertIn("broken", nack.error_detail.message)
        self.assertNotEqual(nack.version_info, "4")
        self.assertEqual(self.get().status, 200)
        self.assertGreaterEqual(self.proxy.stat("cluster_manager.cds.update_rejected"), 1)

    def test_5_listener_removed_then_added(self):
        self.server.set(xds.LISTENER, [], 5)
        self.server.push(xds.LISTENER)
        self.assertTrue(P.wait_until(lambda: not P.port_accepts(self.port), 3.0))
        self.server.set(xds.LISTENER, [listener_msg("http", self.port, "r1")], 6)
        self.server.push(xds.LISTENER)
        self.assertTrue(P.wait_until(lambda: P.port_accepts(self.port) and self.get().status == 200, 3.0),
                        self.proxy.stderr()[-3000:] + "\n" + "\n".join(
                            "%s v=%s n=%s names=%s err=%s" % (r.type_url[-12:], r.version_info, r.response_nonce,
                                                            list(r.resource_names), r.error_detail.message)
                            for r in self.server.requests()))

    def test_6_management_server_gone_traffic_flows(self):
        # Last: it stops the server for good.
        self.server.stop()
        time.sleep(0.3)
        for _ in range(20):
            self.assertEqual(self.get().status, 200)


if __name__ == "__main__":
    unittest.main()
