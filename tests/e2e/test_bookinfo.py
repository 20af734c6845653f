"""`sheave up examples/bookinfo` end to end: every workload in its own network namespace behind a sidecar
that intercepts its traffic with iptables, sheave-control with its CA, the ingress gateway on
127.0.0.1:8080, and the Bookinfo scenarios applied by writing files into the running mesh's directory.

Needs root (network namespaces); every wait and every load loop is bounded."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
EXAMPLE = os.path.join(REPO, "examples", "bookinfo")
SCENARIOS = os.path.join(REPO, "examples", "bookinfo-scenarios")
GATEWAY = ("127.0.0.1", 8080)
PRODUCTPAGE_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"


def sheave_binary():
    return os.environ.get("SHEAVE") or os.path.join(REPO, "build", "bin", "sheave")


def wait_until(predicate, timeout, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """Keep-alive HTTP/1.1 to the gateway; a failed request counts as status 0."""

    def __init__(self):
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def get(self, path="/productpage", method="GET", headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(*GATEWAY, timeout=15)
            try:
                self.conn.request(method, path, headers=headers or {})
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, body
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    return 0, b""
        return 0, b""


def upstream(page, name):
    """The answer of one upstream (details, reviews) inside productpage's JSON."""
    for u in page.get("upstreams", []):
        if "//%s:" % name in u.get("url", ""):
            return u
    return None


def reviews_version(body):
    try:
        page = json.loads(body)
    except ValueError:
        return None
    u = upstream(page, "reviews")
    if not u or u.get("status") != 200 or not isinstance(u.get("body"), dict):
        return None
    return u["body"].get("version")


def nothing_left_behind(test):
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    test.assertNotIn("sheave-", namespaces)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    test.assertNotIn("sheave0", links)
    test.assertNotIn(": shv", links)


