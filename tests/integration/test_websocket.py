"""WebSocket and other HTTP/1.1 upgrades, and CONNECT, through sheave-proxy (Envoy's HTTP upgrades).

Envoy facts relied on: HttpConnectionManager.upgrade_configs lists the upgrade types (case-insensitive, the
request's Upgrade value; "CONNECT" for CONNECT) the manager proxies, each enabled unless `enabled: false`. A route's
RouteAction.upgrade_configs entry for the type overrides it either way (HCM T/route F: refused; HCM F or absent /
route T: allowed). A refused upgrade gets 403 with response code details "upgrade_failed" and counts
downstream_rq_ws_on_non_ws_route. An accepted upgrade goes upstream with its Upgrade and Connection: upgrade fields;
after the upstream's 101 both directions are raw bytes until either side closes. Upgrades are counted by
downstream_cx_upgrades_total and the gauge downstream_cx_upgrades_active. A CONNECT request is proxied to the
upstream as CONNECT; a 2xx answer opens the tunnel.

Real peers: the WebSocket client and server are python3-websockets (RFC 6455 handshake, framing, close codes).
"""

import asyncio
import http.client
import os
import socket
import tempfile
import threading
import unittest

import websockets
import websockets.exceptions

from lib import proxy as P
from lib import xds
from lib.base import ProxyTestCase
from lib.control import ControlPlaneTestCase, control_binary


class WebSocketServer:
    """python3-websockets echo server on its own loop and thread: echoes each message; "close-4001" makes the
    server close with code 4001; records the request path and headers of each handshake."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.handshakes = []
        self.port = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handler(self, ws, path=None):
        self.handshakes.append((ws.path, {k.lower(): v for k, v in ws.request_headers.raw_items()}))
        async for message in ws:
            if message == "close-4001":
                await ws.close(4001, "asked to")
                return
            await ws.send(message)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            server = await websockets.serve(self._handler, "127.0.0.1", 0, max_size=None)
            self.port = server.sockets[0].getsockname()[1]
            self._server = server
            self._ready.set()
            await server.wait_closed()

        self.loop.run_until_complete(main())

    def start(self):
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("websocket server did not start")
        return self

    def stop(self):
        self.loop.call_soon_threadsafe(self._server.close)
        self._thread.join(10)


class ConnectServer:
    """Answers one CONNECT per connection with 200, then echoes the tunnel's bytes upper-cased."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            self.requests.append(head.decode("latin-1"))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            data = rest
            while True:
                if data:
                    conn.sendall(data.upper())
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return

    def stop(self):
        self.sock.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


class WebSocketTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.ws = WebSocketServer().start()
        cls.plain = cls.start_upstream("plain")
        cls.connect_server = ConnectServer()
        cls.port = P.free_port()  # upgrade_configs: websocket and CONNECT
        cls.bare_port = P.free_port()  # no upgrade_configs
        ws_off = {"upgrade_configs": [{"upgrade_type": "websocket", "enabled": False}]}
        ws_on = {"upgrade_configs": [{"upgrade_type": "WebSocket"}]}
        routes = [
            P.route("/no-ws", "ws", **ws_off),
            P.route("/plain", "plain"),
            {"match": {"connect_matcher": {}}, "route": {"cluster": "connect"}},
            P.route("/", "ws"),
        ]
        bare_routes = [P.route("/route-enabled", "ws", **ws_on), P.route("/", "ws")]
        clusters = [
            P.static_cluster("ws", [("127.0.0.1", cls.ws.port)]),
            P.static_cluster("plain", [("127.0.0.1", cls.plain.port)]),
            P.static_cluster("connect", [("127.0.0.1", cls.connect_server.port)]),
        ]
        upgrades = [{"upgrade_type": "websocket"}, {"upgrade_type": "CONNECT"}]
        cfg = P.bootstrap(
            [P.listener("ws_listener", cls.port,
                        P.hcm([P.virtual_host("all", routes)], upgrade_configs=upgrades, access_log=[P.stdout_access_log(
                            '"%REQ(:METHOD)% %REQ(:PATH)%" %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\n')])),
             P.listener("bare_listener", cls.bare_port,
                        P.hcm([P.virtual_host("all", bare_routes)], stat_prefix="bare"))],
            clusters, P.free_port())
        cls.proxy = cls.start_proxy(cfg, concurrency=2)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.ws.stop()
        cls.connect_server.stop()

    def url(self, path, port=None):
        return "ws://127.0.0.1:%d%s" % (port or self.port, path)

    def test_messages_both_ways_through_the_tunnel(self):
        before = self.proxy.stat("http.ingress_http.downstream_cx_upgrades_total")
        big = bytes(range(256)) * 4096  # 1 MiB: crosses the buffers' watermarks

        async def talk():
            async with websockets.connect(self.url("/echo?x=1"), max_size=None) as ws:
                await ws.send("hello")
                first = await ws.recv()
                await ws.send(big)
                second = await ws.recv()
                for i in range(20):
                    await ws.send("m%d" % i)
                rest = [await ws.recv() for _ in range(20)]
                return first, second, rest

        first, second, rest = run(talk())
        self.assertEqual(first, "hello")
        self.assertEqual(second, big)
        self.assertEqual(rest, ["m%d" % i for i in range(20)])
        path, headers = self.ws.handshakes[-1]
        self.assertEqual(path, "/echo?x=1")
        self.assertEqual(headers.get("upgrade", "").lower(), "websocket")
        self.assertEqual(headers.get("connection", "").lower(), "upgrade")
        self.assertIn("x-request-id", headers)
        self.proxy.wait_stat("http.ingress_http.downstream_cx_upgrades_total", lambda v: v == before + 1)
        self.proxy.wait_stat("http.ingress_http.downstream_cx_upgrades_active", lambda v: v == 0)
        line = self.proxy.wait_for_log(lambda l: '"GET /echo?x=1"' in l)
        self.assertEqual(line.strip(), '"GET /echo?x=1" 101 via_upstream')

    def test_server_close_code_reaches_the_client(self):
        async def talk():
            async with websockets.connect(self.url("/close")) as ws:
                await ws.send("close-4001")
                try:
                    await ws.recv()
                except websockets.exceptions.ConnectionClosed as e:
                    return e.rcvd.code if e.rcvd else None
            return None

        self.assertEqual(run(talk()), 4001)

    def test_route_can_disable_the_upgrade(self):
        before = self.proxy.stat("http.ingress_http.downstream_rq_ws_on_non_ws_route")

        async def talk():
            async with websockets.connect(self.url("/no-ws")):
                pass

        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as ctx:
            run(talk())
        self.assertEqual(ctx.exception.status_code, 403)
        self.assertEqual(self.proxy.stat("http.ingress_http.downstream_rq_ws_on_non_ws_route"), before + 1)
        line = self.proxy.wait_for_log(lambda l: '"GET /no-ws"' in l)
        self.assertEqual(line.strip(), '"GET /no-ws" 403 upgrade_failed')

    def test_no_upgrade_config_refuses_unless_the_route_enables_it(self):
        async def talk(path):
            async with websockets.connect(self.url(path, self.bare_port)) as ws:
                await ws.send("x")
                return await ws.recv()

        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as ctx:
            run(talk("/refused"))
        self.assertEqual(ctx.exception.status_code, 403)
        self.assertEqual(run(talk("/route-enabled")), "x")

    def test_plain_requests_still_keep_their_connection(self):
        before = self.proxy.stat("http.ingress_http.downstream_cx_total")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for i in range(3):
            conn.request("GET", "/plain/%d" % i)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
        conn.close()
        self.assertEqual(self.proxy.stat("http.ingress_http.downstream_cx_total"), before + 1)

    def test_upstream_that_declines_gives_a_plain_response_then_close(self):
        # The plain upstream ignores Upgrade and answers 200: the client gets that answer, and the connection ends
        # (the bytes after an upgrade request are not HTTP).
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /plain/declined HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"
                  b"Upgrade: websocket\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        self.assertIn(b"connection: close", data.lower())

    def test_connect_tunnel(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"CONNECT backend.example:443 HTTP/1.1\r\nHost: backend.example:443\r\n\r\nearly bytes ")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "proxy closed before answering CONNECT")
            head += chunk
        status, rest = head.split(b"\r\n\r\n", 1)
        self.assertTrue(status.startswith(b"HTTP/1.1 200"), status)
        s.sendall(b"and more")
        want = b"EARLY BYTES AND MORE"
        got = rest
        while len(got) < len(want):
            chunk = s.recv(4096)
            self.assertTrue(chunk, "tunnel closed early: %r" % got)
            got += chunk
        s.close()
        self.assertEqual(got, want)
        self.assertTrue(self.connect_server.requests[-1].startswith("CONNECT backend.example:443 HTTP/1.1"))

    def test_connect_without_config_is_refused(self):
        s = socket.create_connection(("127.0.0.1", self.bare_port), timeout=10)
        s.sendall(b"CONNECT backend.example:443 HTTP/1.1\r\nHost: backend.example:443\r\n\r\n")
        data = s.recv(4096)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 403 "), data[:100])


