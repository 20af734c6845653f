"""HTTP/2 downstream: h2c with prior knowledge and ALPN h2 over TLS into the same filter chain and router, to HTTP/1.1
upstreams. Real peers (curl, nghttp, h2load) and a small hand-written HTTP/2 client for what they cannot do (reset a
stream mid-response, floods, malformed requests, a reader that controls its window).

Certificates are made at test time (test_tls.make_certs), never committed.
"""

import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import test_tls as tlslib
from lib import proxy as P
from lib import upstream as U
from lib.base import ProxyTestCase

LOG_FORMAT = ("H2 proto=%PROTOCOL% code=%RESPONSE_CODE% flags=%RESPONSE_FLAGS% details=%RESPONSE_CODE_DETAILS% "
              "path=%REQ(:PATH)% sent=%BYTES_SENT%\n")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def have(tool):
    return shutil.which(tool) is not None


# -- a minimal HTTP/2 client ------------------------------------------------------------------------------------------


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


def hpack_int(value, prefix_bits, first_byte=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(path, authority="example.com", method="GET", extra=()):
    fields = [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)] + list(extra)
    return b"".join(hpack_literal(n, v) for n, v in fields)


class H2Client:
    """Speaks just enough HTTP/2 to drive the proxy frame by frame. Window updates are the caller's business."""

    def __init__(self, port, settings=b"", timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, settings))

    def send(self, data):
        self.sock.sendall(data)

    def request(self, stream_id, path, end_stream=True, **kw):
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, stream_id, request_block(path, **kw)))

    def read_frame(self):
        """(type, flags, stream id, payload), or None when the connection is closed."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            try:
                chunk = self.sock.recv(65536)
            except (OSError, socket.timeout):
                return None
            if not chunk:
                return None
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF, self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        if f[0] == SETTINGS and not f[1] & ACK:
            try:
                self.send(frame(SETTINGS, ACK, 0))
            except OSError:
                pass
        return f

    def read_until(self, predicate, deadline=5.0):
        end = time.time() + deadline
        seen = []
        while time.time() < end:
            f = self.read_frame()
            if f is None:
                return None, seen
            seen.append(f)
            if predicate(f):
                return f, seen
        return None, seen

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# -- an HTTP/1.1 upstream that ends a chunked response with trailers --------------------------------------------------


class TrailersUpstream:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n"
                         b"connection: close\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc123\r\nx-status: 0\r\n\r\n")

    def stop(self):
        self.stopped = True
        self.sock.close()


@unittest.skipUnless(have("curl") and have("nghttp") and have("h2load") and have("openssl"),
                     "needs curl, nghttp2-client and openssl")
class Http2Test(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sheave-h2-")
        cls.certs = tlslib.make_certs(cls.tmp)
        cls.upstream = cls.start_upstream("h2up")
        cls.trailers = TrailersUpstream()
        cls._upstreams.append(cls.trailers)
        cls.port, cls.tls_port = P.free_port(), P.free_port()
        routes = [P.route(p, "backend") for p in ("/echo", "/bytes", "/status", "/delay")]
        routes += [P.route("/trailers", "trailers"), P.route("/dead", "dead")]
        log = [P.stdout_access_log(LOG_FORMAT)]
        h2opts = {"max_concurrent_streams": 64, "initial_stream_window_size": 262144,
                  "initial_connection_window_size": 1048576}
        plain = P.listener("h2c", cls.port, P.hcm([P.virtual_host("all", routes)], stat_prefix="h2c",
                                                  access_log=log, http2_protocol_options=h2opts))
        tls = P.listener("h2tls", cls.tls_port, P.hcm([P.virtual_host("all", routes)], stat_prefix="h2tls",
                                                      access_log=log))
        tls["filter_chains"][0]["transport_socket"] = tlslib.tls_socket({
            "@type": tlslib.DOWNSTREAM_TLS,
            "common_tls_context": {"tls_certificates": [tlslib.cert_files(cls.certs, "server")],
                                   "alpn_protocols": ["h2", "http/1.1"]}})
        dead_port = P.free_port()
        cfg = P.bootstrap([plain, tls],
                          [P.static_cluster("backend", [("127.0.0.1", cls.upstream.port)]),
                           P.static_cluster("trailers", [("127.0.0.1", cls.trailers.port)]),
                           P.static_cluster("dead", [("127.0.0.1", dead_port)])],
                          P.free_port())
        cls.proxy = cls.start_proxy(cfg)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    def curl(self, path, *extra, url=None, out="-"):
        url = url or "http://127.0.0.1:%d%s" % (self.port, path)
        cmd = ["curl", "-sS", "--max-time", "20", "-o", out, "-w", "\n%{http_version} %{http_code}"] + list(extra)
        p = subprocess.run(cmd + [url], capture_output=True, timeout=30)
        out = p.stdout.decode(errors="replace")
        body, _, tail = out.rpartition("\n")
        version, _, code = tail.partition(" ")
        return p.returncode, version, int(code) if code.isdigit() else None, body, p.stderr.decode(errors="replace")

    def log_line(self, predicate):
        line = self.proxy.wait_for_log(lambda l: l.startswith("H2 ") and predicate(l))
        self.assertIsNotNone(line, self.proxy.stdout()[-3000:])
        return line

    # -- h2c --------------------------------------------------------------------------------------------------------

    def test_prior_knowledge_request_reaches_http1_upstream(self):
        before = self.proxy.stat("http.h2c.downstream_rq_http2_total")
        rc, version, code, body, err = self.curl("/echo/pk", "--http2-prior-knowledge", "-H", "cookie: a=1",
                                                 "-H", "cookie: b=2")
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        echo = json.loads(body)
        headers = echo["headers"]
        self.assertEqual(headers["host"], "127.0.0.1:%d" % self.port)  # :authority became Host
        self.assertEqual(headers["cookie"], "a=1; b=2")  # crumbs joined for HTTP/1.1
        self.assertNotIn("transfer-encoding", headers)
        self.log_line(lambda l: "path=/echo/pk" in l and "proto=HTTP/2" in l and "code=200" in l)
        self.assertGreater(self.proxy.stat("http.h2c.downstream_rq_http2_total"), before)
        self.assertGreaterEqual(self.proxy.stat("http.h2c.downstream_cx_http2_total"), 1)

    def test_http1_still_served_on_auto_listener(self):
        rc, version, code, body, err = self.curl("/echo/h1", "--http1.1")
        self.assertEqual((rc, version, code), (0, "1.1", 200), err)
        self.log_line(lambda l: "path=/echo/h1" in l and "proto=HTTP/1.1" in l)

    def test_upload_and_download_bodies(self):
        payload = os.urandom(3 * 1024 * 1024 + 17)
        path = os.path.join(self.tmp, "upload.bin")
        with open(path, "wb") as f:
            f.write(payload)
        rc, version, code, body, err = self.curl("/echo/upload", "--http2-prior-knowledge", "--data-binary",
                                                 "@" + path)
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        self.assertEqual(json.loads(body)["body_sha256"], hashlib.sha256(payload).hexdigest())
        out = os.path.join(self.tmp, "download.bin")
        rc, version, code, _, err = self.curl("/bytes/5000000", "--http2-prior-knowledge", out=out)
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), U.pattern_bytes(5000000))

    def test_nghttp_concurrent_streams(self):
        urls = ["http://127.0.0.1:%d/bytes/%d?n=%d" % (self.port, 200000 + i, i) for i in range(12)]
        p = subprocess.run(["nghttp", "-n", "-s", "-t", "20"] + urls, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        for i in range(12):
            self.log_line(lambda l, i=i: ("path=/bytes/%d?n=%d " % (200000 + i, i)) in l and "code=200" in l
                          and ("sent=%d" % (200000 + i)) in l)
        # A large upload through nghttp (it sends DATA as the proxy's window allows).
        payload = os.urandom(2 * 1024 * 1024)
        path = os.path.join(self.tmp, "nghttp-up.bin")
        with open(path, "wb") as f:
            f.write(payload)
        p = subprocess.run(["nghttp", "-t", "20", "-d", path, "http://127.0.0.1:%d/echo/nghttp" % self.port],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertEqual(json.loads(p.stdout)["body_sha256"], hashlib.sha256(payload).hexdigest())

    def test_h2load_bounded_run(self):
        p = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10",
                            "http://127.0.0.1:%d/bytes/1024" % self.port], capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("2000 succeeded, 0 failed, 0 errored", out)
        self.assertIn("status codes: 2000 2xx", out)

    def test_trailers_pass_through(self):
        p = subprocess.run(["nghttp", "-v", "-t", "10", "http://127.0.0.1:%d/trailers" % self.port],
                           capture_output=True, timeout=20)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("hello", out)
        self.assertIn("x-checksum: abc123", out)
        self.assertIn("x-status: 0", out)
        self.assertNotIn("transfer-encoding", out.lower())

    def test_local_replies_on_h2_streams(self):
        rc, version, code, _, err = self.curl("/nowhere", "--http2-prior-knowledge")
        self.assertEqual((rc, version, code), (0, "2", 404), err)
        self.log_line(lambda l: "path=/nowhere" in l and "flags=NR" in l and "proto=HTTP/2" in l)
        rc, version, code, body, err = self.curl("/dead", "--http2-prior-knowledge")
        self.assertEqual((rc, version, code), (0, "2", 503), err)
        self.assertIn("upstream connect error", body)
        self.log_line(lambda l: "path=/dead" in l and "flags=UF" in l)

    # -- TLS + ALPN -------------------------------------------------------------------------------------------------

    def test_alpn_h2_over_tls(self):
        url = "https://localhost:%d/echo/tls" % self.tls_port
        common = ["--cacert", self.certs["ca.crt"], "--resolve", "localhost:%d:127.0.0.1" % self.tls_port]
        rc, version, code, body, err = self.curl(None, "--http2", *common, url=url)
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        self.log_line(lambda l: "path=/echo/tls" in l and "proto=HTTP/2" in l)
        rc, version, code, body, err = self.curl(None, "--http1.1", *common, url=url + "1")
        self.assertEqual((rc, version, code), (0, "1.1", 200), err)
        self.log_line(lambda l: "path=/echo/tls1" in l and "proto=HTTP/1.1" in l)
        self.assertGreaterEqual(self.proxy.stat("http.h2tls.downstream_cx_http2_total"), 1)

    # -- the hand-written client ------------------------------------------------------------------------------------

    def test_rst_stream_mid_response_cancels_upstream(self):
        destroyed = self.proxy.stat("cluster.backend.upstream_cx_destroy_local")
        c = H2Client(self.port)  # default 64 KiB windows, never opened: the response stalls
        try:
            c.request(1, "/bytes/8000000?rst=1")
            f, _ = c.read_until(lambda f: f[0] == DATA and f[2] == 1)
            self.assertIsNotNone(f)
            c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 0x8)))  # CANCEL
            line = self.log_line(lambda l: "rst=1" in l)
            self.assertIn("flags=DR", line)
            # The connection lives on: another stream gets its answer.
            c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)))
            c.request(3, "/status/204")
            f, seen = c.read_until(lambda f: f[0] == HEADERS and f[2] == 3)
            self.assertIsNotNone(f, seen)
            self.assertEqual(f[3][:1], b"\x89")  # :status 204, static table index 9
        finally:
            c.close()
        # The upstream request was cancelled: its connection (mid-response, so not reusable) was closed.
        self.assertTrue(P.wait_until(
            lambda: self.proxy.stat("cluster.backend.upstream_cx_destroy_local") > destroyed, 5))

    def test_invalid_pseudo_header_ends_connection_with_protocol_error(self):
        before = self.proxy.stat("http2.rx_messaging_error")
        c = H2Client(self.port)
        try:
            c.request(1, "/echo", extra=[(":bogus", "1")])
            f, seen = c.read_until(lambda f: f[0] == GOAWAY or (f[0] == RST_STREAM and f[2] == 1))
            self.assertIsNotNone(f, seen)
            code = struct.unpack(">I", f[3][4:8] if f[0] == GOAWAY else f[3][:4])[0]
            self.assertEqual(code, 0x1)  # PROTOCOL_ERROR
        finally:
            c.close()
        self.assertTrue(P.wait_until(lambda: self.proxy.stat("http2.rx_messaging_error") > before, 5))

    def test_ping_flood_gets_goaway_and_close(self):
        before = self.proxy.stat("http2.outbound_control_flood")
        c = H2Client(self.port)
        try:
            ping = frame(PING, 0, 0, b"12345678")
            burst = ping * 1000
            try:
                for _ in range(100):  # 100k PINGs, never reading the acks
                    c.send(burst)
            except OSError:
                pass  # closed under us: expected
            try:
                f, seen = c.read_until(lambda f: f[0] == GOAWAY, deadline=10)
            except OSError:
                f = None  # reset before the GOAWAY could be read: the counter below still tells
            if f is not None:
                self.assertEqual(struct.unpack(">I", f[3][4:8])[0], 0xB)  # ENHANCE_YOUR_CALM
        finally:
            c.close()
        self.assertTrue(P.wait_until(lambda: self.proxy.stat("http2.outbound_control_flood") > before, 5))
        # The proxy is fine.
        rc, version, code, _, err = self.curl("/status/200", "--http2-prior-knowledge")
        self.assertEqual((rc, code), (0, 200), err)

    def test_slow_reader_download_keeps_memory_bounded(self):
        size = 10 * 1024 * 1024
        pid = self.proxy.proc.pid
        baseline = rss_kib(pid)
        c = H2Client(self.port, timeout=10)
        got = bytearray()
        peak = baseline
        try:
            c.request(1, "/bytes/%d?slow=1" % size)
            deadline = time.time() + 60
            while len(got) < size and time.time() < deadline:
                f = c.read_frame()
                self.assertIsNotNone(f, "connection closed after %d bytes" % len(got))
                if f[0] == DATA and f[2] == 1:
                    got += f[3]
                    if f[3]:
                        # Give back exactly what was read, a little at a time: the proxy must not run ahead.
                        inc = struct.pack(">I", len(f[3]))
                        c.send(frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, 1, inc))
                    if len(got) % (512 * 1024) < len(f[3]):
                        peak = max(peak, rss_kib(pid))
                        time.sleep(0.02)
                    if f[1] & END_STREAM:
                        break
        finally:
            c.close()
        self.assertEqual(len(got), size)
        self.assertEqual(bytes(got), U.pattern_bytes(size))
        self.assertLess(peak - baseline, 8 * 1024, "proxy RSS grew %d KiB" % (peak - baseline))

    def test_drain_sends_goaway(self):
        port = P.free_port()
        cfg = P.bootstrap([P.listener("d", port, P.hcm([P.virtual_host("all", [P.route("/", "backend")])],
                                                       stat_prefix="drain", drain_timeout="0.2s"))],
                          [P.static_cluster("backend", [("127.0.0.1", self.upstream.port)])], P.free_port())
        proxy = self.new_proxy(cfg, drain_time_s=3)
        proxy.start()
        c = H2Client(port)
        try:
            c.request(1, "/status/200")
            f, seen = c.read_until(lambda f: f[0] == HEADERS and f[2] == 1)
            self.assertIsNotNone(f, seen)
            proxy.signal(15)
            goaways = []
            while True:
                f, _ = c.read_until(lambda f: f[0] == GOAWAY, deadline=5)
                if f is None:
                    break
                goaways.append(struct.unpack(">II", f[3][:8]))
            self.assertTrue(goaways, "no GOAWAY on drain")
            self.assertEqual(goaways[0], (0x7FFFFFFF, 0))  # the shutdown notice
            self.assertEqual(goaways[-1], (1, 0))  # the real one: stream 1 was the last processed
        finally:
            c.close()
        self.assertEqual(proxy.wait_exit(10), 0)


if __name__ == "__main__":
    unittest.main()
