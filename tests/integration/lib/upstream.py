#!/usr/bin/env python3
"""Test upstreams for the integration tests: an HTTP/1.1 server and a TCP echo server.

One HTTP server answers every test; what it does is chosen by the request path:

  /echo...                  200, JSON: method, path, headers, body length and sha256, server name
  /status/<code>            that status code (a short text body unless the code forbids one);
                            ?delay_ms=N answers after N milliseconds
  /delay/<ms>               waits <ms> milliseconds, then 200 "delayed"
  /bytes/<n>                n bytes of a fixed pattern (pattern_bytes(n)); ?chunked=1 sends it chunked
  /reset                    reads the request, then resets the connection (SO_LINGER 0) without answering
  /close                    answers 200 with "Connection: close", then closes
  /fail-first/<n>/<key>     the first n requests for <key> get 503, later ones 200
  /__count                  JSON {"total": N, "paths": {...}} (not itself counted)
  /health                   the health status set with /__health/<code> (default 200)

Any path accepts ?set_header=name:value (repeatable) to add response headers.

Run in-process (UpstreamServer(...).start()) or as a subprocess:
  python3 upstream.py --port 0 --name X [--keepalive-timeout S]      (prints "PORT <n>" then serves)
  python3 upstream.py --tcp-echo --port 0                            (TCP echo server)
"""

import argparse
import hashlib
import http.server
import json
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

_PATTERN_BLOCK = bytes((i * 7 + 13) % 256 for i in range(4096))


def pattern_bytes(n, offset=0):
    """The deterministic body /bytes/<n> sends: tests regenerate it to compare byte for byte."""
    out = bytearray()
    pos = offset
    while len(out) < n:
        start = pos % len(_PATTERN_BLOCK)
        take = min(len(_PATTERN_BLOCK) - start, n - len(out))
        out += _PATTERN_BLOCK[start:start + take]
        pos += take
    return bytes(out)


class _State:
    """Shared by every listening socket of one logical upstream (IPv4 and IPv6 loopback)."""

    def __init__(self, name, keepalive_timeout):
        self.name = name
        self.keepalive_timeout = keepalive_timeout
        self.lock = threading.Lock()
        self.total = 0
        self.paths = {}
        self.fail_counts = {}
        self.requests = []  # (method, path, headers as list of (name, value)) for every counted request
        self.connections = 0
        self.in_flight = 0
        self.health_code = 200
        self.in_flight_retries = 0
        self.max_in_flight_retries = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sheave-test-upstream"
    sys_version = ""

    def setup(self):
        # BaseHTTPRequestHandler applies `timeout` to the socket: an idle keep-alive connection then times out in
        # readline() and the handler closes it, which is exactly the upstream idle close the race test needs.
        self.timeout = self.server.state.keepalive_timeout
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    def log_message(self, fmt, *args):
        pass

    # Every method goes through the same dispatcher.
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            body = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers until the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, code, body=b"", ctype="text/plain", extra=None, chunked=False, close=False):
        self.send_response(code)
        for k, v in extra or []:
            self.send_header(k, v)
        self.send_header("x-upstream-name", self.server.state.name)
        if ctype and code not in (204, 304):
            self.send_header("Content-Type", ctype)
        no_body = code in (204, 304) or 100 <= code < 200
        if chunked and not no_body:
            self.send_header("Transfer-Encoding", "chunked")
        elif not no_body:
            self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD" or no_body:
            return
        if chunked:
            piece = 16384
            for i in range(0, len(body), piece):
                part = body[i:i + piece]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    def _dispatch(self):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query)
        extra = []
        for hv in query.get("set_header", []):
            k, _, v = hv.partition(":")
            extra.append((k, v))
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        if path.startswith("/__health/"):
            with state.lock:
                state.health_code = int(path.split("/")[2])
            self._send(200, b"ok")
            return
        if path == "/__count":
            with state.lock:
                data = json.dumps({"total": state.total, "paths": dict(state.paths)}).encode()
            self._send(200, data, "application/json")
            return
        with state.lock:
            state.total += 1
            state.paths[path] = state.paths.get(path, 0) + 1
            state.requests.append((self.command, self.path, [(k.lower(), v) for k, v in self.headers.items()]))
        # Requests in flight, and how many of them are retries (x-envoy-attempt-count > 1).
        attempt = self.headers.get("x-envoy-attempt-count", "1")
        retry = attempt.isdigit() and int(attempt) > 1
        with state.lock:
            state.in_flight += 1
            state.in_flight_retries += retry
            state.max_in_flight_retries = max(state.max_in_flight_retries, state.in_flight_retries)
        try:
            self._respond(state, path, query, body, extra)
        finally:
            with state.lock:
                state.in_flight -= 1
                state.in_flight_retries -= retry

    def _respond(self, state, path, query, body, extra):
        if path.startswith("/echo"):
            hdrs = {}
            for k, v in self.headers.items():
                k = k.lower()
                hdrs[k] = hdrs[k] + "," + v if k in hdrs else v
            doc = {
                "method": self.command,
                "path": self.path,
                "headers": hdrs,
                "header_list": [[k.lower(), v] for k, v in self.headers.items()],
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "server": state.name,
            }
            self._send(200, json.dumps(doc).encode(), "application/json", extra)
        elif path == "/health":
            with state.lock:
                code = state.health_code
            self._send(code, b"health %d" % code)
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            delay_ms = int(query.get("delay_ms", ["0"])[0])
            if delay_ms > 0:
                time.sleep(delay_ms / 1000.0)
            self._send(code, b"status %d from %s" % (code, state.name.encode()), "text/plain", extra)
        elif path.startswith("/delay/"):
            time.sleep(int(path.split("/")[2]) / 1000.0)
            self._send(200, b"delayed", "text/plain", extra)
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            chunked = query.get("chunked", ["0"])[0] == "1"
            self._send(200, pattern_bytes(n), "application/octet-stream", extra, chunked=chunked)
        elif path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif path == "/close":
            self._send(200, b"closing", "text/plain", extra, close=True)
        elif path.startswith("/fail-first/"):
            parts = path.split("/")
            n, key = int(parts[2]), parts[3] if len(parts) > 3 else ""
            with state.lock:
                seen = state.fail_counts.get(key, 0)
                state.fail_counts[key] = seen + 1
            if seen < n:
                self._send(503, b"failing %d of %d" % (seen + 1, n), "text/plain", extra)
            else:
                self._send(200, b"ok after %d" % n, "text/plain", extra)
        else:
            self._send(200, b"hello from " + state.name.encode(), "text/plain", extra)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, OSError):
            self.close_connection = True


