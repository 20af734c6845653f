"""RBAC end to end: envoy.filters.http.rbac (ALLOW / DENY by path, method, header, source IP and client
certificate URI SAN; shadow rules counted but not enforced; 403 "RBAC: access denied"), path normalization
in the connection manager (normalize_path, merge_slashes, path_with_escaped_slashes_action) so that path tricks
cannot slip past a DENY on /admin, and envoy.filters.network.rbac closing a denied connection.

Certificates (ECDSA P-256) are made at test time with the openssl command line in a temp dir.
"""

import shutil
import socket
import subprocess
import tempfile
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase
from test_tls import CLIENT_ID, DOWNSTREAM_TLS, cert_files, curl, have, make_certs, tls_socket

HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
DENIED = b"RBAC: access denied"


def rbac_filter(rules=None, shadow_rules=None, **extra):
    cfg = {"@type": HTTP_RBAC}
    if rules is not None:
        cfg["rules"] = rules
    if shadow_rules is not None:
        cfg["shadow_rules"] = shadow_rules
    cfg.update(extra)
    return {"name": "envoy.filters.http.rbac", "typed_config": cfg}


def policy(permissions, principals):
    return {"permissions": permissions, "principals": principals}


ANY = [{"any": True}]


def cidr(prefix, length):
    return {"address_prefix": prefix, "prefix_len": length}


def http_listener(name, port, filters, stat_prefix, **hcm_extra):
    return P.listener(name, port, P.hcm([P.virtual_host("all", [P.route("/", "backend")])],
                                        stat_prefix=stat_prefix, http_filters=filters, access_log=False,
                                        **hcm_extra))