MESH_YAML = """
apiVersion: v1
kind: Service
metadata: {{name: chat, namespace: default}}
spec:
  selector: {{app: chat}}
  ports:
  - {{name: http-ws, port: {port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: chat-v1, namespace: default}}
spec:
  address: 127.0.0.1
  labels: {{app: chat}}
  ports: {{http-ws: {ws_port}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: chat, namespace: default}}
spec:
  host: chat
  trafficPolicy:
    tls: {{mode: DISABLE}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: default}}
spec:
  egress:
  - port: {{number: {port}, protocol: HTTP, name: http-ws}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
"""


class MeshWebSocketTest(ControlPlaneTestCase):
    """The configuration sheave-control compiles from Istio YAML lets WebSockets through, as istiod's does
    (upgrade_configs websocket on every HTTP connection manager)."""

    @classmethod
    def setUpWorld(cls):
        if not os.path.exists(control_binary()):
            raise unittest.SkipTest("sheave-control not built")
        cls.ws = WebSocketServer().start()
        cls.port = P.free_port()
        cls.dir = tempfile.mkdtemp(prefix="sheave-mesh-ws-")
        with open(os.path.join(cls.dir, "mesh.yaml"), "w") as f:
            f.write(MESH_YAML.format(port=cls.port, ws_port=cls.ws.port))
        cls.start_control(cls.dir)
        node = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local"
        cls.sidecar = cls.start_proxy(xds.ads_bootstrap(node, cls.control.xds_port, P.free_port()))
        if not P.wait_until(lambda: P.port_accepts(cls.port), 10.0):
            raise AssertionError("egress listener never came up:\n" + cls.sidecar.stderr()[-3000:])

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.ws.stop()

    def test_websocket_through_the_compiled_config(self):
        async def talk():
            # The Host header names the service; the socket goes to the sidecar's egress port.
            async with websockets.connect("ws://chat:%d/room" % self.port, host="127.0.0.1", port=self.port) as ws:
                await ws.send("through the mesh")
                return await ws.recv()

        self.assertEqual(run(talk()), "through the mesh")
        self.assertEqual(self.ws.handshakes[-1][0], "/room")


class UpgradeConfigErrorsTest(ProxyTestCase):
    def check_rejected(self, hcm_extra=None, route_action=None, expect=""):
        cfg = P.simple_http_bootstrap(1, P.free_port(), P.free_port(), route_action=route_action, hcm_extra=hcm_extra)
        code, out, err = self.new_proxy(cfg).run_mode("validate")
        self.assertNotEqual(code, 0)
        self.assertIn(expect, out + err)

    def test_per_upgrade_filter_chain_is_refused(self):
        self.check_rejected(hcm_extra={"upgrade_configs": [{"upgrade_type": "websocket", "filters": [
            {"name": "envoy.filters.http.router",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}]},
            expect="upgrade_configs[0].filters")

    def test_connect_termination_is_refused(self):
        self.check_rejected(route_action={"upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}]},
                            expect="connect_config")


if __name__ == "__main__":
    unittest.main()
