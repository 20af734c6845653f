"""tcp_proxy in front of a TCP echo server: bytes both ways, half-close in both directions, the access log's byte
counts, and a connect failure."""

import socket
import threading
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase
from lib.upstream import pattern_bytes

LOG_FORMAT = "TCP rx=%BYTES_RECEIVED% tx=%BYTES_SENT% flags=%RESPONSE_FLAGS% up=%UPSTREAM_HOST% cluster=%UPSTREAM_CLUSTER%\n"


def tcp_proxy(stat_prefix, cluster):
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": P.TCP_PROXY_TYPE, "stat_prefix": stat_prefix, "cluster": cluster,
                             "access_log": [P.stdout_access_log(LOG_FORMAT)]}}


def read_all(sock, timeout):
    """Reads until EOF; returns (data, saw_eof)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk
    return bytes(data), False


class TcpProxyTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.echo = cls.start_tcp_echo()
        cls.port = P.free_port()
        cls.dead_listener_port = P.free_port()
        cfg = P.bootstrap(
            [P.listener("tcp_echo", cls.port, tcp_proxy("echo_tcp", "echo")),
             P.listener("tcp_dead", cls.dead_listener_port, tcp_proxy("dead_tcp", "dead"))],
            [P.static_cluster("echo", [("127.0.0.1", cls.echo.port)]),
             P.static_cluster("dead", [("127.0.0.1", P.free_port())], connect_timeout="0.5s")],
            P.free_port())
        cls.proxy = cls.start_proxy(cfg)

    def log_fields(self, predicate):
        line = self.proxy.wait_for_log(lambda l: l.startswith("TCP ") and predicate(l))
        self.assertIsNotNone(line, self.proxy.stdout())
        return dict(kv.split("=", 1) for kv in line.split()[1:])

    def test_bytes_both_ways_and_half_close(self):
        data = pattern_bytes(300000, 11)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            def send():
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)  # our half-close must reach the echo server...

            # send while reading: the echo comes back while we are still sending
            sender = threading.Thread(target=send)
            sender.start()
            back, eof = read_all(s, 10)
            sender.join(5)
        self.assertEqual(len(back), len(data))
        self.assertEqual(back, data)
        # ...which then half-closes its side, and that EOF must reach us.
        self.assertTrue(eof, "the upstream's close did not propagate to the client")
        self.assertTrue(P.wait_until(lambda: any(x["received"] == len(data) and x["eof"] for x in self.echo.sessions),
                                     3), self.echo.sessions)
        fields = self.log_fields(lambda l: "rx=%d " % len(data) in l)
        self.assertEqual(int(fields["tx"]), len(data))
        self.assertEqual(fields["up"], "127.0.0.1:%d" % self.echo.port)
        self.assertEqual(fields["cluster"], "echo")
        self.assertEqual(fields["flags"], "-")

    def test_half_closed_client_still_receives(self):
        # After the client's FIN, data still flowing from upstream to client must arrive in full.
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"ping-half-close")
            s.shutdown(socket.SHUT_WR)
            back, eof = read_all(s, 5)
        self.assertEqual(back, b"ping-half-close")
        self.assertTrue(eof)

    def test_interactive_echo(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            for i in range(5):
                msg = b"message %d\n" % i
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(100)
                    self.assertTrue(chunk, "closed early")
                    got += chunk
                self.assertEqual(got, msg)

    def test_stats(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"abc")
            s.shutdown(socket.SHUT_WR)
            read_all(s, 5)
        self.assertGreaterEqual(self.proxy.wait_stat("tcp.echo_tcp.downstream_cx_total", lambda v: v >= 1), 1)
        self.assertGreaterEqual(self.proxy.stat("tcp.echo_tcp.downstream_cx_rx_bytes_total"), 3)
        self.assertGreaterEqual(self.proxy.stat("cluster.echo.upstream_cx_total"), 1)

    def test_connect_failure_closes_client_with_UF(self):
        with socket.create_connection(("127.0.0.1", self.dead_listener_port), timeout=5) as s:
            s.sendall(b"hello")
            data, eof = read_all(s, 3)
        self.assertEqual(data, b"")
        self.assertTrue(eof, "the proxy must close the client when the upstream cannot be reached")
        fields = self.log_fields(lambda l: "cluster=dead" in l)
        self.assertIn("UF", fields["flags"].split(","))
        self.assertGreaterEqual(self.proxy.stat("cluster.dead.upstream_cx_connect_fail"), 1)


if __name__ == "__main__":
    unittest.main()
