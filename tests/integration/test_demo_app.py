"""sheave-demo-app, the application behind the local mesh's Bookinfo: its answers, upstream calls and the
faults it can be told to inject. Real processes on loopback."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest

from lib.proxy import free_port, http_request, wait_until, REPO_ROOT


def demo_binary():
    proxy = os.environ.get("SHEAVE_PROXY")
    if proxy:
        return os.path.join(os.path.dirname(proxy), "sheave-demo-app")
    return os.path.join(REPO_ROOT, "build", "bin", "sheave-demo-app")


class DemoApp:
    def __init__(self, *args, env=None):
        self.port = free_port()
        self.proc = subprocess.Popen([demo_binary(), "--listen", "127.0.0.1:%d" % self.port, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, **(env or {})})
        if not wait_until(lambda: self.proc.poll() is not None or self.get("/healthz").status == 200, 10):
            raise AssertionError("demo app did not start")

    def get(self, path="/", method="GET", body=None, headers=None):
        try:
            return http_request(self.port, method, path, host="x", headers=headers, body=body, timeout=5)
        except OSError:
            class Failed:
                status = 0
                body = b""
            return Failed()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self.output = self.proc.stdout.read()
        self.proc.stdout.close()
        return code


class DemoAppTest(unittest.TestCase):
    def setUp(self):
        self.apps = []

    def tearDown(self):
        for app in self.apps:
            if app.proc.poll() is None:
                app.proc.kill()
                app.proc.wait()
            if not app.proc.stdout.closed:
                app.proc.stdout.close()

    def start(self, *args, env=None):
        app = DemoApp(*args, env=env)
        self.apps.append(app)
        return app

    def test_chain_with_header_forwarding_and_caller(self):
        ratings = self.start("--name", "ratings")
        reviews = self.start("--name", "reviews", "--version", "v2",
                             "--upstream", "http://ratings:%d/ratings/0" % ratings.port,
                             env={"RATINGS_SERVICE_HOST": "127.0.0.1"})
        xfcc = "By=spiffe://cluster.local/ns/default/sa/reviews;Hash=ab;URI=spiffe://cluster.local/ns/default/sa/pp"
        r = reviews.get("/reviews/0", headers={"x-canary-user": "true", "x-request-id": "abc",
                                               "x-secret": "no", "x-forwarded-client-cert": xfcc})
        self.assertEqual(r.status, 200)
        page = json.loads(r.body)
        self.assertEqual((page["name"], page["version"], page["path"]), ("reviews", "v2", "/reviews/0"))
        self.assertEqual(page["caller"], "spiffe://cluster.local/ns/default/sa/pp")
        up = page["upstreams"][0]
        self.assertEqual(up["status"], 200)
        self.assertEqual(up["body"]["name"], "ratings")
        self.assertEqual(up["body"]["headers"]["x-canary-user"], "true")
        self.assertEqual(up["body"]["headers"]["x-request-id"], "abc")
        self.assertEqual(up["body"]["headers"]["host"], "ratings:%d" % ratings.port)
        self.assertNotIn("x-secret", up["body"]["headers"])
        self.assertIsNone(up["body"]["caller"])

    def test_three_hop_chain_keeps_method_and_forwarded_headers(self):
        c = self.start("--name", "ratings")
        b = self.start("--name", "reviews", "--upstream", "http://127.0.0.1:%d/ratings/7" % c.port)
        # Configured through the environment, as the launcher does; the upstream host is a name only
        # the _SERVICE_HOST variable resolves.
        a = self.start(env={"DEMO_NAME": "productpage", "DEMO_VERSION": "v3",
                            "DEMO_UPSTREAM": "http://reviews-svc.default:9080/reviews",
                            "DEMO_FORWARD_HEADER": "x-extra",
                            "REVIEWS_SVC_SERVICE_HOST": "127.0.0.1",
                            "REVIEWS_SVC_SERVICE_PORT": str(b.port)})
        r = a.get("/productpage?u=1", method="PATCH", body=b"{}",
                  headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                           "end-user": "jason", "x-extra": "1", "cookie": "session=1"})
        self.assertEqual(r.status, 200, r.body)
        page = json.loads(r.body)
        self.assertEqual((page["name"], page["version"], page["method"]), ("productpage", "v3", "PATCH"))
        self.assertEqual(page["headers"]["end-user"], "jason")
        hop_b = page["upstreams"][0]
        self.assertEqual(hop_b["url"], "http://reviews-svc.default:9080/reviews")
        self.assertEqual(hop_b["body"]["method"], "PATCH")
        self.assertEqual(hop_b["body"]["headers"]["host"], "reviews-svc.default:9080")
        self.assertEqual(hop_b["body"]["headers"]["x-extra"], "1")
        hop_c = hop_b["body"]["upstreams"][0]["body"]
        self.assertEqual((hop_c["name"], hop_c["path"], hop_c["method"]), ("ratings", "/ratings/7", "PATCH"))
        self.assertEqual(hop_c["headers"]["traceparent"][:3], "00-")
        self.assertEqual(hop_c["headers"]["end-user"], "jason")
        self.assertEqual(hop_c["headers"]["cookie"], "session=1")
        self.assertNotIn("x-extra", hop_c["headers"])  # only a was told to forward it

    def test_latency_flag_and_runtime_latency(self):
        app = self.start("--name", "details", "--latency", "300ms")
        t0 = time.monotonic()
        self.assertEqual(app.get("/details/0").status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        t0 = time.monotonic()
        self.assertEqual(app.get("/healthz").status, 200)
        self.assertLess(time.monotonic() - t0, 0.25)  # health checks are never slowed
        r = app.get("/demo/fault", method="POST", body=b'{"latency_ms": 0}')
        self.assertEqual(json.loads(r.body), {"fail_fraction": 0, "fail_status": 503, "latency_ms": 0})
        t0 = time.monotonic()
        self.assertEqual(app.get("/details/0").status, 200)
        self.assertLess(time.monotonic() - t0, 0.25)
        self.assertEqual(app.stop(), 0)

    def test_one_log_line_per_request(self):
        app = self.start("--name", "details", "--fail-fraction", "1", "--fail-status", "500")
        self.assertEqual(app.get("/details/1", method="DELETE").status, 500)
        self.assertEqual(app.stop(), 0)
        lines = [l for l in app.output.splitlines() if l.startswith("DELETE ")]
        self.assertEqual(len(lines), 1, app.output)
        method, path, status, took = lines[0].split()
        self.assertEqual((path, status), ("/details/1", "500"))
        self.assertTrue(took.endswith("ms") and float(took[:-2]) >= 0, took)

    def test_failing_upstream_makes_a_502_unless_tolerated(self):
        dead = free_port()
        strict = self.start("--name", "pp", "--upstream", "http://127.0.0.1:%d/" % dead)
        self.assertEqual(strict.get().status, 502)
        self.assertEqual(json.loads(strict.get().body)["upstreams"][0]["status"], 0)
        tolerant = self.start("--name", "pp", "--tolerate-upstream-errors",
                              "--upstream", "http://127.0.0.1:%d/" % dead)
        self.assertEqual(tolerant.get().status, 200)

    def test_fail_fraction_and_runtime_fault_changes(self):
        app = self.start("--name", "reviews", "--fail-fraction", "0.5", "--fail-status", "500")
        statuses = [app.get().status for _ in range(400)]
        failed = statuses.count(500)
        self.assertEqual(failed + statuses.count(200), 400)
        self.assertTrue(160 <= failed <= 240, failed)  # 0.4..0.6; 4 standard deviations
        r = app.get("/demo/fault", method="POST", body=b'{"fail_fraction": 1, "fail_status": 503}')
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["fail_fraction"], 1)
        self.assertEqual({app.get().status for _ in range(20)}, {503})
        self.assertEqual(app.get("/healthz").status, 200)  # never faulted
        self.assertEqual(app.get("/demo/fault", method="POST", body=b'{"fail_fraction": 2}').status, 400)
        self.assertEqual(app.get("/demo/fault", method="POST", body=b'nope').status, 400)

    def test_crash_after_and_clean_sigterm(self):
        app = self.start("--name", "x", "--crash-after", "3")
        self.assertEqual([app.get().status for _ in range(3)], [200, 200, 200])
        self.assertEqual(app.get().status, 0)
        self.assertEqual(app.proc.wait(timeout=5), 1)
        other = self.start("--name", "y", "--latency", "500ms")
        self.assertEqual(other.get().status, 200)
        # SIGTERM while a request is in flight: it still gets its answer, then the process exits 0.
        answers = []
        slow = threading.Thread(target=lambda: answers.append(other.get().status))
        slow.start()
        time.sleep(0.2)
        self.assertEqual(other.stop(), 0)
        slow.join(5)
        self.assertEqual(answers, [200])
        self.assertEqual(other.get("/healthz").status, 0)

    def test_bad_flags_exit_2_with_a_sentence(self):
        r = subprocess.run([demo_binary(), "--name", "x", "--fail-fraction", "3"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--fail-fraction must be in [0, 1]", r.stderr)


if __name__ == "__main__":
    unittest.main()
