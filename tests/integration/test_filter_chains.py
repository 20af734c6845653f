"""Listener filters and filter chain match: two TLS chains chosen by SNI (openssl s_client gets different
certificates), a TLS chain and a plaintext chain on one port (tls_inspector), HTTP/1 vs h2c vs raw TCP chains
(http_inspector), no matching chain (closed and counted), the listener filter timeout (close, or continue), a
virtualOutbound-style use_original_dst listener handing connections to a bind_to_port: false listener, and
tcp_proxy to an ORIGINAL_DST cluster.

Without iptables a connection's original destination is its local address, so the hand-off test connects to a
real listener on 127.0.0.1:<port> whose owner for that port is a bind_to_port: false listener on 0.0.0.0:<port>,
and the ORIGINAL_DST test uses upstream_port_override to reach the echo server on the original destination's IP.
Certificates are made at test time in a temp dir.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

TLS_NS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
LF_NS = "type.googleapis.com/envoy.extensions.filters.listener."
TLS_INSPECTOR = {"name": "envoy.filters.listener.tls_inspector",
                 "typed_config": {"@type": LF_NS + "tls_inspector.v3.TlsInspector"}}
HTTP_INSPECTOR = {"name": "envoy.filters.listener.http_inspector",
                  "typed_config": {"@type": LF_NS + "http_inspector.v3.HttpInspector"}}
ORIGINAL_DST = {"name": "envoy.filters.listener.original_dst",
                "typed_config": {"@type": LF_NS + "original_dst.v3.OriginalDst"}}


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=20)


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=sheave chains CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name in ("a", "b"):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:%s.example\nextendedKeyUsage=serverAuth\n" % name)
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=%s.example" % name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)
    return d


def tls_chain(certs, name, network_filter, match):
    ctx = {"@type": TLS_NS + "DownstreamTlsContext",
           "common_tls_context": {"tls_certificates": [{
               "certificate_chain": {"filename": os.path.join(certs, name + ".crt")},
               "private_key": {"filename": os.path.join(certs, name + ".key")}}]}}
    return {"filter_chain_match": match, "filters": [network_filter],
            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": ctx}}


def http_to(cluster, stat_prefix):
    return P.hcm([P.virtual_host("all", [P.route("/", cluster)])], stat_prefix=stat_prefix, access_log=False)


def tcp_to(cluster, stat_prefix):
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": P.TCP_PROXY_TYPE, "stat_prefix": stat_prefix, "cluster": cluster}}


def raw_listener(name, port, chains, address="127.0.0.1", **extra):
    l = {"name": name, "address": P.socket_address(port, address), "filter_chains": chains}
    l.update(extra)
    return l


def served_cn(port, servername):
    """The subject CN of the certificate the proxy presents for `servername` (None: handshake failed)."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"]
    if servername:
        args += ["-servername", servername]
    else:
        args += ["-noservername"]
    r = subprocess.run(args, input=b"", capture_output=True, timeout=15)
    out = (r.stdout + r.stderr).decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("Peer certificate:"):
            return line.split("CN", 1)[1].lstrip(" =").strip()
    return None


