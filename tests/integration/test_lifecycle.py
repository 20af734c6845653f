"""Start-up failure and shutdown.

Sheave's contract (from the brief, Istio's sidecar behaviour built into the proxy): SIGTERM starts a drain in which
listeners stop accepting, in-flight requests finish, and the process exits 0 within --drain-time-s. A bad bootstrap
exits 1 with "<file>: <field path>: <what>" on stderr and binds nothing.
"""

import copy
import socket
import signal
import threading
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

DRAIN_S = 3


def refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class DrainTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")

    def start(self):
        port = P.free_port()
        p = self.start_proxy(P.simple_http_bootstrap(self.up.port, port, P.free_port(),
                                                     route_action={"timeout": "10s"}),
                             drain_time_s=DRAIN_S)
        return p, port

    def test_sigterm_lets_in_flight_request_finish(self):
        p, port = self.start()
        result = {}

        def slow():
            try:
                result["r"] = P.get(port, "/delay/1500", timeout=10)
            except OSError as e:
                result["e"] = e

        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(P.wait_until(lambda: self.up.count_path("/delay/1500") >= 1, 3), "slow request not started")
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        # New connections are refused once the drain has started (the listeners are closed).
        self.assertTrue(P.wait_until(lambda: refused(port), 1.0), "listener still accepting during drain")
        t.join(10)
        self.assertNotIn("e", result, result.get("e"))
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(result["r"].body, b"delayed")
        code = p.wait_exit(DRAIN_S + 3)
        self.assertEqual(code, 0, "exit code after SIGTERM; stderr:\n" + p.stderr()[-2000:])
        self.assertLess(time.monotonic() - t0, DRAIN_S + 3)

    def test_sigterm_when_idle_exits_promptly(self):
        p, port = self.start()
        self.assertEqual(P.get(port, "/echo/x").status, 200)
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        code = p.wait_exit(DRAIN_S + 3)
        self.assertEqual(code, 0, p.stderr()[-2000:])
        self.assertLess(time.monotonic() - t0, DRAIN_S + 2)
        self.assertTrue(P.port_is_free(port))
        self.assertTrue(P.port_is_free(p.admin_port))

    def test_sigint_also_stops(self):
        p, _ = self.start()
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait_exit(DRAIN_S + 3), 0)


class BadBootstrapTest(ProxyTestCase):
    def run_serve(self, config, fmt="json"):
        """Starts the proxy in serve mode on a config that must fail; returns (exit code, stderr, proxy)."""
        p = self.new_proxy(config, fmt=fmt)
        p.admin_port = None  # do not wait for /ready
        p.start()
        code = p.wait_exit(10)
        if code is None:
            p.kill()
            self.fail("sheave-proxy kept running with a bad bootstrap")
        return code, p.stderr(), p

    def good(self, listen_port, admin_port):
        return P.simple_http_bootstrap(P.free_port(), listen_port, admin_port)

    def test_unknown_field_exits_1_and_binds_nothing(self):
        listen, admin = P.free_port(), P.free_port()
        cfg = self.good(listen, admin)
        cfg["static_resources"]["clusters"][0]["lb_polcy"] = "ROUND_ROBIN"
        code, err, p = self.run_serve(cfg)
        self.assertEqual(code, 1, err)
        self.assertIn(p.config_path, err)
        self.assertIn("lb_polcy", err)
        self.assertRegex(err, r"static_resources\.clusters(\[0\]|\.0)")
        self.assertTrue(P.port_is_free(listen))
        self.assertTrue(P.port_is_free(admin))

    def test_wrong_type_names_field_path(self):
        listen, admin = P.free_port(), P.free_port()
        cfg = self.good(listen, admin)
        cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = "not-a-port"
        code, err, p = self.run_serve(cfg)
        self.assertEqual(code, 1, err)
        self.assertIn(p.config_path, err)
        self.assertIn("port_value", err)
        self.assertTrue(P.port_is_free(admin))

    def test_unknown_type_url(self):
        cfg = self.good(P.free_port(), P.free_port())
        hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["@type"] = "type.googleapis.com/envoy.extensions.filters.network.no_such_filter.v3.Nope"
        code, err, p = self.run_serve(cfg)
        self.assertEqual(code, 1, err)
        self.assertIn("no_such_filter", err)

    def test_yaml_syntax_error(self):
        code, err, p = self.run_serve("static_resources:\n  clusters: [\n    - name: x\n", fmt="yaml")
        self.assertEqual(code, 1, err)
        self.assertIn(p.config_path, err)

    def test_missing_file(self):
        p = self.new_proxy(None, config_path="/nonexistent/sheave/bootstrap.yaml")
        p.start()
        code = p.wait_exit(10)
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent/sheave/bootstrap.yaml", p.stderr())

    def test_port_in_use_fails_cleanly(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            taken = s.getsockname()[1]
            code, err, p = self.run_serve(self.good(taken, P.free_port()))
        self.assertEqual(code, 1, err)
        self.assertIn(str(taken), err)

    def test_validate_mode(self):
        listen, admin = P.free_port(), P.free_port()
        p = self.new_proxy(self.good(listen, admin))
        code, out, err = p.run_mode("validate")
        self.assertEqual(code, 0, out + err)
        bad = copy.deepcopy(self.good(listen, admin))
        bad["static_resources"]["clusters"][0]["type"] = "NOT_A_TYPE"
        p = self.new_proxy(bad)
        code, out, err = p.run_mode("validate")
        self.assertEqual(code, 1, out + err)
        self.assertIn(p.config_path, err)
        self.assertIn("NOT_A_TYPE", err)


if __name__ == "__main__":
    unittest.main()
