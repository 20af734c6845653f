"""Istio's TCP metrics and the TCP metadata exchange between two sidecars (issue 8, items 1 and 2).

Two sheave-proxy sidecars with static bootstraps, as istiod configures them for a TCP service: the client side has an
outbound tcp_proxy chain (istio.stats) to a cluster with mTLS, ALPN ["istio-peer-exchange", "istio"] and the cluster
filter istio.metadata_exchange; the server side has an inbound mTLS chain offering ALPN "istio-peer-exchange" with
istio.metadata_exchange and istio.stats before its tcp_proxy, in front of a TCP echo server.

Istio facts relied on: when TLS negotiated "istio-peer-exchange", each side first writes magic 0x3D230467 and a length
(both 4 bytes, big-endian), then a google.protobuf.Any of a Struct with "x-envoy-peer-metadata" (the workload's node
metadata) and "x-envoy-peer-metadata-id"; the peer reads that before any application byte, so neither application
sees it. A peer whose first bytes do not start with the magic is not exchanging: its bytes pass on unchanged.
istio_tcp_connections_opened_total, istio_tcp_connections_closed_total, istio_tcp_sent_bytes_total and
istio_tcp_received_bytes_total carry Istio's labels without response_code and grpc_response_status, request_protocol
"tcp"; the client reports "source", the server "destination"."""

import socket
import ssl
import struct
import tempfile
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase
from test_istio_metrics import (CLIENT_ID, SERVER_ID, SERVICE, STATS_TYPE, client_tls, make_certs, node, series,
                                server_tls)
from test_tls import have, tls_socket

OUTBOUND_CLUSTER = "outbound|9000||" + SERVICE
MX_TYPE = "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"
MAGIC = 0x3D230467
N = 4
MESSAGE = b"ping over tcp " * 100


def tcp_proxy(stat_prefix, cluster):
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": P.TCP_PROXY_TYPE, "stat_prefix": stat_prefix, "cluster": cluster}}


