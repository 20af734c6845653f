"""Route matching and route actions, as Envoy's route table defines them.

Five upstreams (A..E) tell where a request went through the `x-upstream-name` response header they add.
"""

import http.client
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase


def hdr(key, value, action=None):
    h = {"header": {"key": key, "value": value}}
    if action:
        h["append_action"] = action
    return h


def mutations(level):
    """Header additions and removals for one level (route, virtual host or route configuration)."""
    return {
        "request_headers_to_add": [hdr("x-added-" + level, level),
                                   hdr("x-level", level, "OVERWRITE_IF_EXISTS_OR_ADD")],
        "request_headers_to_remove": ["x-remove-" + level],
        "response_headers_to_add": [hdr("x-resp-" + level, level),
                                    hdr("x-resp-level", level, "OVERWRITE_IF_EXISTS_OR_ADD")],
        "response_headers_to_remove": ["x-upstream-drop-" + level],
    }


class RoutingTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.up = {n: cls.start_upstream(n) for n in "ABCDE"}
        cls.port = P.free_port()
        admin = P.free_port()
        clusters = [P.static_cluster(n, [("127.0.0.1", u.port)]) for n, u in cls.up.items()]
        headers_route = {"match": {"prefix": "/echo/headers"}, "route": {"cluster": "A"}}
        headers_route.update(mutations("route"))
        headers_route["request_headers_to_add"].append(hdr("x-append", "route"))  # default action: append
        default_routes = [
            {"match": {"path": "/exact-path"}, "route": {"cluster": "A"}},
            {"match": {"safe_regex": {"regex": "/regex/[0-9]+"}}, "route": {"cluster": "B"}},
            {"match": {"prefix": "/hdr", "headers": [{"name": "x-canary", "string_match": {"exact": "yes"}}]},
             "route": {"cluster": "C"}},
            {"match": {"prefix": "/hdr", "headers": [{"name": "x-present", "present_match": True}]},
             "route": {"cluster": "E"}},
            {"match": {"prefix": "/hdr"}, "route": {"cluster": "A"}},
            {"match": {"prefix": "/qp", "query_parameters": [{"name": "debug", "string_match": {"exact": "1"}}]},
             "route": {"cluster": "B"}},
            {"match": {"prefix": "/qp"}, "route": {"cluster": "A"}},
            {"match": {"prefix": "/split"},
             "route": {"weighted_clusters": {"clusters": [{"name": "A", "weight": 25}, {"name": "B", "weight": 75}]}}},
            # /direct-503 before /direct: Envoy takes the first route that matches, and both prefixes match it.
            {"match": {"prefix": "/direct-503"}, "direct_response": {"status": 503}},
            {"match": {"prefix": "/direct"},
             "direct_response": {"status": 200, "body": {"inline_string": "direct hello"}}},
            {"match": {"prefix": "/redirect302"},
             "redirect": {"host_redirect": "other.example.com", "response_code": "FOUND"}},
            {"match": {"prefix": "/redirect"}, "redirect": {"path_redirect": "/new-place"}},
            {"match": {"prefix": "/rewrite/"},
             "route": {"cluster": "A", "prefix_rewrite": "/echo/", "host_rewrite_literal": "rewritten.example.com"}},
            headers_route,
            {"match": {"prefix": "/"}, "route": {"cluster": "D"}},
        ]
        default_vh = P.virtual_host("default", default_routes)
        default_vh.update(mutations("vh"))
        vhosts = [
            P.virtual_host("exact", [P.route("/", "A")], domains=["exact.example.com", "exact.suffix.example.com"]),
            P.virtual_host("suffix", [P.route("/", "B")], domains=["*.suffix.example.com"]),
            P.virtual_host("wide_suffix", [P.route("/", "E")], domains=["*.example.com"]),
            P.virtual_host("prefix", [P.route("/", "C")], domains=["prefix.*"]),
            default_vh,
        ]
        cfg = P.bootstrap([P.listener("listener_0", cls.port, P.hcm(vhosts, route_config_extra=mutations("rc")))],
                          clusters, admin)
        cls.proxy = cls.start_proxy(cfg)

    def where(self, path, host="example.com", headers=None):
        r = P.get(self.port, path, host=host, headers=headers)
        self.assertEqual(r.status, 200, "%s %s -> %r" % (host, path, r))
        return r.headers.get("x-upstream-name")

    # -- domains ------------------------------------------------------------------------------------------------

    def test_exact_domain(self):
        self.assertEqual(self.where("/", host="exact.example.com"), "A")

    def test_domain_match_ignores_case(self):
        self.assertEqual(self.where("/", host="EXACT.Example.COM"), "A")

    def test_exact_beats_suffix_wildcard(self):
        self.assertEqual(self.where("/", host="exact.suffix.example.com"), "A")

    def test_longest_suffix_wildcard_wins(self):
        self.assertEqual(self.where("/", host="x.suffix.example.com"), "B")
        self.assertEqual(self.where("/", host="x.example.com"), "E")

    def test_suffix_wildcard_beats_prefix_wildcard(self):
        self.assertEqual(self.where("/", host="prefix.suffix.example.com"), "B")

    def test_prefix_wildcard(self):
        self.assertEqual(self.where("/", host="prefix.anything.org"), "C")

    def test_wildcard_does_not_match_empty_label(self):
        # "*.example.com" needs at least one character before ".example.com": the bare domain falls to "*".
        self.assertEqual(self.where("/anything", host="example.com"), "D")

    def test_catch_all_domain(self):
        self.assertEqual(self.where("/", host="unknown.org"), "D")

    # -- path and request matchers ------------------------------------------------------------------------------

    def test_path_match_is_exact_and_ignores_query(self):
        self.assertEqual(self.where("/exact-path"), "A")
        self.assertEqual(self.where("/exact-path?x=1"), "A")
        self.assertEqual(self.where("/exact-path/more"), "D")
        self.assertEqual(self.where("/exact-pat"), "D")

    def test_safe_regex_matches_whole_path_only(self):
        self.assertEqual(self.where("/regex/123"), "B")
        self.assertEqual(self.where("/regex/123?q=abc"), "B")
        self.assertEqual(self.where("/regex/12a"), "D")
        self.assertEqual(self.where("/x/regex/123"), "D")

    def test_prefix_is_case_sensitive(self):
        self.assertEqual(self.where("/QP"), "D")

    def test_header_matchers(self):
        self.assertEqual(self.where("/hdr", headers={"x-canary": "yes"}), "C")
        self.assertEqual(self.where("/hdr", headers={"x-canary": "no"}), "A")
        self.assertEqual(self.where("/hdr", headers={"x-present": ""}), "E")
        self.assertEqual(self.where("/hdr"), "A")

    def test_query_parameter_matcher(self):
        self.assertEqual(self.where("/qp?debug=1"), "B")
        self.assertEqual(self.where("/qp?a=b&debug=1"), "B")
        self.assertEqual(self.where("/qp?debug=0"), "A")
        self.assertEqual(self.where("/qp"), "A")

    # -- actions ------------------------------------------------------------------------------------------------

    def test_weighted_clusters_split(self):
        n = 400
        counts = {"A": 0, "B": 0}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for _ in range(n):
                r = P.http_request(self.port, "GET", "/split", conn=conn)
                self.assertEqual(r.status, 200)
                counts[r.headers["x-upstream-name"]] += 1
        finally:
            conn.close()
        # Expected 100/300; the standard deviation is ~8.7, so +-40 fails only on a real skew.
        self.assertLess(abs(counts["A"] - 100), 40, counts)
        self.assertEqual(counts["A"] + counts["B"], n)

    def test_direct_response(self):
        before = sum(u.count for u in self.up.values())
        r = P.get(self.port, "/direct")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"direct hello")
        r = P.get(self.port, "/direct-503")
        self.assertEqual(r.status, 503)
        self.assertEqual(sum(u.count for u in self.up.values()), before, "direct responses never reach upstreams")

    def test_path_redirect_defaults_to_301(self):
        r = P.get(self.port, "/redirect/x", host="example.com")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.headers.get("location"), "http://example.com/new-place")

    def test_host_redirect_with_found(self):
        r = P.get(self.port, "/redirect302/x?y=1", host="example.com")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.headers.get("location"), "http://other.example.com/redirect302/x?y=1")

    def test_prefix_rewrite_and_host_rewrite_literal(self):
        r = P.get(self.port, "/rewrite/foo?x=1", host="example.com")
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertEqual(doc["server"], "A")
        self.assertEqual(doc["path"], "/echo/foo?x=1")
        self.assertEqual(doc["headers"]["host"], "rewritten.example.com")
        self.assertEqual(doc["headers"].get("x-envoy-original-path"), "/rewrite/foo?x=1")

    def test_header_mutations_at_three_levels(self):
        path = ("/echo/headers?set_header=x-upstream-drop-route:1&set_header=x-upstream-drop-vh:1"
                "&set_header=x-upstream-drop-rc:1&set_header=x-upstream-keep:1")
        r = P.get(self.port, path, headers={"x-remove-route": "1", "x-remove-vh": "1", "x-remove-rc": "1",
                                            "x-keep": "1", "x-append": "client"})
        self.assertEqual(r.status, 200, r)
        seen = r.json()["headers"]
        for level in ("route", "vh", "rc"):
            self.assertEqual(seen.get("x-added-" + level), level)
            self.assertNotIn("x-remove-" + level, seen)
            self.assertEqual(r.headers.get("x-resp-" + level), level)
            self.assertNotIn("x-upstream-drop-" + level, r.headers)
        self.assertEqual(seen.get("x-keep"), "1")
        self.assertEqual(r.headers.get("x-upstream-keep"), "1")
        # Mutations apply from the most to the least specific level (most_specific_header_mutations_wins is
        # false by default), so the route configuration's overwrite is the one left standing.
        self.assertEqual(seen.get("x-level"), "rc")
        self.assertEqual(r.headers.get("x-resp-level"), "rc")
        self.assertEqual([v.strip() for v in seen.get("x-append", "").split(",")], ["client", "route"])


if __name__ == "__main__":
    unittest.main()
