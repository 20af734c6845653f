"""TLS end to end: a TLS-terminating listener (curl --cacert), mutual TLS with require_client_certificate and a
SPIFFE URI SAN matcher, secrets by SDS name from static_resources.secrets, the peer's URI SAN in the access log,
TLS-originating clusters (proxy -> proxy mTLS as sidecars do, and to `openssl s_server` with session resumption),
tcp_proxy over mTLS, a plaintext client on a TLS port, and configuration errors that name the field.

Certificates (ECDSA P-256) are made at test time with the openssl command line in a temp dir, never committed.
"""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

TLS_NS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
DOWNSTREAM_TLS = TLS_NS + "DownstreamTlsContext"
UPSTREAM_TLS = TLS_NS + "UpstreamTlsContext"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"
INTRUDER_ID = "spiffe://cluster.local/ns/default/sa/intruder"
LOG_FORMAT = "TLS listener=%s code=%%RESPONSE_CODE%% san=%%DOWNSTREAM_PEER_URI_SAN%% subject=%%DOWNSTREAM_PEER_SUBJECT%%\n"
TCP_LOG_FORMAT = "TCPTLS rx=%BYTES_RECEIVED% san=%DOWNSTREAM_PEER_URI_SAN%\n"


def have(tool):
    return shutil.which(tool) is not None


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=20)


def make_certs(d):
    """CA, a server certificate for localhost, and two client certificates with SPIFFE IDs."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=sheave test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)

    def leaf(name, cn, san, eku):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nsubjectAltName=%s\nextendedKeyUsage=%s\n" % (san, eku))
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/O=sheave/CN=" + cn, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)

    leaf("server", "localhost", "DNS:localhost,IP:127.0.0.1,URI:" + SERVER_ID, "serverAuth,clientAuth")
    leaf("client", "client", "URI:" + CLIENT_ID, "clientAuth,serverAuth")
    leaf("intruder", "intruder", "URI:" + INTRUDER_ID, "clientAuth")
    return {n: os.path.join(d, n) for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key",
                                            "intruder.crt", "intruder.key")}


def tls_socket(context):
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def cert_files(certs, who):
    return {"certificate_chain": {"filename": certs[who + ".crt"]}, "private_key": {"filename": certs[who + ".key"]}}


def access_log(name):
    return [P.stdout_access_log(LOG_FORMAT % name)]


def http_listener(name, port, cluster, transport_socket=None):
    l = P.listener(name, port, P.hcm([P.virtual_host("all", [P.route("/", cluster)])], access_log=access_log(name)))
    if transport_socket is not None:
        l["filter_chains"][0]["transport_socket"] = transport_socket
    return l


def curl(port, path="/echo", cert=None, cacert=None, extra=()):
    """Runs curl against https://localhost:port; returns (exit code, status line code or None, body)."""
    cmd = ["curl", "-sS", "--max-time", "5", "--resolve", "localhost:%d:127.0.0.1" % port,
           "-o", "-", "-w", "\n%{http_code}"]
    if cacert:
        cmd += ["--cacert", cacert]
    if cert:
        cmd += ["--cert", cert[0], "--key", cert[1]]
    cmd += list(extra) + ["https://localhost:%d%s" % (port, path)]
    p = subprocess.run(cmd, capture_output=True, timeout=15)
    out = p.stdout.decode(errors="replace")
    body, _, code = out.rpartition("\n")
    return p.returncode, int(code) if code.isdigit() else None, body, p.stderr.decode(errors="replace")


