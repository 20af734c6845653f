"""Malformed and hostile HTTP/1.1 input, sent as raw bytes.

For every bad request: the proxy answers with the right 4xx and closes the connection, the upstream never sees a
request (so nothing can be smuggled past the proxy), the proxy keeps serving good requests and no downstream
connection is left behind (http.<prefix>.downstream_cx_active drops back).

Three listeners: "bad_input" (request_headers_timeout 1 s), "limited" (the buffer filter) and "idle" (idle_timeout 1 s).
"""

import time
import unittest

from lib import proxy as P
from lib import rawhttp
from lib.base import ProxyTestCase

BUFFER_LIMIT = 64 * 1024


class BadInputTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        cls.limited_port = P.free_port()
        cls.idle_port = P.free_port()
        vh = [P.virtual_host("all", [P.route("/", "backend")])]
        # 413 the Envoy way: Envoy streams bodies, and answers 413 only when a filter that must buffer the whole
        # request exceeds its limit. The buffer filter's max_request_bytes is that limit (without it, Envoy has no
        # request-size cap; per_connection_buffer_limit_bytes only sizes flow-control watermarks).
        buffer_filter = [{"name": "envoy.filters.http.buffer",
                          "typed_config": {"@type": P.BUFFER_TYPE, "max_request_bytes": BUFFER_LIMIT}}]
        cfg = P.bootstrap(
            [P.listener("bad_input", cls.port, P.hcm(vh, stat_prefix="bad_input", request_headers_timeout="1s")),
             P.listener("limited", cls.limited_port, P.hcm(vh, stat_prefix="limited", http_filters=buffer_filter)),
             P.listener("idle", cls.idle_port, P.hcm(vh, stat_prefix="idle",
                                                     common_http_protocol_options={"idle_timeout": "1s"}))],
            [P.static_cluster("backend", [("127.0.0.1", cls.up.port)])],
            P.free_port())
        cls.proxy = cls.start_proxy(cfg)

    def setUp(self):
        self.upstream_before = self.up.count

    def assert_rejected(self, data, status=400, port=None):
        """Sends one bad request on a fresh connection: expects `status`, a close, and no upstream request."""
        with rawhttp.RawConnection(port or self.port, timeout=5) as c:
            c.send(data)
            closed = c.wait_closed(5)
            raw = bytes(c.buf)
        self.assertEqual(rawhttp.status_of(raw), status, "response to %r was %r" % (data[:120], raw[:300]))
        self.assertTrue(closed, "the connection must be closed after a %d" % status)
        self.assertEqual(self.up.count, self.upstream_before, "a rejected request reached the upstream")
        self.assert_still_serving(port or self.port)

    def assert_still_serving(self, port):
        r = P.get(port, "/echo/good")
        self.assertEqual(r.status, 200)
        self.upstream_before = self.up.count

    # -- framing and syntax -------------------------------------------------------------------------------------

    def test_malformed_request_line(self):
        self.assert_rejected(b"GET  /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assert_rejected(b"G(T /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assert_rejected(b"GET /echo HTTP/1.1 extra\r\nHost: a\r\n\r\n")

    def test_headers_over_60k_are_431(self):
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (61 * 1024) + b"\r\n\r\n", 431)
        # 90 fields (under the 100-field limit) of 700 bytes: the block alone is over 60 KiB
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 700) for i in range(90))
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n", 431)

    def test_too_many_headers_are_431(self):
        # common_http_protocol_options.max_headers_count defaults to 100
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(120))
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n", 431)

    def test_content_length_with_transfer_encoding(self):
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

    def test_differing_content_lengths(self):
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd")

    def test_bad_content_length_value(self):
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc")
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\nabc")

    def test_invalid_chunk_size(self):
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n")

    def test_obs_fold(self):
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n  folded\r\n\r\n")

    def test_bare_lf(self):
        self.assert_rejected(b"GET /echo HTTP/1.1\nHost: a\n\n")
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\nX-Foo: b\r\n\r\n")

    def test_bare_cr(self):
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\rb\r\n\r\n")

    def test_space_before_colon(self):
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo : b\r\n\r\n")

    def test_nul_in_header_value(self):
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\x00b\r\n\r\n")

    def test_missing_host(self):
        self.assert_rejected(b"GET /echo HTTP/1.1\r\nX-Foo: b\r\n\r\n")

    def test_smuggling_attempts_never_reach_upstream(self):
        smuggled = b"GET /echo/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        attempts = [
            # CL.TE: a front end that honours Content-Length would forward the second request inside the body
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s"
            % (5 + len(smuggled), smuggled),
            # TE.CL with an obfuscated coding
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled,
            # chunked not the final coding
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled,
            # header name with whitespace before the colon hides Transfer-Encoding from a lenient parser
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"
            + smuggled,
        ]
        for data in attempts:
            with rawhttp.RawConnection(self.port, timeout=5) as c:
                c.send(data)
                self.assertTrue(c.wait_closed(5), "connection kept open after %r" % data[:80])
                status = rawhttp.status_of(bytes(c.buf))
                self.assertIn(status, (400, 501), "answer to %r: %r" % (data[:80], bytes(c.buf[:200])))
        paths = [p for _, p, _ in self.up.requests()]
        self.assertNotIn("/echo/smuggled", paths)
        self.assertEqual(self.up.count, self.upstream_before)

    # -- limits and timeouts ------------------------------------------------------------------------------------

    def test_body_over_buffer_limit_is_413(self):
        body = b"x" * (BUFFER_LIMIT + 1024)
        with rawhttp.RawConnection(self.limited_port, timeout=10) as c:
            c.send(rawhttp.request_bytes("POST", "/echo/too-big", body=body))
            r = c.read_response()
        self.assertEqual(r.status, 413)
        self.assertEqual(self.up.count_path("/echo/too-big"), 0)
        # chunked: the size is only known while buffering
        chunked = b"".join(b"%x\r\n%s\r\n" % (8192, b"y" * 8192) for _ in range(BUFFER_LIMIT // 8192 + 2))
        with rawhttp.RawConnection(self.limited_port, timeout=10) as c:
            c.send(rawhttp.request_bytes("POST", "/echo/too-big-chunked", headers=[("Transfer-Encoding", "chunked")],
                                         content_length=False) + chunked + b"0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 413)
        self.assertEqual(self.up.count_path("/echo/too-big-chunked"), 0)
        # under the limit still passes, whole
        r = P.http_request(self.limited_port, "POST", "/echo/fits", body=b"z" * (BUFFER_LIMIT - 1024))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_length"], BUFFER_LIMIT - 1024)

    def test_request_headers_timeout(self):
        with rawhttp.RawConnection(self.port, timeout=10) as c:
            t0 = time.monotonic()
            c.send(b"GET /echo/slow HTTP/1.1\r\nHost: a\r\n")  # the header block never ends
            closed = c.wait_closed(4)
            elapsed = time.monotonic() - t0
            raw = bytes(c.buf)
        self.assertTrue(closed, "a stalled header block must be cut off by request_headers_timeout")
        self.assertGreater(elapsed, 0.8, "closed before the 1 s request_headers_timeout")
        self.assertLess(elapsed, 3.5)
        if raw:
            self.assertEqual(rawhttp.status_of(raw), 408, raw[:200])
        self.assertEqual(self.up.count_path("/echo/slow"), 0)
        self.assert_still_serving(self.port)

    def test_idle_timeout_closes_idle_connection(self):
        before = self.proxy.stat("http.idle.downstream_cx_idle_timeout")
        with rawhttp.RawConnection(self.idle_port, timeout=10) as c:
            c.send(rawhttp.request_bytes("GET", "/echo/idle"))
            self.assertEqual(c.read_response().status, 200)
            t0 = time.monotonic()
            self.assertFalse(c.wait_closed(0.5), "closed long before idle_timeout")
            self.assertTrue(c.wait_closed(3.0), "idle connection not closed after idle_timeout")
            elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 0.8)
        self.assertEqual(self.proxy.wait_stat("http.idle.downstream_cx_idle_timeout", lambda v: v > before), before + 1)

    # Runs last (unittest sorts by name): every connection opened above must be gone.
    def test_zz_no_leaked_downstream_connections(self):
        for prefix in ("bad_input", "limited", "idle"):
            v = self.proxy.wait_stat("http.%s.downstream_cx_active" % prefix, lambda v: v == 0, timeout=5)
            self.assertEqual(v, 0, "http.%s.downstream_cx_active" % prefix)
        self.assertGreater(self.proxy.stat("http.bad_input.downstream_cx_protocol_error"), 0)


if __name__ == "__main__":
    unittest.main()