def echo_once(port, payload=MESSAGE, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk


@unittest.skipUnless(have("openssl"), "needs the openssl command line")
class IstioTcpMetricsTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sheave-istio-tcp-")
        cls.certs = c = make_certs(cls.tmp)
        cls.echo = cls.start_tcp_echo()

        cls.inbound_port = P.free_port()
        inbound = P.listener("virtualInbound", cls.inbound_port, tcp_proxy("inbound_0.0.0.0_9000", "inbound|9000||"))
        inbound["filter_chains"][0]["filters"] = [
            {"name": "istio.metadata_exchange", "typed_config": {"@type": MX_TYPE, "protocol": "istio-peer-exchange"}},
            {"name": "istio.stats", "typed_config": {"@type": STATS_TYPE}},
        ] + inbound["filter_chains"][0]["filters"]
        inbound["filter_chains"][0]["transport_socket"] = tls_socket(
            server_tls(c, ["istio-peer-exchange", "h2", "http/1.1"]))
        server_cfg = P.bootstrap([inbound], [P.static_cluster("inbound|9000||", [("127.0.0.1", cls.echo.port)])],
                                 P.free_port())
        server_cfg["node"] = node("reviews-v2", "reviews", "v2")
        cls.server = cls.start_proxy(server_cfg)

        cls.outbound_port = P.free_port()
        outbound = P.listener("0.0.0.0_9000", cls.outbound_port, tcp_proxy("outbound|9000||" + SERVICE,
                                                                          OUTBOUND_CLUSTER))
        outbound["filter_chains"][0]["filters"].insert(0, {"name": "istio.stats", "typed_config": {
            "@type": STATS_TYPE, "disable_host_header_fallback": True}})
        cluster = P.static_cluster(OUTBOUND_CLUSTER, [("127.0.0.1", cls.inbound_port)],
                                   transport_socket=tls_socket(client_tls(c, ["istio-peer-exchange", "istio"])))
        cluster["filters"] = [{"name": "istio.metadata_exchange",
                               "typed_config": {"@type": MX_TYPE, "protocol": "istio-peer-exchange"}}]
        client_cfg = P.bootstrap([outbound], [cluster], P.free_port())
        client_cfg["node"] = node("productpage-v1", "productpage", "v1")
        cls.client = cls.start_proxy(client_cfg)

        cls.echoed = [echo_once(cls.outbound_port) for _ in range(N)]

    def scrape(self, proxy, want_closed=N, reporter=None):
        text = ""

        def done():
            nonlocal text
            status, _, text = proxy.admin("GET", "/stats/prometheus")
            self.assertEqual(status, 200)
            closed = [(l, v) for l, v in series(text, "istio_tcp_connections_closed_total")
                      if reporter is None or l["reporter"] == reporter]
            return sum(v for _, v in closed) >= want_closed

        P.wait_until(done, 5.0)
        return text

    def only(self, text, family):
        # The sidecars' connections (the bare TLS client of another test has no source workload).
        found = [(l, v) for l, v in series(text, family) if l["source_workload"] != "unknown"]
        self.assertEqual(len(found), 1, "%s: %r" % (family, found))
        return found[0]

    def test_applications_see_only_their_bytes(self):
        self.assertEqual(self.echoed, [MESSAGE] * N)
        with self.echo.lock:
            received = [s["received"] for s in self.echo.sessions]
        self.assertEqual(received[:N], [len(MESSAGE)] * N)

    def test_destination_side_learns_the_caller(self):
        text = self.scrape(self.server)
        labels, opened = self.only(text, "istio_tcp_connections_opened_total")
        self.assertEqual(opened, N)
        self.assertEqual(labels["reporter"], "destination")
        self.assertEqual(labels["request_protocol"], "tcp")
        self.assertNotIn("response_code", labels)
        self.assertEqual(labels["source_workload"], "productpage-v1")
        self.assertEqual(labels["source_workload_namespace"], "shop")
        self.assertEqual(labels["source_app"], "productpage")
        self.assertEqual(labels["source_version"], "v1")
        self.assertEqual(labels["source_principal"], CLIENT_ID)
        self.assertEqual(labels["destination_workload"], "reviews-v2")
        self.assertEqual(labels["destination_principal"], SERVER_ID)
        self.assertEqual(labels["connection_security_policy"], "mutual_tls")
        self.assertEqual(self.only(text, "istio_tcp_connections_closed_total")[1], N)
        self.assertEqual(self.only(text, "istio_tcp_received_bytes_total")[1], N * len(MESSAGE))
        self.assertEqual(self.only(text, "istio_tcp_sent_bytes_total")[1], N * len(MESSAGE))

    def test_source_side_learns_the_server(self):
        text = self.scrape(self.client)
        labels, opened = self.only(text, "istio_tcp_connections_opened_total")
        self.assertEqual(opened, N)
        self.assertEqual(labels["reporter"], "source")
        self.assertEqual(labels["source_workload"], "productpage-v1")
        self.assertEqual(labels["source_principal"], CLIENT_ID)
        self.assertEqual(labels["destination_workload"], "reviews-v2")
        self.assertEqual(labels["destination_app"], "reviews")
        self.assertEqual(labels["destination_version"], "v2")
        self.assertEqual(labels["destination_workload_namespace"], "shop")
        self.assertEqual(labels["destination_principal"], SERVER_ID)
        self.assertEqual(labels["destination_service"], SERVICE)
        self.assertEqual(labels["destination_service_name"], "reviews")
        self.assertEqual(self.only(text, "istio_tcp_sent_bytes_total")[1], N * len(MESSAGE))
        self.assertEqual(self.only(text, "istio_tcp_received_bytes_total")[1], N * len(MESSAGE))

    def test_peer_without_the_exchange_passes_its_bytes_on(self):
        # A TLS client that negotiates istio-peer-exchange but sends no exchange: the server sidecar still writes its
        # own exchange first (as Istio's does), and the client's bytes reach the application unchanged.
        ctx = ssl.create_default_context(cafile=self.certs["ca.crt"])
        ctx.check_hostname = False
        ctx.load_cert_chain(self.certs["client.crt"], self.certs["client.key"])
        ctx.set_alpn_protocols(["istio-peer-exchange"])
        with socket.create_connection(("127.0.0.1", self.inbound_port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as s:
                self.assertEqual(s.selected_alpn_protocol(), "istio-peer-exchange")
                s.sendall(b"not an exchange")
                got = b""
                deadline = time.monotonic() + 10
                while not got.endswith(b"not an exchange") and time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
        magic, size = struct.unpack(">II", got[:8])
        self.assertEqual(magic, MAGIC)
        self.assertEqual(got[8 + size:], b"not an exchange")
        self.assertIn(b"reviews-v2", got[8:8 + size])


if __name__ == "__main__":
    unittest.main()
