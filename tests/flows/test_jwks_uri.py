"""private_key_jwt with keys at the client's ``jwks_uri``, served by a real local HTTP server:
fetch, Cache-Control, key rotation, failures (SMART client-confidential-asymmetric).

The key servers here listen on loopback, which the SSRF guard refuses by default: this
module runs the app with JWKS_ALLOW_PRIVATE_NETWORKS=1, except where a test says otherwise.
Every failed fetch answers the client "could not fetch jwks_uri" and nothing more; the
server's log says why (tests read it with caplog).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.flows.test_private_key_jwt import (
    ClientKey,
    assert_refused,
    assertion,
    backend_client,
    cc_token,
    jwks_of,
)


class JwksServer:
    """A client's key server: serves ``body`` with ``headers``; counts requests."""

    def __init__(self) -> None:
        self.body = b'{"keys": []}'
        self.status = 200
        self.headers: dict[str, str] = {"Cache-Control": "max-age=300"}
        self.hits = 0
        self.send_length = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                if outer.send_length:  # else the body ends when the connection closes
                    self.send_header("Content-Length", str(len(outer.body)))
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def serve(self, *keys: ClientKey, cache_control: str | None = "max-age=300") -> None:
        self.body = json.dumps(jwks_of(*keys)).encode()
        self.headers = {"Cache-Control": cache_control} if cache_control else {}


FETCH_FAILED = "could not fetch jwks_uri"


@pytest.fixture
def live_config() -> dict:
    return {"JWKS_ALLOW_PRIVATE_NETWORKS": 1}


def assert_fetch_failed(resp, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """The client is told only FETCH_FAILED; the server's warning names ``reason``."""
    assert_refused(resp, FETCH_FAILED)
    assert resp.json()["error_description"] == FETCH_FAILED
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "authserver.oauth.rfc7523.jwks_fetcher"
                and r.levelno == logging.WARNING]
    assert any(reason in w for w in warnings), warnings


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _ok(base_url: str, key: ClientKey, client: dict) -> None:
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url))
    assert resp.status_code == 200, resp.text


def test_jwks_uri_key_rotation_new_kid_fetched_old_refused(app, base_url, jwks_server):
    old, new = ClientKey("ES384"), ClientKey("RS384")
    jwks_server.serve(old)
    c = backend_client(app, jwks_uri=jwks_server.url)
    _ok(base_url, old, c)
    _ok(base_url, old, c)
    assert jwks_server.hits == 1  # cached for max-age=300
    # The client rotates: the new key replaces the old one at its jwks_uri.
    jwks_server.serve(new)
    _ok(base_url, new, c)  # unknown kid -> fetched again
    assert jwks_server.hits == 2
    assert_refused(cc_token(base_url, assertion(old, c["client_id"], base_url)),
                   "no key of the client matches")


def test_jwks_uri_unknown_kid_refetched_at_most_once_a_minute(app, base_url, jwks_server):
    first, second, third = ClientKey(), ClientKey(), ClientKey()
    jwks_server.serve(first)
    c = backend_client(app, jwks_uri=jwks_server.url)
    _ok(base_url, first, c)
    jwks_server.serve(second)
    _ok(base_url, second, c)
    jwks_server.serve(third)
    # A forged or rotated kid cannot make us hammer the client's server.
    for _ in range(3):
        assert_refused(cc_token(base_url, assertion(third, c["client_id"], base_url)),
                       "no key of the client matches")
    assert jwks_server.hits == 2


def test_jwks_uri_no_store_is_fetched_every_time(app, base_url, jwks_server):
    key = ClientKey()
    jwks_server.serve(key, cache_control="no-store")
    c = backend_client(app, jwks_uri=jwks_server.url)
    for _ in range(3):
        _ok(base_url, key, c)
    assert jwks_server.hits == 3


def test_jwks_uri_max_age_zero_is_not_cached(app, base_url, jwks_server):
    key = ClientKey()
    jwks_server.serve(key, cache_control="public, max-age=0")
    c = backend_client(app, jwks_uri=jwks_server.url)
    _ok(base_url, key, c)
    _ok(base_url, key, c)
    assert jwks_server.hits == 2


def test_jwks_uri_removed_key_refused_once_cache_expires(app, base_url, jwks_server):
    kept, removed = ClientKey(), ClientKey()
    jwks_server.serve(kept, removed, cache_control="max-age=0")
    c = backend_client(app, jwks_uri=jwks_server.url)
    _ok(base_url, removed, c)
    jwks_server.serve(kept, cache_control="max-age=0")
    assert_refused(cc_token(base_url, assertion(removed, c["client_id"], base_url)),
                   "no key of the client matches")
    _ok(base_url, kept, c)


def test_jwks_uri_matching_jku_is_accepted(app, base_url, jwks_server):
    key = ClientKey()
    jwks_server.serve(key)
    c = backend_client(app, jwks_uri=jwks_server.url)
    resp = cc_token(base_url, assertion(key, c["client_id"], base_url,
                                        header={"jku": jwks_server.url}))
    assert resp.status_code == 200, resp.text