def closed_without_data(port, send=b"", timeout=5.0):
    """Connects, sends `send`, and returns (closed, seconds until the proxy closed, bytes received)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if send:
            s.sendall(send)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return True, time.monotonic() - start, got
                got += chunk
        except ConnectionResetError:
            return True, time.monotonic() - start, got
        except socket.timeout:
            return False, time.monotonic() - start, got


def echo_roundtrip(port, payload, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


@unittest.skipUnless(shutil.which("openssl") and shutil.which("curl"), "needs openssl and curl")
class FilterChainTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sheave-chains-")
        certs = make_certs(cls.tmp)
        cls.ca = os.path.join(certs, "ca.crt")
        cls.ua = cls.start_upstream("ua")
        cls.ub = cls.start_upstream("ub")
        cls.echo = cls.start_tcp_echo()
        ports = [P.free_port() for _ in range(9)]
        (cls.sni_port, cls.mixed_port, cls.inspect_port, cls.timeout_port, cls.continue_port,
         cls.outbound_port, cls.origdst_port, cls.admin_port, _) = ports

        listeners = [
            raw_listener("sni", cls.sni_port, [
                tls_chain(certs, "a", http_to("ua", "sni_a"), {"server_names": ["a.example"]}),
                tls_chain(certs, "b", http_to("ub", "sni_b"), {"server_names": ["*.b.example", "b.example"]}),
            ], listener_filters=[TLS_INSPECTOR]),
            raw_listener("mixed", cls.mixed_port, [
                tls_chain(certs, "a", http_to("ua", "mixed_tls"), {"transport_protocol": "tls"}),
                {"filters": [http_to("ub", "mixed_plain")]},
            ], listener_filters=[TLS_INSPECTOR]),
            raw_listener("inspect", cls.inspect_port, [
                {"filter_chain_match": {"application_protocols": ["http/1.1", "http/1.0"]},
                 "filters": [http_to("ua", "inspect_h1")]},
                {"filter_chain_match": {"application_protocols": ["h2c"]},
                 "filters": [http_to("ub", "inspect_h2c")]},
            ], listener_filters=[TLS_INSPECTOR, HTTP_INSPECTOR],
                default_filter_chain={"filters": [tcp_to("echo", "inspect_tcp")]}),
            raw_listener("timeout", cls.timeout_port, [{"filters": [tcp_to("echo", "timeout_tcp")]}],
                         listener_filters=[TLS_INSPECTOR], listener_filters_timeout="0.3s"),
            raw_listener("continue", cls.continue_port, [{"filters": [tcp_to("echo", "continue_tcp")]}],
                         listener_filters=[HTTP_INSPECTOR], listener_filters_timeout="0.2s",
                         continue_on_listener_filters_timeout=True),
            # Istio's virtualOutbound (15001) and one 0.0.0.0_<port> listener it hands connections to.
            raw_listener("virtualOutbound", cls.outbound_port,
                         [{"filter_chain_match": {"destination_port": 1}, "filters": [tcp_to("echo", "black")]}],
                         listener_filters=[ORIGINAL_DST], use_original_dst=True,
                         default_filter_chain={"filters": [tcp_to("echo", "passthrough_default")]}),
            raw_listener("0.0.0.0_%d" % cls.outbound_port, cls.outbound_port, [
                {"filter_chain_match": {"application_protocols": ["http/1.1"]},
                 "filters": [http_to("ua", "outbound_http")]},
            ], address="0.0.0.0", bind_to_port=False, listener_filters=[TLS_INSPECTOR, HTTP_INSPECTOR],
                default_filter_chain={"filters": [tcp_to("ub_tcp", "outbound_tcp")]}),
            raw_listener("origdst", cls.origdst_port, [{"filters": [tcp_to("PassthroughCluster", "passthrough")]}],
                         listener_filters=[ORIGINAL_DST]),
        ]
        clusters = [
            P.static_cluster("ua", [("127.0.0.1", cls.ua.port)]),
            P.static_cluster("ub", [("127.0.0.1", cls.ub.port)]),
            P.static_cluster("ub_tcp", [("127.0.0.1", cls.ub.port)]),
            P.static_cluster("echo", [("127.0.0.1", cls.echo.port)]),
            {"name": "PassthroughCluster", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED",
             "connect_timeout": "1s", "cleanup_interval": "0.5s",
             "original_dst_lb_config": {"upstream_port_override": cls.echo.port}},
        ]
        cls.proxy = cls.start_proxy(P.bootstrap(listeners, clusters, cls.admin_port))

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_sni_picks_the_chain_and_its_certificate(self):
        self.assertEqual(served_cn(self.sni_port, "a.example"), "a.example")
        self.assertEqual(served_cn(self.sni_port, "b.example"), "b.example")
        self.assertEqual(served_cn(self.sni_port, "x.b.example"), "b.example")
        r = subprocess.run(["curl", "-sS", "--cacert", self.ca, "--resolve", "b.example:%d:127.0.0.1" % self.sni_port,
                            "https://b.example:%d/echo" % self.sni_port], capture_output=True, timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b'"server": "ub"', r.stdout.replace(b'":"', b'": "'))

    def test_no_matching_chain_is_closed_and_counted(self):
        name = "listener.127.0.0.1_%d.no_filter_chain_match" % self.sni_port
        before = self.proxy.stat(name)
        self.assertIsNone(served_cn(self.sni_port, "c.example"))
        self.assertIsNone(served_cn(self.sni_port, None))
        # Plaintext on a TLS-only listener: no chain for raw_buffer either.
        closed, _, got = closed_without_data(self.sni_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(closed)
        self.assertEqual(got, b"")
        self.assertGreaterEqual(self.proxy.wait_stat(name, lambda v: v >= before + 3), before + 3)

    def test_tls_and_plaintext_on_one_port(self):
        r = subprocess.run(["curl", "-sS", "--cacert", self.ca, "--resolve", "a.example:%d:127.0.0.1" % self.mixed_port,
                            "https://a.example:%d/echo" % self.mixed_port], capture_output=True, timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"ua", r.stdout)
        resp = P.get(self.mixed_port, "/echo")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["server"], "ub")
        self.assertGreaterEqual(self.proxy.stat("tls_inspector.tls_found"), 1)
        self.assertGreaterEqual(self.proxy.stat("tls_inspector.tls_not_found"), 1)

    def test_http1_h2c_and_tcp_by_http_inspector(self):
        resp = P.get(self.inspect_port, "/echo")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["server"], "ua")
        r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "http://127.0.0.1:%d/echo" % self.inspect_port],
                           capture_output=True, timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"ub", r.stdout)
        self.assertEqual(echo_roundtrip(self.inspect_port, b"\x00\x01hello raw bytes\n"), b"\x00\x01hello raw bytes\n")
        self.assertGreaterEqual(self.proxy.stat("http_inspector.http11_found"), 1)
        self.assertGreaterEqual(self.proxy.stat("http_inspector.http2_found"), 1)
        self.assertGreaterEqual(self.proxy.stat("http_inspector.http_not_found"), 1)

    def test_listener_filter_timeout_closes(self):
        name = "listener.127.0.0.1_%d.downstream_pre_cx_timeout" % self.timeout_port
        before = self.proxy.stat(name)
        closed, elapsed, _ = closed_without_data(self.timeout_port)
        self.assertTrue(closed)
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 3.0)
        self.assertEqual(self.proxy.wait_stat(name, lambda v: v == before + 1), before + 1)

    def test_listener_filter_timeout_continues_when_configured(self):
        with socket.create_connection(("127.0.0.1", self.continue_port), timeout=5) as s:
            time.sleep(0.5)  # past the timeout: the connection goes on to the (only) chain
            s.sendall(b"late bytes\n")
            got = b""
            while len(got) < 11:
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
        self.assertEqual(got, b"late bytes\n")
        self.assertGreaterEqual(self.proxy.stat("listener.127.0.0.1_%d.downstream_pre_cx_timeout"
                                                % self.continue_port), 1)

    def test_use_original_dst_hands_off_to_bind_to_port_false_listener(self):
        # HTTP: the 0.0.0.0_<port> listener's http/1.1 chain, not virtualOutbound's echo chain.
        resp = P.get(self.outbound_port, "/echo")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["server"], "ua")
        # Anything else: that listener's default chain (tcp_proxy to ub's port): an HTTP server answers raw bytes
        # with an error, not with an echo.
        got = echo_roundtrip(self.outbound_port, b"not http at all\r\n\r\n")
        self.assertNotEqual(got, b"not http at all\r\n\r\n")
        self.assertGreaterEqual(self.proxy.stat("listener.0.0.0.0_%d.downstream_cx_total" % self.outbound_port), 2)
        self.assertEqual(self.proxy.stat("listener.127.0.0.1_%d.downstream_cx_total" % self.outbound_port), 0)

    def test_tcp_proxy_to_original_dst_cluster(self):
        self.assertEqual(echo_roundtrip(self.origdst_port, b"to where I meant to go\n"), b"to where I meant to go\n")
        self.assertGreaterEqual(self.proxy.stat("cluster.PassthroughCluster.upstream_cx_total"), 1)


@unittest.skipUnless(shutil.which("openssl"), "needs openssl")
class ListenerFilterConfigTest(ProxyTestCase):
    def validate(self, listener):
        p = self.new_proxy(P.bootstrap([listener], [P.static_cluster("c", [("127.0.0.1", 1)])], P.free_port()))
        code, out, err = p.run_mode("validate")
        return code, out + err

    def test_unknown_listener_filter_is_named(self):
        l = raw_listener("l", P.free_port(), [{"filters": [tcp_to("c", "x")]}],
                         listener_filters=[{"name": "envoy.filters.listener.proxy_protocol",
                                            "typed_config": {"@type": "type.googleapis.com/google.protobuf.Empty"}}])
        code, out = self.validate(l)
        self.assertNotEqual(code, 0)
        self.assertIn("listener_filters[0]", out)
        self.assertIn("envoy.filters.listener.proxy_protocol", out)

    def test_original_dst_cluster_needs_cluster_provided(self):
        c = {"name": "pt", "type": "ORIGINAL_DST", "lb_policy": "ROUND_ROBIN", "connect_timeout": "1s"}
        p = self.new_proxy(P.bootstrap([], [c], P.free_port()))
        code, out, err = p.run_mode("validate")
        self.assertNotEqual(code, 0)
        self.assertIn("CLUSTER_PROVIDED", out + err)

    def test_overlapping_chains_are_rejected(self):
        l = raw_listener("l", P.free_port(), [{"filters": [tcp_to("c", "x")]}, {"filters": [tcp_to("c", "y")]}])
        code, out = self.validate(l)
        self.assertNotEqual(code, 0)
        self.assertIn("filter_chains", out)


if __name__ == "__main__":
    unittest.main()
