"""Local rate limiting (envoy.filters.http.local_ratelimit).

Envoy facts relied on: the filter's token bucket starts full with max_tokens and gains tokens_per_fill every
fill_interval; it is shared by every worker and connection of the proxy. filter_enabled and filter_enforced default
to 0%: with enabled but not enforced a request over the limit is only counted. A limited, enforced request gets 429
(or `status`) with body "local_rate_limited" and response flag RL, plus response_headers_to_add. A route's (or
virtual host's) typed_per_filter_config["envoy.filters.http.local_ratelimit"] replaces the listener's config with a
bucket of its own. Descriptors: the route's rate_limits actions build descriptors for the request; a descriptor the
config lists uses that entry's bucket. enable_x_ratelimit_headers: DRAFT_VERSION_03 adds x-ratelimit-limit,
x-ratelimit-remaining and x-ratelimit-reset. Stats: <stat_prefix>.http_local_rate_limit.{enabled,enforced,
rate_limited,ok}.
"""

import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
NAME = "envoy.filters.http.local_ratelimit"
ALL = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
NONE = {"default_value": {"numerator": 0, "denominator": "HUNDRED"}}


def limit(prefix, max_tokens, fill="60s", per_fill=None, enforced=ALL, **extra):
    bucket = {"max_tokens": max_tokens, "fill_interval": fill}
    if per_fill is not None:
        bucket["tokens_per_fill"] = per_fill
    cfg = {"@type": TYPE, "stat_prefix": prefix, "token_bucket": bucket, "filter_enabled": ALL,
           "filter_enforced": enforced}
    cfg.update(extra)
    return cfg


def limited_route(prefix, cfg, **action):
    r = P.route(prefix, "backend", **action)
    r["typed_per_filter_config"] = {NAME: cfg}
    return r


class LocalRateLimitTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        per_user = limit("per_user", 100, descriptors=[
            {"entries": [{"key": "user", "value": "alice"}], "token_bucket": {"max_tokens": 1, "fill_interval": "60s"}}])
        routes = [
            limited_route("/route-limited", limit("route_limiter", 2)),
            limited_route("/refill", limit("refill_limiter", 2, fill="0.5s", per_fill=1)),
            limited_route("/shadow", limit("shadow_limiter", 1, enforced=NONE, request_headers_to_add_when_not_enforced=[
                {"header": {"key": "x-local-ratelimited", "value": "shadow"}}])),
            limited_route("/teapot", limit("teapot_limiter", 1, status={"code": 418})),
            limited_route("/per-user", per_user, rate_limits=[
                {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}]),
            P.route("/", "backend"),
        ]
        listener_limit = limit("http_local_rate_limiter", 5, enable_x_ratelimit_headers="DRAFT_VERSION_03",
                               response_headers_to_add=[{"header": {"key": "x-local-rate-limit", "value": "true"}}])
        http_filters = [{"name": NAME, "typed_config": listener_limit}]
        cfg = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([P.virtual_host("all", routes)], http_filters=http_filters))],
            [P.static_cluster("backend", [("127.0.0.1", cls.up.port)])],
            P.free_port())
        cls.proxy = cls.start_proxy(cfg, concurrency=2)

    def test_listener_bucket_shared_by_every_connection(self):
        results = [P.get(self.port, "/limited") for _ in range(8)]  # a new connection each
        self.assertEqual([r.status for r in results], [200] * 5 + [429] * 3)
        limited = results[5]
        self.assertEqual(limited.body, b"local_rate_limited")
        self.assertEqual(limited.headers.get("x-local-rate-limit"), "true")
        self.assertNotIn("x-local-rate-limit", results[0].headers, "response_headers_to_add is for limited responses")
        self.assertEqual(limited.headers.get("x-ratelimit-limit"), "5")
        self.assertEqual(limited.headers.get("x-ratelimit-remaining"), "0")
        self.assertIn(results[0].headers.get("x-ratelimit-remaining"), ("4",))
        reset = int(limited.headers.get("x-ratelimit-reset"))
        self.assertTrue(0 < reset <= 60, reset)
        self.assertEqual(self.up.count_path("/limited"), 5)
        line = self.proxy.wait_for_log(lambda l: '"GET /limited ' in l and '" 429 ' in l)
        self.assertIsNotNone(line)
        self.assertEqual(P.parse_access_log_line(line)["flags"], "RL")
        stats = self.proxy.stats()
        prefix = "http_local_rate_limiter.http_local_rate_limit."
        self.assertEqual(stats.get(prefix + "ok"), 5, stats)
        self.assertEqual(stats.get(prefix + "rate_limited"), 3)
        self.assertEqual(stats.get(prefix + "enforced"), 3)
        self.assertEqual(stats.get(prefix + "enabled"), 8)

    def test_route_config_has_its_own_bucket(self):
        self.assertEqual([P.get(self.port, "/route-limited").status for _ in range(4)], [200, 200, 429, 429])
        self.assertEqual(self.proxy.stat("route_limiter.http_local_rate_limit.ok"), 2)

    def test_bucket_refills(self):
        self.assertEqual([P.get(self.port, "/refill").status for _ in range(3)], [200, 200, 429])
        time.sleep(0.6)
        self.assertEqual([P.get(self.port, "/refill").status for _ in range(2)], [200, 429],
                         "one fill adds tokens_per_fill (1) token")

    def test_not_enforced_only_counts(self):
        self.assertEqual([P.get(self.port, "/shadow").status for _ in range(3)], [200] * 3)
        self.assertEqual(self.proxy.stat("shadow_limiter.http_local_rate_limit.rate_limited"), 2)
        self.assertEqual(self.proxy.stat("shadow_limiter.http_local_rate_limit.enforced"), 0)
        # request_headers_to_add_when_not_enforced: only the two over the limit carry the mark.
        marks = [dict(h).get("x-local-ratelimited") for _, path, h in self.up.requests() if path == "/shadow"]
        self.assertEqual(marks, [None, "shadow", "shadow"])

    def test_custom_status(self):
        self.assertEqual([P.get(self.port, "/teapot").status for _ in range(2)], [200, 418])

    def test_descriptor_bucket_per_user(self):
        alice = [P.get(self.port, "/per-user", headers={"x-user": "alice"}).status for _ in range(3)]
        bob = [P.get(self.port, "/per-user", headers={"x-user": "bob"}).status for _ in range(3)]
        self.assertEqual(alice, [200, 429, 429], "alice's descriptor has one token")
        self.assertEqual(bob, [200] * 3, "bob's descriptor is not listed: the default bucket (100) applies")


class LocalRateLimitConfigTest(ProxyTestCase):
    def check_rejected(self, typed_config, expect):
        cfg = P.simple_http_bootstrap(P.free_port(), P.free_port(), P.free_port(),
                                      http_filters=[{"name": NAME, "typed_config": typed_config}])
        p = self.new_proxy(cfg)
        code, out, err = p.run_mode("validate")
        self.assertEqual(code, 1, out + err)
        self.assertIn(expect, err)

    def test_fill_interval_below_50ms(self):
        self.check_rejected(limit("x", 1, fill="0.01s"), "token_bucket.fill_interval")

    def test_stat_prefix_required(self):
        cfg = limit("x", 1)
        del cfg["stat_prefix"]
        self.check_rejected(cfg, "stat_prefix")

    def test_descriptor_without_bucket(self):
        self.check_rejected(limit("x", 1, descriptors=[{"entries": [{"key": "k", "value": "v"}]}]),
                            "descriptors[0].token_bucket")


if __name__ == "__main__":
    unittest.main()