def test_jwks_uri_foreign_jku_is_refused_without_fetching_it(app, base_url, jwks_server):
    attacker = JwksServer()
    attacker.thread.start()
    try:
        evil = ClientKey()
        attacker.serve(evil)
        jwks_server.serve(ClientKey())
        c = backend_client(app, jwks_uri=jwks_server.url)
        a = assertion(evil, c["client_id"], base_url, header={"jku": attacker.url})
        assert_refused(cc_token(base_url, a), "'jku' must equal the registered 'jwks_uri'")
        assert attacker.hits == 0
    finally:
        attacker.httpd.shutdown()
        attacker.httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jwks_uri_unreachable_gives_invalid_client(app, base_url, caplog):
    key = ClientKey()
    c = backend_client(app, jwks_uri=f"http://127.0.0.1:{_closed_port()}/jwks.json")
    assert_fetch_failed(cc_token(base_url, assertion(key, c["client_id"], base_url)), caplog,
                        "connect failed (ConnectionRefusedError)")


@pytest.mark.parametrize("send_length", [True, False])
def test_jwks_uri_oversized_gives_invalid_client(app, base_url, jwks_server, send_length,
                                                 caplog):
    key = ClientKey()
    jwks_server.serve(key)
    jwks_server.send_length = send_length
    padding = [{"kty": "oct", "kid": f"pad{i}", "k": "A" * 1000} for i in range(80)]
    jwks_server.body = json.dumps({"keys": [key.jwk, *padding]}).encode()
    c = backend_client(app, jwks_uri=jwks_server.url)
    assert_fetch_failed(cc_token(base_url, assertion(key, c["client_id"], base_url)), caplog,
                        "document too large")


@pytest.mark.parametrize(("status", "body", "reason"), [
    (404, b'{"keys": []}', "HTTP status 404"),
    (200, b"<html>not json</html>", "not JSON"),
    (200, b'{"no": "keys"}', "not a JWK Set"),
])
def test_jwks_uri_bad_answer_gives_invalid_client(app, base_url, jwks_server, status, body,
                                                  reason, caplog):
    key = ClientKey()
    jwks_server.status, jwks_server.body = status, body
    c = backend_client(app, jwks_uri=jwks_server.url)
    assert_fetch_failed(cc_token(base_url, assertion(key, c["client_id"], base_url)), caplog,
                        reason)


def test_jwks_uri_redirect_is_not_followed(app, base_url, jwks_server, caplog):
    key = ClientKey()
    target = JwksServer()
    target.thread.start()
    try:
        target.serve(key)
        jwks_server.status, jwks_server.body = 302, b""
        jwks_server.headers = {"Location": target.url}
        c = backend_client(app, jwks_uri=jwks_server.url)
        assert_fetch_failed(cc_token(base_url, assertion(key, c["client_id"], base_url)),
                            caplog, "HTTP status 302")
        assert target.hits == 0
    finally:
        target.httpd.shutdown()
        target.httpd.server_close()


def test_registration_refuses_plain_http_jwks_uri_off_loopback(app):
    from authserver.services import admin_console

    with app.app_context(), pytest.raises(admin_console.AdminError, match="https"):
        admin_console.create_client(name="Plain", redirect_uris=[], scope="system/*.rs",
                                    auth_method="private_key_jwt",
                                    jwks_uri="http://keys.example.com/jwks.json",
                                    grant_types=["client_credentials"])


@pytest.mark.parametrize(("cache_control", "age", "expected"), [
    (None, None, 300.0),
    ("max-age=60", None, 60.0),
    ("public, max-age=60", "20", 40.0),
    ("max-age=60", "90", 0.0),
    ("no-store", None, 0.0),
    ("no-cache, max-age=600", None, 0.0),
    ("max-age=abc", None, 0.0),
    ("public", None, 300.0),
])
def test_jwks_cache_lifetime_follows_cache_control(cache_control, age, expected):
    from authserver.oauth.rfc7523.jwks_fetcher import _max_age

    assert _max_age(cache_control, age, 300.0) == expected


# ---- SSRF guard (checked on literal addresses: no traffic leaves this machine) -------------

@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1", False), ("127.8.9.10", False), ("::1", False), ("::ffff:127.0.0.1", False),
    ("8.8.8.8", True), ("2001:4860:4860::8888", True),
    ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("0.0.0.0", False), ("fe80::1", False), ("fc00::1", False),
    ("::ffff:10.0.0.1", False), ("224.0.0.1", False),
])
def test_jwks_uri_address_guard(host, allowed):
    from authserver.oauth.rfc7523 import address_allowed

    assert address_allowed(host) is allowed


def test_jwks_uri_private_network_is_refused_before_connecting():
    """A literal link-local address (cloud metadata): refused before any connection."""
    from authserver.oauth.rfc7523 import JwksError, JwksFetcher

    with pytest.raises(JwksError) as err:
        JwksFetcher(allow_private_networks=False)._download("https://169.254.169.254/jwks.json")
    assert "private, loopback or reserved" in err.value.reason
    assert str(err.value) == FETCH_FAILED


@pytest.mark.parametrize("live_config", [{}])  # the default: JWKS_ALLOW_PRIVATE_NETWORKS=0
def test_jwks_uri_on_loopback_is_refused_by_default(app, base_url, jwks_server, caplog):
    key = ClientKey()
    jwks_server.serve(key)
    assert app.config["JWKS_ALLOW_PRIVATE_NETWORKS"] == 0
    for url in (jwks_server.url, jwks_server.url.replace("127.0.0.1", "localhost")):
        c = backend_client(app, jwks_uri=url)
        assert_fetch_failed(cc_token(base_url, assertion(key, c["client_id"], base_url)),
                            caplog, "private, loopback or reserved")
    assert jwks_server.hits == 0  # refused before connecting
