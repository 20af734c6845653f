"""Issue 5's end-to-end check: sheave-control runs the CA; two sidecars get their workload certificates with the
bootstrap tokens it wrote (keys made in the proxies, CSRs over TLS), fetch their config over the authenticated
TLS xDS port, and talk mTLS to each other (auto mTLS on the client's cluster, a STRICT inbound listener on the
server's); certificates rotate under load without a failed request; plaintext and foreign certificates are
refused at the server sidecar; a proxy that claims another workload's identity gets no config.

No iptables: the client calls its sidecar's egress port (Sidecar egress captureMode NONE) and the server sidecar
listens on the workload's address (Sidecar ingress bind, a second loopback address) in front of the app."""

import os
import subprocess
import tempfile
import time
import unittest

from lib import proxy as P
from lib import xds
from lib.control import ControlPlaneTestCase, control_binary

CONTROL = control_binary()
NODE = "sidecar~%s~%s.default~default.svc.cluster.local"
SERVER_IP = "127.0.0.2"


def mesh_yaml(port, inbound_port, app_port):
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{app: reviews}}
  ports:
  - {{name: http, port: {port}}}
---
apiVersion: v1
kind: Service
metadata: {{name: productpage, namespace: default}}
spec:
  selector: {{app: productpage}}
  ports:
  - {{name: http, port: 9080}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: default}}
