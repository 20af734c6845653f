"""Istio's standard metrics and the HTTP metadata exchange between two sidecars (issue 8, items 1 and 2).

Two sheave-proxy sidecars with static bootstraps: a client side (outbound listener, plaintext from the app, mTLS to
the server side) and a server side (inbound listener, mTLS required) in front of a Python upstream. Each bootstrap
carries Istio's node metadata. After a bounded number of requests both proxies' /stats/prometheus show
istio_requests_total with the peer learnt through x-envoy-peer-metadata, and the upstream never saw those headers.
Certificates are made at test time with the openssl command line."""

import re
import shutil
import subprocess
import tempfile
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase
from test_tls import DOWNSTREAM_TLS, UPSTREAM_TLS, have, openssl, tls_socket

SERVER_ID = "spiffe://cluster.local/ns/shop/sa/reviews"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/productpage"
SERVICE = "reviews.shop.svc.cluster.local"
OUTBOUND_CLUSTER = "outbound|9080||" + SERVICE
MX_TYPE = "type.googleapis.com/io.istio.http.peer_metadata.Config"
STATS_TYPE = "type.googleapis.com/stats.PluginConfig"
N_HTTP = 5
N_GRPC = 3


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=sheave test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, uri in (("server", SERVER_ID), ("client", CLIENT_ID)):
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,URI:%s\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n" % uri)
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)
    return {n: "%s/%s" % (d, n) for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


def node(workload, app, version, ns="shop"):
    return {
        "id": "sidecar~127.0.0.1~%s-7d4b9.%s~%s.svc.cluster.local" % (workload, ns, ns),
        "cluster": app + "." + ns,
        "metadata": {
            "NAME": workload + "-7d4b9", "NAMESPACE": ns, "WORKLOAD_NAME": workload, "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local", "SERVICE_ACCOUNT": app,
            "LABELS": {"app": app, "version": version, "service.istio.io/canonical-name": app,
                       "service.istio.io/canonical-revision": version},
        },
    }


def telemetry_filters(inbound):
    if inbound:
        mx = {"@type": MX_TYPE, "downstream_discovery": [{"istio_headers": {}}],
              "downstream_propagation": [{"istio_headers": {}}]}
        stats = {"@type": STATS_TYPE}
    else:
        mx = {"@type": MX_TYPE, "upstream_discovery": [{"istio_headers": {}}],
              "upstream_propagation": [{"istio_headers": {"skip_external_clusters": True}}]}
        stats = {"@type": STATS_TYPE, "disable_host_header_fallback": True}
    return [{"name": "istio.metadata_exchange", "typed_config": mx}, {"name": "istio.stats", "typed_config": stats}]


def cert_files(certs, who):
    return {"certificate_chain": {"filename": certs[who + ".crt"]}, "private_key": {"filename": certs[who + ".key"]}}


def server_tls(certs, alpn=None):
    """The server sidecar's inbound mTLS context (client certificate required)."""
    common = {"tls_certificates": [cert_files(certs, "server")],
              "validation_context": {"trusted_ca": {"filename": certs["ca.crt"]}}}
    if alpn:
        common["alpn_protocols"] = alpn
    return {"@type": DOWNSTREAM_TLS, "require_client_certificate": True, "common_tls_context": common}


def client_tls(certs, alpn=None):
    """The client sidecar's ISTIO_MUTUAL-like context: its certificate, the server's SPIFFE ID verified."""
    common = {"tls_certificates": [cert_files(certs, "client")],
              "validation_context": {
                  "trusted_ca": {"filename": certs["ca.crt"]},
                  "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": SERVER_ID}}]}}
    if alpn:
        common["alpn_protocols"] = alpn
    return {"@type": UPSTREAM_TLS, "sni": SERVICE, "common_tls_context": common}


