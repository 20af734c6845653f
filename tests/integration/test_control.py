"""sheave-control as a process: the config directory, the monitoring/debug endpoints, reloads, bad flags."""

import json
import queue
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from lib.control import Control, control_binary
from lib.proxy import free_port, wait_until

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY_ID = "sidecar~198.18.0.5~productpage-v1.default~default.svc.cluster.local"
REVIEWS = "reviews.default.svc.cluster.local"


def service(name, port=9080):
    return ("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: default\nspec:\n"
            "  selector:\n    app: %s\n  ports:\n  - name: http\n    port: %d\n---\n" % (name, name, port))


def workload(name, app, version, ip):
    return ("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: %s\n"
            "  namespace: default\nspec:\n  address: %s\n  labels:\n    app: %s\n    version: %s\n"
            "  serviceAccount: bookinfo-%s\n---\n" % (name, ip, app, version, app))


BOOKINFO_SERVICES = service("productpage") + service("reviews") + service("details")
BOOKINFO_WORKLOADS = (workload("productpage-v1", "productpage", "v1", "198.18.0.5")
                      + workload("reviews-v1", "reviews", "v1", "198.18.0.21")
                      + workload("reviews-v2", "reviews", "v2", "198.18.0.22")
                      + workload("details-v1", "details", "v1", "198.18.0.40"))