spec:
  address: {SERVER_IP}
  labels: {{app: reviews, version: v1}}
  serviceAccount: bookinfo-reviews
  ports: {{http: {inbound_port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: productpage-v1, namespace: default}}
spec:
  address: 127.0.0.1
  labels: {{app: productpage, version: v1}}
  serviceAccount: bookinfo-productpage
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: ratings-v1, namespace: default}}
spec:
  address: 127.0.0.4
  labels: {{app: ratings, version: v1}}
  serviceAccount: bookinfo-ratings
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: sheave-system}}
spec:
  mtls: {{mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: reviews-callers, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}}}]
    to: [{{operation: {{methods: ["GET"], paths: ["/echo*"]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: reviews-no-admin, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  action: DENY
  rules:
  - to: [{{operation: {{paths: ["/echo/admin*"]}}}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: productpage, namespace: default}}
spec:
  workloadSelector:
    labels: {{app: productpage}}
  egress:
  - port: {{number: {port}, protocol: HTTP, name: http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reviews, namespace: default}}
spec:
  workloadSelector:
    labels: {{app: reviews}}
  ingress:
  - port: {{number: {inbound_port}, protocol: HTTP, name: http}}
    bind: {SERVER_IP}
    defaultEndpoint: 127.0.0.1:{app_port}
    captureMode: NONE
  egress:
  - hosts: ["./*"]
"""


class MtlsMeshTest(ControlPlaneTestCase):
    @classmethod
    def setUpWorld(cls):
        if not os.path.exists(CONTROL):
            raise unittest.SkipTest("sheave-control not built")
        cls.app = cls.start_upstream(name="reviews-app")
        cls.port, cls.inbound_port = P.free_port(), P.free_port()
        cls.dir = tempfile.mkdtemp(prefix="sheave-mtls-")
        for sub in ("config", "ca", "tokens"):
            os.makedirs(os.path.join(cls.dir, sub))
        with open(os.path.join(cls.dir, "config", "mesh.yaml"), "w") as f:
            f.write(mesh_yaml(cls.port, cls.inbound_port, cls.app.port))
        cls.start_control(os.path.join(cls.dir, "config"), secure=True,
                          extra_args=["--ca-dir", os.path.join(cls.dir, "ca"),
                                      "--token-dir", os.path.join(cls.dir, "tokens")])
        cls.xds_port = cls.control.xds_port
        cls.root = os.path.join(cls.dir, "ca", "root-cert.pem")
        # Certificates of 4 s, renewed at half their life: several rotations within the test.
        cls.server = cls.sidecar("reviews-v1", SERVER_IP)
        cls.client = cls.sidecar("productpage-v1", "127.0.0.1")
        if not P.wait_until(lambda: P.port_accepts(cls.port), 10.0):
            raise AssertionError("egress listener never came up:\n" + cls.client.stderr()[-3000:] +
                                 "\ncontrol:\n" + cls.control_log())

    @classmethod
    def sidecar(cls, workload, ip, token_of=None, start=True):
        token = os.path.join(cls.dir, "tokens", "default", token_of or workload)
        config = xds.ads_tls_bootstrap(NODE % (ip, workload), cls.xds_port, P.free_port(), cls.root)
        args = ["--workload-token-file", token, "--secret-ttl", "4"]
        if start:
            return cls.start_proxy(config, extra_args=args)
        return cls.new_proxy(config, extra_args=args)

    def get(self, path="/echo"):
        return P.get(self.port, path, host="reviews")

    def test_1_ca_files_and_tokens_are_private(self):
        for f in ("ca-key.pem",):
            mode = os.stat(os.path.join(self.dir, "ca", f)).st_mode & 0o777
            self.assertEqual(mode, 0o600, f)
        mode = os.stat(os.path.join(self.dir, "tokens", "default", "reviews-v1")).st_mode & 0o777
        self.assertEqual(mode, 0o600)

    def test_2_request_crosses_two_sidecars_over_mtls(self):
        r = self.get()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers.get("x-upstream-name"), "reviews-app")
        # The server sidecar saw the client's workload identity.
        xfcc = r.json()["headers"].get("x-forwarded-client-cert", "")
        self.assertIn("URI=spiffe://cluster.local/ns/default/sa/bookinfo-productpage", xfcc)
        self.assertIn("By=spiffe://cluster.local/ns/default/sa/bookinfo-reviews", xfcc)

    def test_2b_authorization_policy_by_identity_method_and_path(self):
        # ALLOW only productpage's identity, GET, /echo*; DENY /echo/admin* even for it. Decided by the server
        # sidecar from the caller's certificate, on the normalized path.
        self.assertEqual(self.get("/echo/ok").status, 200)
        r = P.http_request(self.port, "POST", "/echo", host="reviews", body=b"x")
        self.assertEqual((r.status, r.body), (403, b"RBAC: access denied"))
        self.assertEqual(self.get("/status/200").status, 403)  # path not allowed
        # (Istio's default BASE normalization does not merge "//"; MERGE_SLASHES would.)
        for path in ("/echo/admin", "/echo/x/../admin", "/echo/%61dmin", "/echo/./admin"):
            r = self.get(path)
            self.assertEqual(r.status, 403, path)

    def test_3_plaintext_and_foreign_certificates_are_refused(self):
        # STRICT: a plaintext HTTP request straight to the server sidecar gets no answer.
        import socket
        with socket.create_connection((SERVER_IP, self.inbound_port), timeout=5) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: reviews\r\n\r\n")
            s.settimeout(5)
            try:
                data = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                data = b""
            self.assertNotIn(b"200", data)
        # TLS without a client certificate (openssl s_client) is refused at the handshake.
        out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (SERVER_IP, self.inbound_port),
                              "-CAfile", self.root, "-alpn", "istio", "-verify_return_error"],
                             input=b"GET /echo HTTP/1.1\r\nHost: reviews\r\n\r\n", capture_output=True, timeout=10)
        self.assertNotIn(b"HTTP/1.1 200", out.stdout)
        # A certificate claiming productpage's SPIFFE ID but signed by another CA: refused too.
        key, crt = os.path.join(self.dir, "forged.key"), os.path.join(self.dir, "forged.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "1", "-subj", "/O=forged",
                        "-addext", "subjectAltName=URI:spiffe://cluster.local/ns/default/sa/bookinfo-productpage"],
                       check=True, capture_output=True, timeout=10)
        out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (SERVER_IP, self.inbound_port),
                              "-CAfile", self.root, "-cert", crt, "-key", key, "-alpn", "istio"],
                             input=b"GET /echo HTTP/1.1\r\nHost: reviews\r\n\r\n", capture_output=True, timeout=10)
        self.assertNotIn(b"HTTP/1.1 200", out.stdout)
        # The CA's own client certificate (the legitimate path) does get through: the refusals above are real.
        self.assertEqual(self.get().status, 200)

    def test_4_rotation_under_load_fails_no_request(self):
        before = (self.client.stat("sds.default.update_success"), self.server.stat("sds.default.update_success"))
        failures, total = 0, 0
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and total < 400:
            r = self.get()
            total += 1
            failures += r.status != 200
        after = (self.client.stat("sds.default.update_success"), self.server.stat("sds.default.update_success"))
        self.assertEqual(failures, 0, "%d of %d failed" % (failures, total))
        self.assertGreater(total, 20)
        self.assertGreaterEqual(after[0] - before[0], 1, "the client certificate never rotated")
        self.assertGreaterEqual(after[1] - before[1], 1, "the server certificate never rotated")

    def test_5_node_id_is_no_identity(self):
        # ratings' proxy (its own valid token, so a ratings certificate) claims to be reviews-v1: the certificate
        # says bookinfo-ratings, so the control plane refuses the stream and the proxy never gets config.
        p = self.sidecar("reviews-v1", "127.0.0.3", token_of="ratings-v1", start=False)
        with self.assertRaises(P.ProxyError):
            p.start(ready_timeout=2.0)
        self.assertGreaterEqual(p.stat("sds.default.update_success"), 1)  # the CA issued ratings' certificate
        self.assertTrue(P.wait_until(lambda: "authenticated as spiffe://cluster.local/ns/default/sa/bookinfo-ratings"
                                     in self.control_log(), 5.0), self.control_log())

    def test_6_spent_token_buys_nothing(self):
        p = self.sidecar("productpage-v1", "127.0.0.1", start=False)
        with self.assertRaises(P.ProxyError):
            p.start(ready_timeout=1.5)  # no certificate, so no config, so never ready
        self.assertGreaterEqual(p.stat("sds.default.update_failure"), 1)
        self.assertEqual(p.stat("sds.default.update_success"), 0)
        self.assertIn("already used", p.stderr())
