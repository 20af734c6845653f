"""HTTP/1.1 proxying behaviour seen from both sides: keep-alive, bodies, 100-continue, HEAD, Connection: close,
hop-by-hop headers, x-forwarded-*, x-request-id, pipelining.

The connection manager runs with use_remote_address: true, as an edge proxy does; Envoy appends the peer address to
x-forwarded-for only in that case.
"""

import hashlib
import http.client
import re
import unittest

from lib import proxy as P
from lib import rawhttp
from lib.base import ProxyTestCase
from lib.upstream import pattern_bytes

MIB = 1024 * 1024
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class Http1Test(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        cfg = P.simple_http_bootstrap(cls.up.port, cls.port, P.free_port(),
                                      route_action={"timeout": "30s"},
                                      hcm_extra={"use_remote_address": True})
        cls.proxy = cls.start_proxy(cfg)

    def raw(self):
        c = rawhttp.RawConnection(self.port, timeout=10)
        self.addCleanup(c.close)
        return c

    def echo(self, resp):
        import json
        return json.loads(resp.body)

    def test_keep_alive_reuses_both_connections(self):
        dcx = self.proxy.stat("http.ingress_http.downstream_cx_total")
        ucx = self.up.connections
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for i in range(20):
                r = P.http_request(self.port, "GET", "/echo/ka%d" % i, conn=conn)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["path"], "/echo/ka%d" % i)
        finally:
            conn.close()
        self.assertEqual(self.proxy.stat("http.ingress_http.downstream_cx_total") - dcx, 1)
        self.assertLessEqual(self.up.connections - ucx, 1, "sequential requests should reuse one pooled upstream connection")

    def test_chunked_request_body(self):
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"hello ", b"chunked ", b"world")) + b"0\r\n\r\n"
        c = self.raw()
        c.send(rawhttp.request_bytes("POST", "/echo/chunked", headers=[("Transfer-Encoding", "chunked")],
                                     body=body, content_length=False))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        doc = self.echo(r)
        self.assertEqual(doc["body_length"], len(b"hello chunked world"))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(b"hello chunked world").hexdigest())

    def test_chunked_response_body(self):
        c = self.raw()
        c.send(rawhttp.request_bytes("GET", "/bytes/100000?chunked=1"))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, pattern_bytes(100000))

    def test_large_body_upload_content_length(self):
        data = pattern_bytes(5 * MIB, 3)
        r = P.http_request(self.port, "POST", "/echo/big", body=data, timeout=30)
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertEqual(doc["body_length"], len(data))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(data).hexdigest())

    def test_large_body_upload_chunked(self):
        data = pattern_bytes(5 * MIB, 5)
        c = rawhttp.RawConnection(self.port, timeout=30)
        self.addCleanup(c.close)
        c.send(rawhttp.request_bytes("POST", "/echo/bigchunked", headers=[("Transfer-Encoding", "chunked")],
                                     content_length=False))
        piece = 64 * 1024 + 7
        for i in range(0, len(data), piece):
            part = data[i:i + piece]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        r = c.read_response(timeout=30)
        self.assertEqual(r.status, 200)
        doc = self.echo(r)
        self.assertEqual(doc["body_length"], len(data))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(data).hexdigest())

    def test_large_body_download(self):
        for path in ("/bytes/%d" % (5 * MIB), "/bytes/%d?chunked=1" % (5 * MIB)):
            r = P.get(self.port, path, timeout=30)
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), 5 * MIB, path)
            self.assertEqual(r.body, pattern_bytes(5 * MIB), path)

    def test_expect_100_continue(self):
        # proxy_100_continue is false by default: Envoy answers "100 Continue" itself and drops the Expect header.
        c = self.raw()
        c.send(b"POST /echo/expect HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_response(timeout=5)
        self.assertEqual(interim.status, 100, "the client waits for 100 Continue before sending its body")
        c.send(b"hello")
        r, _ = c.read_final_response()
        self.assertEqual(r.status, 200)
        doc = self.echo(r)
        self.assertEqual(doc["body_length"], 5)
        self.assertNotIn("expect", doc["headers"])

    def test_head_has_no_body_and_connection_stays_usable(self):
        c = self.raw()
        c.send(rawhttp.request_bytes("HEAD", "/bytes/1000"))
        r = c.read_response(head_request=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), "1000")
        self.assertEqual(r.body, b"")
        c.send(rawhttp.request_bytes("GET", "/echo/after-head"))
        r = c.read_response()
        self.assertEqual(r.status, 200, "bytes after a HEAD response must not be read as a body")
        self.assertEqual(self.echo(r)["path"], "/echo/after-head")

    def test_connection_close_honoured(self):
        c = self.raw()
        c.send(rawhttp.request_bytes("GET", "/echo/close", headers=[("Connection", "close")]))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertIn("close", (r.header("connection") or "").lower())
        self.assertTrue(c.wait_closed(3), "the proxy must close the connection after answering Connection: close")

    def test_http10_without_keep_alive_is_closed(self):
        c = self.raw()
        c.send(b"GET /echo/ten HTTP/1.0\r\nHost: example.com\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertTrue(c.wait_closed(3))

    def test_hop_by_hop_request_headers_removed(self):
        c = self.raw()
        c.send(rawhttp.request_bytes("GET", "/echo/hop", headers=[
            ("Connection", "keep-alive, x-hop"), ("Keep-Alive", "timeout=5"), ("X-Hop", "1"),
            ("Proxy-Connection", "keep-alive"), ("TE", "gzip"), ("Upgrade", "foo/1"), ("X-End-To-End", "1")]))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        seen = self.echo(r)["headers"]
        for name in ("keep-alive", "proxy-connection", "te", "upgrade"):
            self.assertNotIn(name, seen)
        self.assertNotIn("x-hop", (seen.get("connection") or "").lower())
        # RFC 9110 7.6.1: fields named in Connection are hop-by-hop and a proxy must remove them. (Envoy itself only
        # acts on TE when nominated; Sheave follows the RFC here.)
        self.assertNotIn("x-hop", seen)
        self.assertEqual(seen.get("x-end-to-end"), "1")

    def test_te_trailers_is_kept(self):
        r = P.get(self.port, "/echo/te", headers={"TE": "trailers"})
        self.assertEqual(r.json()["headers"].get("te"), "trailers")

    def test_hop_by_hop_response_headers_removed(self):
        r = P.get(self.port, "/echo/resp-hop?set_header=Keep-Alive:timeout%3D5&set_header=Proxy-Connection:keep-alive"
                  "&set_header=X-Kept:1")
        self.assertEqual(r.status, 200)
        self.assertNotIn("keep-alive", r.headers)
        self.assertNotIn("proxy-connection", r.headers)
        self.assertEqual(r.headers.get("x-kept"), "1")

    def test_x_forwarded_for_appended(self):
        r = P.get(self.port, "/echo/xff", headers={"X-Forwarded-For": "203.0.113.7"})
        xff = [v.strip() for v in r.json()["headers"]["x-forwarded-for"].split(",")]
        self.assertEqual(xff, ["203.0.113.7", "127.0.0.1"])
        r = P.get(self.port, "/echo/xff2")
        self.assertEqual(r.json()["headers"]["x-forwarded-for"].strip(), "127.0.0.1")

    def test_x_request_id_generated(self):
        ids = set()
        for i in range(3):
            seen = P.get(self.port, "/echo/rid%d" % i).json()["headers"]
            self.assertRegex(seen.get("x-request-id", ""), UUID_RE)
            ids.add(seen["x-request-id"])
        self.assertEqual(len(ids), 3, "every request gets its own id")

    def test_x_forwarded_proto_set(self):
        seen = P.get(self.port, "/echo/xfp").json()["headers"]
        self.assertEqual(seen.get("x-forwarded-proto"), "http")

    def test_pipelined_requests_answered_in_order(self):
        c = self.raw()
        c.send(rawhttp.request_bytes("GET", "/delay/300") + rawhttp.request_bytes("GET", "/echo/p2")
               + rawhttp.request_bytes("POST", "/echo/p3", body=b"abc") + rawhttp.request_bytes("GET", "/echo/p4"))
        r1 = c.read_response()
        self.assertEqual((r1.status, r1.body), (200, b"delayed"))
        r2, r3, r4 = c.read_response(), c.read_response(), c.read_response()
        self.assertEqual(self.echo(r2)["path"], "/echo/p2")
        self.assertEqual(self.echo(r3)["path"], "/echo/p3")
        self.assertEqual(self.echo(r3)["body_length"], 3)
        self.assertEqual(self.echo(r4)["path"], "/echo/p4")

    def test_upstream_connection_close_is_not_leaked_to_client(self):
        # The upstream closes after /close; the client's keep-alive connection must stay open and usable.
        c = self.raw()
        c.send(rawhttp.request_bytes("GET", "/close"))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        c.send(rawhttp.request_bytes("GET", "/echo/after-close"))
        self.assertEqual(c.read_response().status, 200)


if __name__ == "__main__":
    unittest.main()