@unittest.skipUnless(have("openssl") and have("curl"), "needs the openssl and curl command lines")
class RbacTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sheave-rbac-")
        cls.certs = c = make_certs(cls.tmp)
        cls.upstream = cls.start_upstream("backend")
        ports = [P.free_port() for _ in range(8)]
        (cls.deny_port, cls.allow_port, cls.empty_port, cls.mtls_port, cls.net_deny_port, cls.net_allow_port,
         cls.reject_port, cls.redirect_port) = ports

        deny = rbac_filter(
            rules={"action": "DENY", "policies": {
                "deny-admin": policy([{"url_path": {"path": {"prefix": "/admin"}}}], ANY),
                "deny-delete": policy([{"header": {"name": ":method", "string_match": {"exact": "DELETE"}}}], ANY),
                "deny-evil": policy(ANY, [{"header": {"name": "x-evil", "present_match": True}}]),
            }},
            shadow_rules={"action": "DENY", "policies": {
                "shadow-private": policy([{"url_path": {"path": {"prefix": "/echo/private"}}}], ANY)}})
        # Istio's DECODE_AND_MERGE_SLASHES: RFC 3986 normalization, merged slashes, %2F/%5C decoded.
        normalize = {"normalize_path": True, "merge_slashes": True,
                     "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD"}
        allow = rbac_filter(rules={"action": "ALLOW", "policies": {
            "local-get-echo": policy(
                [{"and_rules": {"rules": [
                    {"header": {"name": ":method", "string_match": {"exact": "GET"}}},
                    {"url_path": {"path": {"prefix": "/echo"}}}]}}],
                [{"remote_ip": cidr("127.0.0.1", 32)}]),
            "private-from-10": policy([{"url_path": {"path": {"prefix": "/private"}}}],
                                      [{"remote_ip": cidr("10.0.0.0", 8)}]),
        }})
        empty = rbac_filter(rules={"action": "ALLOW"})
        by_identity = rbac_filter(rules={"action": "ALLOW", "policies": {
            "client-only": policy(ANY, [{"authenticated": {"principal_name": {"exact": CLIENT_ID}}}])}})
        mtls_ctx = {"@type": DOWNSTREAM_TLS, "require_client_certificate": True,
                    "common_tls_context": {"tls_certificates": [cert_files(c, "server")],
                                           "validation_context": {"trusted_ca": {"filename": c["ca.crt"]}}}}
        mtls = http_listener("mtls", cls.mtls_port, [by_identity], "mtls")
        mtls["filter_chains"][0]["transport_socket"] = tls_socket(mtls_ctx)

        def net_listener(name, port, prefix):
            l = http_listener(name, port, [], name)
            net = {"name": "envoy.filters.network.rbac", "typed_config": {
                "@type": NETWORK_RBAC, "stat_prefix": name + ".",
                "rules": {"action": "ALLOW", "policies": {
                    "net": policy(ANY, [{"direct_remote_ip": cidr(prefix, 8)}])}}}}
            l["filter_chains"][0]["filters"].insert(0, net)
            return l

        cfg = P.bootstrap(
            [http_listener("deny", cls.deny_port, [deny], "deny", **normalize),
             http_listener("allow", cls.allow_port, [allow], "allow"),
             http_listener("empty", cls.empty_port, [empty], "empty"),
             mtls,
             net_listener("net_deny", cls.net_deny_port, "10.0.0.0"),
             net_listener("net_allow", cls.net_allow_port, "127.0.0.0"),
             http_listener("reject", cls.reject_port, [deny], "reject", normalize_path=True,
                           path_with_escaped_slashes_action="REJECT_REQUEST"),
             http_listener("redirect", cls.redirect_port, [deny], "redirect", normalize_path=True,
                           path_with_escaped_slashes_action="UNESCAPE_AND_REDIRECT")],
            [P.static_cluster("backend", [("127.0.0.1", cls.upstream.port)])],
            P.free_port())
        cls.proxy = cls.start_proxy(cfg)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    def request(self, port, path, method="GET", headers=None):
        return P.http_request(port, method, path, headers=headers, timeout=5)

    def assertDenied(self, r):
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.body, DENIED)

    # -- DENY with path normalization --------------------------------------------------------------------------

    def test_deny_by_path_method_and_header(self):
        self.assertEqual(self.request(self.deny_port, "/echo").status, 200)
        self.assertDenied(self.request(self.deny_port, "/admin"))
        self.assertDenied(self.request(self.deny_port, "/admin/users?x=1"))
        self.assertDenied(self.request(self.deny_port, "/echo", method="DELETE"))
        self.assertDenied(self.request(self.deny_port, "/echo", headers={"x-evil": "1"}))

    def test_path_tricks_do_not_bypass_deny(self):
        for trick in ("/admin/../admin", "//admin", "/%61dmin", "/x/..%2F..%2Fadmin", "/./admin", "/%2e%2e/admin",
                      "/x/%2E%2E/admin", "/x\\..\\admin", "/x/..%5Cadmin", "///admin//"):
            with self.subTest(path=trick):
                self.assertDenied(self.request(self.deny_port, trick))

    def test_match_is_case_sensitive(self):
        r = self.request(self.deny_port, "/ADMIN")
        self.assertEqual(r.status, 200, r)

    def test_upstream_sees_the_normalized_path(self):
        r = self.request(self.deny_port, "/echo/a/../b//c/%7Ed?q=/../%2F")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/echo/b/c/~d?q=/../%2F")

    def test_invalid_path_is_rejected(self):
        r = self.request(self.deny_port, "/echo/%zz")
        self.assertEqual(r.status, 400, r)

    def test_escaped_slashes_reject_and_redirect(self):
        self.assertEqual(self.request(self.reject_port, "/x/..%2F..%2Fadmin").status, 400)
        self.assertEqual(self.request(self.reject_port, "/echo").status, 200)
        r = self.request(self.redirect_port, "/x/..%2F..%2Fadmin?a=%2F")
        self.assertEqual(r.status, 307, r)
        self.assertEqual(r.headers.get("location"), "/admin?a=%2F")
        # Following the redirect meets the DENY.
        self.assertDenied(self.request(self.redirect_port, r.headers["location"]))

    def test_shadow_rules_are_counted_not_enforced(self):
        before = self.proxy.stat("http.deny.rbac.shadow_denied")
        r = self.request(self.deny_port, "/echo/private")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.proxy.wait_stat("http.deny.rbac.shadow_denied", lambda v: v > before), before + 1)
        self.assertGreater(self.proxy.stat("http.deny.rbac.denied"), 0)

    def test_http2_path_is_normalized_too(self):
        if not have("curl"):
            self.skipTest("needs curl")
        for trick in ("//admin", "/admin/../admin", "/%61dmin"):
            p = subprocess.run(["curl", "-sS", "--max-time", "5", "--http2-prior-knowledge", "--path-as-is",
                                "-o", "-", "-w", "\n%{http_code}", "http://127.0.0.1:%d%s" % (self.deny_port, trick)],
                               capture_output=True, timeout=15)
            body, _, code = p.stdout.decode().rpartition("\n")
            self.assertEqual((code, body), ("403", "RBAC: access denied"), (trick, p.stderr))

    # -- ALLOW ------------------------------------------------------------------------------------------------

    def test_allow_by_method_path_and_source(self):
        self.assertEqual(self.request(self.allow_port, "/echo").status, 200)
        self.assertDenied(self.request(self.allow_port, "/echo", method="POST"))
        self.assertDenied(self.request(self.allow_port, "/other"))
        # Allowed from 10/8 only; the client is 127.0.0.1.
        self.assertDenied(self.request(self.allow_port, "/private"))

    def test_allow_with_no_policies_denies_everything(self):
        for path in ("/", "/echo", "/admin"):
            self.assertDenied(self.request(self.empty_port, path))
        self.assertGreaterEqual(self.proxy.stat("http.empty.rbac.denied"), 3)

    # -- identity ---------------------------------------------------------------------------------------------

    def test_client_certificate_uri_san(self):
        c = self.certs
        rc, code, body, err = curl(self.mtls_port, "/echo", cert=(c["client.crt"], c["client.key"]),
                                   cacert=c["ca.crt"])
        self.assertEqual((rc, code), (0, 200), err)
        rc, code, body, err = curl(self.mtls_port, "/echo", cert=(c["intruder.crt"], c["intruder.key"]),
                                   cacert=c["ca.crt"])
        self.assertEqual((rc, code, body), (0, 403, "RBAC: access denied"), err)

    # -- network RBAC ----------------------------------------------------------------------------------------

    def test_network_rbac_closes_denied_connection(self):
        with socket.create_connection(("127.0.0.1", self.net_deny_port), timeout=5) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        self.assertEqual(data, b"")
        self.assertEqual(self.proxy.wait_stat("net_deny.rbac.denied", lambda v: v >= 1), 1)
        self.assertEqual(self.request(self.net_allow_port, "/echo").status, 200)
        self.assertGreaterEqual(self.proxy.stat("net_allow.rbac.allowed"), 1)

    def test_network_rbac_before_tcp_proxy(self):
        # A denied TCP connection is closed on its first bytes, before any byte reaches the upstream.
        echo = self.start_tcp_echo()

        def tcp_listener(name, port, rules):
            l = P.listener(name, port, {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                "@type": P.TCP_PROXY_TYPE, "stat_prefix": name, "cluster": "echo"}})
            l["filter_chains"][0]["filters"].insert(0, {"name": "envoy.filters.network.rbac", "typed_config": {
                "@type": NETWORK_RBAC, "stat_prefix": name + ".", "rules": rules}})
            return l

        deny_port, allow_port = P.free_port(), P.free_port()
        any_policy = {"permissions": [{"any": True}], "principals": [{"any": True}]}
        proxy = self.start_proxy(P.bootstrap(
            [tcp_listener("tdeny", deny_port, {"action": "ALLOW"}),
             tcp_listener("tallow", allow_port, {"action": "ALLOW", "policies": {"all": any_policy}})],
            [P.static_cluster("echo", [("127.0.0.1", echo.port)])], P.free_port()))
        with socket.create_connection(("127.0.0.1", allow_port), timeout=5) as s:
            s.sendall(b"ping")
            self.assertEqual(s.recv(4), b"ping")
        with socket.create_connection(("127.0.0.1", deny_port), timeout=5) as s:
            s.sendall(b"ping")
            data = b""
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                pass
            self.assertEqual(data, b"")
        self.assertEqual(proxy.wait_stat("tdeny.rbac.denied", lambda v: v >= 1), 1)
        self.assertGreaterEqual(proxy.stat("tallow.rbac.allowed"), 1)

if __name__ == "__main__":
    unittest.main()
