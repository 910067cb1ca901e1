"""Hostile input over real HTTP: nothing answers 500.

Swept over /authorize (GET, POST), /authorize/continue, /login, /login/totp, /logout and
/token: missing, repeated, oversized, non-UTF-8, NUL and badly percent-encoded parameters;
wrong and missing content types; JSON, multipart and binary bodies; bodies over the size
limit; odd methods; garbage Authorization headers and cookies; a raw request line with
bytes that are not UTF-8. Every answer must be < 500; /token must answer RFC 6749 JSON with
no-store headers whatever it is sent.
"""

from __future__ import annotations

import html
import re
import socket
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from tests.helpers import PASSWORD, OAuthFlow, csrf_of, make_client, make_user

BIG = "A" * 20_000
HUGE = "B" * 300_000  # over MAX_CONTENT_LENGTH (256 KiB)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def setup(app, base_url):
    make_user(app)
    client = make_client(app, auth_method="none")
    secret_client = make_client(app, name="Confidential", auth_method="client_secret_basic")
    return {"client": client, "secret_client": secret_client}


class Sweep:
    """Send many requests; remember every one that answered 5xx."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.failures: list[str] = []
        self.count = 0

    def send(self, method: str, path: str, label: str, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 30)
        resp = self.http.request(method, self.base_url + path, **kw)
        self.count += 1
        if resp.status_code >= 500:
            self.failures.append(f"{method} {path} [{label}] -> {resp.status_code}")
        return resp

    def raw(self, request_bytes: bytes, label: str) -> int:
        """A hand-written HTTP/1.1 request (for bytes `requests` would refuse to send)."""
        parts = urlsplit(self.base_url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(request_bytes)
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.count += 1
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        status = int(m.group(1)) if m else 0
        if status >= 500 or status == 0:
            self.failures.append(f"raw [{label}] -> {data[:80]!r}")
        return status

    def check(self) -> None:
        assert not self.failures, "\n".join(self.failures)


def _bad_values() -> dict[str, object]:
    """Label -> a value (str or raw bytes) to put in one parameter."""
    return {
        "empty": "",
        "big": BIG,
        "nul": "a\x00b",
        "control": "\x01\x02\x1b[31m",
        "unicode": "ünï☃😀",
        "surrogate-ish": "\udcff".encode("utf-8", "surrogatepass"),
        "latin1": "caf\xe9".encode("latin-1"),
        "lone-ff": b"\xff\xfe\xfd",
        "crlf": "x\r\nLocation: https://evil.example.org",
        "percent": "%zz%",
        "json": '{"a": [1, 2]}',
    }


def _encode(params: list[tuple[str, object]]) -> bytes:
    """Form-encode, letting raw bytes through percent-encoded as they are (non-UTF-8)."""
    return urlencode([(k, v) for k, v in params]).encode("ascii")


def test_malformed_authorize_never_500(setup, base_url):
    sweep = Sweep(base_url)
    good = OAuthFlow(base_url, setup["client"]).params()
    for method in ("GET", "POST"):
        sweep.send(method, "/authorize", "no params")
        for name in list(good) + ["launch", "request", "request_uri", "resource", "prompt",
                                  "max_age", "claims"]:
            for label, value in _bad_values().items():
                params = [(k, v) for k, v in good.items() if k != name] + [(name, value)]
                body = _encode(params)
                if method == "GET":
                    sweep.send("GET", "/authorize?" + body.decode(), f"{name}={label}")
                else:
                    sweep.send("POST", "/authorize", f"{name}={label}", data=body,
                               headers=FORM)
            # repeated, and missing
            sweep.send(method, "/authorize", f"{name} twice",
                       **_params_kw(method, list(good.items()) + [(name, good.get(name, "x"))]))
            sweep.send(method, "/authorize", f"{name} missing",
                       **_params_kw(method, [(k, v) for k, v in good.items() if k != name]))
    # Every parameter repeated 200 times; a scope with thousands of tokens.
    sweep.send("GET", "/authorize", "x200", params=[(k, v) for k, v in good.items()] * 200)
    sweep.send("POST", "/authorize", "huge scope",
               data={**good, "scope": " ".join(f"patient/T{i}.rs" for i in range(5000))})
    # Bodies: over the limit, JSON, multipart, text, binary, no content type.
    sweep.send("POST", "/authorize", "huge body", data={**good, "state": HUGE})
    sweep.send("POST", "/authorize", "json", json=good)
    sweep.send("POST", "/authorize", "multipart", files={"scope": ("x", b"openid")},
               data=good)
    sweep.send("POST", "/authorize", "text", data="response_type=code",
               headers={"Content-Type": "text/plain"})
    sweep.send("POST", "/authorize", "binary", data=bytes(range(256)) * 10,
               headers={"Content-Type": "application/octet-stream"})
    sweep.send("POST", "/authorize", "no content type", data=b"a=b",
               headers={"Content-Type": ""})
    sweep.send("POST", "/authorize", "bad charset", data=b"a=b",
               headers={"Content-Type": "application/x-www-form-urlencoded; charset=ebcdic"})
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        sweep.send(method, "/authorize", method)
    sweep.send("GET", "/authorize", "garbage cookie", params=good,
               cookies={"authserver_session": "garbage.eyJzaWQiOiJ4In0.AAAA"})
    # A request line with raw non-UTF-8 bytes, and a broken one.
    sweep.raw(b"GET /authorize?client_id=\xff\xfe&state=\xc3 HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\n\r\n", "raw bytes in query")
    sweep.raw(b"GET /authorize?%%%%% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
              "bad percent")
    sweep.check()
    assert sweep.count > 300


def _params_kw(method: str, params: list[tuple[str, object]]) -> dict:
    return {"params": params} if method == "GET" else {"data": params}


def _signed_in(base_url: str, setup: dict) -> tuple[requests.Session, str, str]:
    """A browser on the consent page: (session, req handle, csrf token)."""
    flow = OAuthFlow(base_url, setup["client"], requests.Session())
    flow.authorize()
    flow.follow()
    flow.login()
    page = flow.last.text
    req = html.unescape(re.search(r'name="req" value="([^"]*)"', page).group(1))
    return flow.http, req, csrf_of(page)


def test_malformed_authorize_continue_never_500(setup, base_url):
    http, req, csrf = _signed_in(base_url, setup)
    sweep = Sweep(base_url)
    sweep.http = http
    sweep.send("GET", "/authorize/continue", "no req")
    sweep.send("POST", "/authorize/continue", "no fields", data={"csrf_token": csrf})
    for label, value in _bad_values().items():
        sweep.send("GET", "/authorize/continue?" + _encode([("req", value)]).decode(),
                   f"req={label}")
        for field in ("req", "decision", "scope"):
            fields = [("csrf_token", csrf), ("req", "nope"), ("decision", "deny")]
            fields = [(k, v) for k, v in fields if k != field] + [(field, value)]
            sweep.send("POST", "/authorize/continue", f"{field}={label}",
                       data=_encode(fields), headers=FORM)
    sweep.send("GET", "/authorize/continue", "req twice", params=[("req", req), ("req", "x")])
    sweep.send("POST", "/authorize/continue", "huge body",
               data={"csrf_token": csrf, "req": "nope", "scope": HUGE})
    sweep.send("POST", "/authorize/continue", "json", json={"req": req, "decision": "allow"})
    sweep.send("POST", "/authorize/continue", "no csrf", data={"req": req})
    sweep.send("GET", "/authorize/patient?req=" + "x" * 5000, "picker big req")
    sweep.send("POST", "/authorize/patient", "picker junk",
               data={"csrf_token": csrf, "req": req, "patient": "\x00" * 100})
    # Finally the real request, with a 1000 repeated scope values: still a clean answer
    # (none is offered, so nothing is ticked: the page asks whether Deny was meant).
    resp = sweep.send("POST", "/authorize/continue", "many scopes", data=[
        ("csrf_token", csrf), ("req", req), ("decision", "allow")] + [("scope", "x")] * 1000)
    assert resp.status_code == 200 and 'id="nothing-ticked"' in resp.text
    sweep.check()


def test_malformed_login_never_500(app, setup, base_url):
    # Reach the view and the password check, not the limiters (tests/flows/test_brute_force.py)
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "10000 per minute"
    sweep = Sweep(base_url)
    page = sweep.send("GET", "/login", "page")
    csrf = csrf_of(page.text)
    for label, value in _bad_values().items():
        # (each attempt that reaches the password check costs one argon2id verification)
        fields_to_try = ("username", "password", "csrf_token") + (
            ("next",) if label in ("big", "nul", "lone-ff", "crlf") else ())
        for field in fields_to_try:
            fields = [("csrf_token", csrf), ("username", "alice"), ("password", "x" * 10),
                      ("next", "/account")]
            fields = [(k, v) for k, v in fields if k != field] + [(field, value)]
            sweep.send("POST", "/login", f"{field}={label}", data=_encode(fields),
                       headers=FORM)
        sweep.send("GET", "/login?" + _encode([("next", value)]).decode(), f"next={label}")
    sweep.send("POST", "/login", "repeated", data=[
        ("csrf_token", csrf), ("username", "alice"), ("username", "bob"),
        ("password", PASSWORD), ("password", "x")])
    sweep.send("POST", "/login", "password 200k", data={
        "csrf_token": csrf, "username": "alice", "password": "p" * 200_000})
    sweep.send("POST", "/login", "huge body", data={"csrf_token": csrf, "username": HUGE})
    sweep.send("POST", "/login", "json", json={"username": "alice", "password": PASSWORD})
    sweep.send("POST", "/login", "multipart", files={"username": ("u", b"alice")})
    sweep.send("POST", "/login", "missing all", data={})
    sweep.send("POST", "/login/totp", "totp junk", data={"csrf_token": csrf, "code": BIG})
    sweep.send("GET", "/login/totp", "totp without pending user")
    sweep.send("POST", "/logout", "logout junk", data={"csrf_token": "\xff"})
    for method in ("PUT", "DELETE"):
        sweep.send(method, "/login", method)
    sweep.raw(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
              b"urlencoded\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\xff\xfe=\xfd",
              "raw non-utf8 body")
    sweep.raw(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
              b"Connection: close\r\n\r\n", "content-length over the limit")
    sweep.check()


def test_malformed_token_never_500_and_always_json(setup, base_url):
    sweep = Sweep(base_url)
    cid = setup["client"]["client_id"]
    base = {"grant_type": "authorization_code", "code": "x" * 43,
            "redirect_uri": "http://127.0.0.1:9999/callback", "code_verifier": "v" * 43,
            "client_id": cid}
    responses: list[requests.Response] = []

    def send(label: str, **kw) -> None:
        responses.append(sweep.send("POST", "/token", label, **kw))

    send("empty")
    for name in list(base) + ["refresh_token", "scope", "client_secret", "client_assertion",
                              "client_assertion_type"]:
        for label, value in _bad_values().items():
            for grant_type in ("authorization_code", "refresh_token"):
                fields = [(k, v) for k, v in {**base, "grant_type": grant_type,
                                              "refresh_token": "r" * 43}.items()
                          if k != name] + [(name, value)]
                send(f"{grant_type} {name}={label}", data=_encode(fields), headers=FORM)
        send(f"{name} twice", data=list(base.items()) + [(name, base.get(name, "x"))])
    send("json", json=base)
    send("multipart", files={"code": ("c", b"x")}, data=base)
    send("text", data="grant_type=authorization_code", headers={"Content-Type": "text/plain"})
    send("no content type", data=b"grant_type=refresh_token",
         headers={"Content-Type": ""})
    send("binary", data=bytes(range(256)), headers={"Content-Type": "application/x-www-"
                                                    "form-urlencoded"})
    send("huge body", data={**base, "code": HUGE})
    send("query string instead of body", params=base)
    for header in ("Basic", "Basic ", "Basic !!!notbase64", "Basic " + "QQ==" * 3000,
                   "Basic /w==", "Basic Om5vdGhpbmc=", "Bearer x", "Basic " + "\xff"):
        send(f"auth {header[:12]}", data=base,
             headers={"Authorization": header.encode("latin-1").decode("latin-1")})
    # Basic credentials that decode to non-UTF-8 bytes, and to id-only.
    import base64

    for raw in (b"\xff\xfe:\xfd", b"no-colon", cid.encode() + b":", b":" + b"x" * 50):
        send(f"basic raw {raw[:6]!r}", data=base,
             headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})
    send("origin junk", data=base, headers={"Origin": "\xff\xfe".encode().decode("latin-1")})
    for resp in responses:
        if resp.status_code == 413:
            continue
        assert resp.headers["Content-Type"].startswith("application/json"), resp.text[:200]
        assert "error" in resp.json()
        assert resp.headers.get("Cache-Control") == "no-store"
        assert resp.headers.get("Pragma") == "no-cache", resp.request.body[:100]
    for method in ("GET", "PUT", "DELETE"):
        r = sweep.send(method, "/token", method)
        assert r.status_code == 405 and r.headers["Content-Type"].startswith(
            "application/json")
    sweep.raw(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
              b"urlencoded\r\nContent-Length: 19\r\nConnection: close\r\n\r\n"
              b"grant_type=\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "raw non-utf8 body")
    sweep.check()
    assert sweep.count > 150


def test_malformed_register_never_500_and_always_json(app, base_url):
    """POST /register (RFC 7591) with hostile bodies and credentials: never 500, always the
    RFC 6749 style JSON error, never cached."""
    from authserver.services import admin_console

    app.config["REGISTRATION_RATE_LIMIT"] = "10000 per minute"  # reach the view
    with app.app_context():
        token = admin_console.create_registration_token(uses=1000)["registration_token"]
    sweep = Sweep(base_url)
    auth = {"Authorization": f"Bearer {token}"}
    json_type = {**auth, "Content-Type": "application/json"}
    responses = []
    bodies = {
        "deep arrays": b"[" * 8000 + b"]" * 8000,
        "deep objects": b'{"a":' * 2000 + b"1" + b"}" * 2000,
        "non-utf8": b'{"client_name": "\xff\xfe"}',
        "utf-16": '{"client_name": "x"}'.encode("utf-16"),
        "nul": b'{"client_name": "a\\u0000b", "redirect_uris": ["https://a.example/\\u0000"]}',
        "huge": b'{"x": "' + b"A" * 300_000 + b'"}',
        "numbers": b'{"client_name": 1e999999, "redirect_uris": [-0]}',
        "types": b'{"redirect_uris": {"a": 1}, "scope": ["x"], "jwks": "[[[[", '
                 b'"grant_types": "authorization_code", "contacts": [null]}',
        "dup keys": b'{"scope": "openid", "scope": "introspect"}',
        "empty": b"",
    }
    for label, body in bodies.items():
        responses.append(sweep.send("POST", "/register", label, data=body, headers=json_type))
    for header in ("Bearer", "Bearer \xff".encode("latin-1").decode("latin-1"),
                   "Basic \xff\xfe".encode("latin-1").decode("latin-1"), "Bearer " + "x" * 9000,
                   "Bearer a b c", "Negotiate x"):
        responses.append(sweep.send("POST", "/register", f"auth {header[:10]!r}",
                                    json={"client_name": "x"},
                                    headers={"Authorization": header}))
    responses.append(sweep.send("POST", "/register", "form", data={"a": "b"}, headers=auth))
    responses.append(sweep.send("POST", "/register", "multipart", headers=auth,
                                files={"client_name": ("x", b"y")}))
    for resp in responses:
        assert resp.status_code in (400, 401), (resp.status_code, resp.request.body[:60])
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri",
                                        "invalid_token")
        assert resp.headers["Cache-Control"] == "no-store"
    for method in ("GET", "PUT", "DELETE"):
        assert sweep.send(method, "/register", method).status_code == 405
    sweep.check()
