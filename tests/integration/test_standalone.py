"""examples/standalone/envoy.yaml, run for real: the example's own file with only its four ports substituted.

Substituting text on a copy (instead of keeping a JSON twin of the example) means the test always runs exactly what
the README shows, and `--mode validate` checks the real, unmodified file.
"""

import os
import re
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

EXAMPLE = os.path.join(P.REPO_ROOT, "examples", "standalone", "envoy.yaml")


def rewrite_ports(text, mapping):
    """Replaces `port_value: <old>` (whole numbers only) by the new ports; fails if an old port is missing."""
    for old, new in mapping.items():
        pattern = re.compile(r"(port_value:\s*)%d\b" % old)
        text, n = pattern.subn(lambda m: m.group(1) + str(new), text)
        if n == 0:
            raise AssertionError("port %d not found in %s" % (old, EXAMPLE))
    return text


def example_text():
    if not os.path.exists(EXAMPLE):
        raise AssertionError("%s is missing" % EXAMPLE)
    with open(EXAMPLE) as f:
        return f.read()


class StandaloneExampleTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        # The example's clusters are STRICT_DNS on `localhost`: listen on ::1 as well in case it resolves to IPv6.
        cls.v1 = cls.start_upstream("api_service_upstream", also_ipv6=True)
        cls.v2 = cls.start_upstream("api_v2_service_upstream", also_ipv6=True)
        cls.listen_port = P.free_port()
        cls.admin_port = P.free_port()
        text = rewrite_ports(example_text(), {8080: cls.listen_port, 9901: cls.admin_port,
                                              18081: cls.v1.port, 18082: cls.v2.port})
        p = cls.new_proxy(text, fmt="yaml")
        p.admin_port = cls.admin_port
        p.start()
        cls.proxy = p

    def test_api_v1_reaches_upstream_1(self):
        r = P.get(self.listen_port, "/api/v1/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("x-upstream-name"), "api_service_upstream")
        self.assertGreaterEqual(self.v1.count_path("/api/v1/x"), 1)
        self.assertEqual(self.v2.count_path("/api/v1/x"), 0)

    def test_api_v2_reaches_upstream_2(self):
        r = P.get(self.listen_port, "/api/v2/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("x-upstream-name"), "api_v2_service_upstream")
        self.assertEqual(self.v1.count_path("/api/v2/x"), 0)

    def test_unrouted_path_is_404_with_flag_NR(self):
        before = self.v1.count + self.v2.count
        r = P.get(self.listen_port, "/other")
        self.assertEqual(r.status, 404)
        self.assertEqual(self.v1.count + self.v2.count, before, "a 404 NR must not reach any upstream")
        line = self.proxy.wait_for_log(lambda l: '"GET /other ' in l)
        self.assertIsNotNone(line, "no access-log line for /other; stdout:\n" + self.proxy.stdout())
        fields = P.parse_access_log_line(line)
        self.assertIsNotNone(fields, "access-log line is not in Envoy's default format: %r" % line)
        self.assertEqual(fields["code"], "404")
        self.assertEqual(fields["flags"], "NR")
        self.assertEqual(fields["upstream_host"], "-")

    def test_access_log_line_for_proxied_request(self):
        P.get(self.listen_port, "/api/v1/logged", headers={"User-Agent": "integ-test"})
        line = self.proxy.wait_for_log(lambda l: '"GET /api/v1/logged ' in l)
        self.assertIsNotNone(line, self.proxy.stdout())
        fields = P.parse_access_log_line(line)
        self.assertIsNotNone(fields, line)
        self.assertEqual(fields["code"], "200")
        self.assertEqual(fields["flags"], "-")
        self.assertEqual(fields["protocol"], "HTTP/1.1")
        self.assertEqual(fields["user_agent"], "integ-test")
        self.assertEqual(fields["authority"], "example.com")
        self.assertRegex(fields["upstream_host"], r"^(127\.0\.0\.1|\[::1\]):%d$" % self.v1.port)
        self.assertRegex(fields["request_id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        # %BYTES_RECEIVED% and %BYTES_SENT% count body bytes only; a GET has none.
        self.assertEqual(fields["bytes_received"], "0")
        self.assertGreater(int(fields["bytes_sent"]), 0)
        # %DURATION%: total milliseconds of the request, always present when it completed.
        self.assertRegex(fields["duration"], r"^\d+$")

    def test_access_log_counts_request_body_bytes(self):
        P.http_request(self.listen_port, "POST", "/api/v1/posted", body=b"x" * 1234)
        line = self.proxy.wait_for_log(lambda l: '"POST /api/v1/posted ' in l)
        self.assertIsNotNone(line, self.proxy.stdout())
        fields = P.parse_access_log_line(line)
        self.assertEqual(fields["bytes_received"], "1234")


class StandaloneValidateTest(ProxyTestCase):
    def test_validate_accepts_the_example(self):
        p = self.new_proxy(None, config_path=EXAMPLE)
        code, out, err = p.run_mode("validate")
        self.assertEqual(code, 0, "validate failed on the example:\n" + out + err)

    def _broken(self, old, new):
        text = example_text()
        self.assertIn(old, text)
        p = self.new_proxy(text.replace(old, new, 1), fmt="yaml")
        return p, p.run_mode("validate")

    def test_validate_rejects_unknown_field_with_path(self):
        p, (code, out, err) = self._broken("lb_policy: ROUND_ROBIN", "lb_polcy: ROUND_ROBIN")
        self.assertEqual(code, 1, out + err)
        self.assertIn(p.config_path, err)
        self.assertIn("lb_polcy", err)
        self.assertRegex(err, r"clusters(\[0\]|\.0)", "the error should give the field path of the bad field")

    def test_validate_rejects_wrong_type_with_path(self):
        p, (code, out, err) = self._broken("connect_timeout: 5s", "connect_timeout: [1, 2]")
        self.assertEqual(code, 1, out + err)
        self.assertIn(p.config_path, err)
        self.assertIn("connect_timeout", err)

    def test_validate_binds_nothing(self):
        # Hold the listener and admin ports ourselves: a validate run that tried to bind them would fail.
        import socket
        held = []
        try:
            ports = []
            for _ in range(2):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                s.listen(1)
                held.append(s)
                ports.append(s.getsockname()[1])
            text = rewrite_ports(example_text(), {8080: ports[0], 9901: ports[1]})
            p = self.new_proxy(text, fmt="yaml")
            code, out, err = p.run_mode("validate")
            self.assertEqual(code, 0, out + err)
        finally:
            for s in held:
                s.close()

if __name__ == "__main__":
    unittest.main()
