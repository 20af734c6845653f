"""Fault injection (envoy.filters.http.fault) and CORS (envoy.filters.http.cors) through a real proxy.

Envoy facts relied on: a fault abort is a local reply with body "fault filter abort" and response flag FI; a delay
sets DI and holds the request before it goes upstream; a gRPC abort answers HTTP 200 with grpc-status; the stats are
http.<stat_prefix>.fault.{delays_injected,aborts_injected,faults_overflow} and the gauge active_faults; a route's
typed_per_filter_config["envoy.filters.http.fault"] replaces the listener's settings for that route; a CORS preflight
from an allowed origin is answered by the proxy with the Access-Control-Allow-* headers, other requests from an
allowed origin get Access-Control-Allow-Origin on the response, a disallowed origin passes through untouched; the
stats are http.<stat_prefix>.cors.origin_valid / origin_invalid.
"""

import shutil
import subprocess
import threading
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
CORS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
HUNDRED = {"numerator": 100}


def fault_route(prefix, fault):
    r = P.route(prefix, "backend")
    cfg = {"@type": FAULT_TYPE}
    cfg.update(fault)
    r["typed_per_filter_config"] = {"envoy.filters.http.fault": cfg}
    return r


class FaultCorsTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        admin = P.free_port()
        routes = [
            fault_route("/abort/", {"abort": {"http_status": 503, "percentage": HUNDRED}}),
            fault_route("/fixed-delay/", {"delay": {"fixed_delay": "0.2s", "percentage": HUNDRED}}),
            fault_route("/echo-delayed/", {"delay": {"fixed_delay": "0.05s", "percentage": HUNDRED}}),
            fault_route("/grpc-abort/", {"abort": {"grpc_status": 14, "percentage": HUNDRED}}),
            fault_route("/slow/", {"delay": {"fixed_delay": "1.5s", "percentage": HUNDRED},
                                   "max_active_faults": 1}),
            P.route("/", "backend"),
        ]
        vh = P.virtual_host("all", routes, typed_per_filter_config={
            "envoy.filters.http.cors": {
                "@type": CORS_POLICY_TYPE,
                "allow_origin_string_match": [{"exact": "https://app.example"}],
                "allow_methods": "GET,POST",
                "allow_headers": "x-custom",
                "max_age": "300",
                "expose_headers": "x-total",
            }})
        # The listener's own fault config: only header-controlled faults.
        filters = [
            {"name": "envoy.filters.http.fault", "typed_config": {
                "@type": FAULT_TYPE,
                "abort": {"header_abort": {}, "percentage": HUNDRED},
                "delay": {"header_delay": {}, "percentage": HUNDRED}}},
            {"name": "envoy.filters.http.cors", "typed_config": {"@type": CORS_TYPE}},
        ]
        cfg = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([vh], http_filters=filters))],
            [P.static_cluster("backend", [("127.0.0.1", cls.up.port)])],
            admin)
        cls.proxy = cls.start_proxy(cfg)

    def log_for(self, path):
        line = self.proxy.wait_for_log(lambda l: " %s " % path in l)
        self.assertIsNotNone(line, "no access-log line for %s:\n%s" % (path, self.proxy.stdout()))
        fields = P.parse_access_log_line(line)
        self.assertIsNotNone(fields, line)
        return fields

    def stat(self, name):
        return self.proxy.stat("http.ingress_http." + name)

    def test_abort_everything_on_the_route(self):
        before = self.stat("fault.aborts_injected")
        r = P.get(self.port, "/abort/one")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.body, b"fault filter abort")
        self.assertEqual(self.up.count_path("/abort/one"), 0, "an aborted request never goes upstream")
        self.assertIn("FI", self.log_for("/abort/one")["flags"].split(","))
        self.assertEqual(self.stat("fault.aborts_injected"), before + 1)

    def test_fault_only_on_its_route(self):
        r = P.get(self.port, "/plain/ok")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.log_for("/plain/ok")["flags"], "-")

    def test_fixed_delay(self):
        start = time.monotonic()
        r = P.get(self.port, "/fixed-delay/x")
        elapsed = time.monotonic() - start
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(elapsed, 0.19)
        self.assertLess(elapsed, 2.0)
        self.assertIn("DI", self.log_for("/fixed-delay/x")["flags"].split(","))

    def test_delayed_post_body_arrives_whole(self):
        body = b"x" * 5000
        r = P.http_request(self.port, "POST", "/echo-delayed/post", body=body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_length"], len(body))

    def test_header_controlled_abort_and_delay(self):
        r = P.get(self.port, "/h/abort", headers={"x-envoy-fault-abort-request": "429"})
        self.assertEqual(r.status, 429, r)
        self.assertEqual(self.up.count_path("/h/abort"), 0)
        start = time.monotonic()
        r = P.get(self.port, "/h/delay", headers={"x-envoy-fault-delay-request": "150"})
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(time.monotonic() - start, 0.14)
        r = P.get(self.port, "/h/pct", headers={"x-envoy-fault-abort-request": "429",
                                               "x-envoy-fault-abort-request-percentage": "0"})
        self.assertEqual(r.status, 200, r)

    def test_grpc_abort(self):
        r = P.http_request(self.port, "POST", "/grpc-abort/pkg.Svc/Method", body=b"",
                           headers={"content-type": "application/grpc", "te": "trailers"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("grpc-status"), "14")
        self.assertTrue(r.headers.get("content-type", "").startswith("application/grpc"), r.headers)
        self.assertEqual(self.up.count_path("/grpc-abort/pkg.Svc/Method"), 0)

    def test_max_active_faults_overflow(self):
        before = self.stat("fault.faults_overflow")
        results = {}

        def slow():
            results["first"] = P.get(self.port, "/slow/first")

        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(P.wait_until(lambda: self.stat("fault.active_faults") >= 1, 3.0),
                        "the first request never became an active fault")
        start = time.monotonic()
        r = P.get(self.port, "/slow/second")
        elapsed = time.monotonic() - start
        self.assertEqual(r.status, 200, r)
        self.assertLess(elapsed, 1.0, "over max_active_faults the request must not be delayed")
        self.assertEqual(self.stat("fault.faults_overflow"), before + 1)
        t.join(5)
        self.assertEqual(results["first"].status, 200)
        self.assertTrue(P.wait_until(lambda: self.stat("fault.active_faults") == 0, 3.0))

    @unittest.skipIf(shutil.which("curl") is None, "curl not installed")
    def test_cors_preflight_with_curl(self):
        out = subprocess.run(
            ["curl", "-s", "-i", "--max-time", "5", "-X", "OPTIONS",
             "-H", "Host: example.com", "-H", "Origin: https://app.example",
             "-H", "Access-Control-Request-Method: POST",
             "http://127.0.0.1:%d/cors/pre" % self.port],
            capture_output=True, timeout=10, text=True)
        head = out.stdout.split("\r\n\r\n", 1)[0].lower()
        self.assertTrue(head.startswith("http/1.1 200"), out.stdout)
        self.assertIn("access-control-allow-origin: https://app.example", head)
        self.assertIn("access-control-allow-methods: get,post", head)
        self.assertIn("access-control-allow-headers: x-custom", head)
        self.assertIn("access-control-max-age: 300", head)
        self.assertEqual(self.up.count_path("/cors/pre"), 0, "the proxy answers a preflight itself")

    def test_cors_disallowed_origin(self):
        before = self.stat("cors.origin_invalid")
        r = P.http_request(self.port, "OPTIONS", "/cors/evil",
                           headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("access-control-allow-origin", r.headers)
        self.assertEqual(self.up.count_path("/cors/evil"), 1, "a non-matching preflight goes upstream")
        self.assertEqual(self.stat("cors.origin_invalid"), before + 1)

    def test_cors_simple_get(self):
        before = self.stat("cors.origin_valid")
        r = P.get(self.port, "/cors/get", headers={"Origin": "https://app.example"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), "https://app.example")
        self.assertEqual(r.headers.get("access-control-expose-headers"), "x-total")
        self.assertEqual(self.stat("cors.origin_valid"), before + 1)
        r = P.get(self.port, "/cors/no-origin")
        self.assertNotIn("access-control-allow-origin", r.headers)


if __name__ == "__main__":
    unittest.main()
