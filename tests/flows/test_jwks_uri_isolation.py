"""A client's ``jwks_uri`` can't stall or probe the server (issue 11).

A registrant chooses its ``jwks_uri``: a server that accepts and never answers, trickles
bytes, refuses, or answers garbage must cost that client only. Every test talks real HTTP
to real local servers (nothing of the network is mocked); loopback is refused by default,
so this module runs the app with JWKS_ALLOW_PRIVATE_NETWORKS=1 (the default is tested in
test_jwks_uri.py). Where the passing of time matters (the negative cache), the fetcher is
given a clock instead of the test sleeping.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.flows.test_jwks_uri import JwksServer
from tests.flows.test_private_key_jwt import (
    ASSERTION_TYPE,
    ClientKey,
    assertion,
    backend_client,
    jwks_of,
)

FETCH_FAILED = "could not fetch jwks_uri"
#: JWKS_FETCH_TIMEOUT's default, seconds: the most one fetch may take.
DEADLINE = 2.0
#: What a request that needs no network may take, even under attack.
FAST = 1.0
#: Slack on the deadline (scheduling on a loaded, shared machine).
SLACK = 0.75


@pytest.fixture
def live_config() -> dict:
    return {"JWKS_ALLOW_PRIVATE_NETWORKS": 1}


class HangingServer:
    """A TCP server on 127.0.0.1 that accepts and never answers (``mode="silent"``), or
    answers one byte every ``interval`` s forever: inside the status line and headers
    (``"headers"``) or inside a body whose length it announced (``"body"``). Counts the
    connections it accepted."""

    def __init__(self, mode: str = "silent", interval: float = 0.1) -> None:
        self.mode, self.interval = mode, interval
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/jwks.json"
        self.connections = 0
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            if self.mode != "silent":
                t = threading.Thread(target=self._trickle, args=(conn,), daemon=True)
                self._threads.append(t)
                t.start()

    def _trickle(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if self.mode == "body":
            conn.sendall(head + b"Content-Length: 1000\r\n\r\n")
            head = b""
        filler = head + b"X-Slow: " if head else b""
        with contextlib.suppress(OSError):
            for byte in filler:
                conn.sendall(bytes([byte]))
                if self._stop.wait(self.interval):
                    return
            while not self._stop.wait(self.interval):
                conn.sendall(b"a" if self.mode == "headers" else b" ")

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for conn in self._open:
            conn.close()
        for t in self._threads:
            t.join(2)


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _post_token(base_url: str, key: ClientKey | None, client: dict) -> requests.Response:
    """One client_credentials request: a fresh assertion signed by ``key``, or the
    client's secret (client_secret_basic) when ``key`` is None."""
    data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    if key is None:
        return requests.post(base_url + "/token", data=data, timeout=15,
                             auth=(client["client_id"], client["client_secret"]))
    data.update(client_assertion_type=ASSERTION_TYPE,
                client_assertion=assertion(key, client["client_id"], base_url))
    return requests.post(base_url + "/token", data=data, timeout=15)


def _timed(call: Callable[[], requests.Response]) -> tuple[float, float, requests.Response]:
    """(start, seconds taken, response)."""
    start = time.monotonic()
    resp = call()
    return start, time.monotonic() - start, resp


def _assert_fetch_failed(resp: requests.Response) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"error": "invalid_client", "error_description": FETCH_FAILED}


def _loop(until: float, call: Callable[[], requests.Response], out: list, pause: float = 0.0
          ) -> None:
    while time.monotonic() < until:
        out.append(_timed(call))
        if pause:
            time.sleep(pause)


# ---- the done-when ---------------------------------------------------------------

