"""Raw HTTP/1.1 over a socket: send exact bytes, read and parse whole responses, with timeouts everywhere.

Used for bad-input tests (bytes no well-behaved client library would send), pipelining, 100-continue and for
checking whether the proxy closed a connection.
"""

import socket
import time


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.header_list = headers  # [(lower-cased name, value)] in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        vals = [v for k, v in self.header_list if k == name]
        return ",".join(vals) if vals else default

    def headers_named(self, name):
        return [v for k, v in self.header_list if k == name.lower()]

    def __repr__(self):
        return "Response(%d %s, %d body bytes)" % (self.status, self.reason, len(self.body))


class IncompleteResponse(Exception):
    pass


def _parse_head(head):
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("bad status line %r" % lines[0])
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip().lower(), v.strip()))
    return parts[0], status, reason, headers


def parse_response(buf, head_request=False, allow_eof_body=True, at_eof=False):
    """Parses one response from the start of `buf`.

    Returns (Response, bytes consumed), or raises IncompleteResponse when more bytes are needed. 1xx interim
    responses are returned as responses of their own.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        raise IncompleteResponse()
    head = buf[:end]
    version, status, reason, headers = _parse_head(head)
    pos = end + 4
    hmap = {}
    for k, v in headers:
        hmap.setdefault(k, v)
    if head_request or 100 <= status < 200 or status in (204, 304):
        return Response(version, status, reason, headers, b"", head), pos
    te = hmap.get("transfer-encoding", "").lower()
    if "chunked" in te:
        body = bytearray()
        while True:
            le = buf.find(b"\r\n", pos)
            if le < 0:
                raise IncompleteResponse()
            size = int(buf[pos:le].split(b";", 1)[0].strip(), 16)
            pos = le + 2
            if size == 0:
                # trailers
                while True:
                    le = buf.find(b"\r\n", pos)
                    if le < 0:
                        raise IncompleteResponse()
                    line = buf[pos:le]
                    pos = le + 2
                    if not line:
                        return Response(version, status, reason, headers, bytes(body), head), pos
            if len(buf) < pos + size + 2:
                raise IncompleteResponse()
            body += buf[pos:pos + size]
            pos += size + 2
    if "content-length" in hmap:
        n = int(hmap["content-length"])
        if len(buf) < pos + n:
            raise IncompleteResponse()
        return Response(version, status, reason, headers, bytes(buf[pos:pos + n]), head), pos + n
    if not allow_eof_body:
        return Response(version, status, reason, headers, b"", head), pos
    if not at_eof:
        raise IncompleteResponse()
    return Response(version, status, reason, headers, bytes(buf[pos:]), head), len(buf)


class RawConnection:
    """A client connection that sends exact bytes and reads responses with deadlines."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        else:
            self.buf += data

    def read_response(self, timeout=None, head_request=False):
        """Reads one response (1xx included). Raises socket.timeout, or EOFError if the peer closed first."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                resp, used = parse_response(bytes(self.buf), head_request=head_request, at_eof=self.eof)
                del self.buf[:used]
                return resp
            except IncompleteResponse:
                if self.eof:
                    raise EOFError("connection closed with %d unparsed bytes: %r" % (len(self.buf), bytes(self.buf[:200])))
                self._fill(deadline)

    def read_final_response(self, timeout=None, head_request=False):
        """Reads responses until a non-1xx one; returns (final, [interim...])."""
        interim = []
        while True:
            r = self.read_response(timeout, head_request)
            if r.status >= 200:
                return r, interim
            interim.append(r)

    def wait_closed(self, timeout):
        """True if the peer closes (EOF or reset) within `timeout`; bytes read meanwhile stay in self.buf."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except socket.timeout:
                return False
            except OSError:
                return True
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def exchange(port, data, timeout=5.0):
    """Sends `data`, reads until the peer closes or `timeout` passes; returns everything read."""
    with RawConnection(port, timeout=timeout) as c:
        c.send(data)
        c.wait_closed(timeout)
        return bytes(c.buf)


def request_bytes(method, path, host="example.com", headers=(), body=b"", content_length=True):
    """Builds a well-formed request; `headers` is a list of (name, value)."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body and content_length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def status_of(raw):
    """The status code at the start of raw response bytes, or None when there is no status line."""
    if not raw.startswith(b"HTTP/1."):
        return None
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None
