"""`sheave analyze` as users and CI scripts run it: the binary on files and directories, its exit codes
(istioctl's: 0, 79 issues found, 65 unreadable), the log/json/yaml outputs, the thresholds, and hostile
input that must give a clear message, never a crash or a hang."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

from lib.proxy import REPO_ROOT

TESTDATA = os.path.join(REPO_ROOT, "tests", "unit", "cli", "analyze", "testdata")
BOOKINFO = os.path.join(REPO_ROOT, "examples", "bookinfo")
SCENARIOS = os.path.join(REPO_ROOT, "examples", "bookinfo-scenarios")
MISTAKES = os.path.join(REPO_ROOT, "examples", "bookinfo-mistakes")


def sheave_binary():
    proxy = os.environ.get("SHEAVE_PROXY")
    if proxy:
        return os.path.join(os.path.dirname(proxy), "sheave")
    return os.path.join(REPO_ROOT, "build", "bin", "sheave")


def analyze(*args, state_dir=None):
    state = state_dir or tempfile.mkdtemp(prefix="sheave-analyze-state-")
    return subprocess.run([sheave_binary(), "--state-dir", state, "analyze", *args],
                          capture_output=True, text=True, timeout=60)


class AnalyzeCommandTest(unittest.TestCase):
    def test_bookinfo_is_clean(self):
        p = analyze(BOOKINFO)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("No validation issues found", p.stdout)

    def test_each_corpus_file_gives_its_codes_in_json(self):
        covered = set()
        for name in sorted(os.listdir(TESTDATA)):
            path = os.path.join(TESTDATA, name)
            with open(path) as f:
                expected = sorted(line.split()[2] for line in f if line.startswith("# expect: "))
            p = analyze(path, "-o", "json")
            messages = json.loads(p.stdout)
            self.assertEqual(sorted(m["code"] for m in messages), expected, name)
            errors = any(m["level"] == "Error" for m in messages)
            self.assertEqual(p.returncode, 79 if errors else 0, name)
            for m in messages:
                self.assertIn(m["level"], ("Info", "Warning", "Error"))
                self.assertEqual(m["file"], path)
                self.assertGreater(m["line"], 0, m)
                self.assertTrue(m["documentationUrl"], m)
            covered |= set(expected)
        listed = analyze("--list-analyzers")
        self.assertEqual(listed.returncode, 0)
        for line in listed.stdout.splitlines():
            self.assertIn(line.split()[0], covered, "no corpus file for " + line)

    def test_directory_of_conflicting_files_reports_duplicates(self):
        # The corpus files reuse names; analyzed together, the later definitions are rejected.
        p = analyze(TESTDATA, "-o", "json")
        self.assertEqual(p.returncode, 79, p.stderr)
        self.assertTrue(any(m["code"] == "IST0106" and "duplicate" in m["message"] for m in json.loads(p.stdout)))

    def test_log_lines_name_the_file_and_line(self):
        path = os.path.join(TESTDATA, "ist0101_host.yaml")
        p = analyze(path)
        self.assertEqual(p.returncode, 79)
        self.assertRegex(p.stdout, r'^Error \[IST0101\] \(VirtualService default/reviews .*ist0101_host\.yaml:\d+\) '
                                   r'Referenced host not found: "reviewz"\n$')

    def test_thresholds(self):
        # Bookinfo with the retries scenario: a Warning (SHV0002), no Error.
        args = [BOOKINFO, os.path.join(SCENARIOS, "retries-timeout.yaml")]
        p = analyze(*args)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("[SHV0002]", p.stdout)
        self.assertEqual(analyze(*args, "--failure-threshold", "Warning").returncode, 79)
        quiet = analyze(*args, "--output-threshold", "Error")
        self.assertEqual(quiet.returncode, 0)
        self.assertNotIn("SHV0002", quiet.stdout)
        y = analyze(*args, "-o", "yaml")
        self.assertIn("code: SHV0002", y.stdout)

    def test_unreadable_path_and_no_mesh(self):
        p = analyze("/nonexistent/config.yaml")
        self.assertEqual(p.returncode, 65)
        self.assertIn("/nonexistent/config.yaml", p.stderr)
        p = analyze()
        self.assertEqual(p.returncode, 65)
        self.assertIn("no mesh is running", p.stderr)

    def test_running_mesh_directory_from_status_file(self):
        state = tempfile.mkdtemp(prefix="sheave-analyze-state-")
        with open(os.path.join(state, "status.json"), "w") as f:
            json.dump({"config_dir": BOOKINFO}, f)
        p = analyze(state_dir=state)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(BOOKINFO, p.stdout)

    def test_hostile_input_is_reported_not_crashed_on(self):
        d = tempfile.mkdtemp(prefix="sheave-analyze-bad-")
        with open(os.path.join(d, "binary.yaml"), "wb") as f:
            f.write(bytes(range(256)) * 64)
        with open(os.path.join(d, "nested.yaml"), "w") as f:
            f.write("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: deep}\nspec: "
                    + "[" * 5000 + "]" * 5000 + "\n")
        with open(os.path.join(d, "laughs.yaml"), "w") as f:
            # Aliases that would expand to 4^25 matches if anything walked them naively.
            f.write("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: laughs}\n")
            f.write("x0: &x0 [{uri: {exact: /a}}, {uri: {exact: /b}}, {uri: {exact: /c}}, {uri: {exact: /d}}]\n")
            for i in range(1, 25):
                f.write("x%d: &x%d [*x%d, *x%d, *x%d, *x%d]\n" % (i, i, i - 1, i - 1, i - 1, i - 1))
            f.write("spec:\n  hosts: [a]\n  http:\n  - match: *x24\n    route: [{destination: {host: a}}]\n")
        with open(os.path.join(d, "empty.yaml"), "w"):
            pass
        with open(os.path.join(d, "notistio.yaml"), "w") as f:
            f.write("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
        p = analyze(d, "-o", "json")
        self.assertEqual(p.returncode, 79, p.stderr)
        messages = json.loads(p.stdout)
        files = {os.path.basename(m["file"]) for m in messages if m["code"] == "IST0106"}
        self.assertTrue({"binary.yaml", "nested.yaml", "laughs.yaml"} <= files, messages)


class DescribeCommandTest(unittest.TestCase):
    def describe(self, *args):
        return subprocess.run([sheave_binary(), "--state-dir", tempfile.mkdtemp(prefix="sheave-describe-"),
                               "describe", *args], capture_output=True, text=True, timeout=60)

    def test_pod_of_bookinfo_with_a_policy(self):
        p = self.describe("pod", "reviews-v2", BOOKINFO, os.path.join(SCENARIOS, "authorization.yaml"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Pod: reviews-v2-0.default", p.stdout)
        self.assertIn("Identity: spiffe://cluster.local/ns/default/sa/bookinfo-reviews", p.stdout)
        self.assertIn("Matching subsets: v2", p.stdout)
        self.assertRegex(p.stdout, r"ALLOW reviews-viewer\.default \(.*authorization\.yaml:\d+\)")

    def test_service_lists_endpoints_and_subsets(self):
        p = self.describe("service", "reviews", BOOKINFO)
        self.assertEqual(p.returncode, 0, p.stderr)
        for v in ("v1", "v2", "v3"):
            self.assertRegex(p.stdout, r"reviews-%s-0\.default +app=reviews,version=%s +subsets: %s" % (v, v, v))

    def test_json_and_yaml(self):
        args = ("pod", "reviews-v2", BOOKINFO, os.path.join(SCENARIOS, "authorization.yaml"))
        j = self.describe("-o", "json", *args)
        self.assertEqual(j.returncode, 0, j.stderr)
        doc = json.loads(j.stdout)
        self.assertEqual(doc["pod"], "reviews-v2-0.default")
        self.assertEqual(doc["identity"], "spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
        reviews = [s for s in doc["services"] if s["hostname"] == "reviews.default.svc.cluster.local"]
        self.assertEqual(len(reviews), 1, doc["services"])
        self.assertEqual(reviews[0]["destinationRule"]["matchingSubsets"], ["v2"])
        viewer = [p for p in doc["authorizationPolicies"] if p["name"] == "reviews-viewer"]
        self.assertEqual(len(viewer), 1, doc["authorizationPolicies"])
        self.assertEqual(viewer[0]["action"], "ALLOW")
        self.assertRegex(viewer[0]["source"], r"authorization\.yaml:\d+$")
        self.assertEqual(yaml.safe_load(self.describe("-o", "yaml", *args).stdout), doc)
        svc = json.loads(self.describe("-o", "json", "service", "reviews", BOOKINFO).stdout)
        self.assertEqual(sorted(e["subsets"][0] for e in svc["endpoints"]), ["v1", "v2", "v3"])

    def test_unknown_names_list_what_exists(self):
        p = self.describe("pod", "nosuch", BOOKINFO)
        self.assertEqual(p.returncode, 1)
        self.assertIn("productpage-v1-0.default", p.stderr)
        p = self.describe("service", "nosuch", BOOKINFO)
        self.assertEqual(p.returncode, 1)
        self.assertIn("reviews.default.svc.cluster.local", p.stderr)


class ExplainCommandTest(unittest.TestCase):
    """Offline explain on Bookinfo plus one change each; tests/e2e/test_bookinfo.py checks the same
    verdicts against real requests through a running mesh."""

    def explain(self, *args, configs=()):
        cmd = [sheave_binary(), "--state-dir", tempfile.mkdtemp(prefix="sheave-explain-"), "explain",
               "--config", BOOKINFO]
        for c in configs:
            cmd += ["--config", c]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)

    def test_allowed_with_mtls_through_the_default_route(self):
        p = self.explain("--from", "productpage-v1", "http://reviews:9080/reviews/1")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("route \"default\", the service's default route", p.stdout)
        self.assertIn("mutual TLS; the caller's identity is spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
                      p.stdout)
        self.assertIn("Verdict: allowed: reaches reviews-v1-0, reviews-v2-0, reviews-v3-0", p.stdout)

    def test_undefined_subset_is_503_nc_for_its_share(self):
        p = self.explain("--from", "productpage-v1", "http://reviews:9080/",
                         configs=[os.path.join(MISTAKES, "503-canary-subset-not-defined.yaml")])
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertRegex(p.stdout, r"from VirtualService default/reviews \(.*503-canary-subset-not-defined\.yaml:3\)")
        self.assertIn("Verdict: 10%: no cluster: 503 NC; 90%: allowed: reaches reviews-v1-0", p.stdout)

    def test_deny_all_is_403_naming_the_policy(self):
        p = self.explain("--from", "reviews-v2", "http://ratings:9080/ratings/0",
                         configs=[os.path.join(MISTAKES, "403-allow-never-reached.yaml")])
        self.assertEqual(p.returncode, 1)
        self.assertIn("Verdict: denied: 403 RBAC: access denied (DENY ns[default]-policy[lockdown]-rule[0])",
                      p.stdout)

    def test_method_and_headers_take_part(self):
        auth = os.path.join(SCENARIOS, "authorization.yaml")
        self.assertEqual(self.explain("--from", "productpage-v1", "http://reviews:9080/r", configs=[auth]).returncode, 0)
        post = self.explain("--from", "productpage-v1", "-X", "POST", "http://reviews:9080/r", configs=[auth])
        self.assertEqual(post.returncode, 1)
        self.assertIn("no ALLOW policy matches", post.stdout)
        canary = [os.path.join(MISTAKES, "canary-gets-no-traffic.yaml")]
        jason = self.explain("--from", "productpage-v1", "-H", "end-user: jason", "http://reviews:9080/", configs=canary)
        self.assertIn("Verdict: allowed: reaches reviews-v1-0\n", jason.stdout)
        routes = [os.path.join(SCENARIOS, "header-routing.yaml")]
        chrome = self.explain("--from", "productpage-v1", "-H", "User-Agent: Mozilla/5.0 Chrome/120",
                              "http://reviews:9080/", configs=routes)
        self.assertIn("Verdict: allowed: reaches reviews-v2-0\n", chrome.stdout)
        curl = self.explain("--from", "productpage-v1", "-H", "user-agent: curl/7.88", "http://reviews:9080/",
                            configs=routes)
        self.assertIn("Verdict: allowed: reaches reviews-v1-0\n", curl.stdout)

    def test_json_and_yaml_carry_the_same_walk(self):
        args = ("--from", "productpage-v1", "-H", "End-User: jason", "http://reviews:9080/reviews/1")
        text = self.explain(*args)
        j = self.explain("-o", "json", *args)
        self.assertEqual(j.returncode, 0, j.stderr)
        doc = json.loads(j.stdout)
        self.assertEqual(doc["status"], 200)
        self.assertEqual(doc["request"], {"from": "productpage-v1-0.default", "method": "GET",
                                          "url": "http://reviews:9080/reviews/1", "headers": {"end-user": "jason"}})
        self.assertIn("Verdict: " + doc["verdict"] + "\n", text.stdout)
        self.assertGreaterEqual(len(doc["steps"]), 4)
        for step in doc["steps"]:
            self.assertIn(step["title"] + "\n", text.stdout)
            for line in step["lines"]:
                self.assertIn("   " + line + "\n", text.stdout)
        y = self.explain("-o", "yaml", *args)
        self.assertEqual(y.returncode, 0, y.stderr)
        self.assertEqual(yaml.safe_load(y.stdout), doc)
        # A request that fails keeps its exit code in every format.
        denied = self.explain("-o", "json", "--from", "reviews-v2", "http://ratings:9080/ratings/0",
                              configs=[os.path.join(MISTAKES, "403-allow-never-reached.yaml")])
        self.assertEqual(denied.returncode, 1)
        self.assertEqual(json.loads(denied.stdout)["status"], 403)
        self.assertNotEqual(self.explain("-o", "xml", *args).returncode, 0)

    def test_bad_input(self):
        p = self.explain("--from", "nosuch", "http://reviews:9080/")
        self.assertEqual(p.returncode, 1)
        self.assertIn("productpage-v1-0.default", p.stderr)
        p = self.explain("--from", "productpage-v1", "https://reviews:9080/")
        self.assertEqual(p.returncode, 1)
        self.assertIn("only http://", p.stderr)
        p = self.explain("--from", "productpage-v1", "-H", "no-colon", "http://reviews:9080/")
        self.assertEqual(p.returncode, 1)


class DiffCommandTest(unittest.TestCase):
    def diff(self, new, *args):
        return subprocess.run([sheave_binary(), "--state-dir", tempfile.mkdtemp(prefix="sheave-diff-"), "diff",
                               new, "--base", BOOKINFO, *args], capture_output=True, text=True, timeout=60)

    def changed(self, *files):
        d = tempfile.mkdtemp(prefix="sheave-diff-new-")
        shutil.copytree(BOOKINFO, os.path.join(d, "bookinfo"))
        for f in files:
            shutil.copy(f, os.path.join(d, "bookinfo"))
        return os.path.join(d, "bookinfo")

    def test_no_change(self):
        p = self.diff(BOOKINFO)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("No proxy's configuration changes", p.stdout)
        self.assertIn("No sample request is routed or authorized differently", p.stdout)

    def test_a_virtual_service_changes_the_callers_routes_and_a_request(self):
        p = self.diff(self.changed(os.path.join(MISTAKES, "503-canary-subset-not-defined.yaml")),
                      "--request", "ratings-v1 GET http://reviews:9080/x end-user=jason")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("  productpage-v1-0.default\n    RDS 9080 changed\n", p.stdout)
        self.assertIn("Unchanged: 1 proxies", p.stdout)  # the gateway routes reviews nowhere
        self.assertIn("  productpage-v1 GET http://reviews:9080/reviews/0\n"
                      "    before: allowed: reaches reviews-v1-0, reviews-v2-0, reviews-v3-0\n"
                      "    after:  10%: no cluster: 503 NC; 90%: allowed: reaches reviews-v1-0\n", p.stdout)
        self.assertIn("ratings-v1 GET http://reviews:9080/x end-user: jason", p.stdout)

    def test_json_and_yaml(self):
        new = self.changed(os.path.join(MISTAKES, "503-canary-subset-not-defined.yaml"))
        j = self.diff(new, "-o", "json")
        self.assertEqual(j.returncode, 0, j.stderr)
        doc = json.loads(j.stdout)
        self.assertIn({"proxy": "productpage-v1-0.default", "changes": ["RDS 9080 changed"]}, doc["proxies"])
        self.assertEqual(doc["unchangedProxies"], 1)
        self.assertIn({"request": "productpage-v1 GET http://reviews:9080/reviews/0",
                       "before": "allowed: reaches reviews-v1-0, reviews-v2-0, reviews-v3-0",
                       "after": "10%: no cluster: 503 NC; 90%: allowed: reaches reviews-v1-0"}, doc["requests"])
        self.assertEqual(yaml.safe_load(self.diff(new, "-o", "yaml").stdout), doc)

    def test_a_policy_changes_only_the_inbound_side(self):
        p = self.diff(self.changed(os.path.join(MISTAKES, "403-allow-never-reached.yaml")))
        self.assertIn("LDS virtualInbound changed", p.stdout)
        self.assertIn("after:  denied: 403 RBAC: access denied (DENY ns[default]-policy[lockdown]", p.stdout)

    def test_bad_request_text(self):
        p = self.diff(BOOKINFO, "--request", "productpage-v1")
        self.assertEqual(p.returncode, 1)
        self.assertIn("FROM METHOD URL", p.stderr)


if __name__ == "__main__":
    unittest.main()
