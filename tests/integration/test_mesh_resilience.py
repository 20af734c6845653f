"""Issue 7 through the control plane: Istio YAML that sheave-control compiles and a sidecar enforces.

- DestinationRule loadBalancer.consistentHash.httpHeaderName -> RING_HASH cluster + route hash_policy: one user
  stays on one replica;
- VirtualService mirror + mirrorPercentage -> request_mirror_policies: the mirror service gets a copy with
  "-shadow" appended to the host, the client only the primary's answer;
- Sheave's default retry budget on every generated cluster (Istio leaves retries unbounded): /clusters shows the
  budget's floor of 3 concurrent retries, not Istio's 2^32-1.
The sidecar captures nothing (Sidecar egress captureMode NONE): the client talks to its egress port directly."""

import os
import tempfile
import unittest

from lib import proxy as P
from lib import xds
from lib.control import ControlPlaneTestCase, control_binary

NODE = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local"
REPLICAS = 4


def workload(name, app, port):
    return f"""---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: default}}
spec:
  address: 127.0.0.1
  labels: {{app: {app}}}
  ports: {{http: {port}}}
"""


def mesh_yaml(port, replica_ports, mirror_port):
    text = f"""
apiVersion: v1
kind: Service
metadata: {{name: ratings, namespace: default}}
spec:
  selector: {{app: ratings}}
  ports:
  - {{name: http, port: {port}}}
---
apiVersion: v1
kind: Service
metadata: {{name: ratings-mirror, namespace: default}}
spec:
  selector: {{app: ratings-mirror}}
  ports:
  - {{name: http, port: {port}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ratings, namespace: default}}
spec:
  host: ratings
  trafficPolicy:
    tls: {{mode: DISABLE}}
    loadBalancer:
      consistentHash: {{httpHeaderName: x-user}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ratings-mirror, namespace: default}}
spec:
  host: ratings-mirror
  trafficPolicy:
    tls: {{mode: DISABLE}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: ratings, namespace: default}}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {{host: ratings}}
    mirror: {{host: ratings-mirror}}
    mirrorPercentage: {{value: 100.0}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: default}}
spec:
  egress:
  - port: {{number: {port}, protocol: HTTP, name: http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
"""
    for i, p in enumerate(replica_ports):
        text += workload("ratings-%d" % i, "ratings", p)
    text += workload("ratings-mirror", "ratings-mirror", mirror_port)
    return text


class MeshResilienceTest(ControlPlaneTestCase):
    @classmethod
    def setUpWorld(cls):
        if not os.path.exists(control_binary()):
            raise unittest.SkipTest("sheave-control not built")
        cls.replicas = [cls.start_upstream(name="ratings-%d" % i) for i in range(REPLICAS)]
        cls.mirror = cls.start_upstream(name="mirror")
        cls.port = P.free_port()
        cls.dir = tempfile.mkdtemp(prefix="sheave-mesh-resilience-")
        with open(os.path.join(cls.dir, "mesh.yaml"), "w") as f:
            f.write(mesh_yaml(cls.port, [u.port for u in cls.replicas], cls.mirror.port))
        cls.start_control(cls.dir)
        cls.sidecar = cls.start_proxy(xds.ads_bootstrap(NODE, cls.control.xds_port, P.free_port()))
        if not P.wait_until(lambda: P.port_accepts(cls.port), 10.0):
            raise AssertionError("egress listener never came up:\n" + cls.sidecar.stderr()[-3000:] +
                                 "\ncontrol:\n" + cls.control_log())

    def replica_for(self, user, path="/"):
        r = P.get(self.port, path, host="ratings", headers={"x-user": user})
        self.assertEqual(r.status, 200, r.body)
        return r.headers.get("x-upstream-name")

    def test_consistent_hash_keeps_a_user_on_one_replica(self):
        mapping = {}
        for u in range(40):
            picks = {self.replica_for("user-%d" % u) for _ in range(3)}
            self.assertEqual(len(picks), 1, "user-%d went to %s" % (u, picks))
            mapping[u] = picks.pop()
        self.assertGreaterEqual(len(set(mapping.values())), 3, mapping)

    def test_mirror_gets_a_shadow_copy(self):
        self.assertTrue(self.replica_for("mirrored", "/mirror-me").startswith("ratings-"))
        self.assertTrue(P.wait_until(lambda: self.mirror.count_path("/mirror-me") >= 1, 5),
                        "the mirror service got no copy")
        hosts = [dict(h).get("host") for m, p, h in self.mirror.requests() if p == "/mirror-me"]
        self.assertTrue(hosts[0].startswith("ratings-shadow"), hosts)

    def test_generated_clusters_carry_the_retry_budget(self):
        text = P.http_request(self.sidecar.admin_port, "GET", "/clusters").body.decode()
        line = [l for l in text.splitlines()
                if l.startswith("outbound|%d||ratings.default.svc.cluster.local::default_priority::max_retries::"
                                % self.port)]
        self.assertEqual(line, ["outbound|%d||ratings.default.svc.cluster.local::default_priority::max_retries::3"
                                % self.port], text[:2000])


if __name__ == "__main__":
    unittest.main()