class BadInputTest(unittest.TestCase):
    """Mistakes get one clear sentence and leave nothing behind. Runs before BookinfoTest (no mesh is up)."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for network namespaces")
        self.tmp = tempfile.mkdtemp(prefix="sheave-e2e-bad-")
        os.chmod(self.tmp, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def up(self, files):
        mesh = os.path.join(self.tmp, "mesh")
        os.makedirs(mesh)
        for name, text in files.items():
            with open(os.path.join(mesh, name), "w") as f:
                f.write(text)
        return subprocess.run([sheave_binary(), "--state-dir", os.path.join(self.tmp, "state"), "up", mesh,
                               "--control-http-address", "127.0.0.1:%d" % free_port(), "--startup-timeout", "20"],
                              capture_output=True, text=True, timeout=120)

    def test_a_directory_without_workloads(self):
        with open(os.path.join(EXAMPLE, "services.yaml")) as f:
            r = self.up({"services.yaml": f.read()})
        self.assertEqual(r.returncode, 1)
        self.assertIn("defines no LocalWorkload", r.stderr)
        nothing_left_behind(self)

    def test_a_command_that_exits_at_once(self):
        r = self.up({"w.yaml": "apiVersion: sheave.io/v1alpha1\nkind: LocalWorkload\nmetadata: {name: oops}\n"
                               "spec:\n  labels: {app: oops}\n  command: [\"false\"]\n"})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("workload default/oops-0", r.stderr)
        self.assertIn("exited (1) right after it started", r.stderr)
        nothing_left_behind(self)

    def test_invalid_yaml_names_the_file_and_line_and_the_rest_runs_no_further(self):
        r = self.up({"w.yaml": "apiVersion: sheave.io/v1alpha1\nkind: LocalWorkload\nmetadata: {name: w}\n"
                               "spec:\n  command: [x]\n  replicas: many\n"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("w.yaml:6", r.stderr)
        self.assertIn("spec.replicas", r.stderr)
        nothing_left_behind(self)


class BookinfoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root for network namespaces")
        cls.tmp = tempfile.mkdtemp(prefix="sheave-e2e-")
        os.chmod(cls.tmp, 0o755)  # the sidecars (uid 1337) read their files below it
        cls.mesh_dir = os.path.join(cls.tmp, "bookinfo")
        shutil.copytree(EXAMPLE, cls.mesh_dir)
        cls.state = os.path.join(cls.tmp, "state")
        cls.control_http = "127.0.0.1:%d" % free_port()
        cls.up_log = open(os.path.join(cls.tmp, "up.log"), "w")
        cls.up = subprocess.Popen(
            [sheave_binary(), "--state-dir", cls.state, "up", cls.mesh_dir,
             "--gateway-admin-port", str(free_port()), "--control-http-address", cls.control_http],
            stdout=cls.up_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ok = wait_until(lambda: cls.up.poll() is not None or cls.status().get("running"), 120)
        if not ok or cls.up.poll() is not None:
            out = cls.up_output()
            cls.tearDownClass()
            raise AssertionError("sheave up did not come up:\n" + out)
        cls.client = Client()
        status = wait_until(lambda: cls.client.get()[0] == 200, 30)
        if not status:
            out = cls.up_output()
            cls.tearDownClass()
            raise AssertionError("the gateway does not serve /productpage:\n" + out)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "client", None):
            cls.client.close()
        if getattr(cls, "up", None) and cls.up.poll() is None:
            subprocess.run([sheave_binary(), "--state-dir", cls.state, "down"], timeout=90,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                cls.up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.up.kill()
        if getattr(cls, "up_log", None):
            cls.up_log.close()
        if os.environ.get("SHEAVE_E2E_KEEP") is None:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def up_output(cls):
        cls.up_log.flush()
        with open(os.path.join(cls.tmp, "up.log")) as f:
            return f.read()[-4000:]

    @classmethod
    def status(cls):
        r = subprocess.run([sheave_binary(), "--state-dir", cls.state, "status", "-o", "json"],
                           capture_output=True, text=True, timeout=10)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {}

    def setUp(self):
        self.started = time.time()

    def tearDown(self):
        print("  (%.1f s)" % (time.time() - self.started), flush=True)

    def workload(self, name):
        for w in self.status()["workloads"]:
            if w["name"] == name:
                return w
        self.fail("no workload " + name)

    def in_namespace(self, workload, *curl_args):
        """curl from inside a workload's network namespace, as its application would (intercepted by
        its sidecar). Returns (status, body)."""
        ns = self.workload(workload)["netns"]
        r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-m", "10", "-o", "-",
                            "-w", "\n%{http_code}", *curl_args], capture_output=True, text=True, timeout=20)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def apply(self, scenario, name=None):
        shutil.copy(os.path.join(SCENARIOS, scenario), os.path.join(self.mesh_dir, name or scenario))

    def remove(self, name):
        os.remove(os.path.join(self.mesh_dir, name))

    def versions(self, n, headers=None):
        seen = {}
        failures = 0
        for _ in range(n):
            status, body = self.client.get(headers=headers)
            if status != 200:
                failures += 1
                continue
            v = reviews_version(body)
            seen[v] = seen.get(v, 0) + 1
        return seen, failures

    def wait_for_versions(self, expected, headers=None, timeout=10):
        """Until 20 requests in a row see only the versions in `expected`."""
        return wait_until(lambda: set(self.versions(20, headers)[0]) <= expected, timeout)

    # --- the scenarios -----------------------------------------------------------------------------

    def test_1_gateway_to_productpage_through_the_mesh(self):
        status, body = self.client.get()
        self.assertEqual(status, 200, body)
        page = json.loads(body)
        self.assertEqual(page["name"], "productpage")
        details = upstream(page, "details")
        self.assertEqual(details["status"], 200, details)
        # details' sidecar verified productpage's certificate and told details who called.
        self.assertEqual(details["body"]["caller"], PRODUCTPAGE_ID)
        self.assertIn(reviews_version(body), ("v1", "v2", "v3"))
        # Unknown paths are not routed by the gateway's VirtualService.
        self.assertEqual(self.client.get("/nothing-here")[0], 404)

    def test_2_canary_split_and_live_change_without_failures(self):
        self.apply("canary-90-10.yaml", "reviews-vs.yaml")
        try:
            self.assertTrue(self.wait_for_versions({"v1", "v2"}), "the canary split never applied")
            seen, failures = self.versions(2000)
            self.assertEqual(failures, 0)
            share = seen.get("v2", 0) / 2000.0
            self.assertLess(abs(share - 0.10), 0.03, seen)
            self.assertEqual(set(seen), {"v1", "v2"})

            # Send everything to v3 while traffic runs: applies within 1 s, nothing fails.
            results = []
            stop = threading.Event()

            def load():
                c = Client()
                while not stop.is_set() and len(results) < 5000:
                    status, body = c.get()
                    results.append((time.time(), status, reviews_version(body)))
                c.close()

            t = threading.Thread(target=load)
            t.start()
            time.sleep(0.5)
            with open(os.path.join(SCENARIOS, "canary-90-10.yaml")) as f:
                canary = f.read()
            with open(os.path.join(self.mesh_dir, "reviews-vs.yaml"), "w") as f:
                f.write(canary
                        .replace("subset: v1\n      weight: 90", "subset: v3\n      weight: 100")
                        .replace("    - destination:\n        host: reviews\n        subset: v2\n      weight: 10\n", ""))
            written = time.time()
            time.sleep(2.5)
            stop.set()
            t.join(timeout=30)
            self.assertTrue(results)
            self.assertEqual([r for r in results if r[1] != 200], [])
            late = [r for r in results if r[0] > written + 1.0]
            self.assertTrue(late)
            self.assertEqual({r[2] for r in late}, {"v3"})
        finally:
            self.remove("reviews-vs.yaml")

    def test_3_header_routes(self):
        self.apply("header-routing.yaml", "reviews-vs.yaml")
        try:
            self.assertTrue(self.wait_for_versions({"v1"}), "header routing never applied")
            seen, failures = self.versions(50, {"x-canary-user": "true"})
            self.assertEqual((seen, failures), ({"v2": 50}, 0))
            chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
            seen, failures = self.versions(50, {"user-agent": chrome})
            self.assertEqual((seen, failures), ({"v2": 50}, 0))
            seen, failures = self.versions(50, {"user-agent": "curl/7.88"})
            self.assertEqual((seen, failures), ({"v1": 50}, 0))
        finally:
            self.remove("reviews-vs.yaml")

    def test_4_strict_mtls_keeps_outsiders_out(self):
        reviews = self.workload("reviews-v1-0")["address"]

        def from_host():
            # The host has no sidecar: a plaintext client outside the mesh.
            c = http.client.HTTPConnection(reviews, 9080, timeout=3)
            try:
                c.request("GET", "/")
                return c.getresponse().status
            except (OSError, http.client.HTTPException):
                return 0
            finally:
                c.close()
        self.assertEqual(from_host(), 200, "PERMISSIVE should admit plaintext")
        self.apply("mtls-strict.yaml")
        try:
            self.assertTrue(wait_until(lambda: from_host() == 0, 10), "STRICT mTLS still admits plaintext")
            # Inside the mesh every hop is mTLS with the caller's identity.
            status, body = self.client.get()
            self.assertEqual(status, 200)
            self.assertEqual(upstream(json.loads(body), "details")["body"]["caller"], PRODUCTPAGE_ID)
        finally:
            self.remove("mtls-strict.yaml")

    def test_5_authorization_policies(self):
        self.apply("authorization.yaml")
        try:
            def denied():
                return self.in_namespace("ratings-v1-0", "http://reviews:9080/reviews/0")
            self.assertTrue(wait_until(lambda: denied()[0] == 403, 10), denied())
            self.assertEqual(denied()[1], "RBAC: access denied")
            # productpage may GET reviews, not POST.
            status, body = self.in_namespace("productpage-v1-0", "http://reviews:9080/reviews/0")
            self.assertEqual(status, 200, body)
            status, body = self.in_namespace("productpage-v1-0", "-X", "POST", "http://reviews:9080/reviews/0")
            self.assertEqual(status, 403, body)
            # The page still works end to end (productpage -> reviews -> ratings all allowed).
            self.assertEqual(self.client.get()[0], 200)
        finally:
            self.remove("authorization.yaml")

    def set_fault(self, workload, fail_fraction):
        # 500, not 503: Istio's default route retry policy already retries 503s.
        status, body = self.in_namespace(workload, "-X", "POST", "-d",
                                         '{"fail_fraction": %s, "fail_status": 500}' % fail_fraction,
                                         "http://127.0.0.1:9080/demo/fault")
        self.assertEqual(status, 200, body)

    def test_5a_retries_hide_a_flaky_replica(self):
        # reviews-v3 fails half its requests; 3 retries on 5xx (to other hosts first) keep the page up.
        self.set_fault("reviews-v3-0", 0.5)
        try:
            seen, failures = self.versions(100)
            self.assertGreater(failures, 5, "without retries the flaky replica must show")
            self.apply("retries-timeout.yaml", "reviews-vs.yaml")
            self.assertTrue(wait_until(lambda: self.versions(50)[1] == 0, 10), "retries never applied")
            seen, failures = self.versions(600)
            self.assertLessEqual(failures, 3, seen)  # >= 99.5% success
        finally:
            self.set_fault("reviews-v3-0", 0)
            self.remove("reviews-vs.yaml")

    def test_5b_fault_injection_aborts_a_share_of_ratings_calls(self):
        with open(os.path.join(SCENARIOS, "fault-injection.yaml")) as f:
            scenario = f.read()
        # The scenario's 10% 5 s delay would only slow the test down; the abort share is what is checked.
        scenario = scenario.replace("value: 10\n        fixedDelay: 5s", "value: 0\n        fixedDelay: 5s")
        with open(os.path.join(self.mesh_dir, "fault-injection.yaml"), "w") as f:
            f.write(scenario)
        try:
            def ratings_statuses(n):
                out = []
                for _ in range(n):
                    status, body = self.client.get()
                    if not body:
                        continue
                    reviews = upstream(json.loads(body), "reviews")
                    if reviews and isinstance(reviews.get("body"), dict):
                        for u in reviews["body"].get("upstreams", []):
                            out.append(u["status"])
                return out
            self.assertTrue(wait_until(lambda: 503 in ratings_statuses(100), 15), "no abort ever seen")
            statuses = ratings_statuses(900)  # ~600 ratings calls (v2 and v3 call ratings)
            share = statuses.count(503) / float(len(statuses))
            self.assertGreater(len(statuses), 400)
            self.assertTrue(0.01 < share < 0.10, (share, len(statuses)))
        finally:
            self.remove("fault-injection.yaml")

    def sidecar_stats(self, workload):
        status, body = self.in_namespace(workload, "http://127.0.0.1:15000/stats")
        self.assertEqual(status, 200)
        return dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)

    def test_5c_outlier_detection_ejects_a_broken_replica(self):
        reviews_cluster = "cluster.outbound|9080||reviews.default.svc.cluster.local.outlier_detection."
        original = os.path.join(self.mesh_dir, "reviews-destination-rule.yaml")
        with open(original) as f:
            saved = f.read()
        shutil.copy(os.path.join(SCENARIOS, "outlier-detection.yaml"), original)
        try:
            self.assertTrue(wait_until(lambda: reviews_cluster + "ejections_active" in
                                       self.sidecar_stats("productpage-v1-0"), 10), "no outlier detection")
            self.set_fault("reviews-v3-0", 1)
            seen, failures = self.versions(30)
            self.assertGreater(failures, 0)
            time.sleep(1.5)  # interval: 1s
            seen, failures = self.versions(100)
            self.assertEqual(failures, 0, seen)
            self.assertNotIn("v3", seen)
            stats = self.sidecar_stats("productpage-v1-0")
            self.assertEqual(stats[reviews_cluster + "ejections_enforced_consecutive_5xx"], "1")
            self.assertEqual(stats[reviews_cluster + "ejections_active"], "1")
        finally:
            self.set_fault("reviews-v3-0", 0)
            with open(original, "w") as f:
                f.write(saved)

    def test_6_second_mesh_is_refused(self):
        r = subprocess.run([sheave_binary(), "--state-dir", self.state, "up", self.mesh_dir],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already running", r.stderr)

    def test_7_control_plane_down_traffic_flows_and_resyncs(self):
        pid = self.status()["control"]["pid"]
        os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            self.assertEqual(self.client.get()[0], 200)
        # sheave up restarts it; the proxies reconnect and take new configuration again.
        self.assertTrue(wait_until(lambda: self.status()["control"]["pid"] != pid and
                                   self.status()["control"]["status"] == "running", 20))
        self.apply("canary-90-10.yaml", "reviews-vs.yaml")
        try:
            self.assertTrue(self.wait_for_versions({"v1", "v2"}, timeout=20), "no resync after restart")
        finally:
            self.remove("reviews-vs.yaml")

    def sheave(self, *args):
        return subprocess.run([sheave_binary(), "--state-dir", self.state, *args],
                              capture_output=True, text=True, timeout=30)

    def test_8_debugging_tools_see_the_running_mesh(self):
        # analyze without paths reads the running mesh's directory.
        r = self.sheave("analyze")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("No validation issues found", r.stdout)

        # Every sidecar and the gateway, in sync with sheave-control.
        expected = len(self.status()["workloads"]) + 1

        def all_synced():
            r = self.sheave("proxy-status")
            rows = [line for line in r.stdout.splitlines()[1:] if line.strip()]
            return (r.returncode == 0 and len(rows) == expected and
                    all("STALE" not in row and "NACKED" not in row for row in rows))
        self.assertTrue(wait_until(all_synced, 20), self.sheave("proxy-status").stdout)
        self.assertIn("istio-ingressgateway.istio-system", self.sheave("proxy-status").stdout)
        r = self.sheave("proxy-status", "productpage-v1-0")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.split("\n")[:3], ["Clusters Match", "Listeners Match", "Routes Match"])

        r = self.sheave("proxy-config", "clusters", "productpage-v1-0", "--fqdn", "reviews")
        self.assertEqual(r.returncode, 0, r.stderr)
        for subset in ("v1", "v2", "v3"):
            self.assertRegex(r.stdout, r"reviews\.default\.svc\.cluster\.local +9080 +%s +outbound +EDS +reviews\.default" % subset)
        self.assertNotIn("ratings", r.stdout)

        reviews_v2 = self.workload("reviews-v2-0")["address"]
        r = self.sheave("proxy-config", "endpoints", "productpage-v1-0",
                        "--cluster", "outbound|9080|v2|reviews.default.svc.cluster.local")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"%s:9080 +HEALTHY +OK" % reviews_v2.replace(".", r"\."))
        self.assertEqual(len(r.stdout.strip().splitlines()), 2, r.stdout)

        r = self.sheave("proxy-config", "secret", "productpage-v1-0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"default +Cert Chain +ACTIVE +true +[0-9a-f]+ .*" + PRODUCTPAGE_ID)
        self.assertIn("ROOTCA", r.stdout)

        r = self.sheave("proxy-config", "listeners", "productpage-v1-0", "--port", "15006")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("virtualInbound", r.stdout)
        r = self.sheave("proxy-config", "routes", "istio-ingressgateway")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bookinfo.default", r.stdout)
        r = self.sheave("proxy-config", "log", "productpage-v1-0", "--level", "info")
        self.assertEqual(r.returncode, 0, r.stderr)

        # explain's verdict and a real request agree.
        r = self.sheave("explain", "--from", "productpage-v1", "http://reviews:9080/reviews/0")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.in_namespace("productpage-v1-0", "http://reviews:9080/reviews/0")[0], 200)

        r = self.sheave("describe", "pod", "productpage-v1-0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Identity: " + PRODUCTPAGE_ID, r.stdout)

        r = self.sheave("proxy-config", "clusters", "nosuch-v1-0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("productpage-v1-0.default", r.stderr)

    def reviews_statuses(self, n):
        """Through the gateway: how productpage's calls to reviews were answered, by status."""
        seen = {}
        for _ in range(n):
            status, body = self.client.get()
            try:
                u = upstream(json.loads(body), "reviews")
            except ValueError:
                u = None
            key = u.get("status") if u else status
            seen[key] = seen.get(key, 0) + 1
        return seen

    def mistake(self, name):
        shutil.copy(os.path.join(REPO, "examples", "bookinfo-mistakes", name),
                    os.path.join(self.mesh_dir, "mistake.yaml"))

    def test_8b_the_walkthrough_mistakes_do_what_analyze_says(self):
        # docs/debugging.md: each mistake, what analyze reports, and what really happens.
        self.mistake("503-canary-subset-not-defined.yaml")
        try:
            r = self.sheave("analyze")
            self.assertEqual(r.returncode, 79, r.stdout)
            self.assertIn('[IST0101] (VirtualService default/reviews', r.stdout)
            self.assertTrue(wait_until(lambda: 503 in self.reviews_statuses(40), 15), self.reviews_statuses(40))
            self.assertIn(200, self.reviews_statuses(20))
            r = self.sheave("explain", "--from", "productpage-v1", "http://reviews:9080/")
            self.assertIn("Verdict: 10%: no cluster: 503 NC; 90%: allowed", r.stdout)
        finally:
            self.remove("mistake.yaml")
        self.assertTrue(wait_until(lambda: set(self.reviews_statuses(20)) == {200}, 15))

        self.mistake("403-allow-never-reached.yaml")
        try:
            r = self.sheave("analyze")
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertIn("[SHV0007] (AuthorizationPolicy default/ratings-from-reviews", r.stdout)
            ratings = lambda: self.in_namespace("reviews-v2-0", "http://ratings:9080/ratings/0")  # noqa: E731
            self.assertTrue(wait_until(lambda: ratings()[0] == 403, 10), ratings())
            r = self.sheave("explain", "--from", "reviews-v2", "http://ratings:9080/ratings/0")
            self.assertEqual(r.returncode, 1)
            self.assertIn("Verdict: denied: 403 RBAC: access denied (DENY ns[default]-policy[lockdown]", r.stdout)
        finally:
            self.remove("mistake.yaml")
        self.assertTrue(wait_until(lambda: self.client.get()[0] == 200, 15))

        self.mistake("canary-gets-no-traffic.yaml")
        try:
            r = self.sheave("analyze")
            self.assertIn("[IST0130] (VirtualService default/reviews", r.stdout)
            self.assertTrue(self.wait_for_versions({"v1"}, headers={"end-user": "jason"}),
                            self.versions(20, {"end-user": "jason"}))
            r = self.sheave("explain", "--from", "productpage-v1", "-H", "end-user: jason", "http://reviews:9080/")
            self.assertIn("Verdict: allowed: reaches reviews-v1-0\n", r.stdout)
        finally:
            self.remove("mistake.yaml")

    def test_8c_a_crashed_application_is_restarted(self):
        before = self.workload("ratings-v1-0")
        os.kill(before["app_pid"], signal.SIGKILL)
        self.assertTrue(wait_until(lambda: self.workload("ratings-v1-0")["app_restarts"] == before["app_restarts"] + 1
                                   and self.workload("ratings-v1-0")["app"] == "running", 10),
                        self.workload("ratings-v1-0"))
        self.assertNotEqual(self.workload("ratings-v1-0")["app_pid"], before["app_pid"])
        ratings = lambda: self.in_namespace("reviews-v2-0", "http://ratings:9080/ratings/0")  # noqa: E731
        self.assertTrue(wait_until(lambda: ratings()[0] == 200, 10), ratings())

    def test_9_killed_sidecar_fails_closed(self):
        details = self.workload("details-v1-0")
        os.kill(details["sidecar_pid"], signal.SIGKILL)
        self.assertTrue(wait_until(lambda: self.workload("details-v1-0")["sidecar"].startswith("exited"), 10))
        # Nothing reaches details around its sidecar: the redirect to 15006 finds no listener.
        c = http.client.HTTPConnection(details["address"], 9080, timeout=3)
        try:
            c.request("GET", "/")
            status = c.getresponse().status
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            c.close()
        self.assertEqual(status, 0)
        status, body = self.client.get()
        self.assertEqual(status, 502)
        self.assertNotEqual(upstream(json.loads(body), "details")["status"], 200)
        table = subprocess.run([sheave_binary(), "--state-dir", self.state, "status"],
                               capture_output=True, text=True, timeout=10).stdout
        self.assertRegex(table, r"default/details-v1-0\s+\S+\s+running\s+exited")

    def test_z_down_leaves_nothing_behind(self):
        r = subprocess.run([sheave_binary(), "--state-dir", self.state, "down"], capture_output=True, text=True,
                           timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.up.wait(timeout=30), 0, self.up_output())
        nothing_left_behind(self)
        r = subprocess.run([sheave_binary(), "--state-dir", self.state, "status"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 3)
        self.assertIn("no mesh is running", r.stdout)


if __name__ == "__main__":
    unittest.main()
