"""JWT authentication (envoy.filters.http.jwt_authn) through a real proxy.

Keys are made and tokens signed with the openssl CLI. Envoy facts relied on: a request without a token passes an
allow_missing requirement; a failed check answers 401 with jwt_verify_lib's message as body and
`www-authenticate: Bearer realm="<url>"` (plus `, error="invalid_token"` unless the token is missing), except a wrong
audience, which is 403; `forward: false` removes the token header; forward_payload_header carries the token's payload
segment; stats http.<stat_prefix>.jwt_authn.allowed / denied.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from lib import proxy as P
from lib.base import ProxyTestCase

JWT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
ISSUER = "https://issuer.example"
AUDIENCE = "sheave-test"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True, timeout=20).stdout


def der_ecdsa_to_raw(der, size):
    # SEQUENCE { INTEGER r, INTEGER s } -> r||s, each left-padded to the field size.
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        value = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += value.rjust(size, b"\x00")
        i += 2 + n
    return out


class Key:
    def __init__(self, tmp, name, kind):
        self.path = os.path.join(tmp, name + ".pem")
        self.kind = kind
        if kind == "RSA":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.path)
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.path)

    def jwk(self, kid):
        if self.kind == "RSA":
            modulus = openssl("rsa", "-in", self.path, "-noout", "-modulus").decode().strip().split("=", 1)[1]
            return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                    "n": b64url(bytes.fromhex(modulus)), "e": b64url(b"\x01\x00\x01")}
        der = openssl("pkey", "-in", self.path, "-pubout", "-outform", "DER")
        point = der[-65:]
        assert point[0] == 4
        return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:])}

    def sign(self, data):
        sig = openssl("dgst", "-sha256", "-sign", self.path, data=data)
        return sig if self.kind == "RSA" else der_ecdsa_to_raw(sig, 32)


def make_token(key, claims, kid, alg=None, header=None):
    h = header or {"alg": alg or ("RS256" if key.kind == "RSA" else "ES256"), "typ": "JWT", "kid": kid}
    signed = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode())
    return signed + "." + b64url(key.sign(signed.encode()))


def claims(**overrides):
    now = int(time.time())
    c = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": now, "exp": now + 600}
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl CLI")
class JwtAuthnTest(ProxyTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sheave-jwt-")
        cls.rsa = Key(cls.tmp, "rsa", "RSA")
        cls.ec = Key(cls.tmp, "ec", "EC")
        cls.other = Key(cls.tmp, "other", "RSA")  # never published
        jwks = {"keys": [cls.rsa.jwk("rsa-1"), cls.ec.jwk("ec-1")]}
        cls.up = cls.start_upstream("backend")
        cls.port = P.free_port()
        admin = P.free_port()
        provider = {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "local_jwks": {"inline_string": json.dumps(jwks)},
            "forward_payload_header": "x-jwt-payload",
            "payload_in_metadata": "payload",
        }
        jwt_filter = {"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": JWT_TYPE,
            "providers": {"test": provider},
            "rules": [
                {"match": {"prefix": "/echo/optional/"},
                 "requires": {"requires_any": {"requirements": [{"provider_name": "test"}, {"allow_missing": {}}]}}},
                {"match": {"prefix": "/echo/open/"}},
                {"match": {"prefix": "/"}, "requires": {"provider_name": "test"}},
            ]}}
        vh = P.virtual_host("all", [P.route("/", "backend")])
        cfg = P.bootstrap(
            [P.listener("listener_0", cls.port, P.hcm([vh], http_filters=[jwt_filter]))],
            [P.static_cluster("backend", [("127.0.0.1", cls.up.port)])],
            admin)
        cls.proxy = cls.start_proxy(cfg)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, path, token=None, headers=None):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        return P.get(self.port, path, headers=h)

    def assertDenied(self, r, body, status=401, path=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.body, body.encode())
        challenge = r.headers.get("www-authenticate", "")
        self.assertTrue(challenge.startswith('Bearer realm="http://example.com/'), challenge)
        self.assertIn('error="invalid_token"', challenge)

    def test_valid_rs256_reaches_upstream_with_payload(self):
        c = claims(sub="rs-user")
        before = self.proxy.stat("http.ingress_http.jwt_authn.allowed")
        r = self.call("/echo/rs", make_token(self.rsa, c, "rsa-1"))
        self.assertEqual(r.status, 200, r)
        seen = r.json()["headers"]
        self.assertNotIn("authorization", seen, "forward: false strips the token")
        self.assertEqual(json.loads(b64url_decode(seen["x-jwt-payload"])), c)
        self.assertEqual(self.proxy.stat("http.ingress_http.jwt_authn.allowed"), before + 1)

    def test_valid_es256(self):
        c = claims(sub="ec-user")
        r = self.call("/echo/ec", make_token(self.ec, c, "ec-1"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(b64url_decode(r.json()["headers"]["x-jwt-payload"]))["sub"], "ec-user")

    def test_token_in_access_token_param(self):
        r = self.call("/echo/param?access_token=" + make_token(self.rsa, claims(), "rsa-1"))
        self.assertEqual(r.status, 200, r)

    def test_client_cannot_forge_payload_header(self):
        forged = b64url(json.dumps({"sub": "admin"}).encode())
        r = self.call("/echo/optional/forge", headers={"x-jwt-payload": forged})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("x-jwt-payload", r.json()["headers"])

    def test_missing_token(self):
        r = self.call("/echo/optional/none")
        self.assertEqual(r.status, 200, r)
        r = self.call("/echo/open/none")
        self.assertEqual(r.status, 200, r)
        before = self.proxy.stat("http.ingress_http.jwt_authn.denied")
        r = self.call("/echo/required")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.body, b"Jwt is missing")
        self.assertEqual(r.headers.get("www-authenticate"), 'Bearer realm="http://example.com/echo/required"')
        self.assertEqual(self.up.count_path("/echo/required"), 0)
        self.assertEqual(self.proxy.stat("http.ingress_http.jwt_authn.denied"), before + 1)

    def test_bad_token_is_refused_even_where_optional(self):
        token = make_token(self.other, claims(), "rsa-1")
        self.assertDenied(self.call("/echo/optional/bad", token), "Jwt verification fails")

    def test_invalid_signature(self):
        self.assertDenied(self.call("/echo/x", make_token(self.other, claims(), "rsa-1")), "Jwt verification fails")
        # ES256 signature bytes under an RS256 header
        h, p, _ = make_token(self.rsa, claims(), "rsa-1").split(".")
        sig = b64url(self.ec.sign((h + "." + p).encode()))
        self.assertDenied(self.call("/echo/x", h + "." + p + "." + sig), "Jwt verification fails")

    def test_tampered_payload(self):
        h, _, s = make_token(self.rsa, claims(sub="bob"), "rsa-1").split(".")
        p = b64url(json.dumps(claims(sub="admin")).encode())
        self.assertDenied(self.call("/echo/x", h + "." + p + "." + s), "Jwt verification fails")

    def test_alg_none(self):
        h = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        p = b64url(json.dumps(claims()).encode())
        self.assertDenied(self.call("/echo/x", h + "." + p + "."),
                          "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")
        self.assertDenied(self.call("/echo/x", h + "." + p + "." + b64url(b"sig")),
                          "Jwt header [alg] is not supported")
        # HS256 with the public key as the secret: the classic confusion attack
        hs = b64url(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
        self.assertDenied(self.call("/echo/x", hs + "." + p + "." + b64url(b"x" * 32)),
                          "Jwt header [alg] is not supported")

    def test_unknown_kid(self):
        self.assertDenied(self.call("/echo/x", make_token(self.rsa, claims(), "nope")),
                          "Jwks doesn't have key to match kid or alg from Jwt")

    def test_alg_not_matching_key(self):
        # An RS384 token for a key published as RS256 only.
        self.assertDenied(self.call("/echo/x", make_token(self.rsa, claims(), "rsa-1", alg="RS384")),
                          "Jwks doesn't have key to match kid or alg from Jwt")

    def test_expired(self):
        now = int(time.time())
        self.assertDenied(self.call("/echo/x", make_token(self.rsa, claims(exp=now - 120), "rsa-1")),
                          "Jwt is expired")
        # Within the default 60 s of clock skew it still passes.
        r = self.call("/echo/skew", make_token(self.rsa, claims(exp=now - 20), "rsa-1"))
        self.assertEqual(r.status, 200, r)

    def test_not_yet_valid(self):
        now = int(time.time())
        self.assertDenied(self.call("/echo/x", make_token(self.rsa, claims(nbf=now + 600), "rsa-1")),
                          "Jwt not yet valid")

    def test_wrong_issuer(self):
        self.assertDenied(self.call("/echo/x", make_token(self.rsa, claims(iss="https://evil.example"), "rsa-1")),
                          "Jwt issuer is not configured")

    def test_wrong_audience(self):
        # Envoy answers a wrong audience with 403, not 401.
        self.assertDenied(self.call("/echo/x", make_token(self.rsa, claims(aud=["other"]), "rsa-1")),
                          "Audiences in Jwt are not allowed", status=403)

    def test_oversized_token(self):
        token = make_token(self.rsa, claims(pad="x" * 9000), "rsa-1")
        self.assertDenied(self.call("/echo/x", token), "Jwt verification fails")

    def test_garbage(self):
        self.assertDenied(self.call("/echo/x", "not-a-jwt"),
                          "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")
        self.assertDenied(self.call("/echo/x", "a=b.c.d"), "Jwt header is an invalid Base64url encoded")


if __name__ == "__main__":
    unittest.main()