def test_hanging_jwks_uri_attacked_in_a_loop_leaves_other_clients_answering_within_1s(
        app, base_url, hanging, jwks_server):
    """Two threads attack with a client whose jwks_uri accepts and never answers, for 7 s;
    meanwhile a client_secret_basic client, a private_key_jwt client with inline keys, one
    whose jwks_uri keys are cached and one whose jwks_uri says no-store (it fetches on
    every request, beside the hanging fetch) each get every token within 1 s."""
    attacker_key, inline_key, uri_key, no_store_key = (ClientKey() for _ in range(4))
    attacker = backend_client(app, jwks_uri=hanging.url)
    legit: list[tuple[str, ClientKey | None, dict]] = [
        ("client_secret_basic", None,
         backend_client(app, auth_method="client_secret_basic", scope="system/*.rs")),
        ("inline jwks", inline_key, backend_client(app, key=inline_key)),
    ]
    jwks_server.serve(uri_key, cache_control="max-age=300")
    legit.append(("cached jwks_uri", uri_key, backend_client(app, jwks_uri=jwks_server.url)))
    no_store = JwksServer()
    no_store.thread.start()
    no_store.serve(no_store_key, cache_control="no-store")
    legit.append(("no-store jwks_uri", no_store_key,
                  backend_client(app, jwks_uri=no_store.url)))
    try:
        for _name, key, client in legit:  # warm up: keys cached, connections made
            assert _post_token(base_url, key, client).status_code == 200
        attack_start = time.monotonic()
        until = attack_start + 7.0
        attacks: list[list] = [[], []]
        results: list[list] = [[] for _ in legit]
        threads = [threading.Thread(target=_loop, args=(
            until, lambda: _post_token(base_url, attacker_key, attacker), out, 0.01))
            for out in attacks]
        threads += [threading.Thread(target=_loop, args=(
            until + 0.5, lambda k=key, c=client: _post_token(base_url, k, c), out))
            for (_name, key, client), out in zip(legit, results, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
    finally:
        no_store.httpd.shutdown()
        no_store.httpd.server_close()

    for (name, _key, _client), out in zip(legit, results, strict=True):
        assert len(out) >= 10, f"{name}: only {len(out)} requests in 7.5 s"
        assert {r.status_code for _s, _t, r in out} == {200}, name
        slowest = max(t for _s, t, _r in out)
        assert slowest < FAST, f"{name}: a token request took {slowest:.2f} s"
        # It ran throughout the attack, the first (hanging) fetch included.
        assert min(s for s, _t, _r in out) <= attack_start + 0.1, name
    all_attacks = [a for out in attacks for a in out]
    assert len(all_attacks) >= 20
    for _s, _t, resp in all_attacks:
        _assert_fetch_failed(resp)
    assert max(t for _s, t, _r in all_attacks) <= DEADLINE + SLACK
    # One fetch in all: every other attack failed fast, without touching the network.
    assert hanging.connections == 1
    assert sorted(t for _s, t, _r in all_attacks)[-2] < FAST
    assert no_store.hits >= 10


# ---- the negative cache ------------------------------------------------------------------

def test_jwks_uri_failure_is_remembered_next_requests_do_not_connect(app, base_url,
                                                                     jwks_server):
    key = ClientKey()
    jwks_server.status, jwks_server.body = 500, b"oops"
    c = backend_client(app, jwks_uri=jwks_server.url)
    _assert_fetch_failed(_post_token(base_url, key, c))
    assert jwks_server.hits == 1
    jwks_server.status = 200
    jwks_server.serve(key)  # back up: still not asked until the failure period passes
    for _ in range(5):
        _start, took, resp = _timed(lambda: _post_token(base_url, key, c))
        _assert_fetch_failed(resp)
        assert took < FAST
    assert jwks_server.hits == 1


def test_jwks_uri_hanging_fetch_is_remembered_next_requests_fail_fast(app, base_url, hanging):
    key = ClientKey()
    c = backend_client(app, jwks_uri=hanging.url)
    _start, took, resp = _timed(lambda: _post_token(base_url, key, c))
    _assert_fetch_failed(resp)
    assert DEADLINE - 0.1 <= took <= DEADLINE + SLACK
    for _ in range(3):
        _start, took, resp = _timed(lambda: _post_token(base_url, key, c))
        _assert_fetch_failed(resp)
        assert took < FAST
    assert hanging.connections == 1


def test_jwks_uri_failure_period_doubles_up_to_20x_and_success_resets_it(jwks_server):
    from authserver.oauth.rfc7523 import JwksError, JwksFetcher

    now = [1000.0]
    fetcher = JwksFetcher(clock=lambda: now[0], timeout=2, failure_cache=30,
                          allow_private_networks=True)
    key = ClientKey()

    def attempt() -> None:
        fetcher.key_set("c1", jwks_server.url, lambda s: True)

    jwks_server.status = 500
    expected_periods = [30, 60, 120, 240, 480, 600, 600]  # 30 s doubling, capped at 20x
    for n, period in enumerate(expected_periods, start=1):
        with pytest.raises(JwksError):
            attempt()
        assert jwks_server.hits == n
        now[0] += period - 0.5
        with pytest.raises(JwksError) as err:
            attempt()
        assert "remembered" in err.value.reason
        assert jwks_server.hits == n  # not asked during the period
        now[0] += 0.5
    # Back up: the next attempt succeeds, and resets the backoff.
    jwks_server.status = 200
    jwks_server.serve(key, cache_control="no-store")
    attempt()
    assert jwks_server.hits == len(expected_periods) + 1
    jwks_server.status = 500
    with pytest.raises(JwksError):
        attempt()
    now[0] += 30.0
    with pytest.raises(JwksError):
        attempt()  # 30 s again, not 1200
    assert jwks_server.hits == len(expected_periods) + 3


def test_jwks_uri_cached_keys_stay_usable_when_a_refetch_fails(app, base_url, jwks_server):
    known, rotated = ClientKey(), ClientKey()
    jwks_server.serve(known)
    c = backend_client(app, jwks_uri=jwks_server.url)
    assert _post_token(base_url, known, c).status_code == 200
    jwks_server.status, jwks_server.body = 503, b""
    # An unknown kid asks again (the client may have rotated): the server is down.
    _assert_fetch_failed(_post_token(base_url, rotated, c))
    assert jwks_server.hits == 2
    for _ in range(2):
        assert _post_token(base_url, known, c).status_code == 200  # the cached set
    assert jwks_server.hits == 2


# ---- single flight, and no global wait ---------------------------------------------------

def test_jwks_uri_concurrent_requests_for_one_client_make_one_connection(app, base_url,
                                                                         hanging):
    key = ClientKey()
    c = backend_client(app, jwks_uri=hanging.url)
    barrier = threading.Barrier(8)
    out: list[tuple[float, float, requests.Response]] = []

    def one() -> None:
        barrier.wait()
        out.append(_timed(lambda: _post_token(base_url, key, c)))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == 8
    for _s, _t, resp in out:
        _assert_fetch_failed(resp)
    times = sorted(t for _s, t, _r in out)
    assert times[-1] <= DEADLINE + SLACK
    assert times[-2] < FAST  # the others did not wait for the one in flight
    assert hanging.connections == 1


def test_jwks_uri_fetches_beyond_the_process_cap_fail_fast(jwks_server):
    """At most MAX_CONCURRENT_FETCHES downloads at once (fewer than a worker's threads):
    a third client's fetch fails at once instead of taking another thread."""
    from authserver.oauth.rfc7523 import JwksError, JwksFetcher

    fetcher = JwksFetcher(timeout=2, allow_private_networks=True)
    assert fetcher.MAX_CONCURRENT_FETCHES == 2
    servers = [HangingServer(), HangingServer()]
    try:
        def slow(i: int) -> None:
            with contextlib.suppress(JwksError):
                fetcher.key_set(f"slow{i}", servers[i].url, lambda _: True)

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(len(servers))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 1.5
        while sum(s.connections for s in servers) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        key = ClientKey()
        jwks_server.serve(key)
        with pytest.raises(JwksError) as err:
            fetcher.key_set("third", jwks_server.url, lambda _: True)
        assert "too many" in err.value.reason
        assert jwks_server.hits == 0
        for t in threads:
            t.join(5)
        # The slots are free again, and the refusal was not remembered as a failure.
        assert fetcher.key_set("third", jwks_server.url, lambda _: True) == jwks_of(key)
    finally:
        for s in servers:
            s.close()


# ---- one deadline for the whole fetch ------------------------------------------------------

@pytest.mark.parametrize("mode", ["silent", "headers", "body"])
def test_jwks_uri_fetch_never_outlasts_its_deadline(mode):
    """A server that never answers, or trickles a byte every 0.1 s into the headers or
    the body (each socket read succeeds, so only a total deadline stops it)."""
    from authserver.oauth.rfc7523 import JwksError, JwksFetcher

    server = HangingServer(mode)
    try:
        fetcher = JwksFetcher(timeout=1, allow_private_networks=True)
        start = time.monotonic()
        with pytest.raises(JwksError) as err:
            fetcher._download(server.url)
        took = time.monotonic() - start
        assert 0.9 <= took <= 1.0 + SLACK, took
        assert err.value.reason == "deadline passed"
        assert server.connections == 1
    finally:
        server.close()


# ---- the client learns nothing ------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SECRET_BODY = b"internal-admin-console-v2.3 SECRET"


@pytest.mark.parametrize("case", ["hanging", "refused", "404", "500", "302", "not json",
                                  "not a jwk set", "too large"])
def test_jwks_uri_error_reveals_no_port_status_timing_or_body(app, base_url, jwks_server,
                                                              hanging, case):
    setups: dict[str, Any] = {
        "hanging": (hanging.url, hanging.port, None),
        "refused": (None, _closed_port(), None),
        "404": (jwks_server.url, None, (404, _SECRET_BODY)),
        "500": (jwks_server.url, None, (500, _SECRET_BODY)),
        "302": (jwks_server.url, None, (302, _SECRET_BODY)),
        "not json": (jwks_server.url, None, (200, _SECRET_BODY)),
        "not a jwk set": (jwks_server.url, None, (200, b'{"secret": "SECRET"}')),
        "too large": (jwks_server.url, None, (200, b"SECRET" * 20000)),
    }
    url, port, answer = setups[case]
    if url is None:
        url = f"http://127.0.0.1:{port}/jwks.json"
    if answer is not None:
        jwks_server.status, jwks_server.body = answer
        port = jwks_server.httpd.server_port
    c = backend_client(app, jwks_uri=url)
    resp = _post_token(base_url, ClientKey(), c)
    _assert_fetch_failed(resp)
    text = resp.text.lower()
    for leak in (str(port), "127.0.0.1", "timed out", "timeout", "refused", "404", "500",
                 "302", "secret", "internal", "http status", "json", "large"):
        assert leak not in text, (leak, resp.text)