@unittest.skipUnless(have("openssl") and have("curl"), "needs the openssl and curl command lines")
class TlsTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sheave-tls-")
        cls.certs = c = make_certs(cls.tmp)
        cls.upstream = cls.start_upstream("plain")
        cls.echo = cls.start_tcp_echo()
        cls.s_server = cls._start_s_server()

        # Proxy A: the server side (an inbound sidecar / ingress).
        cls.tls_port, cls.mtls_port, cls.tcp_port = P.free_port(), P.free_port(), P.free_port()
        server_ctx = {"@type": DOWNSTREAM_TLS, "common_tls_context": {"tls_certificates": [cert_files(c, "server")]}}
        # Mutual TLS with everything by SDS name, as Istio writes it.
        mtls_ctx = {
            "@type": DOWNSTREAM_TLS,
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [{"name": "default"}],
                "combined_validation_context": {
                    "default_validation_context": {
                        "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": CLIENT_ID}}]},
                    "validation_context_sds_secret_config": {"name": "ROOTCA"},
                },
            },
        }
        tcp = {"name": "envoy.filters.network.tcp_proxy",
               "typed_config": {"@type": P.TCP_PROXY_TYPE, "stat_prefix": "tls_tcp", "cluster": "echo",
                                "access_log": [P.stdout_access_log(TCP_LOG_FORMAT)]}}
        tcp_listener = P.listener("tcp_mtls", cls.tcp_port, tcp)
        tcp_listener["filter_chains"][0]["transport_socket"] = tls_socket(mtls_ctx)
        cfg_a = P.bootstrap(
            [http_listener("tls", cls.tls_port, "plain", tls_socket(server_ctx)),
             http_listener("mtls", cls.mtls_port, "plain", tls_socket(mtls_ctx)),
             tcp_listener],
            [P.static_cluster("plain", [("127.0.0.1", cls.upstream.port)]),
             P.static_cluster("echo", [("127.0.0.1", cls.echo.port)])],
            P.free_port())
        cfg_a["static_resources"]["secrets"] = [
            {"name": "default", "tls_certificate": cert_files(c, "server")},
            {"name": "ROOTCA", "validation_context": {"trusted_ca": {"filename": c["ca.crt"]}}},
        ]
        cls.proxy_a = cls.start_proxy(cfg_a)

        # Proxy B: the client side (an outbound sidecar) originating TLS.
        cls.out_port, cls.out_s_server_port = P.free_port(), P.free_port()
        client_ctx = {
            "@type": UPSTREAM_TLS,
            "sni": "localhost",
            "common_tls_context": {
                "tls_certificates": [cert_files(c, "client")],
                "validation_context": {
                    "trusted_ca": {"filename": c["ca.crt"]},
                    "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": SERVER_ID}}]},
            },
        }
        s_server_ctx = {"@type": UPSTREAM_TLS, "sni": "localhost",
                        "common_tls_context": {"validation_context": {"trusted_ca": {"filename": c["ca.crt"]}}}}
        cfg_b = P.bootstrap(
            [http_listener("out", cls.out_port, "mesh"),
             http_listener("out_s_server", cls.out_s_server_port, "s_server")],
            [P.static_cluster("mesh", [("127.0.0.1", cls.mtls_port)], transport_socket=tls_socket(client_ctx)),
             P.static_cluster("s_server", [("127.0.0.1", cls.s_server_port)],
                              transport_socket=tls_socket(s_server_ctx))],
            P.free_port())
        cls.proxy_b = cls.start_proxy(cfg_b)

    @classmethod
    def _start_s_server(cls):
        cls.s_server_port = P.free_port()
        proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % cls.s_server_port, "-cert", cls.certs["server.crt"],
             "-key", cls.certs["server.key"], "-www", "-quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

        class Handle:
            def stop(self):
                proc.kill()
                proc.wait(5)

        cls._upstreams.append(Handle())
        if not P.wait_until(lambda: not P.port_is_free(cls.s_server_port), 5):
            raise RuntimeError("openssl s_server did not start")
        return proc

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    def wait_log(self, proxy, predicate):
        line = proxy.wait_for_log(predicate)
        self.assertIsNotNone(line, proxy.stdout())
        return line

    def client_context(self, who=None):
        ctx = ssl.create_default_context(cafile=self.certs["ca.crt"])
        if who:
            ctx.load_cert_chain(self.certs[who + ".crt"], self.certs[who + ".key"])
        return ctx

    # -- termination ----------------------------------------------------------------------------------------------

    def test_terminates_tls_to_plaintext_upstream(self):
        rc, code, body, err = curl(self.tls_port, "/echo", cacert=self.certs["ca.crt"])
        self.assertEqual((rc, code), (0, 200), err)
        self.assertIn('"server": "plain"', body)
        # No client certificate: the peer fields are empty ("-").
        self.wait_log(self.proxy_a, lambda l: l.startswith("TLS listener=tls code=200 san=- subject=-"))

    def test_untrusted_server_certificate_is_refused_by_the_client(self):
        rc, _, _, _ = curl(self.tls_port, "/echo")  # system CAs do not know our CA
        self.assertNotEqual(rc, 0)

    def test_plaintext_request_on_tls_port_fails_cleanly(self):
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertNotIn(b"HTTP/1.1", data, "a plaintext request must not get an HTTP response")
        rc, code, _, err = curl(self.tls_port, "/echo", cacert=self.certs["ca.crt"])
        self.assertEqual((rc, code), (0, 200), "the proxy must keep serving: " + err)

    # -- mutual TLS -----------------------------------------------------------------------------------------------

    def test_mtls_requires_a_client_certificate(self):
        rc, code, _, _ = curl(self.mtls_port, "/echo", cacert=self.certs["ca.crt"])
        self.assertNotEqual(rc, 0, "a client without a certificate must be refused")
        self.assertNotEqual(code, 200)

    def test_mtls_accepts_the_expected_spiffe_id_and_logs_it(self):
        rc, code, body, err = curl(self.mtls_port, "/echo?who=client", cacert=self.certs["ca.crt"],
                                   cert=(self.certs["client.crt"], self.certs["client.key"]))
        self.assertEqual((rc, code), (0, 200), err)
        line = self.wait_log(self.proxy_a, lambda l: l.startswith("TLS listener=mtls code=200 san=" + CLIENT_ID))
        self.assertIn("subject=CN=client,O=sheave", line)

    def test_mtls_rejects_a_different_spiffe_id(self):
        rc, code, _, _ = curl(self.mtls_port, "/echo", cacert=self.certs["ca.crt"],
                              cert=(self.certs["intruder.crt"], self.certs["intruder.key"]))
        self.assertNotEqual(rc, 0, "the SAN matcher must refuse the intruder")
        self.assertNotEqual(code, 200)
        self.assertGreaterEqual(self.proxy_a.stat("listener.127.0.0.1_%d.downstream_cx_total" % self.mtls_port), 1)

    def test_tcp_proxy_over_mtls_logs_peer(self):
        ctx = self.client_context("client")
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"ping over tls")
                got = b""
                while len(got) < 13:
                    chunk = s.recv(100)
                    if not chunk:
                        break
                    got += chunk
        self.assertEqual(got, b"ping over tls")
        self.wait_log(self.proxy_a, lambda l: l.startswith("TCPTLS rx=13 san=" + CLIENT_ID))

    # -- origination ----------------------------------------------------------------------------------------------

    def test_proxy_to_proxy_mtls(self):
        r = P.get(self.out_port, "/echo?via=mesh")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["server"], "plain")
        # Proxy A saw proxy B's client certificate.
        self.wait_log(self.proxy_a, lambda l: l.startswith("TLS listener=mtls code=200 san=" + CLIENT_ID))
        self.wait_log(self.proxy_b, lambda l: l.startswith("TLS listener=out code=200"))

    def test_tls_upstream_resumes_sessions(self):
        # s_server -www answers HTTP/1.0 and closes, so every request is a new TLS connection; its status page
        # says whether the session was resumed.
        first = P.get(self.out_s_server_port, "/")
        self.assertEqual(first.status, 200, first.body)
        self.assertIn(b"Ciphers supported", first.body)
        resumed = False
        for _ in range(3):
            r = P.get(self.out_s_server_port, "/")
            self.assertEqual(r.status, 200, r.body)
            if b"Reused, " in r.body:
                resumed = True
                break
        self.assertTrue(resumed, "pooled connections to one host should resume the TLS session")

    # -- configuration --------------------------------------------------------------------------------------------

    def _validate(self, mutate):
        c = self.certs
        ctx = {"@type": DOWNSTREAM_TLS,
               "common_tls_context": {"tls_certificate_sds_secret_configs": [{"name": "default"}]}}
        cfg = P.bootstrap([http_listener("l", P.free_port(), "plain", tls_socket(ctx))],
                          [P.static_cluster("plain", [("127.0.0.1", 1)])], P.free_port())
        cfg["static_resources"]["secrets"] = [{"name": "default", "tls_certificate": cert_files(c, "server")}]
        mutate(cfg)
        p = self.new_proxy(cfg)
        return p.run_mode("validate")

    def test_validate_accepts_secrets(self):
        code, out, err = self._validate(lambda cfg: None)
        self.assertEqual(code, 0, out + err)

    def test_unknown_secret_name_names_the_field(self):
        def mutate(cfg):
            cfg["static_resources"]["secrets"][0]["name"] = "other"
        code, out, err = self._validate(mutate)
        self.assertEqual(code, 1, out + err)
        self.assertIn("filter_chains[0].transport_socket.typed_config.common_tls_context", err)

    def test_bad_secret_names_the_field(self):
        def mutate(cfg):
            cfg["static_resources"]["secrets"][0]["tls_certificate"]["private_key"] = {
                "filename": self.certs["client.key"]}
        code, out, err = self._validate(mutate)
        self.assertEqual(code, 1, out + err)
        self.assertIn("static_resources.secrets[0].tls_certificate", err)

    def test_unsupported_transport_socket_is_refused(self):
        def mutate(cfg):
            cfg["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = {
                "name": "envoy.transport_sockets.alts"}
        code, out, err = self._validate(mutate)
        self.assertEqual(code, 1, out + err)
        self.assertIn("filter_chains[0].transport_socket", err)

    def test_config_dump_redacts_private_keys(self):
        status, _, body = self.proxy_a.admin("GET", "/config_dump")
        self.assertEqual(status, 200)
        self.assertNotIn(self.certs["server.key"], body)
        self.assertIn("[redacted]", body)
        self.assertIn("SecretsConfigDump", body)


if __name__ == "__main__":
    unittest.main()