REVIEWS_RULES = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 75
    - destination: {host: reviews, subset: v2}
      weight: 25
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
"""


def write_file(path, text):
    """Writes aside and renames into place, as editors and ConfigMap volumes do."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class ControlServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sheave-control-")
        write_file(os.path.join(cls.dir, "services.yaml"), BOOKINFO_SERVICES)
        write_file(os.path.join(cls.dir, "workloads", "bookinfo.yaml"), BOOKINFO_WORKLOADS)
        write_file(os.path.join(cls.dir, "rules", "reviews.yaml"), REVIEWS_RULES)
        cls.control = Control(cls.dir)
        try:
            cls.control.wait_ready()
        except BaseException:
            cls.control.stop()
            cls.control.close()
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.control.stop()
            assert code == 0, "sheave-control exited %s after SIGTERM: %s" % (code, cls.control.stderr()[-2000:])
        finally:
            cls.control.close()
            shutil.rmtree(cls.dir, ignore_errors=True)
            if "lib.xds" in sys.modules:
                sys.modules["lib.xds"].cleanup()

    def get_json(self, path):
        status, ctype, body = self.control.get(path)
        self.assertEqual(status, 200, "%s -> %d %s" % (path, status, body[:500]))
        self.assertIn("application/json", ctype)
        return json.loads(body)

    def config_dump(self, proxy_id=PROXY_ID):
        return self.get_json("/debug/config_dump?proxyID=" + urllib.request.quote(proxy_id, safe=""))

    @staticmethod
    def dump_names(dump):
        names = {"clusters": [], "listeners": [], "routes": [], "endpoints": []}
        for config in dump["configs"]:
            kind = config["@type"]
            if kind.endswith("ClustersConfigDump"):
                names["clusters"] = [c["cluster"]["name"] for c in config.get("dynamic_active_clusters", [])]
            elif kind.endswith("ListenersConfigDump"):
                names["listeners"] = [l["name"] for l in config.get("dynamic_listeners", [])]
            elif kind.endswith("RoutesConfigDump"):
                names["routes"] = [r["route_config"]["name"] for r in config.get("dynamic_route_configs", [])]
            elif kind.endswith("EndpointsConfigDump"):
                names["endpoints"] = [e["endpoint_config"]["cluster_name"]
                                      for e in config.get("dynamic_endpoint_configs", [])]
        return names

    def configz_errors(self):
        return self.get_json("/debug/configz")["errors"]

    def test_ready(self):
        status, _, body = self.control.get("/ready")
        self.assertEqual(status, 200, body)

    def test_unknown_path_and_method(self):
        self.assertEqual(self.control.get("/nope")[0], 404)
        req = urllib.request.Request("http://127.0.0.1:%d/ready" % self.control.http_port, method="POST", data=b"")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(cm.exception.code, 405)

    def test_metrics(self):
        status, ctype, body = self.control.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", ctype)
        self.assertRegex(body, r'(?m)^pilot_xds\{version="[^"]+"\} 0$')
        for t in ("cds", "eds", "lds", "rds"):
            self.assertRegex(body, r'(?m)^pilot_xds_pushes\{type="%s"\} \d+$' % t)
            self.assertRegex(body, r'(?m)^pilot_total_xds_rejects\{type="%s"\} \d+$' % t)
        self.assertIn("# TYPE pilot_xds_push_time histogram", body)
        self.assertRegex(body, r'(?m)^pilot_proxy_convergence_time_bucket\{le="\+Inf"\} \d+$')
        self.assertRegex(body, r"(?m)^pilot_services 3$")
        self.assertRegex(body, r'(?m)^sheave_config_errors\{phase="parse"\} \d+$')

    def test_syncz_is_a_list_of_connections(self):
        # Empty unless the ADS test's stream is still being torn down.
        doc = self.get_json("/debug/syncz")
        self.assertIsInstance(doc, list)
        for conn in doc:
            self.assertIn("proxy", conn)
            self.assertIn("types", conn)

    def test_configz_lists_resources_with_locations(self):
        doc = self.get_json("/debug/configz")
        by_key = {(r["kind"], r["namespace"], r["name"]): r for r in doc["resources"]}
        vs = by_key[("VirtualService", "default", "reviews")]
        self.assertRegex(vs["source"], r"rules/reviews\.yaml:1(:\d+)?$")
        dr = by_key[("DestinationRule", "default", "reviews")]
        self.assertRegex(dr["source"], r"rules/reviews\.yaml:\d+")
        self.assertIn(("WorkloadEntry", "default", "productpage-v1"), by_key)
        self.assertIn(("Service", "default", "details"), by_key)

    def test_config_dump_has_istio_names(self):
        names = self.dump_names(self.config_dump())
        for listener in ("virtualOutbound", "virtualInbound", "0.0.0.0_9080"):
            self.assertIn(listener, names["listeners"])
        for cluster in ("outbound|9080||%s" % REVIEWS, "outbound|9080|v1|%s" % REVIEWS,
                        "outbound|9080|v2|%s" % REVIEWS, "inbound|9080||", "PassthroughCluster",
                        "BlackHoleCluster"):
            self.assertIn(cluster, names["clusters"])
        self.assertEqual(names["routes"], ["9080"])
        self.assertIn("outbound|9080|v2|%s" % REVIEWS, names["endpoints"])

    def test_config_dump_routes_follow_the_virtual_service(self):
        dump = self.config_dump()
        routes = next(c for c in dump["configs"] if c["@type"].endswith("RoutesConfigDump"))
        vhosts = routes["dynamic_route_configs"][0]["route_config"]["virtual_hosts"]
        reviews = next(v for v in vhosts if v["name"] == "%s:9080" % REVIEWS)
        clusters = reviews["routes"][0]["route"]["weighted_clusters"]["clusters"]
        self.assertEqual([(c["name"], c["weight"]) for c in clusters],
                         [("outbound|9080|v1|%s" % REVIEWS, 75), ("outbound|9080|v2|%s" % REVIEWS, 25)])

    def test_config_dump_unknown_proxy(self):
        self.assertEqual(self.control.get("/debug/config_dump")[0], 400)
        self.assertEqual(self.control.get("/debug/config_dump?proxyID=garbage")[0], 404)
        stranger = "sidecar~198.18.9.9~nobody.default~default.svc.cluster.local"
        self.assertEqual(self.control.get("/debug/config_dump?proxyID=" + stranger)[0], 404)

    def test_invalid_yaml_is_reported_and_the_rest_kept(self):
        bad = os.path.join(self.dir, "zz-bad.yaml")
        write_file(bad, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                        "metadata: {name: details, namespace: default}\nspec:\n  host: details\n"
                        "  trafficPolicy:\n    bogusField: 1\n---\nthis: [is not yaml\n")
        try:
            errors = wait_until(lambda: [e for e in self.configz_errors() if "zz-bad.yaml" in e["source"]], 2.0)
            self.assertTrue(errors, self.configz_errors())
            self.assertTrue(any(e["kind"] == "DestinationRule" and e["name"] == "details" for e in errors), errors)
            self.assertTrue(all(e["phase"] == "parse" for e in errors))
            for e in errors:
                self.assertRegex(e["source"], r"zz-bad\.yaml:\d+")
                self.assertIn("zz-bad.yaml:", e["message"])
            doc = self.get_json("/debug/configz")
            kinds = {(r["kind"], r["name"]) for r in doc["resources"]}
            self.assertIn(("VirtualService", "reviews"), kinds)
            self.assertNotIn(("DestinationRule", "details"), kinds)
            self.assertIn("outbound|9080|v1|%s" % REVIEWS, self.dump_names(self.config_dump())["clusters"])
            status, _, body = self.control.get("/metrics")
            self.assertRegex(body, r'(?m)^sheave_config_errors\{phase="parse"\} [1-9]\d*$')
        finally:
            os.remove(bad)
        self.assertTrue(wait_until(lambda: not [e for e in self.configz_errors() if "zz-bad.yaml" in e["source"]], 2.0))

    def test_edit_changes_config_dump_within_a_second(self):
        path = os.path.join(self.dir, "extra", "ratings.yaml")
        cluster = "outbound|9080||ratings.default.svc.cluster.local"
        self.assertNotIn(cluster, self.dump_names(self.config_dump())["clusters"])
        start = time.monotonic()
        write_file(path, service("ratings") + workload("ratings-v1", "ratings", "v1", "198.18.0.30"))
        try:
            seen = wait_until(lambda: cluster in self.dump_names(self.config_dump())["clusters"], 1.0)
            self.assertTrue(seen, "config_dump did not change within 1s")
            self.assertLess(time.monotonic() - start, 1.5)
        finally:
            os.remove(path)
        self.assertTrue(wait_until(lambda: cluster not in self.dump_names(self.config_dump())["clusters"], 2.0))

    def test_ads_stream_receives_clusters(self):
        # grpc_tools is not installed; lib/xds.py generates the message classes with Debian's protoc and
        # python3-grpcio carries the stream with explicit (de)serializers.
        try:
            import grpc
            from lib import xds
            disc = xds.module("envoy.service.discovery.v3.discovery_pb2")
            cluster_pb2 = xds.module("envoy.config.cluster.v3.cluster_pb2")
        except Exception as e:  # no grpcio, no protoc, or the helper is missing
            self.skipTest("no Python ADS client available: %s" % e)
        channel = grpc.insecure_channel("127.0.0.1:%d" % self.control.xds_port)
        try:
            call = channel.stream_stream(
                "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
                request_serializer=disc.DiscoveryRequest.SerializeToString,
                response_deserializer=disc.DiscoveryResponse.FromString)
            request = disc.DiscoveryRequest(type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster")
            request.node.id = PROXY_ID
            # The request side stays open until the end: a half-close ends the stream (and its syncz entry).
            outbox = queue.Queue()
            outbox.put(request)
            responses = call(iter(outbox.get, None), timeout=10)
            response = next(responses)
            names = []
            for any_msg in response.resources:
                c = cluster_pb2.Cluster()
                self.assertTrue(any_msg.Unpack(c))
                names.append(c.name)
            self.assertIn("outbound|9080|v1|%s" % REVIEWS, names)
            self.assertIn("inbound|9080||", names)
            self.assertTrue(response.nonce)
            syncz = wait_until(lambda: [p for p in self.get_json("/debug/syncz") if p["proxy"] == PROXY_ID], 2.0)
            self.assertTrue(syncz)
            self.assertEqual(syncz[0]["cluster_sent"], response.version_info)
            outbox.put(None)
            responses.cancel()
        finally:
            channel.close()


class ControlStartupTest(unittest.TestCase):
    def run_control(self, args, timeout=10):
        return subprocess.run([control_binary()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def assert_fails(self, args, needle):
        r = self.run_control(args)
        self.assertEqual(r.returncode, 1, r.stderr)
        err = r.stderr.decode()
        # Info logs may come first; the failure itself is one line.
        errors = [l for l in err.splitlines() if l.startswith("sheave-control: error:") or l.startswith("error")]
        self.assertEqual(len(errors), 1, err)
        self.assertIn(needle, errors[0])

    def test_bad_flags(self):
        self.assert_fails([], "--config")
        self.assert_fails(["--config"], "--config")
        self.assert_fails(["--config", "/tmp", "--no-such-flag"], "no-such-flag")
        self.assert_fails(["--config", "/tmp", "--outbound-traffic-policy", "SOMETIMES"], "SOMETIMES")
        self.assert_fails(["--config", "/tmp", "--debounce-after", "soon"], "--debounce-after")
        self.assert_fails(["--config", "/tmp", "--log-level", "loud"], "--log-level")

    def test_unreadable_config_dir(self):
        self.assert_fails(["--config", "/nonexistent/sheave-config"], "/nonexistent/sheave-config")

    def test_port_in_use(self):
        d = tempfile.mkdtemp(prefix="sheave-control-")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
                held.bind(("127.0.0.1", 0))
                held.listen(1)
                port = held.getsockname()[1]
                self.assert_fails(["--config", d, "--http-address", "127.0.0.1:%d" % port,
                                   "--xds-address", "127.0.0.1:%d" % free_port()], "--http-address")
                self.assert_fails(["--config", d, "--xds-address", "127.0.0.1:%d" % port,
                                   "--http-address", "127.0.0.1:%d" % free_port()], "--xds-address")
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_sigint_exits_cleanly(self):
        d = tempfile.mkdtemp(prefix="sheave-control-")
        control = Control(d)
        try:
            control.wait_ready()
            control.proc.send_signal(signal.SIGINT)
            self.assertEqual(control.proc.wait(10), 0, control.stderr())
        finally:
            control.stop()
            control.close()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
