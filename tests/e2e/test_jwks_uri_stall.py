"""Issue 11 under the production server: ``authserver serve --workers 2`` (gunicorn, as
configured in authserver/serving.py) while a client whose ``jwks_uri`` accepts and never
answers is attacked in a loop from more threads than there are workers; other clients'
token requests answer within 1 s throughout. (With sync workers the first two attacks
would hold both workers for the whole fetch deadline.) Bounded: about 6 s of attack."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.flows.test_jwks_uri_isolation import HangingServer
from tests.flows.test_private_key_jwt import ASSERTION_TYPE, ClientKey, assertion, jwks_of

pytestmark = pytest.mark.e2e

EXE = str(Path(sys.executable).with_name("authserver"))
ATTACK_SECONDS = 6.0
FAST = 1.0
DEADLINE = 2.0  # JWKS_FETCH_TIMEOUT's default


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hanging():
    server = HangingServer()
    yield server
    server.close()


@pytest.fixture
def served(tmp_path: Path, hanging: HangingServer):
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(AUTHSERVER_INSTANCE_PATH=str(tmp_path / "instance"), AUTHSERVER_ISSUER=issuer,
               AUTHSERVER_FHIR_BASE_URL=f"http://127.0.0.1:{_free_port()}/fhir",
               AUTHSERVER_JWKS_ALLOW_PRIVATE_NETWORKS="1")

    def create(*args: str) -> dict:
        res = subprocess.run([EXE, "client", "create", "--grant-type", "client_credentials",
                              "--scope", "system/*.rs", *args], env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    inline_key = ClientKey()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(inline_key)))
    clients = {
        "attacker": create("--name", "Attacker", "--auth-method", "private_key_jwt",
                           "--jwks-uri", hanging.url),
        "secret": create("--name", "Secret", "--auth-method", "client_secret_basic"),
        "inline": create("--name", "Inline", "--auth-method", "private_key_jwt",
                         "--jwks-file", str(jwks_file)),
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([EXE, "serve", "--port", str(port), "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.skip(f"authserver serve exited: {log.read_text()[-1500:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(issuer + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.skip(f"authserver serve did not start in 60 s: {log.read_text()[-1500:]}")
            time.sleep(0.2)
        yield {"issuer": issuer, "clients": clients, "inline_key": inline_key, "log": log}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _token(issuer: str, client: dict, key: ClientKey | None) -> requests.Response:
    data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    if key is None:
        return requests.post(issuer + "/token", data=data, timeout=15,
                             auth=(client["client_id"], client["client_secret"]))
    data.update(client_assertion_type=ASSERTION_TYPE,
                client_assertion=assertion(key, client["client_id"], issuer))
    return requests.post(issuer + "/token", data=data, timeout=15)


def test_hanging_jwks_uri_attack_leaves_other_clients_fast_under_gunicorn(served, hanging):
    issuer, clients = served["issuer"], served["clients"]
    attacker_key = ClientKey()
    legit = [("secret", None), ("inline", served["inline_key"])]
    for name, key in legit:  # warm up both workers' keys and connections
        for _ in range(4):
            assert _token(issuer, clients[name], key).status_code == 200
    until = time.monotonic() + ATTACK_SECONDS
    attacks: list[tuple[float, requests.Response]] = []
    results: dict[str, list[tuple[float, int]]] = {name: [] for name, _k in legit}

    def attack() -> None:
        while time.monotonic() < until:
            start = time.monotonic()
            resp = _token(issuer, clients["attacker"], attacker_key)
            attacks.append((time.monotonic() - start, resp))

    def use(name: str, key: ClientKey | None) -> None:
        while time.monotonic() < until + 0.5:
            start = time.monotonic()
            resp = _token(issuer, clients[name], key)
            results[name].append((time.monotonic() - start, resp.status_code))

    threads = [threading.Thread(target=attack) for _ in range(4)]
    threads += [threading.Thread(target=use, args=(name, key)) for name, key in legit]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)

    for name, out in results.items():
        assert len(out) >= 10, f"{name}: {len(out)} requests"
        assert {status for _t, status in out} == {200}, name
        slowest = max(t for t, _s in out)
        assert slowest < FAST, f"{name}: a token request took {slowest:.2f} s"
    assert len(attacks) >= 20
    for _t, resp in attacks:
        assert resp.status_code == 400
        assert resp.json() == {"error": "invalid_client",
                               "error_description": "could not fetch jwks_uri"}
    assert max(t for t, _r in attacks) <= DEADLINE + 0.75
    assert 1 <= hanging.connections <= 2  # at most one fetch per worker process
