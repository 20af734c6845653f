"""gRPC end to end through an HTTP/2 upstream cluster: a Python gRPC server (python3-grpcio, generic handlers with
raw bytes, no protoc) behind sheave-proxy, and a Python gRPC client calling through it. Unary, server streaming,
1 MiB messages, error statuses with messages, retry_on unavailable, grpc-timeout with max_grpc_timeout, local
replies as gRPC statuses, %GRPC_STATUS% in the access log, one multiplexed upstream connection, TLS with ALPN h2 to
the upstream, use_downstream_protocol_config, and curl / h2load through the h2 upstream.
"""

import collections
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from concurrent import futures

import grpc

import test_tls as tlslib
from lib import proxy as P
from lib.base import ProxyTestCase

HPO_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HPO_TYPE = "type.googleapis.com/" + HPO_KEY
LOG_FORMAT = "GRPC path=%REQ(:PATH)% code=%RESPONSE_CODE% grpc=%GRPC_STATUS% num=%GRPC_STATUS_NUMBER% " \
             "flags=%RESPONSE_FLAGS% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT% proto=%PROTOCOL%\n"
SERVICE = "test.Echo"
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0), ("grpc.max_receive_message_length", 8 << 20),
                   ("grpc.max_send_message_length", 8 << 20)]


def have(tool):
    return shutil.which(tool) is not None


def h2_options(**http2):
    return {HPO_KEY: {"@type": HPO_TYPE, "explicit_http_config": {"http2_protocol_options": http2}}}


