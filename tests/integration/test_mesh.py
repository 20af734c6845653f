"""Issue 4's end-to-end check: sheave-control compiles Istio YAML from a directory and serves it over ADS to two
sheave-proxy sidecars on loopback; VirtualService weights, matches, retries and timeouts take effect, editing a
file changes the behaviour within a second without a failed request, and traffic keeps flowing when the control
plane is gone. The sidecars capture nothing (Sidecar egress listener with captureMode NONE), so no iptables is
needed: the client talks to the sidecar's egress port directly."""

import os
import tempfile
import time
import unittest

from lib import proxy as P
from lib import xds
from lib.control import ControlPlaneTestCase, control_binary

NODE = "sidecar~127.0.0.1~%s.default~default.svc.cluster.local"
CONTROL = control_binary()


def mesh_yaml(port, v1_port, v2_port, v1_weight=100, extra_http=""):
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{app: reviews}}
  ports:
  - {{name: http, port: {port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: default}}
spec:
  address: 127.0.0.1
  labels: {{app: reviews, version: v1}}
  ports: {{http: {v1_port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v2, namespace: default}}
spec:
  address: 127.0.0.1
  labels: {{app: reviews, version: v2}}
  ports: {{http: {v2_port}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy:
    tls: {{mode: DISABLE}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {{exact: jason}}
    route:
    - destination: {{host: reviews, subset: v2}}
  - match:
    - uri: {{prefix: /delay}}
    timeout: 0.3s
    route:
    - destination: {{host: reviews, subset: v1}}
  - match:
    - uri: {{prefix: /fail-first}}
    retries: {{attempts: 3, retryOn: 5xx}}
    route:
    - destination: {{host: reviews, subset: v1}}
{extra_http}  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {v1_weight}
    - destination: {{host: reviews, subset: v2}}
      weight: {100 - v1_weight}
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


class MeshTest(ControlPlaneTestCase):
    @classmethod
    def setUpWorld(cls):
        if not os.path.exists(CONTROL):
            raise unittest.SkipTest("sheave-control not built")
        cls.v1 = cls.start_upstream(name="v1")
        cls.v2 = cls.start_upstream(name="v2")
        cls.port = P.free_port()
        cls.dir = tempfile.mkdtemp(prefix="sheave-mesh-")
        cls.write(mesh_yaml(cls.port, cls.v1.port, cls.v2.port))
        cls.start_control(cls.dir)
        cls.xds_port = cls.control.xds_port
        # Two client sidecars of different workloads bind the same egress port (SO_REUSEPORT, as every
        # sheave-proxy listener): the kernel spreads connections over both, so each check sees both configs.
        cls.sidecar = cls.start_proxy(xds.ads_bootstrap(NODE % "productpage-v1", cls.xds_port, P.free_port()))
        cls.other = cls.start_proxy(xds.ads_bootstrap(NODE % "ratings-v1", cls.xds_port, P.free_port()),
                                    concurrency=1)
        if not P.wait_until(lambda: P.port_accepts(cls.port), 10.0):
            raise AssertionError("egress listener never came up:\n" + cls.sidecar.stderr()[-3000:] +
                                 "\ncontrol:\n" + cls.control_log())

    @classmethod
    def write(cls, text, name="mesh.yaml"):
        tmp = os.path.join(cls.dir, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(cls.dir, name))

    def get(self, path="/", **headers):
        return P.get(self.port, path, host="reviews", headers=headers)

    def upstreams(self, n, path="/", **headers):
        seen = {}
        for _ in range(n):
            r = self.get(path, **headers)
            self.assertEqual(r.status, 200, r.body)
            name = r.headers.get("x-upstream-name")
            seen[name] = seen.get(name, 0) + 1
        return seen

    def test_1_weights_and_header_match(self):
        self.assertEqual(self.upstreams(10), {"v1": 10})
        self.assertEqual(self.upstreams(5, **{"end-user": "jason"}), {"v2": 5})

    def test_2_timeout(self):
        r = self.get("/delay/1000")
        self.assertEqual(r.status, 504)
        self.assertEqual(self.get("/delay/10").status, 200)

    def test_3_retries(self):
        # The upstream fails the first two requests of this key with 503; three retries get through.
        r = self.get("/fail-first/2/mesh-retry")
        self.assertEqual(r.status, 200)

    def test_4_edit_changes_behaviour_without_failures(self):
        self.write(mesh_yaml(self.port, self.v1.port, self.v2.port, v1_weight=0))
        deadline = time.monotonic() + 2.0
        failures, switched_at = 0, None
        start = time.monotonic()
        while time.monotonic() < deadline:
            r = self.get()
            failures += r.status != 200
            if r.headers.get("x-upstream-name") == "v2":
                switched_at = time.monotonic() - start
                break
        self.assertIsNotNone(switched_at, "the edit did not take effect:\n" + self.control_log())
        self.assertLess(switched_at, 1.5)
        self.assertEqual(failures, 0)
        self.assertEqual(self.upstreams(5), {"v2": 5})

    def test_5_control_plane_gone_traffic_flows(self):
        self.control.stop()
        time.sleep(0.2)
        self.assertEqual(self.get().status, 200)
        self.assertEqual(self.get("/", **{"end-user": "jason"}).headers.get("x-upstream-name"), "v2")


if __name__ == "__main__":
    unittest.main()
