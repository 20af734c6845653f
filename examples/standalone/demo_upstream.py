#!/usr/bin/env python3
"""A tiny demo upstream for examples/standalone: answers every request with its name and the request path.

    python3 demo_upstream.py --port 18081 --name api_service

Listens on 127.0.0.1 (and on ::1 too when the machine has IPv6 loopback, since the example's clusters resolve
`localhost`, which may give either address). Standard library only.
"""

import argparse
import http.server
import json
import signal
import socket
import socketserver
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sheave-demo-upstream"
    sys_version = ""

    def do_GET(self):
        length = int(self.headers.get("Content-Length", "0") or "0")
        if length:
            self.rfile.read(length)
        body = (json.dumps({"upstream": self.server.name, "path": self.path, "method": self.command}) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(family, address, port, name):
    Server.address_family = family
    srv = Server((address, port), Handler)
    srv.name = name
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    ap = argparse.ArgumentParser(description="demo upstream for examples/standalone")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    try:
        servers = [serve(socket.AF_INET, "127.0.0.1", args.port, args.name)]
    except OSError as e:
        sys.exit("demo_upstream: cannot listen on 127.0.0.1:%d: %s" % (args.port, e))
    try:
        servers.append(serve(socket.AF_INET6, "::1", args.port, args.name))
    except OSError:
        pass  # no IPv6 loopback: IPv4 is enough
    print("demo_upstream %s listening on port %d" % (args.name, args.port), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    for s in servers:
        s.shutdown()


if __name__ == "__main__":
    main()