def series(text, family):
    """[(labels dict, value)] of one family in a Prometheus exposition."""
    out = []
    for line in text.splitlines():
        m = re.match(r'^%s\{(.*)\} (\S+)$' % re.escape(family), line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
            out.append((labels, float(m.group(2))))
    return out


@unittest.skipUnless(have("openssl"), "needs the openssl command line")
class IstioMetricsTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sheave-istio-metrics-")
        c = make_certs(cls.tmp)
        cls.upstream = cls.start_upstream("reviews-app")

        cls.inbound_port = P.free_port()
        inbound = P.listener("virtualInbound", cls.inbound_port,
                             P.hcm([P.virtual_host("inbound", [P.route("/", "inbound|9080||")])],
                                   stat_prefix="inbound_0.0.0.0_9080", http_filters=telemetry_filters(True),
                                   access_log=False))
        inbound["filter_chains"][0]["transport_socket"] = tls_socket(server_tls(c))
        server_cfg = P.bootstrap([inbound], [P.static_cluster("inbound|9080||", [("127.0.0.1", cls.upstream.port)])],
                                 P.free_port())
        server_cfg["node"] = node("reviews-v2", "reviews", "v2")
        cls.server = cls.start_proxy(server_cfg)

        cls.outbound_port = P.free_port()
        outbound = P.listener("0.0.0.0_9080", cls.outbound_port,
                              P.hcm([P.virtual_host(SERVICE + ":9080", [P.route("/", OUTBOUND_CLUSTER)])],
                                    stat_prefix="outbound_0.0.0.0_9080", http_filters=telemetry_filters(False),
                                    access_log=False))
        client_cfg = P.bootstrap([outbound], [P.static_cluster(OUTBOUND_CLUSTER, [("127.0.0.1", cls.inbound_port)],
                                                               transport_socket=tls_socket(client_tls(c)))],
                                 P.free_port())
        client_cfg["node"] = node("productpage-v1", "productpage", "v1")
        cls.client = cls.start_proxy(client_cfg)

        for i in range(N_HTTP):
            # The application tries to pass its own metadata: it must not reach the other side.
            r = P.get(cls.outbound_port, "/reviews/%d" % i, host=SERVICE,
                      headers={"x-envoy-peer-metadata": "c3Bvb2Zl", "x-envoy-peer-metadata-id": "spoofed"})
            assert r.status == 200, r
            # The application never learns the server sidecar's metadata either.
            assert "x-envoy-peer-metadata" not in {k.lower() for k in r.headers}, r.headers
        for _ in range(N_GRPC):
            P.http_request(cls.outbound_port, "POST", "/reviews.Reviews/Get", host=SERVICE,
                           headers={"content-type": "application/grpc", "te": "trailers"},
                           body=b"\x00\x00\x00\x00\x00")

    def scrape(self, proxy, want_requests=N_HTTP + N_GRPC):
        """The exposition once every request was recorded (a sidecar records a stream when it ends, which may be
        just after the client read the response)."""
        text = ""

        def done():
            nonlocal text
            status, _, text = proxy.admin("GET", "/stats/prometheus")
            self.assertEqual(status, 200)
            return sum(v for _, v in series(text, "istio_requests_total")) >= want_requests

        P.wait_until(done, 5.0)
        return text

    def test_destination_side_learns_the_caller(self):
        text = self.scrape(self.server)
        http = [(l, v) for l, v in series(text, "istio_requests_total") if l["request_protocol"] == "http"]
        self.assertEqual(len(http), 1, text)
        labels, value = http[0]
        self.assertEqual(value, N_HTTP)
        self.assertEqual(labels["reporter"], "destination")
        self.assertEqual(labels["source_workload"], "productpage-v1")
        self.assertEqual(labels["source_workload_namespace"], "shop")
        self.assertEqual(labels["source_app"], "productpage")
        self.assertEqual(labels["source_version"], "v1")
        self.assertEqual(labels["source_principal"], CLIENT_ID)
        self.assertEqual(labels["destination_workload"], "reviews-v2")
        self.assertEqual(labels["destination_principal"], SERVER_ID)
        self.assertEqual(labels["response_code"], "200")
        self.assertEqual(labels["connection_security_policy"], "mutual_tls")
        grpc = [l for l, _ in series(text, "istio_requests_total") if l["request_protocol"] == "grpc"]
        self.assertEqual(len(grpc), 1, text)
        self.assertEqual(grpc[0]["source_workload"], "productpage-v1")
        counts = series(text, "istio_request_duration_milliseconds_count")
        self.assertEqual(sum(v for _, v in counts), N_HTTP + N_GRPC)

    def test_source_side_learns_the_server(self):
        text = self.scrape(self.client)
        http = [(l, v) for l, v in series(text, "istio_requests_total") if l["request_protocol"] == "http"]
        self.assertEqual(len(http), 1, text)
        labels, value = http[0]
        self.assertEqual(value, N_HTTP)
        self.assertEqual(labels["reporter"], "source")
        self.assertEqual(labels["source_workload"], "productpage-v1")
        # Principals from the mTLS certificates of the upstream connection: ours and the server's.
        self.assertEqual(labels["source_principal"], CLIENT_ID)
        self.assertEqual(labels["destination_principal"], SERVER_ID)
        self.assertEqual(labels["destination_workload"], "reviews-v2")
        self.assertEqual(labels["destination_app"], "reviews")
        self.assertEqual(labels["destination_version"], "v2")
        self.assertEqual(labels["destination_workload_namespace"], "shop")
        self.assertEqual(labels["destination_service"], SERVICE)
        self.assertEqual(labels["destination_service_name"], "reviews")
        self.assertEqual(labels["response_code"], "200")

    def test_upstream_never_sees_peer_metadata(self):
        seen = self.upstream.state.requests
        self.assertGreaterEqual(len(seen), N_HTTP)
        for _, _, headers in seen:
            names = {k for k, _ in headers}
            self.assertNotIn("x-envoy-peer-metadata", names)
            self.assertNotIn("x-envoy-peer-metadata-id", names)

    @unittest.skipUnless(shutil.which("promtool"), "needs promtool (Debian package prometheus)")
    def test_promtool_accepts_the_exposition(self):
        for proxy in (self.client, self.server):
            text = self.scrape(proxy)
            p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True,
                               timeout=30)
            # promtool exits 1 for lint findings too (naming advice on Envoy's own families); only
            # parse errors fail the test.
            err = (p.stdout + p.stderr).decode()
            self.assertNotIn("error while linting", err, err)
            self.assertNotIn("text format parsing error", err, err)
            # Lint advice on Istio's fixed names is expected (no HELP lines; the duration is in milliseconds,
            # not Prometheus' base unit); anything else about the istio_ families is a finding.
            istio = [l for l in err.splitlines() if l.startswith("istio_") and not l.endswith("no help text")
                     and 'use base unit "seconds"' not in l]
            self.assertEqual(istio, [], err)


if __name__ == "__main__":
    unittest.main()