class _HttpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, addr, family, state):
        self.address_family = family
        self.state = state
        super().__init__(addr, _Handler)

    def handle_error(self, request, client_address):
        pass


class UpstreamServer:
    """An HTTP/1.1 test upstream on 127.0.0.1 (and ::1 on the same port when `also_ipv6`)."""

    def __init__(self, port=0, name="upstream", keepalive_timeout=None, also_ipv6=False):
        self.state = _State(name, keepalive_timeout)
        self._servers = []
        self._threads = []
        self._want_port = port
        self._also_ipv6 = also_ipv6
        self.port = None

    @property
    def name(self):
        return self.state.name

    def start(self):
        for attempt in range(20):
            v4 = _HttpServer(("127.0.0.1", self._want_port), socket.AF_INET, self.state)
            port = v4.server_address[1]
            servers = [v4]
            if self._also_ipv6:
                try:
                    servers.append(_HttpServer(("::1", port), socket.AF_INET6, self.state))
                except OSError:
                    if self._want_port == 0 and attempt < 19:
                        v4.server_close()
                        continue  # that port is taken on ::1; pick another
                    # no IPv6 loopback here: IPv4 alone is fine
            self._servers = servers
            self.port = port
            break
        for s in self._servers:
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._servers = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Accessors for tests.
    @property
    def count(self):
        with self.state.lock:
            return self.state.total

    def count_path(self, path):
        with self.state.lock:
            return self.state.paths.get(path, 0)

    @property
    def connections(self):
        with self.state.lock:
            return self.state.connections

    @property
    def max_in_flight_retries(self):
        """The most requests with x-envoy-attempt-count > 1 ever served at once."""
        with self.state.lock:
            return self.state.max_in_flight_retries

    def requests(self):
        with self.state.lock:
            return list(self.state.requests)

    def reset_counts(self):
        with self.state.lock:
            self.state.total = 0
            self.state.paths.clear()
            self.state.fail_counts.clear()
            self.state.requests.clear()
            self.state.connections = 0
            self.state.max_in_flight_retries = 0


class TcpEchoServer:
    """Echoes bytes back; on the client's half-close it finishes echoing, half-closes too, then closes.

    Records per connection: bytes received and whether EOF was seen (so tests can check half-close propagation).
    """

    def __init__(self, port=0):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self.lock = threading.Lock()
        self.sessions = []  # dicts: {"received": int, "eof": bool}
        self._stop = False

    def start(self):
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def _accept_loop(self):
        self._sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        rec = {"received": 0, "eof": False}
        with self.lock:
            self.sessions.append(rec)
        conn.settimeout(30)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    with self.lock:
                        rec["eof"] = True
                    conn.shutdown(socket.SHUT_WR)
                    break
                with self.lock:
                    rec["received"] += len(data)
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop = True
        self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="upstream")
    ap.add_argument("--keepalive-timeout", type=float, default=None)
    ap.add_argument("--ipv6", action="store_true", help="also listen on ::1 (same port)")
    ap.add_argument("--tcp-echo", action="store_true")
    args = ap.parse_args()
    if args.tcp_echo:
        srv = TcpEchoServer(args.port).start()
    else:
        srv = UpstreamServer(args.port, args.name, args.keepalive_timeout, also_ipv6=args.ipv6).start()
    print("PORT %d" % srv.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    srv.stop()


if __name__ == "__main__":
    main()