def grpc_frame(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Backend:
    """A gRPC server on loopback with a handful of methods; counts calls per method and key."""

    def __init__(self, credentials=None):
        self.calls = collections.Counter()
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                                  options=[("grpc.max_receive_message_length", 8 << 20),
                                           ("grpc.max_send_message_length", 8 << 20)])
        u = grpc.unary_unary_rpc_method_handler
        handlers = {
            "Echo": u(self.echo),
            "Stream": grpc.unary_stream_rpc_method_handler(self.stream),
            "NotFound": u(self.not_found),
            "Flaky": u(self.flaky),
            "Slow": u(self.slow),
            "Deadline": u(self.deadline),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        if credentials is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.server.start()

    def count(self, key):
        with self.lock:
            self.calls[key] += 1
            return self.calls[key]

    def echo(self, request, context):
        self.count("Echo")
        return request

    def stream(self, request, context):
        n = int(request.decode())
        for i in range(n):
            yield b"%06d" % i + b"x" * 1024

    def not_found(self, request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())

    def flaky(self, request, context):
        if self.count("Flaky:" + request.decode()) == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return b"ok after retry"

    def slow(self, request, context):
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and context.is_active():
            time.sleep(0.02)
        return b"late"

    def deadline(self, request, context):
        remaining = context.time_remaining()
        return b"none" if remaining is None else b"%.3f" % remaining

    def stop(self):
        self.server.stop(0)


class GrpcThroughH2Upstream(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.backend = Backend()
        cls.port = P.free_port()
        admin = P.free_port()
        log = [P.stdout_access_log(LOG_FORMAT)]
        prefix = "/" + SERVICE + "/"
        routes = [
            P.route(prefix + "Flaky", "grpc", retry_policy={"retry_on": "unavailable", "num_retries": 2}),
            P.route(prefix + "Slow", "grpc", timeout="0.3s"),
            P.route("/capped.Svc/Slow", "grpc", max_grpc_timeout="0.3s", prefix_rewrite=prefix + "Slow"),
            P.route(prefix + "Deadline", "grpc", max_grpc_timeout="0.5s"),
            P.route("/nohost.Svc/", "empty"),
            P.route("/auto.Svc/", "auto", prefix_rewrite=prefix),
            P.route(prefix, "grpc"),
        ]
        empty = P.static_cluster("empty", [], typed_extension_protocol_options=h2_options())
        auto = P.static_cluster("auto", [("127.0.0.1", cls.backend.port)], typed_extension_protocol_options={
            HPO_KEY: {"@type": HPO_TYPE, "use_downstream_protocol_config": {"http2_protocol_options": {}}}})
        config = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([P.virtual_host("all", routes)], access_log=log))],
            [P.static_cluster("grpc", [("127.0.0.1", cls.backend.port)],
                              typed_extension_protocol_options=h2_options()), empty, auto],
            admin)
        cls.proxy = cls.start_proxy(config)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port, options=CHANNEL_OPTIONS)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        try:
            super().tearDownClass()
        finally:
            cls.backend.stop()

    def call(self, method, request, timeout=10, service=SERVICE):
        return self.channel.unary_unary("/%s/%s" % (service, method))(request, timeout=timeout)

    def log_line(self, needle):
        return self.proxy.wait_for_log(lambda l: l.startswith("GRPC ") and needle in l)

    def test_unary(self):
        self.assertEqual(self.call("Echo", b"hello"), b"hello")
        line = self.log_line("path=/test.Echo/Echo ")
        self.assertIn("code=200 grpc=Ok num=0", line)
        self.assertGreaterEqual(self.proxy.stat("cluster.grpc.upstream_cx_http2_total"), 1)
        self.assertEqual(self.proxy.stat("cluster.grpc.upstream_cx_http1_total"), 0)

    def test_server_streaming_many_messages(self):
        replies = list(self.channel.unary_stream("/%s/Stream" % SERVICE)(b"2000", timeout=20))
        self.assertEqual(len(replies), 2000)
        self.assertEqual(replies[1999][:6], b"001999")
        self.assertTrue(all(len(r) == 1030 for r in replies))

    def test_large_message_both_ways(self):
        payload = os.urandom(1 << 20)
        self.assertEqual(self.call("Echo", payload, timeout=20), payload)

    def test_error_status_passes_through(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("NotFound", b"widget")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(cm.exception.details(), "no such thing: widget")
        self.assertIn("grpc=NotFound num=5", self.log_line("path=/test.Echo/NotFound"))

    def test_retry_on_unavailable(self):
        self.assertEqual(self.call("Flaky", b"k1"), b"ok after retry")
        self.assertEqual(self.backend.calls["Flaky:k1"], 2)
        self.assertIn("attempts=2", self.log_line("path=/test.Echo/Flaky"))

    def test_route_timeout_is_a_grpc_status(self):
        start = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("Slow", b"", timeout=10)
        self.assertLess(time.monotonic() - start, 2.5)
        # The proxy's timeout answers: 504 as a gRPC status (gRPC's HTTP mapping: UNAVAILABLE).
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("upstream request timeout", cm.exception.details())
        # (The capped test's calls log the same rewritten path, ended by the upstream's own deadline.)
        line = self.proxy.wait_for_log(lambda l: l.startswith("GRPC path=/test.Echo/Slow ") and "flags=UT" in l)
        self.assertIsNotNone(line)
        self.assertIn("grpc=Unavailable", line)

    def test_max_grpc_timeout_caps_the_deadline(self):
        # The client allows 10 s, the route 0.3 s: the proxy or the upstream (told through grpc-timeout), whichever
        # is first, ends the call well before the client's deadline.
        start = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("Slow", b"", timeout=10, service="capped.Svc")
        self.assertLess(time.monotonic() - start, 2.5)
        self.assertIn(cm.exception.code(), (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE))

    def test_grpc_timeout_reaches_the_upstream(self):
        # The client allows 10 s; the route caps it at 0.5 s and the server learns that through grpc-timeout.
        remaining = float(self.call("Deadline", b"", timeout=10))
        self.assertLessEqual(remaining, 0.5)
        self.assertGreater(remaining, 0.0)

    def test_local_reply_unknown_route_is_unimplemented(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("Method", b"x", service="unknown.Service")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        line = self.log_line("path=/unknown.Service/Method")
        self.assertIn("flags=NR", line)
        self.assertIn("grpc=Unimplemented num=12", line)

    def test_local_reply_no_healthy_upstream_is_unavailable(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("Method", b"x", service="nohost.Svc")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(cm.exception.details(), "no healthy upstream")
        self.assertIn("flags=UH", self.log_line("path=/nohost.Svc/Method"))

    def test_use_downstream_protocol_config(self):
        self.assertEqual(self.call("Echo", b"via auto", service="auto.Svc"), b"via auto")
        self.assertGreaterEqual(self.proxy.stat("cluster.auto.upstream_cx_http2_total"), 1)

    def test_concurrent_calls_share_one_connection(self):
        before = self.proxy.stat("cluster.grpc.upstream_cx_total")
        stub = self.channel.unary_unary("/%s/Echo" % SERVICE)
        calls = [stub.future(b"m%d" % i, timeout=10) for i in range(100)]
        self.assertEqual(sorted(c.result() for c in calls), sorted(b"m%d" % i for i in range(100)))
        # The connection the other tests opened is reused; at most one new one (if it idled out meanwhile).
        self.assertLessEqual(self.proxy.stat("cluster.grpc.upstream_cx_total") - before, 1)
        self.assertLessEqual(self.proxy.stat("cluster.grpc.upstream_cx_active"), 1)

    @unittest.skipUnless(have("curl"), "curl not installed")
    def test_curl_http1_and_h2c_downstream_to_h2_upstream(self):
        body = grpc_frame(b"from curl")
        with tempfile.NamedTemporaryFile() as f:
            f.write(body)
            f.flush()
            for flag in ("--http1.1", "--http2-prior-knowledge"):
                out = subprocess.run(
                    ["curl", "-sS", flag, "--max-time", "10", "-o", "-", "-D", "/dev/stderr",
                     "-H", "content-type: application/grpc", "-H", "te: trailers",
                     "--data-binary", "@" + f.name, "http://127.0.0.1:%d/%s/Echo" % (self.port, SERVICE)],
                    capture_output=True, timeout=20)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout, body, flag)
                self.assertIn(b"200", out.stderr.splitlines()[0])

    @unittest.skipUnless(have("h2load"), "h2load not installed")
    def test_h2load_through_h2_upstream(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(grpc_frame(b"load"))
            f.flush()
            out = subprocess.run(
                ["h2load", "-n", "2000", "-c", "4", "-m", "50", "-d", f.name,
                 "-H", "content-type: application/grpc", "-H", "te: trailers",
                 "http://127.0.0.1:%d/%s/Echo" % (self.port, SERVICE)],
                capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("2000 succeeded", out.stdout)
        self.assertIn("2000 2xx", out.stdout)


class GrpcOverTlsUpstream(ProxyTestCase):
    """TLS origination to a gRPC server that insists on ALPN h2 (gRPC servers do)."""

    @classmethod
    def setUpWorld(cls):
        cls.dir = tempfile.mkdtemp(prefix="sheave-grpc-tls-")
        certs = tlslib.make_certs(cls.dir)
        with open(certs["server.key"], "rb") as k, open(certs["server.crt"], "rb") as c:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        cls.backend = Backend(creds)
        cls.port = P.free_port()
        tls = tlslib.tls_socket({"@type": tlslib.UPSTREAM_TLS, "sni": "localhost", "common_tls_context": {
            "validation_context": {"trusted_ca": {"filename": certs["ca.crt"]}}}})
        config = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([P.virtual_host("all", [P.route("/", "grpc_tls")])]))],
            [P.static_cluster("grpc_tls", [("127.0.0.1", cls.backend.port)], transport_socket=tls,
                              typed_extension_protocol_options=h2_options())],
            P.free_port())
        cls.proxy = cls.start_proxy(config)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.backend.stop()
            shutil.rmtree(cls.dir, ignore_errors=True)

    def test_unary_over_tls_h2(self):
        with grpc.insecure_channel("127.0.0.1:%d" % self.port, options=CHANNEL_OPTIONS) as ch:
            self.assertEqual(ch.unary_unary("/%s/Echo" % SERVICE)(b"secret", timeout=10), b"secret")
        self.assertGreaterEqual(self.proxy.stat("cluster.grpc_tls.upstream_cx_http2_total"), 1)


if __name__ == "__main__":
    unittest.main()
